package memnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/socktab/socktab/engine"
)

// SockOpts are socket options a program sets before bind.
type SockOpts struct {
	// ReuseAddr is SO_REUSEADDR; nil is Go's default: on for TCP
	// listeners on Linux, macOS and FreeBSD (package net sets it), off
	// otherwise and on Windows.
	ReuseAddr *bool
	// ReusePort is SO_REUSEPORT (not on Windows: ENOPROTOOPT).
	ReusePort bool
	// V6Only is IPV6_V6ONLY; nil is Go's default: on for tcp6/udp6, off
	// for a dual-stack "tcp"/"udp" socket.
	V6Only *bool
	// BindToDevice is SO_BINDTODEVICE ("lo", "eth0"); "" leaves it unbound.
	BindToDevice string
	// PortRange is IP_LOCAL_PORT_RANGE {low, high}; zero leaves it unset.
	PortRange [2]uint16
}

// ListenConfig is net.ListenConfig for a host, with socket options.
type ListenConfig struct {
	SockOpts
	// Backlog is listen(2)'s backlog; 0 is Go's on Linux, somaxconn 4096.
	// A full accept queue makes Dial wait, as a dropped SYN does.
	Backlog int
	host    *Host
}

// Dialer is net.Dialer for a host, with socket options.
type Dialer struct {
	SockOpts
	// LocalAddr is the address to bind before connecting (*net.TCPAddr,
	// *net.UDPAddr or *net.UnixAddr); nil lets the OS choose.
	LocalAddr net.Addr
	// Timeout and Deadline bound the whole dial, as in net.Dialer.
	Timeout  time.Duration
	Deadline time.Time
	host     *Host
}

// ListenConfig returns a ListenConfig for this host with options o.
func (h *Host) ListenConfig(o SockOpts) *ListenConfig {
	return &ListenConfig{SockOpts: o, host: h}
}

// Dialer returns a Dialer for this host with options o.
func (h *Host) Dialer(o SockOpts) *Dialer { return &Dialer{SockOpts: o, host: h} }

// Listen is net.Listen on this host: "tcp", "tcp4", "tcp6" or "unix".
func (h *Host) Listen(network, address string) (net.Listener, error) {
	return (&ListenConfig{host: h}).Listen(context.Background(), network, address)
}

// ListenPacket is net.ListenPacket on this host: "udp", "udp4", "udp6"
// or "unixgram".
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	return (&ListenConfig{host: h}).ListenPacket(context.Background(), network, address)
}

// Dial is net.Dial from this host.
func (h *Host) Dial(network, address string) (net.Conn, error) {
	return (&Dialer{host: h}).DialContext(context.Background(), network, address)
}

// DialContext is net.Dialer.DialContext from this host, so it plugs into
// http.Transport.DialContext, grpc.WithContextDialer and database drivers.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return (&Dialer{host: h}).DialContext(ctx, network, address)
}

// Dial is DialContext with a background context.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// Listener is a TCP or unix stream listener (net.Listener).
type Listener struct {
	h       *Host
	sock    *engine.Socket
	network string
	netw    network // the same, in a byte for its connections
	addr    net.Addr
	backlog int
	ready   chan struct{} // a connection was queued
	done    chan struct{}
	dl      deadline
	path    string // unix: removed on Close, as package net does

	// guarded by the network's mutex
	queue  []*Conn // server ends not yet accepted
	closed bool
}

// Addr is the bound address (*net.TCPAddr or *net.UnixAddr).
func (l *Listener) Addr() net.Addr { return l.addr }

// SetDeadline sets the deadline of Accept.
func (l *Listener) SetDeadline(t time.Time) error { l.dl.set(t); return nil }

// Accept waits for and returns the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	n := l.h.n
	for {
		n.lock()
		if l.closed {
			n.unlock()
			return nil, plainOpError("accept", l.network, nil, l.addr, net.ErrClosed)
		}
		if l.dl.passed() {
			n.unlock()
			return nil, plainOpError("accept", l.network, nil, l.addr, os.ErrDeadlineExceeded)
		}
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue[0] = nil
			if len(l.queue) == 1 {
				l.queue = l.queue[:0] // keeps its room: the next connection does not allocate
			} else {
				l.queue = l.queue[1:]
			}
			l.h.eng.Accept(l.sock)
			if len(l.queue) > l.backlog {
				if w := l.queue[l.backlog].peer(); w != nil && w.admit != nil {
					close(w.admit) // its SYN is taken now
					w.admit = nil
				}
			}
			if len(l.queue) > 0 {
				signal(l.ready)
			}
			c.listenerL = nil
			n.unlock()
			return c, nil
		}
		dl := l.dl.wait()
		n.unlock()
		select {
		case <-l.ready:
		case <-l.done:
		case <-dl:
		}
	}
}

