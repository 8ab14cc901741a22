package memnet

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/socktab/socktab/engine"
)

// Receive buffer of a datagram socket (net.core.rmem_default) and what
// each queued datagram costs in it besides its bytes (an approximation of
// the kernel's skb truesize for a small datagram).
const (
	defaultDgramRcvBuf = 212992
	dgramOverhead      = 768
	maxDatagram        = 65507
)

// PacketConn is a UDP or unixgram socket: net.PacketConn, and net.Conn
// when connected (Dial "udp"). Datagrams keep their boundaries; a short
// read truncates; a full receive buffer drops (UDP).
type PacketConn struct {
	h       *Host
	sock    *engine.Socket
	network string
	laddr   net.Addr
	raddr   net.Addr // set by Dial
	unix    bool
	done    chan struct{}
	rd, wd  deadline

	mu       sync.Mutex
	q        []dgram
	head     int
	used     int // bytes charged to the receive buffer
	rcvbuf   int
	arena    []byte // backing store of queued datagrams, reset when drained
	readable chan struct{}
	writable chan struct{} // unixgram senders wait for room
	closed   bool
	soErr    syscall.Errno // ECONNREFUSED after a datagram hit a closed port
	readErr  error
	writeErr error

	// the last destination's route (guarded by the network's mutex)
	hop hop
}

// hop is where datagrams to one address go from this socket: the source
// address, the receiving host (nil: none) and the link, valid while the
// network's topology is unchanged.
type hop struct {
	dst, src netip.Addr
	bound    netip.Addr // the socket's local address the source came from
	topo     uint64
	errno    syscall.Errno
	target   *Host
	link     *link
	ok       bool
}

type dgram struct {
	from netip.AddrPort
	path string
	data []byte
}

