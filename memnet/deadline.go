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
// deadline set later. Its state is made on first use: a connection that
// never sets or waits on a deadline carries one nil pointer per direction.
type deadline struct {
	p atomic.Pointer[deadlineState]
}

type deadlineState struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
}

// state is the deadline's state, made by the first caller that needs it.
func (d *deadline) state() *deadlineState {
	if s := d.p.Load(); s != nil {
		return s
	}
	d.p.CompareAndSwap(nil, &deadlineState{})
	return d.p.Load()
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
	s := d.state()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil && !s.timer.Stop() {
		<-s.ch // the timer fired: wait until its close is done
	}
	s.timer = nil
	closed := s.ch != nil && closedChan(s.ch)
	if t.IsZero() {
		if closed {
			s.ch = nil
		}
		return
	}
	if s.ch == nil || closed {
		s.ch = make(chan struct{})
	}
	if dur := time.Until(t); dur > 0 {
		ch := s.ch
		s.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	close(s.ch)
}

// wait is the channel to select on, closed once the deadline passed.
func (d *deadline) wait() chan struct{} {
	s := d.state()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// clear drops the deadline when one was ever set or waited on (Close: a
// connection that never had one skips the lock).
func (d *deadline) clear() {
	if d.p.Load() != nil {
		d.set(time.Time{})
	}
}

// passed reports whether the deadline has passed.
func (d *deadline) passed() bool {
	s := d.p.Load()
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch != nil && closedChan(s.ch)
}
