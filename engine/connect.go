package engine

import (
	"net/netip"
	"time"
)

// Connect is connect(2), with Linux's order of checks: a TCP socket's own
// state first (inet_stream_connect), an unbound UDP socket's port before
// the address is looked at (inet_dgram_connect autobinds first), then the
// address family, then the route.
func (h *Host) Connect(s *Socket, dst netip.AddrPort) Result {
	if !h.usable(s) {
		return refusal(s)
	}
	switch s.proto {
	case UnixStream, UnixDgram:
		return fail(EINVAL, ruleBadAddr)
	}
	if s.proto == TCP && s.state == SynSent {
		return fail(EALREADY, ruleAlreadyConnecting)
	}
	if s.proto == TCP && (s.state != Closed || s.flags&fWasConnected != 0) {
		return fail(EISCONN, ruleIsConn) // listening, connected, or reset
	}
	if s.proto == UDP && s.flags&fHasPort == 0 {
		if r := h.udpAutobind(s); r.Err != OK {
			return r
		}
	}
	a := dst.Addr().WithZone("")
	switch {
	case s.fam == Inet && !a.Is4():
		return fail(EAFNOSUPPORT, ruleWrongFamily)
	case s.fam == Inet6 && a.Is4() && s.proto == TCP:
		return fail(EINVAL, ruleShortAddr)
	case s.fam == Inet6 && a.Is4() && s.V6Only():
		return fail(EAFNOSUPPORT, ruleV4OnV6Only) // ip6_datagram_connect
	case s.fam == Inet6 && a.Is4():
		a = netip.AddrFrom16(a.As16()) // a UDP AF_INET6 socket takes sockaddr_in as v4-mapped
	}
	if a.Is4In6() && s.V6Only() {
		return fail(ENETUNREACH, ruleMappedDstV6Only)
	}
	v4 := a.Unmap()
	fixed := s.fixedSource(v4.Is4())
	if fixed.IsMulticast() || h.isBroadcast(fixed) {
		if s.fam == Inet6 && fixed.Is4() {
			// __inet6_bind keeps a v4-mapped source as it was given, and
			// the IPv4 route refuses it (ip_route_output_key_hash_rcu:
			// a multicast or limited broadcast source is EINVAL, any other
			// address no device has ENETUNREACH).
			if v4.Is4() {
				if fixed.IsMulticast() || fixed == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
					return fail(EINVAL, ruleGroupSourceMapped)
				}
				return fail(ENETUNREACH, ruleGroupSourceMapped)
			}
		} else {
			// A bind to a multicast or broadcast address sets only the
			// receiving address: the source is left to the route
			// (inet_bind: "inet_saddr = 0 /* Use device */"; __inet6_bind
			// leaves np->saddr unset for a multicast address).
			fixed = netip.Addr{}
		}
	}
	srcFixed := fixed.IsValid()
	toSelf := v4.IsUnspecified() // the kernel routes 0.0.0.0 / :: through loopback, whatever the device
	if toSelf {
		// Connecting to 0.0.0.0 / :: reaches this host (ip_route_output_key;
		// tcp_v6_connect turns :: into ::1).
		if srcFixed {
			v4 = fixed
		} else if v4.Is4() {
			v4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else {
			v4 = netip.IPv6Loopback()
		}
	}
	if s.proto == TCP && (v4.IsMulticast() || h.isBroadcast(v4)) {
		return fail(ENETUNREACH, ruleMulticastConnect)
	}
	if v4.Is6() && (v4.IsLinkLocalUnicast() || v4.IsLinkLocalMulticast() || v4.IsInterfaceLocalMulticast()) && s.device() == 0 {
		// __ipv6_addr_needs_scope_id: a link- or interface-scoped
		// destination needs a device, and a scenario's connect carries no
		// zone (tcp_v6_connect, __ip6_datagram_connect).
		return fail(EINVAL, ruleConnectNeedsScope)
	}
	src, out, ok, dstLocal := h.routeLocal(v4) // dstLocal: h.isLocal(v4), found on the way
	if !ok && v4.Is6() && v4.IsMulticast() {
		// Every interface but lo routes ff00::/8 (addrconf_add_mroute): a
		// UDP socket connects to an IPv6 group through the first one
		// (wide kernel replay, seed 26). Its link-local source is not
		// modelled: the first IPv6 address there stands for it.
		if i := h.firstLink(); i != nil {
			if a, has := firstAddr(i, false); has {
				src, out, ok = a, i, true
			}
		}
	}
	bound := h.ifaceByIndex(int(s.device())) // SO_BINDTODEVICE's interface, or nil: found once for the checks below
	if dev := s.device(); dev != 0 && v4.Is6() && !toSelf && !dstLocal && !v4.IsLinkLocalUnicast() &&
		(!ok || out == nil || int32(out.Index) != dev) {
		// IPv6 has no on-link fallback: a device-bound socket's route
		// lookup is confined to its device (ip6_route_output with a strict
		// oif), and none leaving there is ENETUNREACH.
		return fail(ENETUNREACH, ruleDeviceRoute6)
	}
	if !ok && s.device() != 0 && (s.flags&fBoundAddr == 0 || h.isLocal(s.local.Addr())) {
		// A device-bound socket needs no route: the destination is taken
		// to be on that link (not from a foreign bound source, though).
		if bound != nil {
			src, ok = firstAddr(bound, v4.Is4())
		}
	}
	if !ok {
		return fail(ENETUNREACH, ruleNoRoute)
	}
	if bound != nil && !bound.Loopback && v4.Is4() && !toSelf && !srcFixed &&
		out != bound && !carries(bound, v4) {
		// ip_route_output_key_hash_rcu: with an oif, a route through another
		// device (lo's for a local address) does not match, and the
		// destination is taken to be on the bound device's link: the
		// source is that device's address (wide replay: a later bind of it
		// conflicts, one of the route's usual source does not).
		if a, has := firstAddr(bound, true); has {
			src, out = a, bound
		}
	}
	if bound != nil && !toSelf && v4.Is6() && dstLocal && !carries(bound, v4) {
		// No IPv6 route between devices for a bound socket; the route is
		// looked up before ip6_dst_lookup_tail refuses a v4-mapped source
		// (replay finding).
		return fail(ENETUNREACH, ruleDeviceLocal6)
	}
	if s.fam == Inet6 && !a.Is4In6() && s.flags&fHasAddr != 0 && s.local.Addr().Is4In6() {
		return fail(EAFNOSUPPORT, ruleMappedSrcV6Dst) // after the route lookup (replay finding)
	}
	if srcFixed {
		src = fixed
		if bound != nil && !bound.Loopback && src.Is4() && src.IsLoopback() && v4.IsLoopback() {
			return fail(EINVAL, ruleLoopbackOffLo) // ip_route_output: a loopback source leaves only through lo
		}
		if v4.Is4() && !h.isLocal(src) && dstLocal {
			return fail(ENETUNREACH, ruleForeignToLocal) // no route from a foreign source to a local address
		}
		if bound != nil && src.Is4() {
			// ip_route_output_key_hash_rcu: with an oif, routes through
			// other devices do not match and the destination is taken to
			// be on the bound device's link, so that is the way out.
			out = bound
		}
		if src.Is4() && src.IsLoopback() && out != nil && !out.Loopback && !dstLocal {
			// __mkroute_output: a loopback source may leave only through
			// a loopback device; the route to another host does not
			// (a socket bound to lo sends there, and its SYN goes nowhere).
			return fail(EINVAL, ruleLoopbackLeaves)
		}
	}
	rdst := netip.AddrPortFrom(v4, dst.Port())
	if s.proto == UDP {
		return h.connectUDP(s, src, rdst)
	}
	chose := s.flags&fHasPort == 0
	takeOver := false
	if !chose && h.prof.Lookup != LookupLinux {
		f := h.tcp.flowFor(MakeFlowKey(netip.AddrPortFrom(src, s.local.Port()), rdst), s.device())
		takeOver = f != nil && f.kind() == kTimeWait
	}
	r := h.connectTCP(s, src, rdst, toSelf, dstLocal)
	if chose && h.prof.connectNote != "" && s.flags&fHasPort != 0 {
		r.Rule += Rule("; " + h.prof.connectNote)
	}
	if takeOver {
		r.Rule += Rule("; not modelled for " + h.prof.Name + ": Linux's take-over of a TIME_WAIT or orphaned FIN_WAIT2 4-tuple (tcp_twsk_unique) is used")
	}
	return r
}