func newPacketConn(h *Host, s *engine.Socket, network string, laddr net.Addr, unix bool) *PacketConn {
	return &PacketConn{h: h, sock: s, network: network, laddr: laddr, unix: unix, done: make(chan struct{}),
		rcvbuf: defaultDgramRcvBuf, readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

// ListenPacket is net.ListenConfig.ListenPacket on the config's host.
func (lc *ListenConfig) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	h := lc.host
	spec, err := parseNetwork(network)
	if err == nil && spec.proto != engine.UDP && spec.proto != engine.UnixDgram {
		err = net.UnknownNetworkError(network)
	}
	if err == nil {
		err = h.err
	}
	if err != nil {
		return nil, plainOpError("listen", network, nil, nil, err)
	}
	n := h.n
	if spec.unix() {
		n.lock()
		defer n.unlock()
		s, r := h.eng.NewSocket(engine.Unix, engine.UnixDgram, h.uid)
		addr := &net.UnixAddr{Name: address, Net: network}
		if address != "" {
			r = h.eng.BindUnix(s, address)
		}
		if r.Err != engine.OK {
			h.eng.Close(s)
			return nil, opError("listen", network, nil, addr, "bind", sysErr(r))
		}
		pc := newPacketConn(h, s, network, addr, true)
		n.packets[s] = pc
		return pc, nil
	}
	var buf [2]netip.AddrPort
	aps, err := n.inetAddrs(spec, address, true, buf[:])
	if err != nil {
		return nil, plainOpError("listen", network, nil, nil, err)
	}
	want := aps[0]
	fam, v6only := family(spec, want.Addr(), netip.Addr{}, true)
	n.lock()
	defer n.unlock()
	s, call, r := h.socket(fam, engine.UDP, v6only, lc.SockOpts, false)
	if r.Err == engine.OK {
		call, r = "bind", h.eng.Bind(s, sockAddr(fam, want))
	}
	if r.Err != engine.OK {
		if s != nil {
			h.eng.Close(s)
		}
		return nil, opError("listen", network, nil, udpAddr(want), call, sysErr(r))
	}
	pc := newPacketConn(h, s, network, udpAddr(s.Local()), false)
	n.packets[s] = pc
	return pc, nil
}

func (d *Dialer) dialUDP(spec netSpec, local, remote netip.AddrPort) (net.Conn, error) {
	h, n := d.host, d.host.n
	fam, v6only := family(spec, local.Addr(), remote.Addr(), false)
	dst := sockAddr(fam, remote)
	raddr := udpAddr(remote)
	n.lock()
	defer n.unlock()
	s, call, r := h.socket(fam, engine.UDP, v6only, d.SockOpts, false)
	if r.Err == engine.OK && local.IsValid() {
		call, r = "bind", h.eng.Bind(s, sockAddr(fam, local))
	}
	if r.Err == engine.OK {
		call, r = "connect", h.eng.Connect(s, dst)
	}
	if r.Err != engine.OK {
		if s != nil {
			h.eng.Close(s)
		}
		return nil, opError("dial", spec.name, nil, raddr, call, sysErr(r))
	}
	pc := newPacketConn(h, s, spec.name, udpAddr(s.Local()), false)
	pc.raddr = udpAddr(s.Remote())
	n.packets[s] = pc
	return pc, nil
}

// LocalAddr is the bound address.
func (c *PacketConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr is the connected peer, or nil.
func (c *PacketConn) RemoteAddr() net.Addr { return nilAddr(c.raddr) }

func (c *PacketConn) opErr(op string, addr net.Addr, err error) error {
	return plainOpError(op, c.network, c.laddr, addr, err)
}

// ReadFrom reads one datagram; a buffer shorter than it gets its first
// bytes and the rest is lost.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	k, from, path, err := c.read(b)
	if err != nil {
		return k, nil, err
	}
	if c.unix {
		return k, &net.UnixAddr{Name: path, Net: c.network}, nil
	}
	return k, udpAddr(from), nil
}

// Read reads one datagram (a connected socket's).
func (c *PacketConn) Read(b []byte) (int, error) {
	k, _, _, err := c.read(b)
	return k, err
}

func (c *PacketConn) read(b []byte) (int, netip.AddrPort, string, error) {
	c.mu.Lock()
	for {
		switch {
		case c.closed:
			c.mu.Unlock()
			return 0, netip.AddrPort{}, "", c.opErr("read", c.raddr, net.ErrClosed)
		case c.readErr != nil:
			err := c.readErr
			signal(c.readable)
			c.mu.Unlock()
			return 0, netip.AddrPort{}, "", c.opErr("read", c.raddr, err)
		case c.rd.passed():
			c.mu.Unlock()
			return 0, netip.AddrPort{}, "", c.opErr("read", c.raddr, os.ErrDeadlineExceeded)
		case c.soErr != 0:
			e := c.soErr
			c.soErr = 0
			c.mu.Unlock()
			return 0, netip.AddrPort{}, "", opError("read", c.network, c.laddr, c.raddr, "read", e)
		}
		if c.head < len(c.q) {
			d := c.q[c.head]
			c.q[c.head] = dgram{}
			c.head++
			c.used -= len(d.data) + dgramOverhead
			k := copy(b, d.data)
			if c.head == len(c.q) {
				c.q, c.head, c.arena = c.q[:0], 0, c.arena[:0]
			} else {
				signal(c.readable)
			}
			signal(c.writable)
			c.mu.Unlock()
			return k, d.from, d.path, nil
		}
		rd := c.rd.wait()
		c.mu.Unlock()
		select {
		case <-c.readable:
		case <-c.done:
		case <-rd:
		}
		c.mu.Lock()
	}
}

// enqueue queues a datagram; false when the receive buffer is full.
func (c *PacketConn) enqueue(from netip.AddrPort, path string, b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.used+len(b)+dgramOverhead > c.rcvbuf {
		return false
	}
	if cap(c.arena)-len(c.arena) < len(b) {
		c.arena = make([]byte, 0, max(64<<10, len(b)))
	}
	start := len(c.arena)
	c.arena = append(c.arena, b...)
	c.q = append(c.q, dgram{from: from, path: path, data: c.arena[start:len(c.arena):len(c.arena)]})
	c.used += len(b) + dgramOverhead
	signal(c.readable)
	return true
}

// WriteTo sends one datagram to addr (*net.UDPAddr or *net.UnixAddr).
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.raddr != nil {
		return 0, c.opErr("write", addr, net.ErrWriteToConnected)
	}
	return c.send(b, addr, "sendto")
}

// Write sends one datagram to the connected peer.
func (c *PacketConn) Write(b []byte) (int, error) {
	if c.raddr == nil {
		return 0, c.opErr("write", nil, syscall.EDESTADDRREQ)
	}
	return c.send(b, c.raddr, "write")
}

func (c *PacketConn) send(b []byte, addr net.Addr, call string) (int, error) {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return 0, c.opErr("write", addr, net.ErrClosed)
	case c.writeErr != nil:
		err := c.writeErr
		c.mu.Unlock()
		return 0, c.opErr("write", addr, err)
	case c.wd.passed():
		c.mu.Unlock()
		return 0, c.opErr("write", addr, os.ErrDeadlineExceeded)
	case c.soErr != 0:
		e := c.soErr
		c.soErr = 0
		c.mu.Unlock()
		return 0, opError("write", c.network, c.laddr, addr, call, e)
	}
	c.mu.Unlock()
	if c.unix {
		return c.sendUnix(b, addr, call)
	}
	dst, ok := addrPortOf(addr)
	if !ok {
		return 0, c.opErr("write", addr, &net.AddrError{Err: "unknown address type", Addr: addrString(addr)})
	}
	if len(b) > maxDatagram {
		return 0, opError("write", c.network, c.laddr, addr, call, syscall.EMSGSIZE)
	}
	n := c.h.n
	n.lock()
	e, lat, to, from := c.route(dst)
	if e != 0 {
		n.unlock()
		return 0, opError("write", c.network, c.laddr, addr, call, e)
	}
	if to == nil {
		n.unlock()
		return len(b), nil // lost on the way, or nobody there: UDP does not know
	}
	if lat > 0 {
		data := append([]byte(nil), b...)
		n.unlock()
		time.AfterFunc(lat, func() { to.enqueue(from, "", data) })
		return len(b), nil
	}
	n.unlock()
	to.enqueue(from, "", b)
	return len(b), nil
}