// Close closes the listener: connections not yet accepted are reset (their
// dialers' next read or write fails with ECONNRESET), dialers still waiting
// for room in the queue are refused, and a unix listener removes its path.
func (l *Listener) Close() error {
	n := l.h.n
	n.lock()
	defer n.unlock()
	if l.closed {
		return plainOpError("close", l.network, nil, l.addr, net.ErrClosed)
	}
	l.closed = true
	close(l.done)
	for _, c := range l.queue {
		n.dropConn(c)
		pr := c.pr
		pr.mu.Lock()
		c.closed = true
		c.closeDone()
		if p := c.peer(); p != nil {
			if p.admit != nil {
				p.refused = true
				close(p.admit)
				p.admit = nil
			} else {
				p.resetLocked()
			}
		}
		pr.mu.Unlock()
	}
	l.queue = nil
	l.h.eng.Close(l.sock)
	delete(n.listeners, l.sock)
	if l.path != "" {
		l.h.eng.Unlink(l.path)
	}
	l.dl.clear()
	return nil
}

// Listen is net.ListenConfig.Listen on the config's host.
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	h := lc.host
	spec, err := parseNetwork(network)
	if err == nil && spec.proto != engine.TCP && spec.proto != engine.UnixStream {
		err = net.UnknownNetworkError(network)
	}
	if err == nil {
		err = h.err
	}
	if err != nil {
		return nil, plainOpError("listen", network, nil, nil, err)
	}
	if spec.unix() {
		return lc.listenUnix(spec, address)
	}
	var buf [2]netip.AddrPort
	aps, err := h.n.inetAddrs(spec, address, true, buf[:])
	if err != nil {
		return nil, plainOpError("listen", network, nil, nil, err)
	}
	want := aps[0]
	fam, v6only := family(spec, want.Addr(), netip.Addr{}, true)
	n := h.n
	n.lock()
	defer n.unlock()
	s, call, r := h.socket(fam, engine.TCP, v6only, lc.SockOpts, n.eng.Profile != engine.Windows)
	if r.Err == engine.OK {
		call, r = "bind", h.eng.Bind(s, sockAddr(fam, want))
	}
	if r.Err == engine.OK {
		call, r = "listen", h.eng.Listen(s)
	}
	if r.Err != engine.OK {
		if s != nil {
			h.eng.Close(s)
		}
		return nil, opError("listen", network, nil, tcpAddr(want), call, sysErr(r))
	}
	backlog := lc.Backlog
	if backlog <= 0 {
		backlog = 4096
	}
	l := &Listener{h: h, sock: s, network: network, netw: networkOf(network), addr: tcpAddr(s.Local()), backlog: backlog,
		ready: make(chan struct{}, 1), done: make(chan struct{})}
	n.listeners[s] = l
	return l, nil
}

// socket makes a socket with the options of o over Go's defaults; it
// returns the failing call and result when an option is refused.
func (h *Host) socket(fam engine.Family, p engine.Proto, v6only bool, o SockOpts, reuseDefault bool) (*engine.Socket, string, engine.Result) {
	s, r := h.eng.NewSocket(fam, p, h.uid)
	if r.Err != engine.OK {
		return nil, "socket", r
	}
	fail := func(r engine.Result) (*engine.Socket, string, engine.Result) { return s, "setsockopt", r }
	reuse := reuseDefault
	if o.ReuseAddr != nil {
		reuse = *o.ReuseAddr
	}
	if reuse {
		if r := h.eng.SetReuseAddr(s, true); r.Err != engine.OK {
			return fail(r)
		}
	}
	if o.ReusePort {
		if r := h.eng.SetReusePort(s, true); r.Err != engine.OK {
			return fail(r)
		}
	}
	if fam == engine.Inet6 {
		if o.V6Only != nil {
			v6only = *o.V6Only
		}
		if r := h.eng.SetV6Only(s, v6only); r.Err != engine.OK {
			return fail(r)
		}
	} else if o.V6Only != nil {
		return fail(h.eng.SetV6Only(s, *o.V6Only))
	}
	if o.BindToDevice != "" {
		if r := h.eng.BindToDevice(s, o.BindToDevice); r.Err != engine.OK {
			return fail(r)
		}
	}
	if o.PortRange != [2]uint16{} {
		if r := h.eng.SetLocalPortRange(s, o.PortRange[0], o.PortRange[1]); r.Err != engine.OK {
			return fail(r)
		}
	}
	return s, "", engine.Result{}
}

