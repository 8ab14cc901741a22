package engine

import (
	"net/netip"
	"time"
)

type sflags uint32

const (
	fReuseAddr    sflags = 1 << iota // SO_REUSEADDR
	fReusePort                       // SO_REUSEPORT
	fV6Only                          // IPV6_V6ONLY (effective: forced on by a specific IPv6 bind)
	fV6OnlyOpt                       // IPV6_V6ONLY as set by the user, restored when a bind fails
	fFreeBind                        // IP_FREEBIND
	fNoPort                          // IP_BIND_ADDRESS_NO_PORT
	fExclusive                       // SO_EXCLUSIVEADDRUSE (Windows)
	fBoundAddr                       // SOCK_BINDADDR_LOCK: the user bound an address
	fBoundPort                       // SOCK_BINDPORT_LOCK: the user bound a port
	fHasPort                         // the socket holds a port in its table (inet_num != 0)
	fConnectBind                     // the port was chosen by connect() (SOCK_CONNECT_BIND)
	fClosed                          // close() was called
	fAccepted                        // a child handed out by accept()
	fHasAddr                         // a local address is recorded (bound, or bound with no port)
	fMappedOps                       // TCP AF_INET6 socket that sent a SYN to a v4-mapped address keeps the IPv4 path (icsk_af_ops)
	fMappedAny                       // bound to ::ffff:0.0.0.0
	fWasConnected                    // the connection was reset: the socket layer still says connected (SS_CONNECTED)
	fMcAll4                          // IP_MULTICAST_ALL: on by default for AF_INET sockets only (inet_create)
	fMcAll6                          // IPV6_MULTICAST_ALL: on by default (inet6_create)
	fInFlows                         // TCP: entered in table.flows (hashFlow)
	fInTWs                           // TCP: entered in the TIME_WAIT index, table.tws or table.twLate (hashFlow)
	fTWLate                          // TCP: in table.twLate, not yet in table.tws
	fTimed                           // TCP: on its table's TIME_WAIT timer queue (addTimeWait)
)

// Socket is one socket of a host. Fields are read through methods; the
// struct is kept small because a host may hold millions of them.
type Socket struct {
	local  endpoint
	remote endpoint
	ext    *sockExt // rarely used state, allocated on first use
	uid    uint32
	idx    int32 // position in the host's socket list
	flags  sflags
	fam    Family
	proto  Proto
	state  State
}

// endpoint is an address and port in 20 bytes (netip.AddrPort takes 32
// with its zone pointer): a host may hold millions of sockets.
type endpoint struct {
	a    [16]byte
	port uint16
	v4   bool // an IPv4 address, not v4-mapped IPv6
	ok   bool
}

func ep(ap netip.AddrPort) endpoint {
	if !ap.IsValid() {
		return endpoint{}
	}
	return endpoint{a: ap.Addr().As16(), port: ap.Port(), v4: ap.Addr().Is4(), ok: true}
}

// anyEndpoint is ep(netip.AddrPortFrom(anyAddr(f), port)) without the
// conversions: 0.0.0.0 is stored v4-mapped, as ep stores every IPv4
// address.
func anyEndpoint(f Family, port uint16) endpoint {
	if f == Inet6 {
		return endpoint{port: port, ok: true}
	}
	return endpoint{a: [16]byte{10: 0xff, 11: 0xff}, port: port, v4: true, ok: true}
}

func (e endpoint) Addr() netip.Addr {
	if !e.ok {
		return netip.Addr{}
	}
	a := netip.AddrFrom16(e.a)
	if e.v4 {
		return a.Unmap()
	}
	return a
}

func (e endpoint) Port() uint16  { return e.port }
func (e endpoint) IsValid() bool { return e.ok }

