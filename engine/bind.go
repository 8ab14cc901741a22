package engine

import (
	"net/netip"
	"strconv"
)

// Bind is bind(2) for an inet socket, with Linux's errno precedence
// (__inet_bind, __inet6_bind).
func (h *Host) Bind(s *Socket, ap netip.AddrPort) Result { return h.bind(s, ap, s.uid) }

func (h *Host) bind(s *Socket, ap netip.AddrPort, caller uint32) Result {
	if !h.usable(s) {
		return refusal(s)
	}
	if s.fam == Unix {
		return fail(EINVAL, ruleBadAddr)
	}
	a, port := ap.Addr().WithZone(""), ap.Port()
	v6only := s.V6Only()
	if s.fam == Inet {
		if !a.Is4() {
			return fail(EAFNOSUPPORT, ruleWrongFamily)
		}
		if !h.bindableV4(s, a) {
			return fail(EADDRNOTAVAIL, ruleNotLocal)
		}
		if e, why := h.bindCommon(s, a, port, caller); e != OK {
			return fail(e, why)
		}
	} else {
		if a.Is4() {
			return fail(EINVAL, ruleShortAddr)
		}
		if a.IsMulticast() && s.proto == TCP {
			return fail(EINVAL, ruleMcastStream)
		}
		if e, why := h.bindCommon(s, a, port, caller); e != OK {
			return fail(e, why)
		}
		if a.Is4In6() {
			if v6only {
				return fail(EINVAL, ruleMappedOnV6Only)
			}
			if !h.bindableV4(s, a.Unmap()) {
				return fail(EADDRNOTAVAIL, ruleNotLocal)
			}
		} else if !a.IsUnspecified() {
			if needsScope(a) {
				// __inet6_bind: a link- or interface-local address needs an
				// interface. The zone (sin6_scope_id) binds the socket to
				// it, and that stays even when the bind then fails.
				if z := ap.Addr().Zone(); z != "" {
					s.x().dev = h.zoneIndex(z)
				}
				if s.device() == 0 {
					return fail(EINVAL, ruleNeedsScope)
				}
			}
			if d := s.device(); d != 0 && h.ifaceByIndex(int(d)) == nil {
				return fail(ENODEV, ruleNoDevice)
			}
			if !a.IsMulticast() && !h.isLocal(a) && !(h.Sysctl.NonlocalBind6 || s.flags&fFreeBind != 0) {
				return fail(EADDRNOTAVAIL, ruleNotLocal)
			}
			// __inet6_bind: ipv6_chk_addr(net, addr, dev, 0) with the bound
			// device demands a host- or link-scope address (::1, fe80::) be
			// on that device; a global one may be on any.
			if i := h.ifaceByIndex(int(s.device())); i != nil && (a.IsLoopback() || a.IsLinkLocalUnicast()) && !carries(i, a) &&
				!(h.Sysctl.NonlocalBind6 || s.flags&fFreeBind != 0) {
				return fail(EADDRNOTAVAIL, ruleNotOnDevice)
			}
			v6only = true // __inet6_bind: a specific IPv6 address never takes IPv4
		}
	}
	ap = netip.AddrPortFrom(a, port)
	old := s.flags
	if v6only {
		s.flags |= fV6Only
	}
	s.local = ep(ap)
	if port == 0 && s.flags&fNoPort != 0 && s.proto == TCP {
		s.flags |= fHasAddr
		s.flags &^= fBoundAddr
		if !a.Unmap().IsUnspecified() {
			s.flags |= fBoundAddr
		}
		return Result{Rule: ruleBoundNoPort, Local: ap}
	}
	t := h.table(s.proto)
	rule := ruleBound
	cache := s.proto == TCP && h.prof.BindBucketCache
	b := t.ports.get(port)
	wasEmpty := b == nil || b.owners == 0
	if port == 0 {
		p, ok := t.pickBindPort(s)
		if !ok {
			bindFailed(s, old)
			return fail(EADDRINUSE, rulePortsExhausted)
		}
		s.local = ep(netip.AddrPortFrom(a, p))
		rule = ruleBoundPort0
		if b := t.ports.get(p); b != nil && b.owners > 0 {
			wasEmpty = false
		}
	} else if cache && b.fastPath(s, false) {
		rule = ruleBoundFast
	} else if other, e := t.conflict(s, attrsOf(s), a, port, modeExplicit); e != OK {
		// The UDP short-cut of udp_lib_lport_inuse where the profile has it
		// (udpFirstOwnerShares); a refused TCP bind skips the walk.
		var first *Socket
		shared, hash2 := false, false
		if s.proto == UDP && h.prof.UDPFirstOwner {
			first, shared, hash2 = t.udpFirstOwnerShares(s, port)
		}
		switch {
		case shared:
			rule = Rule(string(ruleBoundUDPFirst) + ": " + first.Name())
		case hash2:
			bindFailed(s, old)
			return failWith(e, ruleUDPHash2, first)
		default:
			bindFailed(s, old)
			return failWith(e, h.conflictWhy(e, s, other), other)
		}
	}
	s.flags |= fHasPort | fHasAddr
	s.flags &^= fBoundAddr | fMappedAny
	if !a.Unmap().IsUnspecified() {
		s.flags |= fBoundAddr
	} else if a.Is4In6() {
		s.flags |= fMappedAny
	}
	if port != 0 {
		s.flags |= fBoundPort
	}
	t.addOwner(s)
	if cache {
		t.ports.get(s.local.port).updateFast(s, wasEmpty, false)
	}
	if s.proto == UDP {
		t.hashUDP(s)
	}
	return Result{Rule: rule, Local: s.local.AP()}
}