// fixedSource is the source a connect must use, or the zero Addr when the
// route picks it: the bound address, or for UDP the source an earlier
// connect set once (__ip4_datagram_connect: "if (!inet->inet_saddr)
// inet->inet_saddr = fl4->saddr"; ip6_datagram_dst_update likewise for
// np->saddr). An AF_INET6 socket keeps the two apart: a v4-mapped
// destination uses the IPv4 source its first mapped connect set, a native
// one the IPv6 source.
func (s *Socket) fixedSource(toV4 bool) netip.Addr {
	if s.flags&fBoundAddr != 0 {
		return s.local.Addr().Unmap()
	}
	if s.proto != UDP || s.state != Established {
		return netip.Addr{}
	}
	if s.fam == Inet6 && toV4 {
		if m := s.peek(); m != nil && m.keptV4.IsValid() {
			return m.keptV4
		}
		if a := s.local.Addr(); a.Is4In6() && !a.Unmap().IsUnspecified() {
			return a.Unmap()
		}
		return netip.Addr{}
	}
	if a := s.local.Addr(); !a.Unmap().IsUnspecified() && (s.fam == Inet || !a.Is4In6()) {
		return a.Unmap()
	}
	return netip.Addr{}
}

// sockForm writes address a the way a socket of family f shows it:
// IPv4 inside an AF_INET6 socket is v4-mapped.
func sockForm(f Family, a netip.Addr) netip.Addr {
	if f == Inet6 && a.Is4() {
		return netip.AddrFrom16(a.As16())
	}
	return a
}

