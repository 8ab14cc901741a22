package inspect

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/live"
)

// Answer is a live answer: the kernel would do it, would not, or it
// depends on options nobody could read.
type Answer string

const (
	AnswerOK      Answer = "ok"      // the bind would succeed / something receives
	AnswerFails   Answer = "fails"   // the bind would fail / nothing receives
	AnswerDepends Answer = "depends" // it depends on Unknowns
)

// maxFullGroups bounds the exhaustive enumeration: 4^5 = 1,024 small
// tables. Past it each group is varied alone, the others at their
// inferred values.
const maxFullGroups = 5

// maxFullCombos is that bound in assignments (a group with an unknown
// IPV6_V6ONLY has 8 values, not 4).
const maxFullCombos = 1 << (2 * maxFullGroups) // 4^maxFullGroups = 1,024

// unknownGroup is a set of sockets on the port in question whose options
// were not read, varied together: TIME-WAIT connections sharing a local
// address (they normally come from one listener, and none of them takes
// part in a lookup of a new connection), or one other socket. A
// pseudo-group is an unknown of another kind (pseudo.go).
type unknownGroup struct {
	idx  []int // into the port's sub-snapshot
	tw   bool
	desc string
	// v6 is set when IPV6_V6ONLY is unknown too: sock_diag reports it only
	// for listening and unconnected sockets, and a TIME-WAIT or accepted
	// socket on a specific IPv6 address inherits it from its listener, so a
	// dual-stack one still claims 0.0.0.0 (its IPv4 address is the kernel's
	// placeholder LOOPBACK4_IPV6, which a wildcard IPv4 bind matches).
	v6 bool
	// pseudo is the kind of a pseudo-group (no sockets), nil for sockets.
	pseudo pseudoKind
}

// values is how many option values the group is tried with: an index's
// bit 0 is SO_REUSEADDR, bit 1 SO_REUSEPORT, bit 2 IPV6_V6ONLY (when v6).
func (g *unknownGroup) values() int {
	if g.pseudo != nil {
		return g.pseudo.values()
	}
	if g.v6 {
		return 8
	}
	return len(optionValues)
}

// optionValues are the values an unknown group is tried with:
// SO_REUSEADDR and SO_REUSEPORT off and on.
var optionValues = [4][2]bool{{false, false}, {true, false}, {false, true}, {true, true}}

// portView is the sockets of one protocol and port, the only ones a bind
// to that port or a lookup of a packet to it consults, ready to be loaded
// again with other option values.
type portView struct {
	snap   live.Snapshot
	groups []unknownGroup
}

func (t *Table) portView(proto engine.Proto, port uint16) *portView {
	name := "tcp"
	if proto == engine.UDP {
		name = "udp"
	}
	v := &portView{snap: *t.Snap}
	v.snap.Sockets = nil
	for i := range t.Snap.Sockets {
		ls := &t.Snap.Sockets[i]
		if ls.Proto == name && ls.Local.Port() == port {
			v.snap.Sockets = append(v.snap.Sockets, *ls)
		}
	}
	type gk struct {
		state string
		local netip.AddrPort
		uid   uint32
		dev   int
	}
	byKey := map[gk]int{}
	for i := range v.snap.Sockets {
		ls := &v.snap.Sockets[i]
		if ls.Opts != nil {
			continue
		}
		k := gk{ls.State, ls.Local, ls.UID, ls.BoundDev}
		tw := ls.State == "TIME-WAIT" || ls.State == "FIN-WAIT-2" && ls.Inode == 0
		if !tw {
			// Every other socket is its own unknown: two sockets alike
			// can still differ, and for a lookup a mix of values (one
			// in a reuseport group, one not) is an answer of its own.
			k.state += fmt.Sprintf("/%d/%s", ls.Inode, ls.Remote)
		}
		g, ok := byKey[k]
		if !ok {
			g = len(v.groups)
			byKey[k] = g
			a := ls.Local.Addr()
			v6 := ls.Family == "inet6" && ls.V6Only == nil && !a.IsUnspecified() && !a.Is4In6()
			v.groups = append(v.groups, unknownGroup{tw: tw, v6: v6})
		}
		v.groups[g].idx = append(v.groups[g].idx, i)
	}
	if proto == engine.UDP && v.crossFamilyOrderUnknown() {
		v.groups = append(v.groups, unknownGroup{pseudo: chainOrder{},
			desc: fmt.Sprintf("the IPv4 and the IPv6 udp sockets on port %d", port)})
	}
	for gi := range v.groups {
		g := &v.groups[gi]
		if g.pseudo != nil {
			continue
		}
		ls := &v.snap.Sockets[g.idx[0]]
		n := len(g.idx)
		switch {
		case g.tw && n == 1:
			g.desc = fmt.Sprintf("the TIME-WAIT connection %s -> %s", ls.Local, ls.Remote)
		case g.tw:
			g.desc = fmt.Sprintf("the %d TIME-WAIT connections on %s", n, ls.Local)
		case len(ls.Processes) == 0:
			g.desc = fmt.Sprintf("the %s %s socket on %s (uid %d, inode %d, no readable owner)", name, ls.State, ls.Local, ls.UID, ls.Inode)
		default:
			g.desc = fmt.Sprintf("the %s %s socket on %s held by %s (options not read)", name, ls.State, ls.Local, Owners(ls))
		}
	}
	return v
}

