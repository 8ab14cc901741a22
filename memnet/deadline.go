package memnet

import (
	"sync"
	"sync/atomic"
	"time"
)

// deadline is one direction's deadline as a channel that is closed when it
// passes, so a blocked call selects on it next to its data channel; inside
// a testing/synctest bubble the timer runs on virtual time. The channel
// stays the same while it is open, so a call already blocked sees a
// deadline set later. It is made on first use: an idle connection has none.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
	used  atomic.Bool // set or waited on once: clear has something to undo
}

func closedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (d *deadline) set(t time.Time) {
	d.used.Store(true)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer fired: wait until its close is done
	}
	d.timer = nil
	closed := d.ch != nil && closedChan(d.ch)
	if t.IsZero() {
		if closed {
			d.ch = nil
		}
		return
	}
	if d.ch == nil || closed {
		d.ch = make(chan struct{})
	}
	if dur := time.Until(t); dur > 0 {
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	close(d.ch)
}

// wait is the channel to select on, closed once the deadline passed.
func (d *deadline) wait() chan struct{} {
	d.used.Store(true)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

// clear drops the deadline when one was ever set (Close: a connection
// that never had one skips the lock).
func (d *deadline) clear() {
	if d.used.Load() {
		d.set(time.Time{})
	}
}

// passed reports whether the deadline has passed.
func (d *deadline) passed() bool {
	if !d.used.Load() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch != nil && closedChan(d.ch)
}