// connectTCP connects s from src to dst; dstLocal says dst is this host's
// (isLocal).
func (h *Host) connectTCP(s *Socket, src netip.Addr, dst netip.AddrPort, toSelf, dstLocal bool) Result {
	t := h.tcp
	var recycled *Socket
	if s.flags&fHasPort != 0 {
		// A bound port: only the 4-tuple must be unique (__inet_hash_connect
		// with inet_num set). A TIME_WAIT holder is taken over (tcp_twsk_unique
		// with twp == NULL does not consult tcp_tw_reuse).
		// An orphaned FIN_WAIT2 is a timewait sock too once its FIN's ACK
		// is in (tcp_time_wait(sk, TCP_FIN_WAIT2, ...)): its substate only
		// stops tcp_tw_reuse, which a bound port never consults.
		k := MakeFlowKey(netip.AddrPortFrom(src, s.local.Port()), dst)
		if f := t.flowFor(k, s.device()); f != nil {
			if f.kind() != kTimeWait {
				return failWith(EADDRNOTAVAIL, ruleTupleInUse, f)
			}
			recycled = f
		}
		t.reown(s, func() { s.local = ep(netip.AddrPortFrom(sockForm(s.fam, src), s.local.Port())) })
	} else {
		var port uint16
		var tw *Socket
		ok := false
		if pick := h.prof.connectPort; pick != nil {
			port, ok = pick(t, s, src, dst)
		} else {
			port, tw, ok = t.connectPort(s, src, dst)
		}
		if !ok {
			return fail(EADDRNOTAVAIL, ruleNoEphemeral)
		}
		recycled = tw
		s.local = ep(netip.AddrPortFrom(sockForm(s.fam, src), port))
		// tcp_v4_connect sets SYN_SENT before inet_hash_connect: the port's
		// new holder joins it as a connection, and establish has no class
		// to move it out of.
		s.state = SynSent
		s.flags |= fHasPort | fConnectBind
		t.addOwner(s)
		if b := t.ports.get(port); b.owners == 1 {
			b.fast = BindBucket{FastReuse: -1, known: true} // __inet_hash_connect's fresh bucket
		}
	}
	if recycled != nil {
		t.drop(recycled)
	}
	s.remote = ep(netip.AddrPortFrom(sockForm(s.fam, dst.Addr()), dst.Port()))
	// The host that has dst (ownerOf), this one first.
	target := h
	if !dstLocal {
		target = h.net.ownerOfOther(dst.Addr(), h)
	}
	if target == nil {
		h.establish(s)
		return Result{Rule: ruleConnectedExt, Local: s.local.AP(), Remote: s.remote.AP()}
	}
	if s.flags&fMappedOps != 0 && dst.Addr().Is6() {
		// Even a SYN to itself goes nowhere on the IPv4 path.
		h.establish(s)
		h.setState(s, SynSent)
		return Result{Err: EINPROGRESS, Rule: ruleLostRST, Local: s.local.AP(), Remote: s.remote.AP()}
	}
	if target == h && netip.AddrPortFrom(src, s.local.Port()) == dst {
		// A SYN to itself: simultaneous open connects the socket to itself.
		h.establish(s)
		return Result{Rule: ruleSelfConnect, Local: s.local.AP(), Remote: s.remote.AP()}
	}
	if s.fam == Inet6 && dst.Addr().Is4() {
		s.flags |= fMappedOps
	}
	if target != h && !h.reaches(s, dst.Addr()) {
		h.establish(s)
		h.setState(s, SynSent)
		return Result{Err: EINPROGRESS, Rule: ruleSYNNeverArrives, Local: s.local.AP(), Remote: s.remote.AP()}
	}
	if target != h && src.Is6() && src.IsLoopback() {
		// ip6_rcv_core: a packet from ::1 arriving on a device other than
		// lo is dropped; the SYN left, nothing answers.
		h.establish(s)
		h.setState(s, SynSent)
		return Result{Err: EINPROGRESS, Rule: ruleLoopbackSourceDropped, Local: s.local.AP(), Remote: s.remote.AP()}
	}
	syn := Packet{Proto: TCP, Src: netip.AddrPortFrom(src, s.local.Port()), Dst: dst, Flags: FlagSYN, Dev: h.synIngress(s, dst, target)}
	d := target.Lookup(syn)
	if d.Stage == StageTimeWaitSYN {
		// A listener takes a SYN that met a TIME_WAIT 4-tuple, and the
		// TIME_WAIT socket goes (tcp_v4_rcv, TCP_TW_SYN:
		// inet_twsk_deschedule_put), freeing its hold on the port.
		if tw := target.tcp.twAt(MakeFlowKey(dst, netip.AddrPortFrom(src, s.local.Port()))); tw != nil {
			target.tcp.drop(tw)
		}
	}
	if target != h {
		if _, _, back := target.route(src); !back {
			// Whatever answers (SYN-ACK, RST, ACK) has no route back to
			// the source (inet_csk_route_req, ip_send_unicast_reply fail):
			// the connect stays in progress and nothing changes there.
			h.establish(s)
			h.setState(s, SynSent)
			return Result{Err: EINPROGRESS, Rule: ruleNoRouteBack, Local: s.local.AP(), Remote: s.remote.AP()}
		}
	}
	if d.Verdict == Deliver && d.Stage == StageTimeWait {
		// A SYN to a TIME_WAIT 4-tuple that no listener takes: the
		// TIME_WAIT socket answers with an ACK, the SYN-SENT client resets
		// it, and with tcp_rfc1337 = 0 the RST kills the TIME_WAIT
		// (tcp_timewait_state_process); the port is free and the connect
		// is refused.
		target.tcp.drop(d.Socket)
		h.connectFailed(s)
		r := failWith(ECONNREFUSED, ruleTimeWaitKilled, nil)
		if target.prof.Lookup != LookupLinux {
			r.Rule += Rule("; not modelled for " + target.prof.Name + ": Linux's TIME_WAIT handling is used")
		}
		return r
	}
	var before Rule
	if d.Verdict == Deliver && d.Stage == StageEstablished && synchronized(d.Socket) && !h.answerLost(s, src, dst, d.Socket, toSelf, target == h) {
		// A connection of this very 4-tuple whose peer is gone: it answers
		// the SYN with a challenge ACK (tcp_validate_incoming), the SYN-SENT
		// client resets it (tcp_rcv_synsent_state_process: an unacceptable
		// ACK), and the RST, exactly at rcv_nxt, kills it (tcp_reset). The
		// SYN, retransmitted a second later, finds whatever else is there.
		target.resetByPeer(d.Socket)
		before = ruleChallengeACKReset
		if target.prof.Lookup != LookupLinux {
			before += Rule("; not modelled for " + target.prof.Name + ": Linux's challenge ACK is used")
		}
		d = target.Lookup(syn)
	}
	if d.Verdict == Deliver && d.Socket.state == Listen && target.AnswerLost(syn, d) {
		// The listener's SYN-ACK cannot get back (a device-bound
		// listener answers through its device): the listener drops the
		// SYN and the connect stays in progress.
		h.establish(s)
		h.setState(s, SynSent)
		return Result{Err: EINPROGRESS, Rule: ruleListenerAnswerLost, Other: d.Socket, Local: s.local.AP(), Remote: s.remote.AP()}
	}
	r := h.connectAnswered(s, src, dst, d, toSelf, target)
	if before != "" {
		r.Rule = before + "; then " + r.Rule
	}
	return r
}