// slotRead says whether the BPF reader read the UDP port's hash slot
// count for every socket on it (load then counts the slot as the kernel
// does).
func (v *portView) slotRead() bool {
	for i := range v.snap.Sockets {
		if v.snap.Sockets[i].UDPSlot == 0 {
			return false
		}
	}
	return true
}

// crossFamilyOrderUnknown says whether the port has sockets of both
// address families and the BPF reader did not place all of them on the
// port's chain: sock_diag keeps the chain's order within a family only.
func (v *portView) crossFamilyOrderUnknown() bool {
	fams := map[string]bool{}
	placed := true
	for i := range v.snap.Sockets {
		ls := &v.snap.Sockets[i]
		fams[ls.Family] = true
		placed = placed && ls.ChainPos != 0
	}
	return !placed && fams["inet"] && fams["inet6"]
}

// load builds the port's table with group gi's sockets set to
// optionValues[vals[gi]] (a pseudo-group: its kind applies vals[gi]).
func (v *portView) load(vals []int) (*Table, error) {
	snap := v.snap
	snap.Sockets = slices.Clone(v.snap.Sockets)
	var plan loadPlan
	for gi, g := range v.groups {
		if g.pseudo != nil {
			g.pseudo.apply(vals[gi], &plan)
			continue
		}
		ov := optionValues[vals[gi]&3]
		for _, i := range g.idx {
			ls := &snap.Sockets[i]
			o := &live.SockOpts{ReuseAddr: ov[0], ReusePort: ov[1], Device: ls.BoundDev}
			if g.v6 {
				o.V6Only = vals[gi]&4 != 0
			} else if ls.V6Only != nil {
				o.V6Only = *ls.V6Only
			} else if ls.Family == "inet6" {
				a := ls.Local.Addr()
				o.V6Only = !a.IsUnspecified() && !a.Is4In6()
			}
			ls.Opts = o
			ls.OptsSource = "assumed"
		}
	}
	t, err := load(&snap, plan.v6First)
	if err != nil {
		return t, err
	}
	for _, f := range plan.after {
		if err := f(t); err != nil {
			return t, err
		}
	}
	return t, nil
}

// vary evaluates eval on the port's table under the possible values of
// the unknown groups: every assignment when there are few groups, else
// each group varied alone from base. It returns the outcome of each
// assignment tried (by fmt.Sprint of the values) and the assignments.
func (v *portView) vary(base []int, eval func(*Table) (string, error)) (map[string]string, [][]int, error) {
	out := map[string]string{}
	var tried [][]int
	try := func(vals []int) error {
		t, err := v.load(vals)
		if err != nil {
			return err
		}
		o, err := eval(t)
		if err != nil {
			return err
		}
		out[fmt.Sprint(vals)] = o
		tried = append(tried, slices.Clone(vals))
		return nil
	}
	n := len(v.groups)
	combos := 1
	for i := range v.groups {
		combos *= v.groups[i].values()
		if combos > maxFullCombos {
			break
		}
	}
	if combos <= maxFullCombos {
		vals := make([]int, n)
		for {
			if err := try(vals); err != nil {
				return nil, nil, err
			}
			i := 0
			for ; i < n; i++ {
				vals[i]++
				if vals[i] < v.groups[i].values() {
					break
				}
				vals[i] = 0
			}
			if i == n {
				break
			}
		}
		return out, tried, nil
	}
	for g := range n {
		for x := range v.groups[g].values() {
			vals := slices.Clone(base)
			vals[g] = x
			if err := try(vals); err != nil {
				return nil, nil, err
			}
		}
	}
	return out, tried, nil
}

