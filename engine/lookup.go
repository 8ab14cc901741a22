package engine

import "net/netip"

// rpGroup is a SO_REUSEPORT group: sockets with the same family, v6only,
// device, owner and exact address (inet_reuseport_add_sock,
// udp_reuseport_add_sock). Incoming flows are spread by a 4-tuple hash.
type rpGroup struct {
	members []*Socket
}

// inLookupOrder inserts s into a lookup bucket the way inet_hash and
// udp_lib_get_port do: at the head, except AF_INET6 SO_REUSEPORT sockets,
// which go to the tail so that IPv4 groups are met first.
func insertOrdered(list []*Socket, s *Socket) []*Socket {
	if s.fam == Inet6 && s.ReusePort() {
		return append(list, s)
	}
	list = append(list, nil)
	copy(list[1:], list)
	list[0] = s
	return list
}

func removeFrom(list []*Socket, s *Socket) []*Socket {
	for i, x := range list {
		if x == s {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// hashListener enters a listener (TCP) or bound socket (UDP) into its
// lookup bucket and, with SO_REUSEPORT, into its group.
func (t *table) hashListener(s *Socket) {
	k := lkeyOf(s)
	b := t.lst.bucket(k, true)
	list := *b
	if t.h.prof.Lookup != LookupLinux {
		// No Linux reuseport groups and no tail for AF_INET6 ones: the
		// newest socket is met first (in_pcbinshash inserts at the head).
		list = append(list, nil)
		copy(list[1:], list)
		list[0] = s
		*b = list
		return
	}
	if s.ReusePort() {
		var g *rpGroup
		for _, x := range list {
			if x.ReusePort() && x.fam == s.fam && x.V6Only() == s.V6Only() && x.device() == s.device() &&
				x.uid == s.uid && x.local.Addr() == s.local.Addr() && x.peek() != nil && x.ext.more.group != nil {
				g = x.ext.more.group
				break
			}
		}
		if g == nil {
			g = &rpGroup{}
		}
		g.members = append(g.members, s)
		s.more().group = g
	}
	*b = insertOrdered(list, s)
}

func (t *table) unhashListener(s *Socket) {
	k := lkeyOf(s)
	if b := t.lst.bucket(k, false); b != nil {
		*b = removeFrom(*b, s)
		if len(*b) == 0 {
			t.lst.prune(k.port)
		}
	}
	if m := s.peek(); m != nil && m.group != nil {
		g := m.group
		g.members = removeFrom(g.members, s)
		m.group = nil
	}
}

// exactFor is the bucket of local address a (a specific address).
func (pl *portLst) exactFor(a netip.Addr) []*Socket {
	k := a.As16()
	for i := range pl.exact {
		if pl.exact[i].a == k {
			return pl.exact[i].socks
		}
	}
	return nil
}

// hashUDP is hashListener for a freshly bound UDP socket.
func (t *table) hashUDP(s *Socket) { t.hashListener(s) }

// Verdict is what happens to an arriving packet.
type Verdict uint8

const (
	Deliver         Verdict = iota // a socket receives it
	RST                            // TCP: nobody listens, a RST answers
	PortUnreachable                // UDP: nobody is bound, ICMP port unreachable answers
	Drop                           // not for this host, or a RST to nobody
)

// Stage is the lookup step that decided.
type Stage uint8

const (
	StageEstablished Stage = iota
	StageTimeWait
	StageTimeWaitSYN
	StageListenerExact
	StageListenerWildcard
	StageUDPConnected
	StageUDPExact
	StageUDPWildcard
	StageNoSocket
	StageNotLocal
	StageRSTToNobody
	StageBroadcast
	StageMulticast
	StageNotJoined
	StageNoGroupReceiver
	StageNotUnicast
)

var stageText = [...]string{
	"established 4-tuple", "TIME_WAIT 4-tuple", "a SYN to a TIME_WAIT 4-tuple is handed to the listener",
	"listener on the exact address", "wildcard listener", "connected UDP socket", "UDP socket on the exact address",
	"UDP socket on the wildcard address", "no socket", "destination is not an address of this host",
	"no socket, and a RST is never answered",
	"broadcast: every matching UDP socket receives a copy", "multicast: every matching UDP socket receives a copy",
	"the interface it arrives on has not joined the group", "no socket takes it (broadcast and multicast are never answered with ICMP)",
	"TCP takes no broadcast or multicast segment",
}

func (s Stage) String() string { return stageText[s] }

// TCP flag bits of a Packet.
const (
	FlagSYN uint8 = 1 << iota
	FlagACK
	FlagRST
	FlagFIN
)

// Packet is an arriving segment or datagram.
type Packet struct {
	Proto    Proto
	Src, Dst netip.AddrPort
	Flags    uint8
	Dev      int // ingress ifindex; 0: the interface that carries Dst
}

// Delivery is the outcome of a lookup.
type Delivery struct {
	Verdict Verdict
	Stage   Stage
	Socket  *Socket   // the receiver (for a group, the member the hash picks)
	Group   []*Socket // the reuseport group that decided, if any; with Indeterminate, every candidate
	// Indeterminate: the profile documents no choice among Group (Winsock
	// between SO_REUSEADDR sharers); Socket is only one of them.
	Indeterminate bool
	All           []*Socket // broadcast and multicast: every receiver (Socket is the first)
}

// Lookup says which socket receives p, as the kernel's receive path would
// (__inet_lookup_established, then __inet_lookup_listener's scoring). It changes nothing and does not allocate,
// except for a broadcast or multicast datagram, whose receivers it lists
// in Delivery.All.
func (h *Host) Lookup(p Packet) Delivery {
	if z := p.Dst.Addr().Zone(); z != "" {
		// The zone of a scoped IPv6 destination is the interface it
		// arrives on, unless the packet names one.
		if p.Dev == 0 {
			if p.Dev = int(h.zoneIndex(z)); h.ifaceByIndex(p.Dev) == nil {
				return Delivery{Verdict: Drop, Stage: StageNotLocal}
			}
		}
		p.Dst = netip.AddrPortFrom(p.Dst.Addr().WithZone(""), p.Dst.Port())
	}
	if p.Src.Addr().Zone() != "" {
		p.Src = netip.AddrPortFrom(p.Src.Addr().WithZone(""), p.Src.Port())
	}
	t := h.tcp
	if p.Proto == TCP {
		// The established 4-tuple first (__inet_lookup_established): one
		// map probe, and no look at the socket unless some connection is
		// bound to a device.
		k := MakeFlowKey(p.Dst, p.Src)
		if s := t.flows[k]; s != nil {
			if t.devFlows == 0 || s.device() == 0 || s.device() == h.ingress(p) {
				return Delivery{Verdict: Deliver, Stage: StageEstablished, Socket: s}
			}
			if d := t.dupFlows[k]; len(d) > 0 {
				in := h.ingress(p)
				for i := len(d) - 1; i >= 0; i-- {
					if d[i].device() == 0 || d[i].device() == in {
						return Delivery{Verdict: Deliver, Stage: StageEstablished, Socket: d[i]}
					}
				}
			}
		}
	}
	dst, src := unmapAP(p.Dst), unmapAP(p.Src)
	if h.prof.Multicast && h.IsGroupcast(dst.Addr()) {
		if p.Proto != UDP {
			return Delivery{Verdict: Drop, Stage: StageNotUnicast}
		}
		return h.lookupGroupcast(p, src, dst)
	}
	in := h.ifaceFor(dst.Addr())
	if in == nil {
		return Delivery{Verdict: Drop, Stage: StageNotLocal}
	}
	if p.Dev != 0 && dst.Addr().IsLinkLocalUnicast() {
		// A link-local address is local only on its own link: the
		// kernel's route to it is strict about the interface.
		if i := h.ifaceByIndex(p.Dev); i == nil || !carries(i, dst.Addr()) {
			return Delivery{Verdict: Drop, Stage: StageNotLocal}
		}
	}
	dev := int32(p.Dev)
	if dev == 0 {
		dev = int32(in.Index)
	}
	if p.Proto == UDP {
		return h.udp.lookupUDP(src, dst, dev)
	}
	if len(t.tws) > 0 || len(t.twLate) > 0 {
		if s := t.twAt(MakeFlowKey(dst, src)); s != nil && (s.device() == 0 || s.device() == dev) {
			if p.Flags&(FlagSYN|FlagACK|FlagRST) != FlagSYN {
				return Delivery{Verdict: Deliver, Stage: StageTimeWait, Socket: s}
			}
			if d := t.lookupListener(src, dst, dev); d.Verdict == Deliver {
				d.Stage = StageTimeWaitSYN
				return d
			}
			return Delivery{Verdict: Deliver, Stage: StageTimeWait, Socket: s} // TCP_TW_ACK
		}
	}
	d := t.lookupListener(src, dst, dev)
	if d.Verdict != Deliver {
		if p.Flags&FlagRST != 0 {
			return Delivery{Verdict: Drop, Stage: StageRSTToNobody}
		}
		return Delivery{Verdict: RST, Stage: StageNoSocket}
	}
	return d
}

// ingress is the interface a packet arrives on: the one it names, else the
// one that carries its destination.
func (h *Host) ingress(p Packet) int32 {
	if p.Dev != 0 {
		return int32(p.Dev)
	}
	if i := h.ifaceFor(p.Dst.Addr()); i != nil {
		return int32(i.Index)
	}
	return 0
}

// lookupListener is the listener half of both protocols' lookup
// (__inet_lookup_listener / inet6_lookup_listener; the unconnected slots of
// __udp4_lib_lookup / __udp6_lib_lookup): the bucket of the exact address,
// then the wildcard bucket; in each, the highest compute_score wins and a
// SO_REUSEPORT winner hands over to its group at once.
func (t *table) lookupListener(src, dst netip.AddrPort, dev int32) Delivery {
	miss, exact, wild := Delivery{Verdict: RST, Stage: StageNoSocket}, StageListenerExact, StageListenerWildcard
	if t.proto == UDP {
		miss.Verdict, exact, wild = PortUnreachable, StageUDPExact, StageUDPWildcard
	}
	pl := t.lst.get(dst.Port())
	if pl == nil {
		return miss
	}
	if t.h.prof.Lookup != LookupLinux {
		return t.lookupOther(pl, src, dst, dev, miss, exact, wild)
	}
	if s, g := t.best(pl.exactFor(dst.Addr()), src, dst, dev, false); s != nil {
		return Delivery{Verdict: Deliver, Stage: exact, Socket: s, Group: g}
	}
	if s, g := t.best(pl.wild, src, dst, dev, true); s != nil {
		return Delivery{Verdict: Deliver, Stage: wild, Socket: s, Group: g}
	}
	return miss
}

// best walks one lookup bucket and returns the highest-scoring socket
// (ties: the first, i.e. the most recently inserted), or the SO_REUSEPORT
// group of the first socket that beats the best so far, which decides at
// once (inet_lhash2_lookup, udp4_lib_lookup2). Scores follow compute_score:
// TCP (inet_hashtables.c) 1, +1 for AF_INET, +1 for a bound device; UDP
// (udp.c) 2 for AF_INET or 1 for AF_INET6, +4 for a bound device. An IPv4
// packet never reaches an IPV6_V6ONLY socket; an IPv6 one only AF_INET6
// sockets, and in the wildcard bucket only those bound to :: exactly (so
// ::ffff:0.0.0.0 never receives IPv6).
func (t *table) best(list []*Socket, src, dst netip.AddrPort, dev int32, wild bool) (*Socket, []*Socket) {
	v4 := dst.Addr().Is4()
	famBonus, devBonus := 1, 1
	if t.proto == UDP {
		devBonus = 4
	}
	best, score := (*Socket)(nil), 0
	for _, s := range list {
		sc := 1
		if v4 {
			if s.fam == Inet6 && s.V6Only() {
				continue
			}
			if s.fam == Inet {
				sc += famBonus
			}
		} else if s.fam != Inet6 || (wild && !s.local.Addr().IsUnspecified()) {
			continue
		}
		if d := s.device(); d != 0 {
			if d != dev {
				continue
			}
			sc += devBonus
		}
		if sc > score {
			if g := s.Group(); len(g) > 0 {
				return t.pick(g, src, dst), g
			}
			best, score = s, sc
		}
	}
	return best, nil
}

// pick chooses a group member by a seeded hash of the 4-tuple, as
// reuseport_select_sock_by_hash does with reciprocal_scale.
func (t *table) pick(g []*Socket, src, dst netip.AddrPort) *Socket {
	h := hashAddr(t.h.net.seed^uint64(src.Port())<<16^uint64(dst.Port()), src.Addr())
	h = hashAddr(h, dst.Addr())
	return g[(uint64(uint32(h))*uint64(len(g)))>>32]
}

// lookupUDP is __udp4_lib_lookup / __udp6_lib_lookup: connected sockets
// first (their score is +8), then the exact address slot, then the
// wildcard slot; AF_INET scores above AF_INET6, a bound device adds 4;
// ties go to the first in the slot, the most recently bound.
func (t *table) lookupUDP(src, dst netip.AddrPort, dev int32) Delivery {
	if len(t.uflows) > 0 {
		for _, s := range t.uflows[MakeFlowKey(dst, src)] {
			if (s.device() == 0 || s.device() == dev) && !(dst.Addr().Is4() && s.fam == Inet6 && s.V6Only()) {
				return Delivery{Verdict: Deliver, Stage: StageUDPConnected, Socket: s}
			}
		}
	}
	return t.lookupListener(src, dst, dev)
}