// route finds where a datagram to dst goes (n.mu held): an errno when it
// cannot leave, else the receiver (nil: dropped) and its source address.
func (c *PacketConn) route(dst netip.AddrPort) (syscall.Errno, time.Duration, *PacketConn, netip.AddrPort) {
	n := c.h.n
	a := dst.Addr().Unmap()
	if c.sock.Family() == engine.Inet && !dst.Addr().Unmap().Is4() {
		return syscall.EAFNOSUPPORT, 0, nil, netip.AddrPort{}
	}
	if a.IsUnspecified() {
		if a.Is4() {
			a = netip.MustParseAddr("127.0.0.1")
		} else {
			a = netip.IPv6Loopback()
		}
	}
	local := c.sock.Local()
	hp := &c.hop
	if !hp.ok || hp.dst != a || hp.topo != n.topo || hp.bound != local.Addr() {
		*hp = c.findHop(a, local.Addr().Unmap())
	}
	if hp.errno != 0 {
		return hp.errno, 0, nil, netip.AddrPort{}
	}
	from := netip.AddrPortFrom(hp.src, local.Port())
	target := hp.target
	if target == nil {
		return 0, 0, nil, from
	}
	var lat time.Duration
	if lk := hp.link; lk != nil {
		lk.mu.Lock()
		down, loss, delay := lk.down, lk.loss, lk.latency
		lk.mu.Unlock()
		if down || (loss > 0 && n.chance() < loss) {
			return 0, 0, nil, from
		}
		lat = delay
	}
	d := target.eng.Lookup(engine.Packet{Proto: engine.UDP, Src: from, Dst: netip.AddrPortFrom(a, dst.Port())})
	switch d.Verdict {
	case engine.Deliver:
		return 0, lat, n.packets[d.Socket], from
	case engine.PortUnreachable:
		if c.raddr != nil {
			// ICMP port unreachable reaches a connected socket (Linux
			// reports it on the next call; unconnected sockets ignore it).
			c.mu.Lock()
			c.soErr = syscall.ECONNREFUSED
			signal(c.readable)
			c.mu.Unlock()
		}
	}
	return 0, 0, nil, from
}

// findHop routes a datagram to a from a socket bound to src (n.mu held).
func (c *PacketConn) findHop(a, src netip.Addr) hop {
	h, n := c.h, c.h.n
	hp := hop{dst: a, topo: n.topo, ok: true, bound: c.sock.Local().Addr()}
	s, _, ok := h.eng.Route(a)
	if !ok {
		hp.errno = syscall.ENETUNREACH
		return hp
	}
	if src.IsUnspecified() || !src.IsValid() {
		src = s
	}
	hp.src = src
	hp.target = h
	if !h.eng.IsLocal(a) {
		hp.target = n.hostOf(a)
	}
	if hp.target != nil && hp.target != h {
		hp.link = n.linkOf(h, hp.target)
	}
	return hp
}

func addrString(a net.Addr) string {
	if a == nil {
		return "<nil>"
	}
	return a.String()
}

// Close closes the socket; queued datagrams are dropped.
func (c *PacketConn) Close() error {
	n := c.h.n
	n.lock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		n.unlock()
		return c.opErr("close", nil, net.ErrClosed)
	}
	c.closed = true
	close(c.done)
	c.q, c.arena = nil, nil
	c.mu.Unlock()
	delete(n.packets, c.sock)
	c.h.eng.Close(c.sock)
	n.unlock()
	c.rd.clear()
	c.wd.clear()
	return nil
}

// SetDeadline sets the read and write deadlines.
func (c *PacketConn) SetDeadline(t time.Time) error { c.rd.set(t); c.wd.set(t); return nil }

// SetReadDeadline sets the read deadline.
func (c *PacketConn) SetReadDeadline(t time.Time) error { c.rd.set(t); return nil }

// SetWriteDeadline sets the write deadline.
func (c *PacketConn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// SetReadBuffer sets the receive buffer (SO_RCVBUF).
func (c *PacketConn) SetReadBuffer(bytes int) error {
	c.mu.Lock()
	c.rcvbuf = bytes
	c.mu.Unlock()
	return nil
}

// SetWriteBuffer is accepted; sends never wait on a UDP send buffer.
func (c *PacketConn) SetWriteBuffer(int) error { return nil }

// SetReadError makes every read fail with err; nil clears it.
func (c *PacketConn) SetReadError(err error) {
	c.mu.Lock()
	c.readErr = err
	signal(c.readable)
	c.mu.Unlock()
}

// SetWriteError makes every write fail with err; nil clears it.
func (c *PacketConn) SetWriteError(err error) {
	c.mu.Lock()
	c.writeErr = err
	c.mu.Unlock()
}