// distinct counts the different outcomes.
func distinct(results map[string]string) int {
	seen := map[string]bool{}
	for _, o := range results {
		seen[o] = true
	}
	return len(seen)
}

// inferredValues are the loader's guesses for the groups (the index into
// optionValues), so that the varied-alone mode starts from them.
func (v *portView) inferredValues(t *Table) []int {
	base := make([]int, len(v.groups))
	for gi, g := range v.groups {
		if g.pseudo != nil {
			base[gi] = g.pseudo.inferred()
			continue
		}
		ls := &v.snap.Sockets[g.idx[0]]
		for s, l := range t.bySock {
			if l.Inode == ls.Inode && l.Local == ls.Local && l.Remote == ls.Remote && l.State == ls.State {
				x := 0
				if s.ReuseAddr() {
					x |= 1
				}
				if s.ReusePort() {
					x |= 2
				}
				if g.v6 && s.V6Only() {
					x |= 4
				}
				base[gi] = x
				break
			}
		}
	}
	return base
}

// explain names the groups the outcome turns on, with the option values
// that give key's outcome.
func (v *portView) explain(outcome func(vals []int) string, tried [][]int, good string, verb string) []string {
	var words []string
	for gi, g := range v.groups {
		okWith := map[int]bool{} // by SO_REUSEADDR/SO_REUSEPORT (bits 0-1)
		matters, v6matters := false, false
		for _, vals := range tried {
			o := outcome(vals)
			if o == good {
				okWith[vals[gi]&3] = true
			}
			for x := range g.values() {
				if x == vals[gi] {
					continue
				}
				alt := slices.Clone(vals)
				alt[gi] = x
				if ao := outcome(alt); ao != "" && ao != o {
					matters = true
					if x&3 == vals[gi]&3 {
						v6matters = true
					}
				}
			}
		}
		if !matters {
			continue
		}
		if g.pseudo != nil {
			words = append(words, g.pseudo.explain(g.desc, okWith, verb))
			continue
		}
		one := len(g.idx) == 1
		owner, verb := "they", verb
		switch {
		case g.tw && one:
			owner = "its listener"
		case g.tw:
			owner = "their listener"
		case one:
			owner = "it"
		}
		had := "had"
		if !g.tw {
			had = map[bool]string{true: "has", false: "have"}[one]
		}
		if one {
			verb = strings.Replace(verb, "allow ", "allows ", 1)
			verb = strings.Replace(verb, "get ", "gets ", 1)
		}
		var cond string
		switch {
		case v6matters:
			cond = "on the IPV6_V6ONLY (inherited from the socket it came from) and the SO_REUSEADDR / SO_REUSEPORT of " + map[bool]string{true: "it", false: "them"}[one] + ", which could not be read"
			words = append(words, fmt.Sprintf("%s: the answer depends %s", g.desc, cond))
			continue
		case okWith[1] && okWith[3] && !okWith[0] && !okWith[2]:
			cond = owner + " " + had + " SO_REUSEADDR"
		case okWith[2] && okWith[3] && !okWith[0] && !okWith[1]:
			cond = owner + " " + had + " SO_REUSEPORT"
		case okWith[3] && !okWith[0] && !okWith[1] && !okWith[2]:
			cond = owner + " " + had + " both SO_REUSEADDR and SO_REUSEPORT"
		case okWith[0] && !okWith[1] && !okWith[2] && !okWith[3]:
			cond = owner + " " + had + " neither SO_REUSEADDR nor SO_REUSEPORT"
		case okWith[0] && okWith[2] && !okWith[1] && !okWith[3]:
			cond = owner + " " + had + " no SO_REUSEADDR"
		case okWith[0] && okWith[1] && !okWith[2] && !okWith[3]:
			cond = owner + " " + had + " no SO_REUSEPORT"
		default:
			cond = "on the SO_REUSEADDR / SO_REUSEPORT of " + map[bool]string{true: "it", false: "them"}[one] + ", which could not be read"
			words = append(words, fmt.Sprintf("%s: the answer depends %s", g.desc, cond))
			continue
		}
		words = append(words, fmt.Sprintf("%s %s only if %s", g.desc, verb, cond))
	}
	if len(words) == 0 {
		words = append(words, "the options of the sockets on this port could not be read")
	}
	return words
}