// bindFailed undoes a bind that get_port refused: the options it set are
// the old ones again, and the address is none, or the wildcard when an
// earlier bind or connect had recorded one (__inet_bind and __inet6_bind
// reset inet_rcv_saddr to 0 and keep SOCK_BINDADDR_LOCK; a listen then
// binds the wildcard). Seed 1200973 of the random generator: the engine
// had left a socket whose flags said "address recorded" without one, and
// its listen crashed.
func bindFailed(s *Socket, old sflags) {
	s.flags = old
	if old&fHasAddr != 0 {
		s.local = anyEndpoint(s.fam, 0)
	} else {
		s.local = endpoint{}
	}
}

// needsScope reports whether IPv6 address a means something only with an
// interface (__ipv6_addr_needs_scope_id): link-local unicast, and
// interface- or link-local multicast.
func needsScope(a netip.Addr) bool {
	return a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast()
}

// zoneIndex is the interface index an IPv6 zone names: an interface name of
// this host or a number (an index, which need not exist, as with
// sin6_scope_id); -1 for a name no interface has.
func (h *Host) zoneIndex(z string) int32 {
	if i := h.Iface(z); i != nil {
		return int32(i.Index)
	}
	if n, err := strconv.ParseUint(z, 10, 31); err == nil {
		return int32(n)
	}
	return -1
}

// bindCommon holds the checks shared by both families, in their order:
// the privileged port (EACCES), then a second bind (EINVAL).
func (h *Host) bindCommon(s *Socket, a netip.Addr, port uint16, caller uint32) (Errno, Rule) {
	if port != 0 && int(port) < h.Sysctl.UnprivilegedStart && caller != 0 &&
		!(h.prof.PrivilegedSpecificOnly && a.Unmap().IsUnspecified()) {
		return EACCES, rulePrivileged
	}
	if s.state != Closed || s.flags&fHasPort != 0 {
		return EINVAL, ruleAlreadyBound
	}
	return OK, ""
}

