package engine

import "net/netip"

// Broadcast and multicast UDP (Linux): a datagram to a broadcast address or
// to a multicast group is not looked up like unicast. It goes to every
// matching socket (__udp4_lib_mcast_deliver, __udp6_lib_mcast_deliver),
// never answers with ICMP, and a multicast one is accepted by the host only
// if the interface it arrives on joined the group (ip_check_mc_rcu,
// ipv6_chk_mcast_addr). Checked against the kernel by the replays in
// testdata/replay/{broadcast,multicast}-*.scenario.

// maxMemberships is net.ipv4.igmp_max_memberships' default: the 21st
// IP_ADD_MEMBERSHIP of one socket fails with ENOBUFS.
const maxMemberships = 20

// membership is one IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP of a socket.
type membership struct {
	group netip.Addr
	dev   int32 // the interface's index
}

// mkey is a group joined on an interface, counted over all sockets.
type mkey struct {
	group [16]byte
	dev   int32
}

// Join is IP_ADD_MEMBERSHIP (an IPv4 group) or IPV6_JOIN_GROUP (an IPv6
// group) on the interface called dev; "" lets the kernel pick the interface
// by a route lookup of the group (IPv4: ip_mc_find_dev; IPv6: rt6_lookup,
// modelled as the first interface other than lo, which is the kernel's
// only multicast route when there is one such interface). Errors in the
// kernel's order: a stream socket EPROTO, an IPv6 group on an AF_INET
// socket ENOPROTOOPT, not a multicast group EINVAL, no such interface
// ENODEV, the group already joined there EADDRINUSE, more than 20 IPv4
// groups ENOBUFS.
func (h *Host) Join(s *Socket, group netip.Addr, dev string) Result {
	if r, ok := h.check(s); !ok {
		return r
	}
	if !h.prof.Multicast {
		return fail(ENOPROTOOPT, ruleProfileOption)
	}
	if s.fam == Unix {
		return fail(EOPNOTSUPP, ruleUnixOption)
	}
	g := group.WithZone("")
	v6 := g.Is6()
	if v6 && s.fam == Inet {
		return fail(ENOPROTOOPT, ruleJoinV6OnV4)
	}
	if s.proto == TCP {
		return fail(EPROTO, ruleJoinStream)
	}
	if g.Is4In6() || !g.IsMulticast() {
		return fail(EINVAL, ruleJoinNotGroup)
	}
	idx := int32(-1) // a name that is no interface: ENODEV once it is looked up
	if dev != "" {
		if i := h.Iface(dev); i != nil {
			idx = int32(i.Index)
		}
	}
	if v6 {
		for _, m := range s.groups() {
			if m.group == g && (dev == "" || m.dev == idx) {
				return fail(EADDRINUSE, ruleJoinTwice)
			}
		}
		if dev == "" {
			idx = -1
			if i := h.firstLink(); i != nil {
				idx = int32(i.Index)
			}
		}
		if h.ifaceByIndex(int(idx)) == nil {
			return fail(ENODEV, ruleNoDevice)
		}
	} else {
		if dev == "" {
			if _, out, ok := h.route(g); ok && out != nil {
				idx = int32(out.Index)
			}
		}
		if h.ifaceByIndex(int(idx)) == nil {
			return fail(ENODEV, ruleNoDevice)
		}
		n := 0
		for _, m := range s.groups() {
			if m.group == g && m.dev == idx {
				return fail(EADDRINUSE, ruleJoinTwice)
			}
			if m.group.Is4() {
				n++
			}
		}
		if n >= maxMemberships {
			return fail(ENOBUFS, ruleJoinTooMany)
		}
	}
	m := s.more()
	m.mships = append(m.mships, membership{group: g, dev: idx})
	if h.mcRefs == nil {
		h.mcRefs = map[mkey]int32{}
	}
	h.mcRefs[mkey{g.As16(), idx}]++
	return Result{Rule: ruleJoined}
}

// Groups lists the groups the socket joined, as "group%dev".
func (s *Socket) Groups() []netip.Addr {
	var out []netip.Addr
	for _, m := range s.groups() {
		out = append(out, m.group)
	}
	return out
}