// AP is the endpoint as a netip.AddrPort.
func (e endpoint) AP() netip.AddrPort {
	if !e.ok {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(e.Addr(), e.port)
}

// sockExt is the state a connection needs (a TIME_WAIT socket keeps it
// for 60 s, and memnet makes one per connection end): the rest waits in
// sockMore, so a connection's two extensions stay in small size classes.
type sockExt struct {
	dev    int32         // SO_BINDTODEVICE ifindex
	until  time.Duration // when a TIME_WAIT / FIN_WAIT2 socket expires
	parent *Socket       // the listener an accepted child came from
	peer   *Socket       // the other end, when both are simulated
	owner  *Host         // the host, for sockets with a simulated peer
	more   *sockMore     // rarely used state, allocated on first use
}

type sockMore struct {
	name           string       // the scenario's name, or a label from the live table
	queue          []*Socket    // a listener's accept queue
	group          *rpGroup     // the SO_REUSEPORT group it belongs to
	path           string       // AF_UNIX bound path ("@name" for abstract)
	portLo, portHi uint16       // IP_LOCAL_PORT_RANGE
	keptV4         netip.Addr   // UDP AF_INET6: the IPv4 source a mapped connect set (inet_saddr)
	mships         []membership // multicast groups joined (Join)
}

func (s *Socket) x() *sockExt {
	if s.ext == nil {
		s.ext = &sockExt{}
	}
	return s.ext
}

// more is the rarely used state, made on first use.
func (s *Socket) more() *sockMore {
	x := s.x()
	if x.more == nil {
		x.more = &sockMore{}
	}
	return x.more
}

// peek is the rarely used state, nil when none was ever set.
func (s *Socket) peek() *sockMore {
	if s.ext == nil {
		return nil
	}
	return s.ext.more
}

func (s *Socket) Family() Family         { return s.fam }
func (s *Socket) Proto() Proto           { return s.proto }
func (s *Socket) State() State           { return s.state }
func (s *Socket) UID() uint32            { return s.uid }
func (s *Socket) Local() netip.AddrPort  { return s.local.AP() }
func (s *Socket) Remote() netip.AddrPort { return s.remote.AP() }
func (s *Socket) ReuseAddr() bool        { return s.flags&fReuseAddr != 0 }
func (s *Socket) ReusePort() bool        { return s.flags&fReusePort != 0 }
func (s *Socket) V6Only() bool           { return s.flags&fV6Only != 0 }

// device is the SO_BINDTODEVICE ifindex, 0 when unbound.
func (s *Socket) device() int32 {
	if s.ext == nil {
		return 0
	}
	return s.ext.dev
}
func (s *Socket) Closed() bool { return s.flags&fClosed != 0 }

// ConnectBind reports whether connect() chose the socket's port
// (SOCK_CONNECT_BIND): a TCP port whose holders all have it may be shared
// by another connect() to a different destination, a bound one may not.
func (s *Socket) ConnectBind() bool { return s.flags&fConnectBind != 0 }

// Path is an AF_UNIX socket's bound path, "" when unbound or not unix.
func (s *Socket) Path() string {
	if m := s.peek(); m != nil {
		return m.path
	}
	return ""
}

// Group lists the SO_REUSEPORT group the socket belongs to, or nil.
func (s *Socket) Group() []*Socket {
	if m := s.peek(); m != nil && m.group != nil {
		return m.group.members
	}
	return nil
}

// Queue lists a listener's connections not yet accepted.
func (s *Socket) Queue() []*Socket {
	if m := s.peek(); m != nil {
		return m.queue
	}
	return nil
}

// Expires is when a TIME_WAIT or FIN_WAIT2 socket leaves the table.
func (s *Socket) Expires() time.Duration {
	if s.ext == nil {
		return 0
	}
	return s.ext.until
}

// Parent is the listener an accepted child came from, or nil.
func (s *Socket) Parent() *Socket {
	if s.ext == nil {
		return nil
	}
	return s.ext.parent
}

// Name is the scenario's name for the socket, or a live-table label.
func (s *Socket) Name() string {
	if m := s.peek(); m != nil {
		return m.name
	}
	return ""
}

// SetName names the socket.
func (s *Socket) SetName(n string) {
	if n != "" || s.peek() != nil {
		s.more().name = n
	}
}

// kind is how the bind rules see the socket's state.
func (s *Socket) kind() kind { return kindOf(s.state, s.Closed()) }

// kindOf is the kind of a socket in state st, closed or not.
func kindOf(st State, closed bool) kind {
	switch st {
	case Listen:
		return kListen
	case TimeWait, FinWait2:
		if closed {
			return kTimeWait // an orphan: Linux keeps it as a timewait sock
		}
		return kConnected
	case Established, CloseWait, SynSent:
		return kConnected
	}
	return kBound
}

// Sockets returns the host's sockets that are still in a table (not closed
// and gone), in creation order. The slice is a copy the caller may keep.
func (h *Host) Sockets() []*Socket {
	out := make([]*Socket, 0, len(h.socks)-h.dead)
	for _, s := range h.socks {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// NumSockets is len(h.Sockets()) without the copy.
func (h *Host) NumSockets() int { return len(h.socks) - h.dead }

func (h *Host) register(s *Socket) {
	s.idx = int32(len(h.socks))
	h.socks = append(h.socks, s)
}

// unregister leaves a hole, so the list keeps creation order; the holes are
// squeezed out once they are half the list (amortized O(1) per socket).
// The newest socket (opened and closed in turn, as a refused bind or
// connect is) leaves none: the list just gets shorter.
func (h *Host) unregister(s *Socket) {
	if !h.owns(s) {
		return
	}
	if int(s.idx) == len(h.socks)-1 {
		h.socks[s.idx] = nil
		h.socks = h.socks[:s.idx]
		s.idx = -1
		return
	}
	h.socks[s.idx] = nil
	s.idx = -1
	h.dead++
	if h.dead > 64 && h.dead*2 > len(h.socks) {
		live := h.socks[:0]
		for _, x := range h.socks {
			if x != nil {
				x.idx = int32(len(live))
				live = append(live, x)
			}
		}
		clear(h.socks[len(live):])
		h.socks, h.dead = live, 0
	}
}

// owns reports whether s is a socket of this host that is still in its
// tables: a socket of another host, or one that is gone, is refused by every
// operation (EBADF, as a descriptor of another process would be).
func (h *Host) owns(s *Socket) bool {
	return s != nil && uint(s.idx) < uint(len(h.socks)) && h.socks[s.idx] == s // a negative idx is huge as uint
}

// check is the common entry test of an operation on s. The hot paths
// (bind, connect, socket options) ask usable, which is inlined, and build
// the refusal only when there is one: an open socket costs no Result.
func (h *Host) check(s *Socket) (r Result, ok bool) {
	if h.usable(s) {
		return r, true
	}
	return refusal(s), false
}

// usable reports whether s is this host's and open: check's test alone.
func (h *Host) usable(s *Socket) bool { return h.owns(s) && s.flags&fClosed == 0 }

// refusal is check's answer for a socket no operation may use, in the
// order of its tests: none, closed, another host's.
func refusal(s *Socket) Result {
	switch {
	case s == nil:
		return fail(EBADF, ruleNoSocket)
	case s.Closed():
		return fail(EBADF, ruleClosed)
	}
	return fail(EBADF, ruleOtherHost)
}

// NewSocket is socket(2): family inet|inet6 with TCP or UDP, or unix with
// UnixStream or UnixDgram; uid is the creating user. IPV6_V6ONLY starts
// from net.ipv6.bindv6only (af_inet6.c inet6_create) on Linux and from the
// profile's default elsewhere.
func (h *Host) NewSocket(fam Family, p Proto, uid uint32) (*Socket, Result) {
	switch {
	case fam == Unix && (p == UnixStream || p == UnixDgram):
	case (fam == Inet || fam == Inet6) && (p == TCP || p == UDP):
	default:
		if fam == Unix || p == UnixStream || p == UnixDgram {
			return nil, fail(EAFNOSUPPORT, ruleBadFamily)
		}
		return nil, fail(EINVAL, ruleBadFamily)
	}
	s := &Socket{fam: fam, proto: p, uid: uid}
	switch fam {
	case Inet:
		s.flags |= fMcAll4
	case Inet6:
		s.flags |= fMcAll6
	}
	if fam == Inet6 && h.prof.v6onlyDefault(h) {
		s.flags |= fV6Only | fV6OnlyOpt
	}
	h.register(s)
	return s, Result{Rule: ruleCreated}
}

// optCheck holds the checks every option shares: the socket is this
// host's and open, AF_UNIX takes only SOL_SOCKET options
// (SO_REUSEPORT is inet-only, sock.c), and the profile knows the option.
func (h *Host) optCheck(s *Socket, o Option) (Result, bool) {
	if !h.usable(s) {
		return refusal(s), false
	}
	if s.fam == Unix && o != SO_REUSEADDR && o != SO_BINDTODEVICE {
		return fail(EOPNOTSUPP, ruleUnixOption), false
	}
	if !h.prof.Supports(o) {
		return fail(ENOPROTOOPT, ruleProfileOption), false
	}
	return Result{}, true
}

func setFlag(s *Socket, f sflags, on bool) {
	if on {
		s.flags |= f
	} else {
		s.flags &^= f
	}
}

// SetReuseAddr is SO_REUSEADDR.
func (h *Host) SetReuseAddr(s *Socket, on bool) Result {
	if r, ok := h.optCheck(s, SO_REUSEADDR); !ok {
		return r
	}
	h.rekey(s, func() { setFlag(s, fReuseAddr, on) })
	return Result{Rule: ruleOptionSet}
}

// SetReusePort is SO_REUSEPORT.
func (h *Host) SetReusePort(s *Socket, on bool) Result {
	if r, ok := h.optCheck(s, SO_REUSEPORT); !ok {
		return r
	}
	h.rekey(s, func() { setFlag(s, fReusePort, on) })
	return Result{Rule: ruleOptionSet}
}

// SetExclusiveAddrUse is Windows' SO_EXCLUSIVEADDRUSE; only before bind.
func (h *Host) SetExclusiveAddrUse(s *Socket, on bool) Result {
	if r, ok := h.optCheck(s, SO_EXCLUSIVEADDRUSE); !ok {
		return r
	}
	if s.flags&fHasPort != 0 {
		return fail(EINVAL, ruleOptAfterBind)
	}
	setFlag(s, fExclusive, on)
	return Result{Rule: ruleOptionSet}
}

// SetV6Only is IPV6_V6ONLY: AF_INET6 only (ENOPROTOOPT otherwise), and
// EINVAL once the socket has a port (ipv6_setsockopt checks inet_num).
func (h *Host) SetV6Only(s *Socket, on bool) Result {
	if r, ok := h.optCheck(s, IPV6_V6ONLY); !ok {
		return r
	}
	if s.fam != Inet6 {
		return fail(ENOPROTOOPT, ruleV6OnlyOnV4)
	}
	if s.flags&fHasPort != 0 {
		return fail(EINVAL, ruleV6OnlyAfterBind)
	}
	setFlag(s, fV6Only|fV6OnlyOpt, on)
	return Result{Rule: ruleOptionSet}
}

// setFlagOption sets an option that is one flag of the socket and that
// nothing else checks when it is set.
func (h *Host) setFlagOption(s *Socket, o Option, f sflags, on bool) Result {
	if r, ok := h.optCheck(s, o); !ok {
		return r
	}
	setFlag(s, f, on)
	return Result{Rule: ruleOptionSet}
}

// SetFreeBind is IP_FREEBIND: bind to an address the host does not have.
func (h *Host) SetFreeBind(s *Socket, on bool) Result {
	return h.setFlagOption(s, IP_FREEBIND, fFreeBind, on)
}

// SetBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT: bind(addr, 0) records
// the address and leaves the port to connect().
func (h *Host) SetBindAddressNoPort(s *Socket, on bool) Result {
	return h.setFlagOption(s, IP_BIND_ADDRESS_NO_PORT, fNoPort, on)
}

// BindToDevice is SO_BINDTODEVICE with an interface name of this host,
// called by the socket's owner; "" unbinds. An unknown name is ENODEV.
func (h *Host) BindToDevice(s *Socket, name string) Result {
	return h.BindToDeviceAs(s, name, s.uid)
}

// BindToDeviceAs is SO_BINDTODEVICE called by uid (root or not), which
// need not own the socket.
func (h *Host) BindToDeviceAs(s *Socket, name string, uid uint32) Result {
	if r, ok := h.optCheck(s, SO_BINDTODEVICE); !ok {
		return r
	}
	// sock_bindtoindex_locked: once a socket is bound to a device, a
	// change (clearing included) needs CAP_NET_RAW of the caller
	// (ns_capable reads current's credentials, not the socket's owner).
	if s.device() != 0 && uid != 0 {
		return fail(EPERM, ruleDeviceChangeNeedsRaw)
	}
	idx := int32(0)
	if name != "" {
		i := h.Iface(name)
		if i == nil {
			return fail(ENODEV, ruleNoDevice)
		}
		idx = int32(i.Index)
	}
	h.rekey(s, func() {
		if idx != 0 || s.ext != nil {
			s.x().dev = idx
		}
	})
	return Result{Rule: ruleOptionSet}
}

// SetMulticastAll is IP_MULTICAST_ALL: a socket that did not join an IPv4
// group still receives it when the host joined it (on by default for
// AF_INET sockets, off for AF_INET6 ones, which reach it through SOL_IP).
func (h *Host) SetMulticastAll(s *Socket, on bool) Result {
	return h.setFlagOption(s, IP_MULTICAST_ALL, fMcAll4, on)
}

// SetMulticastAll6 is IPV6_MULTICAST_ALL, the same for IPv6 groups (on by
// default); AF_INET6 only.
func (h *Host) SetMulticastAll6(s *Socket, on bool) Result {
	if r, ok := h.optCheck(s, IPV6_MULTICAST_ALL); !ok {
		return r
	}
	if s.fam != Inet6 {
		return fail(ENOPROTOOPT, ruleV6OnlyOnV4)
	}
	setFlag(s, fMcAll6, on)
	return Result{Rule: ruleOptionSet}
}

// SetLocalPortRange is IP_LOCAL_PORT_RANGE: the socket's own bounds inside
// the host's ephemeral range; 0 leaves a bound open, and lo > hi with both
// set is EINVAL (ip_sockglue.c do_ip_setsockopt).
func (h *Host) SetLocalPortRange(s *Socket, lo, hi uint16) Result {
	if r, ok := h.optCheck(s, IP_LOCAL_PORT_RANGE); !ok {
		return r
	}
	if lo != 0 && hi != 0 && lo > hi {
		return fail(EINVAL, rulePortRangeOrder)
	}
	if lo != 0 || hi != 0 || s.peek() != nil {
		m := s.more()
		m.portLo, m.portHi = lo, hi
	}
	return Result{Rule: ruleOptionSet}
}

// LocalPortRange is the socket's IP_LOCAL_PORT_RANGE (0, 0 when unset).
func (s *Socket) LocalPortRange() (lo, hi uint16) {
	if m := s.peek(); m != nil {
		return m.portLo, m.portHi
	}
	return 0, 0
}

// Device is the SO_BINDTODEVICE interface index, 0 when unbound.
func (s *Socket) Device() int { return int(s.device()) }

// rekey changes a bound socket's bind-table attributes: it leaves its class
// and rejoins with the new ones, as Linux reads them at the next check.
func (h *Host) rekey(s *Socket, change func()) {
	if s.flags&fHasPort == 0 || s.fam == Unix {
		change()
		return
	}
	h.table(s.proto).reown(s, change)
}