// synIngress is the device a local connect's SYN arrives on, when it is not
// the destination's own (0, Lookup's default): an IPv4 socket bound to lo
// reaches an address of another device by leaving through lo as if the
// destination were on that link (ip_route_output_key_hash_rcu finds no
// route with that oif), and what leaves through lo comes back on lo, where
// a listener bound to lo takes it (wide sweep, seed 800721).
func (h *Host) synIngress(s *Socket, dst netip.AddrPort, target *Host) int {
	if target != h || !dst.Addr().Unmap().Is4() {
		return 0
	}
	if dev := h.ifaceByIndex(int(s.device())); dev != nil && dev.Loopback {
		return dev.Index
	}
	return 0
}

// synchronized: a connection that answers an unexpected SYN with an ACK,
// not a connect in progress (a SYN to that is a simultaneous open).
func synchronized(s *Socket) bool {
	return s.state == Established || s.state == CloseWait || s.state == FinWait2 && !s.Closed()
}

// connectAnswered finishes a connect whose SYN reached target and met d
// there.
func (h *Host) connectAnswered(s *Socket, src netip.Addr, dst netip.AddrPort, d Delivery, toSelf bool, target *Host) Result {
	var by *Socket
	if d.Verdict == Deliver && d.Socket.state == Listen {
		by = d.Socket
	}
	if h.answerLost(s, src, dst, by, toSelf, target == h) {
		h.establish(s)
		h.setState(s, SynSent)
		return Result{Err: EINPROGRESS, Rule: ruleLostRST, Local: s.local.AP(), Remote: s.remote.AP()}
	}
	if d.Verdict != Deliver || d.Socket.state != Listen {
		h.connectFailed(s)
		return failWith(ECONNREFUSED, ruleRefused, d.Socket)
	}
	h.establish(s)
	child := target.spawnChild(d.Socket, dst, netip.AddrPortFrom(src, s.local.Port()))
	child.x().peer, child.ext.owner = s, target
	s.x().peer, s.ext.owner = child, h
	rule := ruleConnected
	if d.Indeterminate {
		rule = ruleConnectedIndeterminate
	}
	return Result{Rule: rule, Other: d.Socket, Local: s.local.AP(), Remote: s.remote.AP()}
}

