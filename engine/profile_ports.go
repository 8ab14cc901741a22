package engine

import "net/netip"

// Ephemeral ports for connect() on the profiles other than Linux. None of
// them has Linux's odd/even split or its keyed-hash start (RFC 6056
// algorithm 4): each starts at random in the range and walks up.

// connectPortShared is FreeBSD's in_pcb_lport_dest for a connect
// (sys/netinet/in_pcb.c, called by in_pcbconnect with the foreign address
// and INPLOOKUP_WILDCARD; net.inet.ip.portrange.randomized=1 by default):
// a random start, then every port in turn, wrapping; a port is taken when
// no connection has the same 4-tuple and no socket is bound to it without
// a peer (the wildcard lookup finds those). So connects to different
// destinations share ports, as on Linux, but in no particular parity.
func connectPortShared(t *table, s *Socket, src netip.Addr, dst netip.AddrPort) (uint16, bool) {
	d := t.dests[destKey{src, dst.Addr(), dst.Port()}]
	return t.walkPorts(s, func(p uint16) bool {
		if t.explicit.has(p) {
			return false
		}
		return !d.has(p) || t.flowAt(MakeFlowKey(netip.AddrPortFrom(src, p), dst)) == nil
	})
}

// connectPortUnused gives a connect a port nobody holds: XNU's in_pcbbind
// for the implicit bind of connect ("wild = 1": the lookup finds any
// socket on the port; bsd/netinet/in_pcb.c, random start then upwards
// with net.inet.ip.portrange.first < last), and socktab's reading of
// Windows' connect() ("unique values are assigned to the local
// association"; the order is not documented).
func connectPortUnused(t *table, s *Socket, _ netip.Addr, _ netip.AddrPort) (uint16, bool) {
	return t.walkPorts(s, func(p uint16) bool { return !t.used.has(p) })
}

// walkPorts tries the range from a random start, upwards and wrapping,
// and returns the first port ok accepts.
func (t *table) walkPorts(s *Socket, ok func(uint16) bool) (uint16, bool) {
	low, high, _ := t.h.localRange(s)
	n := high - low + 1
	if n <= 0 {
		return 0, false
	}
	start := int(t.rand() % uint64(n))
	for i := 0; i < n; i++ {
		if p := uint16(low + (start+i)%n); ok(p) {
			return p, true
		}
	}
	return 0, false
}

// lookupOther is the listener lookup of the BSD and Winsock profiles:
// the exact address's bucket, then the wildcard one, with the profile's
// choice inside a bucket (LookupBSD, LookupWinsock).
func (t *table) lookupOther(pl *portLst, src, dst netip.AddrPort, dev int32, miss Delivery, exact, wild Stage) Delivery {
	for _, b := range [2]struct {
		list  []*Socket
		stage Stage
	}{{pl.exactFor(dst.Addr()), exact}, {pl.wild, wild}} {
		var first, firstV4 *Socket
		n := 0
		for _, s := range b.list {
			if !accepts(s, dst, dev, b.stage == wild) {
				continue
			}
			if first == nil {
				first = s
			}
			if firstV4 == nil && s.fam == Inet {
				firstV4 = s
			}
			n++
		}
		switch {
		case first == nil:
			continue
		case t.h.prof.Lookup == LookupWinsock && n > 1:
			// "Using SO_REUSEADDR and SO_EXCLUSIVEADDRUSE": once a second
			// socket is bound, "the behavior for all sockets bound to that
			// port is indeterminate". Every candidate is named.
			all := make([]*Socket, 0, n)
			for _, s := range b.list {
				if accepts(s, dst, dev, b.stage == wild) {
					all = append(all, s)
				}
			}
			return Delivery{Verdict: Deliver, Stage: b.stage, Socket: first, Group: all, Indeterminate: true}
		case t.h.prof.Lookup == LookupBSD && b.stage == wild && firstV4 != nil && dst.Addr().Is4():
			// in_pcblookup_hash: local_wild (AF_INET) before
			// local_wild_mapped (a dual-stack AF_INET6 socket).
			return Delivery{Verdict: Deliver, Stage: b.stage, Socket: firstV4}
		}
		return Delivery{Verdict: Deliver, Stage: b.stage, Socket: first}
	}
	return miss
}

// accepts is the address-family test every profile shares: an IPv4
// packet never reaches an IPV6_V6ONLY socket, an IPv6 one only AF_INET6
// sockets (on the wildcard, only those bound to :: itself); a socket bound
// to a device takes only what arrives there.
func accepts(s *Socket, dst netip.AddrPort, dev int32, wild bool) bool {
	if dst.Addr().Is4() {
		if s.fam == Inet6 && s.V6Only() {
			return false
		}
	} else if s.fam != Inet6 || (wild && !s.local.Addr().IsUnspecified()) {
		return false
	}
	d := s.device()
	return d == 0 || d == dev
}
