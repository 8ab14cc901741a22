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

type sockExt struct {
	dev            int32         // SO_BINDTODEVICE ifindex
	name           string        // the scenario's name, or a label from the live table
	until          time.Duration // when a TIME_WAIT / FIN_WAIT2 socket expires
	parent         *Socket       // the listener an accepted child came from
	queue          []*Socket     // a listener's accept queue
	group          *rpGroup      // the SO_REUSEPORT group it belongs to
	peer           *Socket       // the other end, when both are simulated
	owner          *Host         // the host, for sockets with a simulated peer
	path           string        // AF_UNIX bound path ("@name" for abstract)
	portLo, portHi uint16        // IP_LOCAL_PORT_RANGE
}

func (s *Socket) x() *sockExt {
	if s.ext == nil {
		s.ext = &sockExt{}
	}
	return s.ext
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

// Path is an AF_UNIX socket's bound path, "" when unbound or not unix.
func (s *Socket) Path() string {
	if s.ext == nil {
		return ""
	}
	return s.ext.path
}

// Group lists the SO_REUSEPORT group the socket belongs to, or nil.
func (s *Socket) Group() []*Socket {
	if s.ext == nil || s.ext.group == nil {
		return nil
	}
	return s.ext.group.members
}

// Queue lists a listener's connections not yet accepted.
func (s *Socket) Queue() []*Socket {
	if s.ext == nil {
		return nil
	}
	return s.ext.queue
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
	if s.ext == nil {
		return ""
	}
	return s.ext.name
}

// SetName names the socket.
func (s *Socket) SetName(n string) {
	if n != "" || s.ext != nil {
		s.x().name = n
	}
}

// kind is how the bind rules see the socket's state.
func (s *Socket) kind() kind {
	switch s.state {
	case Listen:
		return kListen
	case TimeWait, FinWait2:
		if s.Closed() {
			return kTimeWait // an orphan: Linux keeps it as a timewait sock
		}
		return kConnected
	case Established, CloseWait, SynSent:
		return kConnected
	}
	return kBound
}

// Sockets lists the host's sockets, in creation order, that are still in a
// table (not closed and gone).
func (h *Host) Sockets() []*Socket { return h.socks }

func (h *Host) register(s *Socket) {
	s.idx = int32(len(h.socks))
	h.socks = append(h.socks, s)
}

func (h *Host) unregister(s *Socket) {
	if s.idx < 0 || int(s.idx) >= len(h.socks) || h.socks[s.idx] != s {
		return
	}
	last := h.socks[len(h.socks)-1]
	h.socks[s.idx] = last
	last.idx = s.idx
	h.socks = h.socks[:len(h.socks)-1]
	s.idx = -1
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
	if fam == Inet6 && h.prof.v6onlyDefault(h) {
		s.flags |= fV6Only | fV6OnlyOpt
	}
	h.register(s)
	return s, Result{Rule: ruleCreated}
}

// SetSockOpt sets an option. val is 0/1 for flags, an interface name for
// SO_BINDTODEVICE ("" unbinds) and "lo hi" ports for IP_LOCAL_PORT_RANGE.
func (h *Host) SetSockOpt(s *Socket, o Option, val int, str string) Result {
	if s.Closed() {
		return fail(EBADF, ruleClosed)
	}
	on := val != 0
	if s.fam == Unix && o != SO_REUSEADDR && o != SO_BINDTODEVICE {
		return fail(EOPNOTSUPP, ruleUnixOption) // SOL_SOCKET options only; SO_REUSEPORT is inet-only (sock.c)
	}
	if !h.prof.Supports(o) {
		return fail(ENOPROTOOPT, ruleProfileOption)
	}
	set := func(f sflags) {
		if on {
			s.flags |= f
		} else {
			s.flags &^= f
		}
	}
	switch o {
	case SO_REUSEADDR:
		h.rekey(s, func() { set(fReuseAddr) })
	case SO_REUSEPORT:
		h.rekey(s, func() { set(fReusePort) })
	case SO_EXCLUSIVEADDRUSE:
		if s.flags&fHasPort != 0 {
			return fail(EINVAL, ruleOptAfterBind)
		}
		set(fExclusive)
	case IPV6_V6ONLY:
		if s.fam != Inet6 {
			return fail(ENOPROTOOPT, ruleV6OnlyOnV4)
		}
		// ipv6_setsockopt: EINVAL once the socket has a port (inet_num).
		if s.flags&fHasPort != 0 {
			return fail(EINVAL, ruleV6OnlyAfterBind)
		}
		set(fV6Only | fV6OnlyOpt)
	case IP_FREEBIND:
		set(fFreeBind)
	case IP_BIND_ADDRESS_NO_PORT:
		set(fNoPort)
	case SO_BINDTODEVICE:
		idx := int32(0)
		if str != "" {
			i := h.Iface(str)
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
	case IP_LOCAL_PORT_RANGE:
		lo, hi := uint16(val), uint16(val>>16)
		// ip_sockglue.c do_ip_setsockopt: both halves set and lo > hi is EINVAL.
		if lo != 0 && hi != 0 && lo > hi {
			return fail(EINVAL, rulePortRangeOrder)
		}
		s.x().portLo, s.x().portHi = lo, hi
	}
	return Result{Rule: ruleOptionSet}
}

// rekey changes a bound socket's bind-table attributes: it leaves its class
// and rejoins with the new ones, as Linux reads them at the next check.
func (h *Host) rekey(s *Socket, change func()) {
	if s.flags&fHasPort == 0 || s.fam == Unix {
		change()
		return
	}
	t := h.table(s.proto)
	t.removeOwner(s)
	change()
	t.addOwner(s)
}