// BindAnswer is the answer to a bind question on a live table.
type BindAnswer struct {
	Answer Answer
	// Result is the engine's result with the options as read (inferred
	// where unread); Explain it for the reason.
	Result engine.Result
	// Unknowns name, in words, what the answer depends on (AnswerDepends).
	Unknowns []string
	// Inferred is set when some sockets on the port had unread options but
	// every value they could have gives the same answer.
	Inferred bool
}

// Bind answers a bind question. When sockets on the port have options that
// were not read, the engine is asked under every value they could have;
// if the answers differ, the answer is AnswerDepends.
func (t *Table) Bind(r BindRequest) (BindAnswer, error) {
	res, err := t.CheckBind(r)
	if err != nil {
		return BindAnswer{}, err
	}
	a := BindAnswer{Answer: AnswerOK, Result: res}
	if res.Err != engine.OK {
		a.Answer = AnswerFails
	}
	if r.Addr.Port() == 0 {
		return a, nil // the port is the kernel's choice among all free ones
	}
	v := t.portView(r.Proto, r.Addr.Port())
	if a.Answer == AnswerFails && r.Proto == engine.TCP && r.ReusePort && !t.Host.BindBucketKnown(engine.TCP, r.Addr.Port()) {
		// The full check refused it, but the kernel may never run it.
		v.groups = append(v.groups, unknownGroup{pseudo: bindCache{r},
			desc: fmt.Sprintf("the bind-bucket cache of tcp port %d", r.Addr.Port())})
	}
	if own := len(v.snap.Sockets); r.Proto == engine.UDP && a.Answer == AnswerOK && own > 0 && own < udpSlotCrowded &&
		!r.Addr.Addr().Unmap().IsUnspecified() && !v.slotRead() {
		// The kernel may count more sockets in the port's hash slot than
		// the port's own, and check the bind on other chains (udpSlot).
		v.groups = append(v.groups, unknownGroup{pseudo: udpSlot{port: r.Addr.Port(), own: own},
			desc: fmt.Sprintf("the hash slot of udp port %d", r.Addr.Port())})
	}
	if len(v.groups) == 0 {
		return a, nil
	}
	eval := func(sub *Table) (string, error) {
		res, err := sub.CheckBind(r)
		if err != nil {
			return "", err
		}
		if res.Err == engine.OK {
			return string(AnswerOK), nil
		}
		return string(AnswerFails), nil
	}
	results, tried, err := v.vary(v.inferredValues(t), eval)
	if err != nil {
		return BindAnswer{}, err
	}
	for _, g := range v.groups {
		a.Inferred = a.Inferred || g.pseudo == nil || g.pseudo.unread()
	}
	if distinct(results) == 1 {
		for _, o := range results {
			a.Answer = Answer(o) // equal to the inferred one: it is one of the values tried
		}
		return a, nil
	}
	a.Answer = AnswerDepends
	a.Unknowns = v.explain(func(vals []int) string { return results[fmt.Sprint(vals)] }, tried, string(AnswerOK), "allow the bind")
	return a, nil
}

// WhoAnswer is the answer to a delivery question on a live table.
type WhoAnswer struct {
	Answer   Answer // ok: a socket receives; fails: none does
	Delivery engine.Delivery
	Unknowns []string
	Inferred bool
	// AnswerLost, when not "", says why the host's answer to the SYN (the
	// SYN-ACK of Delivery.Socket, or a RST) cannot be routed back to the
	// source (engine.Host.AnswerLost): the connect hears nothing and times
	// out. Delivery.Verdict is then Drop and Answer fails; Delivery.Socket
	// is still the listener that takes the SYN, if any.
	AnswerLost string
}

