package memnet

import (
	"sync"
	"time"
)

// Default buffer sizes of a stream connection. A direction holds at most
// the reader's receive buffer plus the writer's send buffer; a writer
// blocks while that is full (flow control). Linux starts TCP at 128 KiB
// receive (tcp_rmem) and grows it; memnet keeps it fixed unless the
// program calls SetReadBuffer / SetWriteBuffer.
const (
	defaultRcvBuf = 128 << 10
	defaultSndBuf = 128 << 10
)

// bufPool recycles ring buffers of the default size: a buffer exists only
// while a direction holds unread bytes, so an idle connection has none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, defaultRcvBuf+defaultSndBuf); return &b }}

// pipe is one direction of a stream connection: bytes one end wrote that
// the other end has not read yet. It is guarded by its pair's mutex.
type pipe struct {
	buf     []byte     // ring; nil while empty
	head, n int        // first unread byte, unread bytes
	held    int        // of n, bytes still in flight (link latency)
	size    int        // capacity: receive + send buffer
	waits   *pipeWaits // made by the first reader or writer that waits
	marks   *[]mark    // when held bytes arrive, oldest first; made by the first delayed write
}

// pipeWaits are the channels blocked readers and writers of a pipe wait
// on, kept apart so that a connection that never waits stays small.
type pipeWaits struct {
	readable chan struct{}
	writable chan struct{}
}

// mark says that count more bytes arrive at time at.
type mark struct {
	at    time.Time
	count int
}

// defaultSize gives a new pipe the default capacity (receive + send buffer).
func (p *pipe) defaultSize() { p.size = defaultRcvBuf + defaultSndBuf }

// readableCh and writableCh are the channels a waiter selects on, made on
// first use (pair.mu held): a connection that never waits has none.
func (p *pipe) readableCh() chan struct{} {
	if p.waits == nil {
		p.waits = &pipeWaits{}
	}
	if p.waits.readable == nil {
		p.waits.readable = make(chan struct{}, 1)
	}
	return p.waits.readable
}

func (p *pipe) writableCh() chan struct{} {
	if p.waits == nil {
		p.waits = &pipeWaits{}
	}
	if p.waits.writable == nil {
		p.waits.writable = make(chan struct{}, 1)
	}
	return p.waits.writable
}

// wakeReader and wakeWriter wake one waiting reader or writer, if any.
func (p *pipe) wakeReader() {
	if p.waits != nil {
		signal(p.waits.readable)
	}
}

func (p *pipe) wakeWriter() {
	if p.waits != nil {
		signal(p.waits.writable)
	}
}

// signal wakes one waiter of c, if any, without blocking (a nil c has none).
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (p *pipe) visible() int { return p.n - p.held }

// put copies as much of b as fits and returns how much.
func (p *pipe) put(b []byte) int {
	room := p.size - p.n
	if room <= 0 || len(b) == 0 {
		return 0
	}
	if p.buf == nil {
		if p.size == defaultRcvBuf+defaultSndBuf {
			p.buf = *bufPool.Get().(*[]byte)
		} else {
			p.buf = make([]byte, p.size)
		}
		p.head = 0
	}
	if len(b) > room {
		b = b[:room]
	}
	tail := (p.head + p.n) % len(p.buf)
	k := copy(p.buf[tail:], b)
	if k < len(b) {
		k += copy(p.buf, b[k:])
	}
	p.n += k
	return k
}

// get copies visible bytes into b and returns how many.
func (p *pipe) get(b []byte) int {
	v := p.visible()
	if v <= 0 {
		return 0
	}
	if len(b) > v {
		b = b[:v]
	}
	k := copy(b, p.buf[p.head:min(len(p.buf), p.head+len(b))])
	if k < len(b) {
		k += copy(b[k:], p.buf)
	}
	p.head = (p.head + k) % len(p.buf)
	p.n -= k
	if p.n == 0 {
		p.release()
	}
	return k
}

// release gives the buffer back once nothing is in it.
func (p *pipe) release() {
	if p.buf != nil && len(p.buf) == defaultRcvBuf+defaultSndBuf {
		b := p.buf
		bufPool.Put(&b)
	}
	p.buf, p.head, p.n, p.held, p.marks = nil, 0, 0, 0, nil
}

// resize changes the capacity (SetReadBuffer / SetWriteBuffer); bytes
// already in the buffer are kept.
func (p *pipe) resize(size int) {
	if size < 1 {
		size = 1
	}
	if p.n == 0 {
		p.release()
		p.size = size
		return
	}
	if size < p.n {
		size = p.n
	}
	n, held, marks := p.n, p.held, p.marks
	nb := make([]byte, size)
	k := copy(nb, p.buf[p.head:min(len(p.buf), p.head+n)])
	copy(nb[k:], p.buf[:n-k])
	p.release()
	p.buf, p.n, p.size, p.held, p.marks = nb, n, size, held, marks
}