// DialContext is net.Dialer.DialContext from the dialer's host: names are
// resolved, and each address is tried in turn until one connects.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	h := d.host
	spec, err := parseNetwork(network)
	if err == nil {
		err = h.err
	}
	if err != nil {
		return nil, plainOpError("dial", network, nil, nil, err)
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	if !d.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Deadline)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, d.ctxErr(spec, nil, err)
	}
	if spec.unix() {
		return d.dialUnix(ctx, spec, address)
	}
	var buf [2]netip.AddrPort
	aps, err := h.n.inetAddrs(spec, address, false, buf[:])
	if err != nil {
		return nil, plainOpError("dial", network, nil, nil, err)
	}
	var local netip.AddrPort
	if d.LocalAddr != nil {
		var ok bool
		if local, ok = addrPortOf(d.LocalAddr); !ok {
			return nil, plainOpError("dial", network, d.LocalAddr, nil, &net.AddrError{Err: "mismatched local address type", Addr: d.LocalAddr.String()})
		}
	}
	var first error
	for _, ap := range aps {
		if err := ctx.Err(); err != nil {
			if first == nil {
				first = d.ctxErr(spec, tcpAddr(ap), err)
			}
			break
		}
		var c net.Conn
		if spec.proto == engine.UDP {
			c, err = d.dialUDP(spec, local, ap)
		} else {
			c, err = d.dialTCP(ctx, spec, local, ap)
		}
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// synTimeout is how long Linux keeps retrying an unanswered SYN
// (tcp_syn_retries = 6: 1+2+4+8+16+32+64 s) before ETIMEDOUT.
const synTimeout = 127 * time.Second

func (d *Dialer) dialTCP(ctx context.Context, spec netSpec, local, remote netip.AddrPort) (net.Conn, error) {
	h, n := d.host, d.host.n
	fam, v6only := family(spec, local.Addr(), remote.Addr(), false)
	dst := sockAddr(fam, remote)
	if fam == engine.Inet6 && remote.Addr().Is4() {
		dst = netip.AddrPortFrom(netip.AddrFrom16(remote.Addr().As16()), remote.Port())
	}
	fail := func(call string, r engine.Result) error {
		return opError("dial", spec.name, nil, tcpAddr(remote), call, sysErr(r))
	}
	n.lock()
	s, call, r := h.socket(fam, engine.TCP, v6only, d.SockOpts, false)
	if r.Err == engine.OK && local.IsValid() {
		call, r = "bind", h.eng.Bind(s, sockAddr(fam, local))
	}
	if r.Err != engine.OK {
		if s != nil {
			h.eng.Close(s)
		}
		n.unlock()
		return nil, fail(call, r)
	}
	target := h
	if !h.eng.IsLocal(remote.Addr()) && !remote.Addr().IsUnspecified() {
		target = n.hostOf(remote.Addr())
	}
	var lk *link
	if target != nil && target != h {
		lk = n.linkOf(h, target)
	}
	if !lk.unobstructed() {
		n.unlock()
		// The SYN crosses the link: a partition holds it (retransmits)
		// until the link heals, the context ends or the OS gives up.
		if err := waitLink(ctx, lk); err != nil {
			n.lock()
			h.eng.Close(s)
			n.unlock()
			return nil, d.ctxErr(spec, tcpAddr(remote), err)
		}
		if lat := lk.delay(); lat > 0 {
			if err := sleepCtx(ctx, 2*lat); err != nil {
				n.lock()
				h.eng.Close(s)
				n.unlock()
				return nil, d.ctxErr(spec, tcpAddr(remote), err)
			}
		}
		n.lock()
	}
	r = h.eng.Connect(s, dst)
	if r.Err == engine.EINPROGRESS || (r.Err == engine.OK && r.Other == nil) {
		// The answer never comes (the engine's lost-answer cases), or no
		// host of the network has the address: the SYN goes unanswered.
		n.unlock()
		err := sleepCtx(ctx, synTimeout)
		n.lock()
		h.eng.Close(s)
		n.unlock()
		if err == nil {
			err = opError("dial", spec.name, nil, tcpAddr(remote), "connect", syscall.ETIMEDOUT)
		} else {
			err = d.ctxErr(spec, tcpAddr(remote), err)
		}
		return nil, err
	}
	if r.Err != engine.OK {
		h.eng.Close(s)
		n.unlock()
		return nil, fail("connect", r)
	}
	l := n.listeners[r.Other]
	q := r.Other.Queue()
	if l == nil || len(q) == 0 || target == nil {
		h.eng.Abort(s)
		n.unlock()
		return nil, fail("connect", engine.Result{Err: engine.ECONNREFUSED, Rule: "the listener is not a memnet listener"})
	}
	child := q[len(q)-1]
	_, c, sc := newPair(lk, false)
	c.h, c.sock, c.netw, c.lap, c.rap = h, s, spec.id, endOf(s.Local()), endOf(s.Remote())
	sc.h, sc.sock, sc.netw, sc.lap, sc.rap, sc.listenerL = target, child, l.netw, endOf(child.Local()), endOf(child.Remote()), l
	n.addConn(c)
	n.addConn(sc)
	l.queue = append(l.queue, sc)
	admitted := len(l.queue) <= l.backlog+1
	if !admitted {
		c.admit = make(chan struct{})
	}
	signal(l.ready)
	admit := c.admit
	n.unlock()
	if admitted {
		return c, nil
	}
	// The accept queue is full: the SYN is dropped and retried until the
	// listener takes it, the context ends or the listener goes away.
	var ctxErr error
	select {
	case <-admit:
	case <-ctx.Done():
		ctxErr = ctx.Err()
	}
	n.lock()
	defer n.unlock()
	refused, waiting := c.refused, c.admit != nil
	if ctxErr != nil && waiting {
		l.queue = removeConn(l.queue, sc)
		n.dropConn(c)
		n.dropConn(sc)
		target.eng.Abort(child)
		h.eng.Close(s)
		return nil, d.ctxErr(spec, tcpAddr(remote), ctxErr)
	}
	if refused {
		n.dropConn(c)
		h.eng.Close(s)
		return nil, fail("connect", engine.Result{Err: engine.ECONNREFUSED, Rule: "the listener closed while the connection waited for room in its queue"})
	}
	return c, nil
}

func removeConn(q []*Conn, c *Conn) []*Conn {
	for i, x := range q {
		if x == c {
			return append(q[:i], q[i+1:]...)
		}
	}
	return q
}

// hostOf returns the host that has a (n.mu held), or nil.
func (n *Network) hostOf(a netip.Addr) *Host {
	return n.byEng[n.eng.Owner(a)]
}

// waitLink waits until the link is up (a partition heals), the context
// ends, or a SYN would have timed out.
func waitLink(ctx context.Context, l *link) error {
	heal := l.healCh()
	if heal == nil {
		return nil
	}
	t := time.NewTimer(synTimeout)
	defer t.Stop()
	select {
	case <-heal:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errSynTimeout
	}
}

var errSynTimeout = errors.New("SYN timed out")

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// canceledError is the error of a dial whose context was canceled; it
// matches context.Canceled as package net's does.
type canceledError struct{}

func (canceledError) Error() string        { return "operation was canceled" }
func (canceledError) Is(target error) bool { return target == context.Canceled }

// ctxErr is the dial error for a context that ended, as package net maps
// it: a deadline is a timeout (os.ErrDeadlineExceeded), a cancel
// "operation was canceled".
func (d *Dialer) ctxErr(spec netSpec, raddr net.Addr, err error) error {
	switch {
	case errors.Is(err, errSynTimeout):
		return opError("dial", spec.name, nil, raddr, "connect", syscall.ETIMEDOUT)
	case errors.Is(err, context.DeadlineExceeded):
		return plainOpError("dial", spec.name, nil, raddr, os.ErrDeadlineExceeded)
	}
	return plainOpError("dial", spec.name, nil, raddr, canceledError{})
}
