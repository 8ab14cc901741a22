package memnet

import (
	"context"
	"net"
	"syscall"

	"github.com/socktab/socktab/engine"
)

// Unix sockets live in each host's own files: a path is bound until it is
// removed (Host.Remove, or a listener's Close, which removes it as package
// net does), and "@name" is an abstract name that goes with its socket.

func (lc *ListenConfig) listenUnix(spec netSpec, path string) (net.Listener, error) {
	h, n := lc.host, lc.host.n
	addr := &net.UnixAddr{Name: path, Net: spec.name}
	n.lock()
	defer n.unlock()
	s, r := h.eng.NewSocket(engine.Unix, engine.UnixStream, h.uid)
	call := "socket"
	if r.Err == engine.OK {
		call, r = "bind", h.eng.BindUnix(s, path)
	}
	if r.Err == engine.OK {
		call, r = "listen", h.eng.Listen(s)
	}
	if r.Err != engine.OK {
		if s != nil {
			h.eng.Close(s)
		}
		return nil, opError("listen", spec.name, nil, addr, call, sysErr(r))
	}
	backlog := lc.Backlog
	if backlog <= 0 {
		backlog = 4096
	}
	l := &Listener{h: h, sock: s, network: spec.name, netw: spec.id, addr: addr, backlog: backlog,
		ready: make(chan struct{}, 1), done: make(chan struct{})}
	if path != "" && path[0] != '@' {
		l.path = path
	}
	n.listeners[s] = l
	return l, nil
}

func (d *Dialer) dialUnix(ctx context.Context, spec netSpec, path string) (net.Conn, error) {
	h, n := d.host, d.host.n
	raddr := &net.UnixAddr{Name: path, Net: spec.name}
	n.lock()
	defer n.unlock()
	if spec.proto == engine.UnixDgram {
		s, r := h.eng.NewSocket(engine.Unix, engine.UnixDgram, h.uid)
		if _, r2 := h.eng.UnixSocketAt(path, engine.UnixDgram); r2.Err != engine.OK {
			h.eng.Close(s)
			return nil, opError("dial", spec.name, nil, raddr, "connect", sysErr(r2))
		}
		pc := newPacketConn(h, s, spec.name, unnamed(spec.name), true)
		pc.raddr = raddr
		n.packets[s] = pc
		_ = r
		return pc, nil
	}
	s, _ := h.eng.NewSocket(engine.Unix, engine.UnixStream, h.uid)
	r := h.eng.ConnectUnix(s, path)
	if r.Err != engine.OK {
		h.eng.Close(s)
		return nil, opError("dial", spec.name, nil, raddr, "connect", sysErr(r))
	}
	l := n.listeners[r.Other]
	q := r.Other.Queue()
	if l == nil || len(q) == 0 {
		h.eng.Close(s)
		return nil, opError("dial", spec.name, nil, raddr, "connect", syscall.ECONNREFUSED)
	}
	if len(l.queue) > l.backlog {
		// A unix listener whose queue is full refuses a non-blocking
		// connect with EAGAIN and makes a blocking one wait; package net
		// connects non-blocking, so a program sees EAGAIN.
		child := q[len(q)-1]
		h.eng.Close(child)
		h.eng.Close(s)
		return nil, opError("dial", spec.name, nil, raddr, "connect", syscall.EAGAIN)
	}
	child := q[len(q)-1]
	_, c, sc := newPair(nil, true)
	c.h, c.sock, c.netw, c.ux = h, s, spec.id, &unixEnds{unnamed(spec.name), raddr}
	sc.h, sc.sock, sc.netw, sc.ux, sc.listenerL = h, child, spec.id, &unixEnds{&net.UnixAddr{Name: path, Net: spec.name}, unnamed(spec.name)}, l
	n.addConn(c)
	n.addConn(sc)
	l.queue = append(l.queue, sc)
	signal(l.ready)
	return c, nil
}

func (c *PacketConn) sendUnix(b []byte, addr net.Addr, call string) (int, error) {
	ua, ok := addr.(*net.UnixAddr)
	if !ok || ua == nil {
		return 0, c.opErr("write", addr, &net.AddrError{Err: "unknown address type", Addr: addrString(addr)})
	}
	n := c.h.n
	for {
		n.lock()
		s, r := c.h.eng.UnixSocketAt(ua.Name, engine.UnixDgram)
		if r.Err != engine.OK {
			n.unlock()
			return 0, opError("write", c.network, c.laddr, addr, call, sysErr(r))
		}
		to := n.packets[s]
		n.unlock()
		if to == nil {
			return 0, opError("write", c.network, c.laddr, addr, call, syscall.ECONNREFUSED)
		}
		from := ""
		if la, ok := c.laddr.(*net.UnixAddr); ok {
			from = la.Name
		}
		if to.enqueue(netipZero, from, b) {
			return len(b), nil
		}
		// The receiver's queue is full: a unix datagram sender waits.
		to.mu.Lock()
		closed := to.closed
		to.mu.Unlock()
		if closed {
			return 0, opError("write", c.network, c.laddr, addr, call, syscall.ECONNREFUSED)
		}
		wd := c.wd.wait()
		select {
		case <-to.writable:
		case <-to.done:
		case <-c.done:
			return 0, c.opErr("write", addr, net.ErrClosed)
		case <-wd:
			return 0, c.opErr("write", addr, errDeadline)
		}
	}
}

// unnamed is the address of a unix socket bound to nothing, as package net
// reports it on Linux (getsockname gives an empty abstract name: "@").
func unnamed(network string) *net.UnixAddr { return &net.UnixAddr{Name: "@", Net: network} }