func (h *Host) establish(s *Socket) {
	t := h.tcp
	t.restate(s, Established)
	t.hashFlow(s)
	if s.flags&fConnectBind != 0 {
		t.addDest(s)
	}
}

// connectFailed undoes a connect that got a RST: the socket is CLOSE again
// and gives back a port that connect() chose (tcp_done → inet_put_port).
func (h *Host) connectFailed(s *Socket) {
	t := h.tcp
	if s.flags&fBoundPort != 0 {
		t.reown(s, func() { resetSource(s) })
	} else {
		t.removeOwner(s)
		s.flags &^= fHasPort | fConnectBind
		s.local.port = 0 // the address stays (an endpoint without one has no port)
		resetSource(s)
	}
	s.remote = endpoint{}
}

// resetSource is the CLOSE state of a connect that failed: back on the
// wildcard (inet_bhash2_reset_saddr), unless the bind set
// SOCK_BINDADDR_LOCK, as __inet6_bind does for ::ffff:0.0.0.0 (its type is
// mapped, not any): then the source the connect chose stays.
func resetSource(s *Socket) {
	s.state = Closed
	if s.flags&(fBoundAddr|fMappedAny) == 0 {
		s.local = anyEndpoint(s.fam, s.local.port)
	}
}

// answerLost reports the cases, found by replaying against the kernel,
// where a local connect gets no answer and stays in SYN-SENT: an AF_INET6
// socket that earlier sent a SYN to a v4-mapped address keeps the IPv4
// path and its native IPv6 SYN goes nowhere; a RST from a non-loopback
// IPv6 address to ::1 is lost, as is any answer to a foreign IPv6 source;
// and a device-bound socket whose source or destination is not on its
// device never sees the answer (it comes back on another device); for an
// IPv4 socket bound to lo, the answer of a socket (by: the listener, or
// the connection that sends a challenge ACK; nil for the host's RST) does
// come back when it goes to an address of lo or when that socket is bound
// to lo too (wide sweep, seed 800721). A destination of 0.0.0.0 / :: is
// routed through loopback regardless and escapes the device rule.
func (h *Host) answerLost(s *Socket, src netip.Addr, dst netip.AddrPort, by *Socket, toSelf, local bool) bool {
	if s.flags&fMappedOps != 0 && dst.Addr().Is6() {
		return true
	}
	if dev := h.ifaceByIndex(int(s.device())); local && dev != nil && !toSelf && !(carries(dev, src) && carries(dev, dst.Addr())) {
		// Bound to lo, an IPv4 socket's SYN comes back on lo wherever it
		// goes (synIngress), and a socket's answer comes back on lo when
		// it goes to an address of lo or leaves through lo itself (the
		// answerer is bound to lo). The host's RST does not.
		if !(dev.Loopback && dst.Addr().Unmap().Is4() && by != nil && (carries(dev, src) || by.device() == s.device())) {
			return true
		}
	}
	if dst.Addr().Is6() && !h.isLocal(src) {
		return true // a foreign IPv6 source toward this host: even a listener's answer is lost
	}
	if by != nil {
		return false
	}
	return dst.Addr().Is6() && src == netip.IPv6Loopback() && !dst.Addr().IsLoopback()
}

