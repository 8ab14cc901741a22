package memnet

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/socktab/socktab/engine"
)

// pair is one stream connection: two ends and a pipe each way. One mutex
// guards both directions; the engine lock is never taken while it is held
// (the order is Network.mu, then pair.mu).
type pair struct {
	mu   sync.Mutex
	p    [2]pipe // p[i]: what end i wrote
	link *link   // nil between two ends on one host
	unix bool
	fin  [2]bool // fin[i]: end i shut its writing down, EOF once drained
	ends [2]Conn // both ends live in the pair: a connection is one allocation
}

// Conn is one end of a TCP or unix stream connection. It implements
// net.Conn and the methods of *net.TCPConn / *net.UnixConn that programs
// call (CloseWrite, CloseRead, SetLinger, SetReadBuffer, ...), plus fault
// injection (Reset, SetReadError, SetWriteError).
type Conn struct {
	pr     *pair
	h      *Host
	sock   *engine.Socket
	ux     *unixEnds // unix; TCP ends keep lap/rap and make a *net.TCPAddr when asked
	lap    tcpEnd    // TCP local end
	rap    tcpEnd    // TCP remote end
	rd, wd deadline

	// guarded by pr.mu (the fields are packed: a connection is two of
	// these and its pair in one allocation, which stays in a smaller size
	// class)
	done   chan struct{} // closed by Close; made when a call first waits
	inj    *injected     // SetReadError / SetWriteError; nil until one is set
	soErr  uint32        // a syscall.Errno reported once by the next read or write (sk_err; Windows' invented errnos exceed 16 bits)
	linger int32         // SO_LINGER seconds, -1: off
	netw   network       // "tcp", "tcp4", ... as the program asked
	i      uint8         // which end: pr.p[i] is what this end writes
	closed bool
	rdShut bool // after a reset or CloseRead: reads give EOF once drained
	wrShut bool // after a reset or CloseWrite: writes fail with EPIPE
	// guarded by the network's mutex
	refused   bool          // the listener closed while the dial waited
	listed    bool          // in the network's list of open ends (addConn)
	admit     chan struct{} // closed when a full accept queue takes the connection
	listenerL *Listener     // the listener whose queue holds the server end
	prev      *Conn         // the network's list of open ends
	next      *Conn
}

// injected holds the errors a test injected into a connection's reads and
// writes.
type injected struct{ read, write error }

func (c *Conn) readErr() error {
	if c.inj == nil {
		return nil
	}
	return c.inj.read
}

func (c *Conn) writeErr() error {
	if c.inj == nil {
		return nil
	}
	return c.inj.write
}

// unixEnds are a unix stream end's addresses.
type unixEnds struct{ local, remote net.Addr }

// newPair makes a connection over link lk (nil between two ends on one
// host; n.mu held) and returns it with its two ends, to be filled in.
func newPair(lk *link, unix bool) (*pair, *Conn, *Conn) {
	// Field by field: a composite literal of the whole pair would be built
	// aside and copied in (480 bytes, with write barriers).
	pr := new(pair)
	pr.unix, pr.link = unix, lk
	pr.p[0].defaultSize()
	pr.p[1].defaultSize()
	c, sc := &pr.ends[0], &pr.ends[1]
	c.pr, c.i, c.linger = pr, 0, -1
	sc.pr, sc.i, sc.linger = pr, 1, -1
	return pr, c, sc
}

func (c *Conn) in() *pipe  { return &c.pr.p[1-c.i] }
func (c *Conn) out() *pipe { return &c.pr.p[c.i] }
func (c *Conn) peer() *Conn {
	return &c.pr.ends[1-c.i]
}