// Who answers which socket would receive a packet from src to dst, and
// whether that depends on options that were not read.
func (t *Table) WhoAnswer(proto engine.Proto, src, dst netip.AddrPort) (WhoAnswer, error) {
	return t.WhoAnswerOn(proto, src, dst, 0)
}

// WhoAnswerOn is WhoAnswer for a packet arriving on interface dev (the
// kernel's index; 0: the default of engine.Packet).
func (t *Table) WhoAnswerOn(proto engine.Proto, src, dst netip.AddrPort, dev int) (WhoAnswer, error) {
	var alts []int
	if dev == 0 {
		if in := t.arrivals(src, dst); len(in) > 0 {
			dev, alts = in[0], in[1:]
		}
	}
	d := t.WhoOn(proto, src, dst, dev)
	a := WhoAnswer{Answer: AnswerFails, Delivery: d}
	for _, alt := range alts {
		if deliveryKey(t, t.WhoOn(proto, src, dst, alt)) != deliveryKey(t, d) {
			// Which interface the packet comes in on is the question's,
			// not a fact socktab could read: name it rather than pick one.
			a.Answer = AnswerDepends
			a.Unknowns = []string{fmt.Sprintf("the interface a packet from another host to %s arrives on: through %s it goes as shown, through %s not (name one with --dev)",
				dst.Addr(), t.ifaceName(dev), t.ifaceName(alt))}
			return a, nil
		}
	}
	if d.Verdict == engine.Deliver {
		a.Answer = AnswerOK
	}
	if t.Host.AnswerLost(synPacket(proto, src, dst, dev), d) {
		a.AnswerLost, a.Answer, a.Delivery.Verdict = t.lostReason(src, d), AnswerFails, engine.Drop
	}
	if all, u, ok := t.groupReceivers(proto, src, dst, dev, d); ok {
		a.Delivery.All, a.Answer = all, AnswerFails
		a.Delivery.Verdict, a.Delivery.Stage, a.Delivery.Socket = engine.Drop, engine.StageNoGroupReceiver, nil
		if len(all) > 0 {
			a.Delivery.Verdict, a.Delivery.Stage, a.Delivery.Socket, a.Answer = engine.Deliver, engine.StageMulticast, all[0], AnswerOK
		}
		if len(u) > 0 {
			a.Answer, a.Unknowns = AnswerDepends, u
		}
		return a, nil
	}
	v := t.portView(proto, dst.Port())
	if len(v.groups) == 0 {
		return a, nil
	}
	eval := func(sub *Table) (string, error) {
		return deliveryKey(sub, sub.WhoOn(proto, src, dst, dev)), nil
	}
	results, tried, err := v.vary(v.inferredValues(t), eval)
	if err != nil {
		return WhoAnswer{}, err
	}
	a.Inferred = true
	if distinct(results) == 1 {
		return a, nil
	}
	a.Answer = AnswerDepends
	good := deliveryKey(t, d)
	a.Unknowns = v.explain(func(vals []int) string { return results[fmt.Sprint(vals)] }, tried, good, "get the packet as shown")
	return a, nil
}

// arrivals are the interfaces a packet from src to dst may arrive on when
// the question names none, the first taken for the answer; nil leaves it
// to the engine (the interface that carries dst). They are audit's
// ingresses for a packet from another host to an address configured on a
// loopback interface that is not a loopback address (a service address on
// lo): nothing from outside arrives on lo, so it comes in on one of the
// other interfaces.
func (t *Table) arrivals(src, dst netip.AddrPort) []int {
	a := dst.Addr().WithZone("").Unmap()
	if t.Host.IsLocal(src.Addr().WithZone("")) || a.IsLoopback() || a.IsMulticast() {
		return nil
	}
	for _, i := range t.Host.Ifaces {
		for _, p := range i.Addrs {
			if p.Addr() == a && i.Loopback {
				if in := t.ingresses(a, i, t.boundDevices()); len(in) > 0 && in[0] != i.Index {
					return in
				}
				return nil
			}
		}
	}
	return nil
}