func (s *Socket) groups() []membership {
	if m := s.peek(); m != nil {
		return m.mships
	}
	return nil
}

// leaveAll drops a closing socket's memberships.
func (h *Host) leaveAll(s *Socket) {
	for _, m := range s.groups() {
		k := mkey{m.group.As16(), m.dev}
		if h.mcRefs[k]--; h.mcRefs[k] <= 0 {
			delete(h.mcRefs, k)
		}
	}
	if m := s.peek(); m != nil {
		m.mships = nil
	}
}

// JoinIface records that interface dev joined group without a socket of
// this host saying so: the live loader reads the interfaces' groups from
// the kernel (/proc/net/igmp, /proc/net/igmp6), not from the sockets.
func (h *Host) JoinIface(group netip.Addr, dev int) {
	if h.mcRefs == nil {
		h.mcRefs = map[mkey]int32{}
	}
	h.mcRefs[mkey{group.WithZone("").As16(), int32(dev)}]++
}

// firstLink is the first interface other than loopback, or nil.
func (h *Host) firstLink() *Iface {
	for _, i := range h.Ifaces {
		if !i.Loopback {
			return i
		}
	}
	return nil
}

var (
	allHosts4 = netip.AddrFrom4([4]byte{224, 0, 0, 1})
	allNodes1 = netip.MustParseAddr("ff01::1")
	allNodes2 = netip.MustParseAddr("ff02::1")
)

// joined reports whether interface i accepts datagrams to group g: a
// socket joined it there, or it is a group every interface is in (the
// all-hosts 224.0.0.1, the all-nodes ff01::1 and ff02::1, and the
// solicited-node group of each IPv6 address of a non-loopback interface:
// ip_mc_init_dev, ipv6_dev_mc_inc, addrconf_join_solict).
func (h *Host) joined(i *Iface, g netip.Addr) bool {
	if h.mcRefs[mkey{g.As16(), int32(i.Index)}] > 0 {
		return true
	}
	if g == allHosts4 || g == allNodes1 || g == allNodes2 {
		return true
	}
	if !i.Loopback && g.Is6() {
		b := g.As16()
		if [13]byte(b[:13]) == [13]byte{0xff, 0x02, 11: 0x01, 12: 0xff} {
			for _, p := range i.Addrs {
				if a := p.Addr().As16(); p.Addr().Is6() && [3]byte(a[13:]) == [3]byte(b[13:]) {
					return true
				}
			}
		}
	}
	return false
}

// IsGroupcast reports whether a datagram to a takes the broadcast /
// multicast path on this host: a multicast group, 255.255.255.255, or the
// broadcast address of an IPv4 subnet configured here.
func (h *Host) IsGroupcast(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsMulticast() || h.isBroadcast(a)
}

// GroupIngress is the interface a broadcast or multicast datagram p comes
// in on (see groupIngress), or nil.
func (h *Host) GroupIngress(p Packet) *Iface {
	if z := p.Dst.Addr().Zone(); z != "" && p.Dev == 0 {
		p.Dev = int(h.zoneIndex(z))
	}
	return h.groupIngress(p, p.Dst.Addr().WithZone("").Unmap())
}

// groupIngress is the interface a broadcast or multicast datagram comes in
// on: the one named, else the one whose subnet it is broadcast for, else
// the first interface other than lo (lo when there is none).
func (h *Host) groupIngress(p Packet, dst netip.Addr) *Iface {
	if p.Dev != 0 {
		return h.ifaceByIndex(p.Dev)
	}
	if dst.Is4() && !dst.IsMulticast() && dst != limitedBroadcast {
		if i := h.broadcastIface(dst); i != nil {
			return i
		}
	}
	if i := h.firstLink(); i != nil {
		return i
	}
	return h.Ifaces[0]
}

