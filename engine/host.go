package engine

import (
	"fmt"
	"net/netip"
	"time"
)

// Network holds simulated hosts that share a clock, so that a connect to an
// address of one host reaches the listener of another.
type Network struct {
	Profile *Profile
	seed    uint64
	now     time.Duration
	hosts   []*Host
	twNext  time.Duration // no TIME_WAIT timer of any host runs out before this (noTimer: none)
	// owner memoizes ownerOf for addresses some host has: a connect
	// between two of many hosts would otherwise scan every host's
	// interfaces. Dropped when a host or an interface address is added
	// (AddHost, AddIface, AddIfaceAt: the only ways addresses change).
	owner map[netip.Addr]*Host
}

// NewNetwork returns an empty network whose hosts follow profile p. The seed
// fixes every choice Linux makes at random (ephemeral ports, reuseport hash).
func NewNetwork(p *Profile, seed uint64) *Network {
	if p == nil {
		p = Linux
	}
	return &Network{Profile: p, seed: seed, twNext: noTimer}
}

// Now is the simulated time since the network was created.
func (n *Network) Now() time.Duration { return n.now }

// Seed is the seed of the network's random choices.
func (n *Network) Seed() uint64 { return n.seed }

// Host returns the host called name, or nil.
func (n *Network) Host(name string) *Host {
	for _, h := range n.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// AddHost creates a host with a loopback interface (127.0.0.1/8, ::1/128)
// and the profile's default sysctls.
func (n *Network) AddHost(name string) *Host {
	h := &Host{Name: name, net: n, prof: n.Profile, Sysctl: n.Profile.DefaultSysctls()}
	h.tcp = newTable(h, TCP)
	h.udp = newTable(h, UDP)
	h.unix = newUnixTable()
	h.Ifaces = []*Iface{{Name: "lo", Index: 1, Loopback: true, Addrs: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")}}}
	n.hosts = append(n.hosts, h)
	n.owner = nil
	return h
}

// Advance moves the clock; TIME_WAIT and orphaned FIN_WAIT2 sockets whose
// timers ran out leave their tables.
func (n *Network) Advance(d time.Duration) {
	n.now += d
	if n.now < n.twNext {
		return // the common case: nothing runs out, no host is visited
	}
	n.twNext = noTimer
	for _, h := range n.hosts {
		h.tcp.expireTimeWait(n.now)
		n.twNext = min(n.twNext, h.tcp.nextTimer())
	}
}

// ownerOf returns the simulated host that has a as a local address (the
// first one added, if several have it).
func (n *Network) ownerOf(a netip.Addr) *Host {
	if h, ok := n.owner[a]; ok {
		return h
	}
	for _, h := range n.hosts {
		if h.isLocal(a) {
			// Only answers that found a host are kept: the addresses
			// of no host that programs try are unbounded.
			if n.owner == nil {
				n.owner = map[netip.Addr]*Host{}
			}
			n.owner[a] = h
			return h
		}
	}
	return nil
}

// ownerOfOther is ownerOf for an address that host h does not have.
func (n *Network) ownerOfOther(a netip.Addr, h *Host) *Host {
	if o := n.ownerOf(a); o != h {
		return o
	}
	for _, o := range n.hosts {
		if o != h && o.isLocal(a) {
			return o
		}
	}
	return nil
}

// Iface is a network interface with its addresses.
type Iface struct {
	Name     string
	Index    int
	Loopback bool
	Addrs    []netip.Prefix
	// Broadcast are IPv4 broadcast addresses set explicitly (ip addr ...
	// brd X); the last address of each subnet shorter than /31 is one
	// anyway.
	Broadcast []netip.Addr
}

// Route sends a destination prefix out of an interface.
type Route struct {
	Dst   netip.Prefix
	Iface *Iface
}

// Host is one machine (one network namespace): interfaces, sysctls and the
// socket tables.
type Host struct {
	Name string
	// Ifaces are read freely; interfaces and addresses are added with
	// AddIface and AddIfaceAt, whose changes the network's memo of which
	// host has which address follows (a direct change to an Iface would
	// not drop it).
	Ifaces []*Iface
	Routes []Route
	Sysctl Sysctls

	net   *Network
	prof  *Profile
	tcp   *table
	udp   *table
	unix  *unixTable
	socks []*Socket // creation order; nil where a socket left
	dead  int       // nil entries in socks

	mcRefs map[mkey]int32 // groups joined per interface, by how many sockets
}

// Network returns the network the host belongs to.
func (h *Host) Network() *Network { return h.net }

// Profile returns the host's OS profile.
func (h *Host) Profile() *Profile { return h.prof }

// Iface returns the interface called name, or nil.
func (h *Host) Iface(name string) *Iface {
	for _, i := range h.Ifaces {
		if i.Name == name {
			return i
		}
	}
	return nil
}

func (h *Host) ifaceByIndex(idx int) *Iface {
	if idx <= 0 {
		return nil // no device (0), or a zone no interface has (-1): indexes start at 1
	}
	for _, i := range h.Ifaces {
		if i.Index == idx {
			return i
		}
	}
	return nil
}

// AddIface adds addresses to the interface called name, creating it.
func (h *Host) AddIface(name string, addrs ...netip.Prefix) *Iface {
	h.net.owner = nil
	i := h.Iface(name)
	if i == nil {
		i = &Iface{Name: name, Index: len(h.Ifaces) + 1}
		h.Ifaces = append(h.Ifaces, i)
	}
	for _, a := range addrs {
		dup := false
		for _, b := range i.Addrs {
			dup = dup || b == a
		}
		if !dup {
			i.Addrs = append(i.Addrs, a)
		}
	}
	return i
}

// AddIfaceAt adds (or extends) the interface called name with the index
// the kernel gave it, so that a live socket's SO_BINDTODEVICE ifindex
// names it. An index another interface has is an error.
func (h *Host) AddIfaceAt(name string, index int, loopback bool, addrs ...netip.Prefix) (*Iface, error) {
	if index <= 0 {
		return nil, fmt.Errorf("interface %q: index %d", name, index)
	}
	if o := h.ifaceByIndex(index); o != nil && o.Name != name {
		return nil, fmt.Errorf("interface %q: index %d is %q's", name, index, o.Name)
	}
	h.net.owner = nil
	i := h.Iface(name)
	if i == nil {
		i = &Iface{Name: name}
		h.Ifaces = append(h.Ifaces, i)
	}
	i.Index, i.Loopback = index, i.Loopback || loopback
	h.AddIface(name, addrs...)
	return i, nil
}

// AddRoute sends dst out of the interface called dev.
func (h *Host) AddRoute(dst netip.Prefix, dev string) error {
	i := h.Iface(dev)
	if i == nil {
		return fmt.Errorf("no interface %q", dev)
	}
	h.Routes = append(h.Routes, Route{Dst: dst.Masked(), Iface: i})
	return nil
}

// isLocal reports whether a is an address of this host: configured on an
// interface, or inside a prefix configured on the loopback interface (Linux
// adds a local route for the whole prefix there, so any 127.x.y.z works;
// fib_add_ifaddr, net/ipv4/fib_frontend.c). IPv6 has no such prefix rule.
func (h *Host) isLocal(a netip.Addr) bool {
	a = a.Unmap()
	for _, i := range h.Ifaces {
		for _, p := range i.Addrs {
			if p.Addr() == a {
				return true
			}
			if i.Loopback && a.Is4() && p.Addr().Is4() && p.Contains(a) {
				return true
			}
		}
	}
	return false
}

// ifaceFor returns the interface an arriving packet for local address a is
// delivered on: the one that carries a.
func (h *Host) ifaceFor(a netip.Addr) *Iface {
	a = a.Unmap()
	for _, i := range h.Ifaces {
		for _, p := range i.Addrs {
			if p.Addr() == a || (i.Loopback && a.Is4() && p.Addr().Is4() && p.Contains(a)) {
				return i
			}
		}
	}
	return nil
}

// isBroadcast reports whether a is the limited broadcast address or the
// broadcast address of an IPv4 subnet configured here, loopback's included
// (fib_add_ifaddr adds "broadcast 127.255.255.255 dev lo").
func (h *Host) isBroadcast(a netip.Addr) bool {
	a = a.Unmap()
	if !a.Is4() {
		return false
	}
	if a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	return h.broadcastIface(a) != nil
}

// broadcastIface is the interface whose subnet (or explicit broadcast
// address) a is the broadcast address of, or nil.
func (h *Host) broadcastIface(a netip.Addr) *Iface {
	av := uint32(0)
	if a.Is4() {
		av = be32(a.As4())
	}
	// A subnet shorter than /31 has at least two host bits, all set in its
	// broadcast address: an address not ending in binary 11 is none (most
	// unicast destinations skip the scan of the prefixes).
	subnets := a.Is4() && av&3 == 3
	for _, i := range h.Ifaces {
		if subnets {
			for _, p := range i.Addrs {
				if p.Addr().Is4() && p.Bits() >= 0 && p.Bits() < 31 && lastAddr(p) == av {
					return i
				}
			}
		}
		for _, b := range i.Broadcast {
			if b == a {
				return i
			}
		}
	}
	return nil
}

// lastAddr is the last address of IPv4 prefix p (its subnet broadcast), as
// a number: the prefix's address with every host bit set, so no masking
// (every packet lookup asks whether its destination is one).
func lastAddr(p netip.Prefix) uint32 {
	return be32(p.Addr().As4()) | (1<<(32-p.Bits()) - 1)
}

func be32(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// route picks the outgoing interface and source address for dst, as
// ip_route_connect would: local destinations are reached through loopback
// with the destination itself (or the loopback prefix's address) as source;
// others through the most specific connected or configured route.
func (h *Host) route(dst netip.Addr) (src netip.Addr, out *Iface, ok bool) {
	src, out, ok, _ = h.routeLocal(dst)
	return src, out, ok
}

// routeLocal is route, and whether dst is local (isLocal), which the same
// pass finds out.
func (h *Host) routeLocal(dst netip.Addr) (src netip.Addr, out *Iface, ok, local bool) {
	dst = dst.Unmap()
	is4 := dst.Is4()
	best := -1
	// One pass over the addresses: the first interface that carries dst
	// (ifaceFor's) makes it local, which no prefix or route outranks.
	for _, i := range h.Ifaces {
		for _, p := range i.Addrs {
			pa := p.Addr()
			if pa == dst {
				src, out, ok = h.localRoute(i, dst)
				return src, out, ok, true
			}
			// Contains compares only the prefix's leading bits: no Masked needed.
			if pa.Is4() != is4 || !p.Contains(dst) {
				continue
			}
			if i.Loopback && is4 {
				src, out, ok = h.localRoute(i, dst) // lo's IPv4 prefix is local as a whole
				return src, out, ok, true
			}
			if p.Bits() > best {
				best, out, src = p.Bits(), i, pa
			}
		}
	}
	for _, r := range h.Routes {
		if r.Dst.Addr().Is4() == dst.Is4() && r.Dst.Contains(dst) && r.Dst.Bits() > best {
			if a, ok := firstAddr(r.Iface, dst.Is4()); ok {
				best, out, src = r.Dst.Bits(), r.Iface, a
			}
		}
	}
	return src, out, best >= 0, false
}

// localRoute is route's answer for a destination that interface i carries:
// through loopback, from the destination itself or, on lo's IPv4 prefix,
// from the prefix's address.
func (h *Host) localRoute(i *Iface, dst netip.Addr) (netip.Addr, *Iface, bool) {
	if i.Loopback && dst.Is4() {
		for _, p := range i.Addrs {
			if p.Addr().Is4() && p.Contains(dst) {
				return p.Addr(), h.Ifaces[0], true
			}
		}
	}
	return dst, h.Ifaces[0], true
}

func firstAddr(i *Iface, v4 bool) (netip.Addr, bool) {
	for _, p := range i.Addrs {
		if p.Addr().Is4() == v4 && !p.Addr().IsLinkLocalUnicast() {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

func (h *Host) table(p Proto) *table {
	if p == UDP {
		return h.udp
	}
	return h.tcp
}

// Route is the source address and interface a packet to dst leaves by, as
// ip_route_output picks them; ok is false when there is no route
// (ENETUNREACH).
func (h *Host) Route(dst netip.Addr) (src netip.Addr, out *Iface, ok bool) { return h.route(dst) }

// IsLocal reports whether a is an address of this host (127/8 included).
func (h *Host) IsLocal(a netip.Addr) bool { return h.isLocal(a) }

// Owner returns the host of the network that has a as a local address, or
// nil. Loopback addresses belong to every host; Owner does not pick one.
func (n *Network) Owner(a netip.Addr) *Host {
	if a.Unmap().IsLoopback() {
		return nil
	}
	return n.ownerOf(a)
}