// lostReason says in words why the answer to a SYN from src cannot get back.
func (t *Table) lostReason(src netip.AddrPort, d engine.Delivery) string {
	if d.Socket == nil {
		return fmt.Sprintf("the RST to %s must leave through the interface the SYN arrived on, which has no route to it: the connect times out", src.Addr())
	}
	dev := "its device"
	if ls := t.Live(d.Socket); ls != nil {
		dev = fmt.Sprintf("interface %d", ls.BoundDev)
		for _, i := range t.Snap.Interfaces {
			if i.Index == ls.BoundDev {
				dev = i.Name
			}
		}
	}
	return fmt.Sprintf("the listener takes the SYN, but it is bound to %s and its SYN-ACK cannot be routed from there to %s: the connect times out", dev, src.Addr())
}

// deliveryKey identifies a delivery by its verdict and the live sockets
// that may receive (the receiver and its group), so that tables loaded
// with other option values compare.
func deliveryKey(t *Table, d engine.Delivery) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", d.Verdict)
	id := func(s *engine.Socket) string {
		ls := t.Live(s)
		if ls == nil {
			return "?"
		}
		return fmt.Sprintf("%d/%s/%s/%s", ls.Inode, ls.Local, ls.Remote, ls.State)
	}
	if d.Socket != nil {
		ids := []string{id(d.Socket)}
		if len(d.Group) > 1 { // a group of one is the socket alone
			for _, g := range d.Group {
				ids = append(ids, id(g))
			}
		}
		for _, g := range d.All {
			ids = append(ids, id(g))
		}
		slices.Sort(ids[1:])
		b.WriteString(" " + strings.Join(ids, ","))
	}
	return b.String()
}

// groupReceivers settles a multicast delivery with what the kernel does not
// report in its tables: which groups a socket joined (only the interfaces'
// groups are listed) and, for IPv6 groups, IPV6_MULTICAST_ALL. Both are
// read through an owner's descriptor where one can be duplicated
// (live.GroupMembership); a socket the datagram could reach whose answer
// stays unread is named in unknowns. ok is false for anything but a UDP
// datagram to a multicast group that the interface accepts.
func (t *Table) groupReceivers(proto engine.Proto, src, dst netip.AddrPort, dev int, d engine.Delivery) (all []*engine.Socket, unknowns []string, ok bool) {
	g := dst.Addr().WithZone("").Unmap()
	if proto != engine.UDP || !g.IsMulticast() || d.Stage == engine.StageNotJoined {
		return nil, nil, false
	}
	p := engine.Packet{Proto: proto, Src: src, Dst: dst, Dev: dev}
	in := t.Host.GroupIngress(p)
	if in == nil {
		return nil, nil, false
	}
	idx := []int{in.Index}
	if g.Is6() {
		idx = idx[:0]
		for _, i := range t.Host.Ifaces {
			idx = append(idx, i.Index)
		}
	}
	for _, s := range t.Host.GroupcastCandidates(p) {
		ls := t.Live(s)
		if ls == nil {
			continue
		}
		if g.Is4() && ls.MulticastAll != nil && *ls.MulticastAll {
			all = append(all, s) // IP_MULTICAST_ALL, read from the kernel
			continue
		}
		if m, err := live.GroupMembership(ls, g, idx); err == nil {
			if m.Joined || (m.All6 != nil && *m.All6) {
				all = append(all, s)
			}
			continue
		}
		where := fmt.Sprintf("the %s socket on %s held by %s", ls.Proto, ls.Local, Owners(ls))
		switch {
		case g.Is6():
			unknowns = append(unknowns, where+" gets it unless it turned IPV6_MULTICAST_ALL off and did not join the group (its descriptor could not be read)")
		case ls.MulticastAll == nil:
			unknowns = append(unknowns, where+" gets it only if it joined the group or has IP_MULTICAST_ALL (not read)")
		default:
			unknowns = append(unknowns, where+" gets it only if it joined the group (IP_MULTICAST_ALL is off; its descriptor could not be read)")
		}
	}
	return all, unknowns, true
}