// bindableV4 is the locality test of __inet_bind: 0.0.0.0, a local,
// multicast or broadcast address, or IP_FREEBIND / ip_nonlocal_bind.
func (h *Host) bindableV4(s *Socket, a netip.Addr) bool {
	return a.IsUnspecified() || a.IsMulticast() || h.isLocal(a) || h.isBroadcast(a) ||
		h.Sysctl.NonlocalBind4 || s.flags&fFreeBind != 0
}

// conflictWhy names the rule behind a bind conflict: the profile's own
// words when it has them, else Linux's by the holder's state.
func (h *Host) conflictWhy(e Errno, s, other *Socket) Rule {
	if h.prof.conflictWhy != nil {
		return h.prof.conflictWhy(e, s, other)
	}
	return conflictRuleFor(other)
}

func conflictRuleFor(other *Socket) Rule {
	if other == nil {
		return ruleConflict
	}
	switch other.kind() {
	case kListen:
		return ruleConflictListen
	case kTimeWait:
		return ruleConflictTW
	}
	return ruleConflict
}

// Listen is listen(2). On Linux it re-runs the bind check as a listener
// (inet_csk_listen_start), and an unbound socket gets a port first.
func (h *Host) Listen(s *Socket) Result {
	if r, ok := h.check(s); !ok {
		return r
	}
	switch s.proto {
	case UDP, UnixDgram:
		return fail(EOPNOTSUPP, ruleListenUDP)
	case UnixStream:
		if s.Path() == "" {
			return fail(EINVAL, ruleListenUnbound)
		}
		if s.state != Closed && s.state != Listen {
			return fail(EINVAL, ruleNotListenable) // unix_listen: only an unconnected socket
		}
		s.state = Listen
		return Result{Rule: ruleListening}
	}
	if s.state == Listen {
		return Result{Rule: ruleListening, Local: s.local.AP()}
	}
	if s.state != Closed || s.flags&fWasConnected != 0 {
		return fail(EINVAL, ruleNotListenable)
	}
	t := h.tcp
	if s.flags&fHasPort == 0 {
		if s.flags&fHasAddr == 0 {
			s.local = ep(netip.AddrPortFrom(anyAddr(s.fam), 0))
		}
		s.state = Listen
		p, ok := t.pickBindPort(s)
		if !ok {
			s.state = Closed
			return fail(EADDRINUSE, rulePortsExhausted)
		}
		s.local = ep(netip.AddrPortFrom(s.local.Addr(), p))
		s.flags |= fHasPort | fHasAddr
		b := t.ports.get(p)
		wasEmpty := b == nil || b.owners == 0
		t.addOwner(s)
		if h.prof.BindBucketCache {
			t.ports.get(p).updateFast(s, wasEmpty, true)
		}
	} else {
		// inet_csk_listen_start: the state is LISTEN, then get_port runs
		// again with the socket still in its bucket.
		cache := h.prof.BindBucketCache
		fast := cache && t.ports.get(s.local.port).fastPath(s, true)
		var failed Result
		t.reown(s, func() {
			s.state = Listen
			if !h.prof.ListenRecheck || fast {
				return
			}
			if other, e := t.conflict(s, attrsOf(s), s.local.Addr(), s.local.Port(), modeExplicit); e != OK {
				s.state = Closed
				failed = failWith(e, h.conflictWhy(e, s, other), other)
			}
		})
		if failed.Err != OK {
			return failed
		}
		if cache {
			t.ports.get(s.local.port).updateFast(s, false, true)
		}
	}
	t.hashListener(s)
	return Result{Rule: ruleListening, Local: s.local.AP()}
}

func anyAddr(f Family) netip.Addr {
	if f == Inet6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// BindAs is bind(2) called by uid: the privileged-port test reads the
// caller's credentials, the conflict rules the socket's owner (sk_uid).
func (h *Host) BindAs(s *Socket, ap netip.AddrPort, uid uint32) Result {
	return h.bind(s, ap, uid)
}