// reaches says whether a SYN from s can get to dst on another simulated
// host: an unbound socket follows the route; a device-bound one leaves
// through its device, which must not be loopback and must lead there (the
// route's device, or a prefix of its own holding dst). The engine has no
// links between hosts: any host is taken to be reachable that way.
func (h *Host) reaches(s *Socket, dst netip.Addr) bool {
	dev := h.ifaceByIndex(int(s.device()))
	if dev == nil {
		return true
	}
	if dev.Loopback {
		return false
	}
	if _, out, ok := h.route(dst); ok && out == dev {
		return true
	}
	for _, p := range dev.Addrs {
		if p.Masked().Contains(dst.Unmap()) {
			return true
		}
	}
	return dst.Unmap().Is4() // IPv4 takes the destination to be on the device's link
}

func carries(i *Iface, a netip.Addr) bool {
	for _, p := range i.Addrs {
		if p.Addr() == a || (i.Loopback && a.Is4() && p.Addr().Is4() && p.Contains(a)) {
			return true
		}
	}
	return false
}

// spawnChild creates the server end of a new connection on listener l and
// queues it for accept(). The child inherits the listener's options, owner
// and port (inet_csk_clone_lock, __inet_inherit_port).
func (h *Host) spawnChild(l *Socket, local, remote netip.AddrPort) *Socket {
	// A child always has its extension (parent, peer): both in one allocation.
	b := &struct {
		s Socket
		x sockExt
	}{}
	c := &b.s
	// Field by field into the new (zeroed) block: whole-struct stores would
	// be copies with write barriers.
	c.fam, c.proto, c.uid, c.ext, c.state = l.fam, TCP, l.uid, &b.x, Established
	c.flags = l.flags&(fReuseAddr|fReusePort|fV6Only|fFreeBind) | fHasPort | fHasAddr
	b.x.parent, b.x.dev = l, l.device()
	c.local = ep(netip.AddrPortFrom(sockForm(l.fam, local.Addr()), local.Port()))
	c.remote = ep(netip.AddrPortFrom(sockForm(l.fam, remote.Addr()), remote.Port()))
	h.register(c)
	h.tcp.addOwner(c)
	h.tcp.hashFlow(c)
	m := l.more()
	m.queue = append(m.queue, c)
	return c
}