// LocalAddr is the bound local address (*net.TCPAddr or *net.UnixAddr).
func (c *Conn) LocalAddr() net.Addr {
	if c.ux != nil {
		return c.ux.local
	}
	return tcpAddr(c.lap.addrPort())
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr {
	if c.ux != nil {
		return c.ux.remote
	}
	return tcpAddr(c.rap.addrPort())
}

func (c *Conn) opErr(op string, err error) error {
	return plainOpError(op, c.netw.String(), c.LocalAddr(), c.RemoteAddr(), err)
}

func (c *Conn) sysErr(op string, e syscall.Errno) error {
	return opError(op, c.netw.String(), c.LocalAddr(), c.RemoteAddr(), op, e)
}

// Read reads bytes the peer wrote, waiting for them; io.EOF after the
// peer's CloseWrite or Close, once everything sent before it is read.
func (c *Conn) Read(b []byte) (int, error) {
	pr := c.pr
	in := c.in()
	pr.mu.Lock()
	for {
		switch {
		case c.closed:
			pr.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		case c.readErr() != nil:
			err := c.readErr()
			in.wakeReader() // the next blocked reader fails too
			pr.mu.Unlock()
			return 0, c.opErr("read", err)
		case c.rd.passed():
			pr.mu.Unlock()
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		down := pr.link.isDown()
		if in.visible() > 0 && !down {
			if len(b) == 0 {
				pr.mu.Unlock()
				return 0, nil
			}
			k := in.get(b)
			in.wakeWriter()
			if in.visible() > 0 {
				in.wakeReader() // for another reader
			}
			pr.mu.Unlock()
			return k, nil
		}
		if c.soErr != 0 {
			e := syscall.Errno(c.soErr)
			c.soErr = 0
			pr.mu.Unlock()
			return 0, c.sysErr("read", e)
		}
		if (c.pr.fin[1-c.i] || c.rdShut) && (in.n == 0 || c.rdShut) {
			in.wakeReader()
			pr.mu.Unlock()
			return 0, io.EOF
		}
		if len(b) == 0 {
			pr.mu.Unlock()
			return 0, nil
		}
		rc, done := in.readableCh(), c.doneCh()
		rd, heal := c.rd.wait(), pr.link.healCh()
		pr.mu.Unlock()
		select {
		case <-rc:
		case <-done:
		case <-rd:
		case <-heal:
		}
		pr.mu.Lock()
	}
}

// Write writes all of b, waiting while the peer's buffers are full.
func (c *Conn) Write(b []byte) (int, error) {
	pr := c.pr
	out := c.out()
	done := 0
	pr.mu.Lock()
	for {
		switch {
		case c.closed:
			pr.mu.Unlock()
			return done, c.opErr("write", net.ErrClosed)
		case c.writeErr() != nil:
			err := c.writeErr()
			out.wakeWriter()
			pr.mu.Unlock()
			return done, c.opErr("write", err)
		case c.wd.passed():
			pr.mu.Unlock()
			return done, c.opErr("write", os.ErrDeadlineExceeded)
		case c.soErr != 0:
			e := syscall.Errno(c.soErr)
			c.soErr = 0
			c.wrShut = true
			pr.mu.Unlock()
			return done, c.sysErr("write", e)
		case c.wrShut || c.pr.fin[c.i]:
			out.wakeWriter()
			pr.mu.Unlock()
			return done, c.sysErr("write", syscall.EPIPE)
		}
		if p := c.peer(); p != nil && p.closed {
			if pr.unix {
				pr.mu.Unlock()
				return done, c.sysErr("write", syscall.EPIPE)
			}
			// The bytes reach a socket that is gone, which answers RST.
			pr.mu.Unlock()
			c.receiveReset()
			return len(b), nil
		}
		if done == len(b) {
			pr.mu.Unlock()
			return done, nil
		}
		if k := out.put(b[done:]); k > 0 {
			done += k
			if lat := pr.link.delay(); lat > 0 {
				out.held += k
				if out.marks == nil {
					out.marks = new([]mark)
				}
				*out.marks = append(*out.marks, mark{at: time.Now().Add(lat), count: k})
				time.AfterFunc(lat, func() { pr.arrive(out) })
			} else {
				out.wakeReader()
			}
			continue
		}
		wc, done := out.writableCh(), c.doneCh()
		wd := c.wd.wait()
		pr.mu.Unlock()
		select {
		case <-wc:
		case <-done:
		case <-wd:
		}
		pr.mu.Lock()
	}
}

// arrive makes bytes whose link latency has passed readable.
func (pr *pair) arrive(p *pipe) {
	pr.mu.Lock()
	now := time.Now()
	for p.marks != nil && len(*p.marks) > 0 && !(*p.marks)[0].at.After(now) {
		p.held -= (*p.marks)[0].count
		*p.marks = (*p.marks)[1:]
	}
	if p.held < 0 {
		p.held = 0
	}
	p.wakeReader()
	pr.mu.Unlock()
}

// receiveReset is a RST arriving at c: the next read or write reports
// ECONNRESET (EPIPE when the peer had already sent its FIN: tcp_reset in
// CLOSE_WAIT), later writes EPIPE and reads EOF; the engine drops the
// connection and the closed peer's orphan.
func (c *Conn) receiveReset() {
	n := c.h.n
	n.lock()
	c.pr.mu.Lock()
	c.resetLocked()
	c.pr.mu.Unlock()
	if c.sock != nil && !c.pr.unix {
		c.h.eng.Reset(c.sock)
	}
	n.unlock()
}

// resetLocked marks c reset (pr.mu held).
func (c *Conn) resetLocked() {
	if c.closed || (c.rdShut && c.wrShut) {
		return
	}
	c.soErr = uint32(syscall.ECONNRESET)
	if c.pr.fin[1-c.i] && !c.pr.unix {
		c.soErr = uint32(syscall.EPIPE)
	}
	c.rdShut, c.wrShut = true, true
	c.wake()
}

// doneCh is closed when c is closed (pr.mu held).
func (c *Conn) doneCh() chan struct{} {
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

// closeDone wakes every call waiting on c's Close (pr.mu held).
func (c *Conn) closeDone() {
	if c.done == nil {
		c.done = closedCh
	} else if c.done != closedCh {
		close(c.done)
	}
}

// closedCh is a channel closed from the start.
var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// wake wakes every call blocked on c.
func (c *Conn) wake() {
	c.in().wakeReader()
	c.out().wakeWriter()
}

// Close closes the connection. Unread received data or SO_LINGER 0 make it
// a reset (the peer's next read or write fails with ECONNRESET, and no
// TIME_WAIT stays); otherwise the peer reads EOF and the side that closed
// first holds TIME_WAIT in the engine for the profile's time.
func (c *Conn) Close() error {
	n := c.h.n
	n.lock()
	pr := c.pr
	pr.mu.Lock()
	if c.closed {
		pr.mu.Unlock()
		n.unlock()
		return c.opErr("close", net.ErrClosed)
	}
	c.closed = true
	c.closeDone()
	in, out, p := c.in(), c.out(), c.peer()
	abort := in.n > 0 || c.linger == 0
	if p != nil && !p.closed {
		if abort {
			p.resetLocked()
			if pr.unix {
				p.soErr = uint32(syscall.ECONNRESET)
			}
		} else {
			pr.fin[c.i] = true
			out.wakeReader()
		}
		in.wakeWriter()
	}
	in.release()
	pr.mu.Unlock()
	n.dropConn(c)
	if c.sock != nil {
		if abort && !pr.unix {
			c.h.eng.Abort(c.sock)
		} else {
			c.h.eng.Close(c.sock)
		}
	}
	n.unlock()
	c.rd.clear()
	c.wd.clear()
	return nil
}

// CloseWrite shuts down the writing side: the peer reads EOF after the
// data already written; this end sent its FIN first and so holds
// TIME_WAIT later.
func (c *Conn) CloseWrite() error {
	n := c.h.n
	n.lock()
	defer n.unlock()
	pr := c.pr
	pr.mu.Lock()
	if c.closed {
		pr.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	out := c.out()
	if !pr.fin[c.i] {
		pr.fin[c.i] = true
		out.wakeReader()
	}
	pr.mu.Unlock()
	if c.sock != nil && !pr.unix {
		c.h.eng.Shutdown(c.sock)
	}
	return nil
}

// CloseRead shuts down the reading side: reads return EOF.
func (c *Conn) CloseRead() error {
	c.pr.mu.Lock()
	defer c.pr.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	c.rdShut = true
	c.in().wakeReader()
	return nil
}

// SetLinger is SO_LINGER: 0 makes Close reset the connection.
func (c *Conn) SetLinger(sec int) error {
	c.pr.mu.Lock()
	defer c.pr.mu.Unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	if sec < 0 {
		sec = -1
	}
	c.linger = int32(min(sec, 1<<31-1))
	return nil
}

// SetReadBuffer sets the receive buffer (SO_RCVBUF): the reader's part of
// what the peer may write before it blocks.
func (c *Conn) SetReadBuffer(bytes int) error {
	c.pr.mu.Lock()
	defer c.pr.mu.Unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	in := c.in()
	in.resize(bytes + (in.size - defaultRcvBuf))
	in.wakeWriter()
	return nil
}

// SetWriteBuffer sets the send buffer (SO_SNDBUF).
func (c *Conn) SetWriteBuffer(bytes int) error {
	c.pr.mu.Lock()
	defer c.pr.mu.Unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	out := c.out()
	out.resize(bytes + (out.size - defaultSndBuf))
	out.wakeWriter()
	return nil
}

// SetNoDelay, SetKeepAlive and SetKeepAlivePeriod are accepted and have
// no effect: memnet has no segments and no idle probes.
func (c *Conn) SetNoDelay(bool) error                  { return nil }
func (c *Conn) SetKeepAlive(bool) error                { return nil }
func (c *Conn) SetKeepAlivePeriod(time.Duration) error { return nil }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return c.deadlineErr()
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { c.rd.set(t); return c.deadlineErr() }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return c.deadlineErr() }

func (c *Conn) deadlineErr() error {
	c.pr.mu.Lock()
	defer c.pr.mu.Unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	return nil
}

// Reset injects a reset on the connection, as a RST from a middlebox:
// both ends' next read or write fails with ECONNRESET.
func (c *Conn) Reset() {
	c.receiveReset()
	if p := c.peer(); p != nil {
		p.receiveReset()
	}
}

// SetReadError makes every read fail with err (wrapped in a *net.OpError),
// blocked reads included; nil clears it.
func (c *Conn) SetReadError(err error) {
	c.pr.mu.Lock()
	if c.inj == nil {
		c.inj = &injected{}
	}
	c.inj.read = err
	c.in().wakeReader()
	c.pr.mu.Unlock()
}

// SetWriteError makes every write fail with err; nil clears it.
func (c *Conn) SetWriteError(err error) {
	c.pr.mu.Lock()
	if c.inj == nil {
		c.inj = &injected{}
	}
	c.inj.write = err
	c.out().wakeWriter()
	c.pr.mu.Unlock()
}