// lookupGroupcast delivers a UDP datagram to a broadcast or multicast
// address: to every socket on the port whose bound address is the wildcard
// or the destination itself, whose peer (if connected) is the sender,
// whose device (if bound) is the ingress one, and, for multicast, that
// either joined the group (IPv4: on that interface; IPv6: on any) or
// receives every group the host joined (IP_MULTICAST_ALL, on by default
// for AF_INET sockets only; IPV6_MULTICAST_ALL, on by default). IPv4
// reaches AF_INET6 sockets unless they are IPV6_V6ONLY; IPv6 only AF_INET6.
func (h *Host) lookupGroupcast(p Packet, src, dst netip.AddrPort) Delivery {
	return h.groupcast(p, src, dst, false)
}

// GroupcastCandidates lists the sockets a UDP broadcast or multicast
// datagram p would reach if each of them had joined the group: the live
// inspector cannot see a socket's memberships, so a candidate that is not
// among Lookup's receivers receives only if it joined. It is nil for a
// unicast destination or when the interface has not joined the group.
func (h *Host) GroupcastCandidates(p Packet) []*Socket {
	dst := netip.AddrPortFrom(p.Dst.Addr().WithZone("").Unmap(), p.Dst.Port())
	src := netip.AddrPortFrom(p.Src.Addr().WithZone("").Unmap(), p.Src.Port())
	if p.Proto != UDP || !h.IsGroupcast(dst.Addr()) {
		return nil
	}
	if z := p.Dst.Addr().Zone(); z != "" && p.Dev == 0 {
		p.Dev = int(h.zoneIndex(z))
	}
	return h.groupcast(p, src, dst, true).All
}

func (h *Host) groupcast(p Packet, src, dst netip.AddrPort, anyMember bool) Delivery {
	in := h.groupIngress(p, dst.Addr())
	if in == nil {
		return Delivery{Verdict: Drop, Stage: StageNotLocal}
	}
	mc := dst.Addr().IsMulticast()
	stage := StageBroadcast
	if mc {
		stage = StageMulticast
		if !h.joined(in, dst.Addr()) {
			return Delivery{Verdict: Drop, Stage: StageNotJoined}
		}
	}
	v4 := dst.Addr().Is4()
	var all []*Socket
	for _, s := range h.socks {
		if s == nil || s.proto != UDP || s.flags&fHasPort == 0 || s.Closed() || s.local.port != dst.Port() {
			continue
		}
		if s.remote.ok && (s.remote.AP().Addr().Unmap() != src.Addr() || s.remote.port != src.Port()) {
			continue
		}
		la := s.local.Addr()
		if v4 {
			if s.fam == Inet6 && s.V6Only() {
				continue
			}
			if la = la.Unmap(); !la.IsUnspecified() && la != dst.Addr() {
				continue
			}
		} else if s.fam != Inet6 || (!la.IsUnspecified() && la != dst.Addr()) {
			continue
		}
		if d := s.device(); d != 0 && d != int32(in.Index) {
			continue
		}
		if mc && !anyMember && !s.takesGroup(dst.Addr(), int32(in.Index)) {
			continue
		}
		all = append(all, s)
	}
	if len(all) == 0 {
		return Delivery{Verdict: Drop, Stage: StageNoGroupReceiver}
	}
	return Delivery{Verdict: Deliver, Stage: stage, Socket: all[0], All: all}
}

// takesGroup is ip_mc_sf_allow / inet6_mc_check without source filters: a
// membership of g (IPv4: on interface dev) admits the datagram; without
// one, IP_MULTICAST_ALL / IPV6_MULTICAST_ALL decides.
func (s *Socket) takesGroup(g netip.Addr, dev int32) bool {
	for _, m := range s.groups() {
		if m.group == g && (g.Is6() || m.dev == dev) {
			return true
		}
	}
	if g.Is4() {
		return s.flags&fMcAll4 != 0
	}
	return s.flags&fMcAll6 != 0
}

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

const (
	ruleJoinV6OnV4   Rule = "IPV6_JOIN_GROUP on an AF_INET socket (ip_setsockopt knows only SOL_IP)"
	ruleJoinStream   Rule = "a stream socket cannot join a multicast group"
	ruleJoinNotGroup Rule = "not a multicast group address"
	ruleJoinTwice    Rule = "the socket already joined this group on this interface"
	ruleJoinTooMany  Rule = "more than net.ipv4.igmp_max_memberships (20) IPv4 groups on one socket"
	ruleJoined       Rule = "joined the group"
)