// connectPort is the ephemeral choice of __inet_hash_connect (RFC 6056
// algorithm 4): a start from a keyed hash of (source, destination,
// destination port, 10-second slot) plus a per-slot perturbation, ports of
// low's parity first (unless IP_LOCAL_PORT_RANGE), skipping reserved ports
// and ports any explicit bind() holds, taking the first whose 4-tuple is
// free or held by a TIME_WAIT that tcp_tw_reuse lets us recycle.
func (t *table) connectPort(s *Socket, src netip.Addr, dst netip.AddrPort) (uint16, *Socket, bool) {
	low, high, per := t.h.localRange(s)
	step := 2
	if per {
		step = 1
	}
	high++
	remaining := high - low
	if !per && remaining > 1 {
		remaining &^= 1
	}
	if remaining <= 0 {
		return 0, nil, false
	}
	seed := t.h.net.seed ^ uint64(t.h.net.now/(10*time.Second))
	off64 := hashAddr(hashAddr(seed^uint64(dst.Port()), src), dst.Addr())
	idx := uint16(off64)
	pert, ok := t.perturb.get(idx)
	if !ok {
		pert = uint32(mix64(t.h.net.seed ^ uint64(idx) ^ 0x5bd1e995))
	}
	offset := int((uint64(pert) + off64>>32) % uint64(remaining))
	if !per {
		offset &^= 1
	}
	d := t.dests[destKey{src, dst.Addr(), dst.Port()}]
	twOK := t.twReusable(src, dst.Addr())
	reserved := &t.h.Sysctl.Reserved
	blocked := func(w int) uint64 {
		b := t.explicit[w] | reserved[w]
		if !twOK {
			b |= d.word(w)
		}
		return b
	}
	var tw *Socket
	free := func(p uint16) bool {
		if !d.has(p) {
			return true
		}
		f := t.flowFor(MakeFlowKey(netip.AddrPortFrom(src, p), dst), s.device())
		if f == nil {
			return true
		}
		if twOK && f.state == TimeWait && t.h.net.now-(f.Expires()-t.h.prof.TimeWait) >= t.h.Sysctl.TWReuseDelay {
			tw = f
			return true
		}
		return false
	}
	start := low + offset
	end := low + remaining
	for pass := 0; pass < 2; pass++ {
		parity := -1
		if !per {
			parity = (start + pass) & 1
		}
		p, found := scan(start+pass, end, parity, blocked, free)
		if !found {
			p, found = scan(low, start+pass, parity, blocked, free)
		}
		if found {
			walked := (int(p) - start + remaining) % remaining
			inc := int(t.rand()%8) * step
			if walked > inc {
				inc = walked
			}
			if t.perturb == nil {
				t.perturb = new(perturbTable)
			}
			t.perturb.put(idx, pert+uint32(inc+step))
			return p, tw, true
		}
		if per || remaining <= 1 {
			break
		}
	}
	return 0, nil, false
}

// twReusable is tcp_tw_reuse: 1 always, 2 (the default) only when either
// end is loopback.
func (t *table) twReusable(src, dst netip.Addr) bool {
	switch t.h.Sysctl.TWReuse {
	case 1:
		return true
	case 2:
		return isLoopback(src) || isLoopback(dst)
	}
	return false
}

// udpAutobind gives an unbound UDP socket a random free port
// (inet_autobind); running out is EAGAIN.
func (h *Host) udpAutobind(s *Socket) Result {
	t := h.udp
	if s.flags&fHasAddr == 0 {
		s.local = ep(netip.AddrPortFrom(anyAddr(s.fam), 0))
	}
	p, ok := t.pickUDPPort(s)
	if !ok {
		return fail(EAGAIN, ruleUDPAutobindFail)
	}
	s.local = ep(netip.AddrPortFrom(s.local.Addr(), p))
	s.flags |= fHasPort | fHasAddr
	t.addOwner(s)
	t.hashUDP(s)
	return Result{}
}

func (h *Host) connectUDP(s *Socket, src netip.Addr, dst netip.AddrPort) Result {
	t := h.udp
	if s.state == Established {
		t.unhashConnected(s)
	} else {
		t.unhashListener(s)
	}
	if s.local.Addr().Unmap().IsUnspecified() {
		// __ip4_datagram_connect: an unbound address becomes the route's
		// source, and the socket moves to that address's slot.
		t.removeOwner(s)
		s.local = ep(netip.AddrPortFrom(sockForm(s.fam, src), s.local.Port()))
		t.addOwner(s)
	}
	if s.fam == Inet6 && src.Is4() && (s.peek() == nil || !s.ext.more.keptV4.IsValid()) {
		s.more().keptV4 = src // the IPv4 source stays for later mapped connects
	}
	s.remote = ep(netip.AddrPortFrom(sockForm(s.fam, dst.Addr()), dst.Port()))
	t.removeOwner(s)
	s.state = Established
	t.addOwner(s)
	k := flowKeyOf(s)
	t.uflows[k] = insertOrdered(t.uflows[k], s)
	return Result{Rule: ruleConnected, Local: s.local.AP(), Remote: s.remote.AP()}
}

func (t *table) unhashConnected(s *Socket) {
	k := flowKeyOf(s)
	if list := removeFrom(t.uflows[k], s); len(list) == 0 {
		delete(t.uflows, k)
	} else {
		t.uflows[k] = list
	}
}

// Accept is accept(2) on a non-blocking listener.
func (h *Host) Accept(l *Socket) (*Socket, Result) {
	if r, ok := h.check(l); !ok {
		return nil, r
	}
	if l.proto == UDP || l.proto == UnixDgram {
		return nil, fail(EOPNOTSUPP, ruleListenUDP)
	}
	if l.state != Listen {
		return nil, fail(EINVAL, ruleAcceptNotListen)
	}
	q := l.Queue()
	if len(q) == 0 {
		return nil, fail(EAGAIN, ruleAcceptEmpty)
	}
	c := q[0]
	q[0] = nil
	if len(q) == 1 {
		l.ext.more.queue = q[:0] // keeps its room: the next child does not allocate
	} else {
		l.ext.more.queue = q[1:]
	}
	c.flags |= fAccepted
	return c, Result{Rule: ruleAccepted, Other: c, Local: c.local.AP(), Remote: c.remote.AP()}
}
