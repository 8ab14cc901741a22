package engine

import (
	"net/netip"
	"slices"
	"sort"
	"time"
)

// kind is a port holder's state as the bind rules see it.
type kind uint8

const (
	kBound     kind = iota // bound, not listening, not connected
	kListen                // TCP_LISTEN
	kConnected             // established, or a connected UDP socket
	kTimeWait              // TIME_WAIT (or an orphaned FIN_WAIT2)
)

// attrs is everything a bind-conflict rule may ask about a port holder.
// Holders with equal attrs are counted together, so a check costs the
// number of distinct kinds of holder on a port, not the number of holders:
// a wildcard bind on a port with 10,000 specific bindings reads a few
// classes, not 10,000 sockets.
type attrs struct {
	uid       uint32
	dev       int32
	cat       cat
	kind      kind
	fam       Family
	reuse     bool
	reuseport bool
	exclusive bool
}

func attrsOf(s *Socket) attrs {
	return attrs{
		uid: s.uid, dev: s.device(), cat: s.local.category(s.V6Only()), kind: s.kind(), fam: s.fam,
		reuse: s.ReuseAddr(), reuseport: s.ReusePort(), exclusive: s.flags&fExclusive != 0,
	}
}

type class struct {
	a   attrs
	n   int32
	rep *Socket // one member, for the trace; nil when it left (found again by a scan)
}

type classes []class

func (cs *classes) add(a attrs, s *Socket) {
	for i := range *cs {
		if (*cs)[i].a == a {
			(*cs)[i].n++
			if (*cs)[i].rep == nil {
				(*cs)[i].rep = s
			}
			return
		}
	}
	*cs = append(*cs, class{a: a, n: 1, rep: s})
}

func (cs *classes) remove(a attrs, s *Socket) {
	for i := range *cs {
		c := &(*cs)[i]
		if c.a != a {
			continue
		}
		c.n--
		if c.rep == s {
			c.rep = nil
		}
		if c.n == 0 {
			(*cs)[i] = (*cs)[len(*cs)-1]
			*cs = (*cs)[:len(*cs)-1]
		}
		return
	}
}

// portBucket holds the holders of one port: every holder in all (by attrs,
// including the address category), and the holders of each specific
// address again in byAddr, so a specific bind reads only its own address
// and the wildcards (Linux's bhash2 layout).
type portBucket struct {
	all      classes
	first    addrKey // the first specific address, kept inline: most ports have one
	hasFirst bool
	firstCls classes
	byAddr   map[addrKey]*classes // further specific addresses
	owners   int32
	explicit int32      // holders whose port was not chosen by connect()
	fast     BindBucket // TCP: Linux's bind-bucket cache (bucket.go)
	order    []*Socket  // UDP: the port's chain reversed, udp_lib_lport_inuse walks it from the end (addOwner)
	// The first classes of all and firstCls live here: a port rarely has
	// more, and a connect() touching a port not used for a while then
	// reads one piece of memory, not three.
	allIn, firstIn [2]class
}

// newPortBucket returns an empty bucket whose classes start inline.
func newPortBucket() *portBucket {
	b := &portBucket{}
	b.all, b.firstCls = b.allIn[:0:len(b.allIn)], b.firstIn[:0:len(b.firstIn)]
	return b
}

// holds reports whether some holder of the port is of kind k.
func (b *portBucket) holds(k kind) bool {
	if b == nil {
		return false
	}
	for _, c := range b.all {
		if c.a.kind == k {
			return true
		}
	}
	return false
}

// addrClasses returns the classes of specific address k, creating them
// if create is set, or nil.
func (b *portBucket) addrClasses(k addrKey, create bool) *classes {
	if b.hasFirst && b.first == k {
		return &b.firstCls
	}
	if cs := b.byAddr[k]; cs != nil || !create {
		return cs
	}
	if !b.hasFirst {
		b.first, b.hasFirst = k, true
		return &b.firstCls
	}
	if b.byAddr == nil {
		b.byAddr = map[addrKey]*classes{}
	}
	cs := &classes{}
	b.byAddr[k] = cs
	return cs
}

// dropAddr forgets specific address k once it has no holders.
func (b *portBucket) dropAddr(k addrKey) {
	if b.hasFirst && b.first == k {
		b.hasFirst = false
		return
	}
	delete(b.byAddr, k)
}

// pages is an array indexed by a 16-bit key (a port, a hash slot) in two
// levels, 256 pages of 256 slots, a page made when one of its slots is
// first set: no hashing on every bind, connect, close and lookup, and one
// page per 256 keys in use.
type pages[T comparable] [256]*[256]T

func (x *pages[T]) get(k uint16) (v T) {
	if l := x[k>>8]; l != nil {
		v = l[k&255]
	}
	return v
}

func (x *pages[T]) set(k uint16, v T) {
	l := x[k>>8]
	if l == nil {
		var zero T
		if v == zero {
			return
		}
		l = new([256]T)
		x[k>>8] = l
	}
	l[k&255] = v
}

// portIndex finds a port's bucket.
type portIndex = pages[*portBucket]

// FlowKey identifies a connection from its own side: local and remote
// endpoint. Addresses are kept in their 16-byte form, where IPv4 and
// v4-mapped IPv6 coincide, so the key is 36 bytes and hashes as plain
// memory.
type FlowKey struct {
	local, remote [16]byte
	lport, rport  uint16
}

// MakeFlowKey is the key of the connection with these ends.
func MakeFlowKey(local, remote netip.AddrPort) FlowKey {
	return FlowKey{local.Addr().As16(), remote.Addr().As16(), local.Port(), remote.Port()}
}

func flowKeyOf(s *Socket) FlowKey {
	return FlowKey{s.local.a, s.remote.a, s.local.port, s.remote.port}
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}

// lkey is a lookup bucket: a port and a local address in 16-byte form
// (IPv4 and v4-mapped share it), all zero for the wildcards 0.0.0.0, ::
// and ::ffff:0.0.0.0, which share one bucket in Linux's lhash2/hash2 by
// construction of their hashes.
type lkey struct {
	a    addrKey
	port uint16
}

func lkeyOf(s *Socket) lkey {
	if s.local.category(false) == catV4Any || s.local.a == (addrKey{}) {
		return lkey{port: s.local.port}
	}
	return lkey{a: s.local.a, port: s.local.port}
}

// portLst is a port's lookup buckets: the wildcard one and one per
// specific address (a port has few), found without hashing.
type portLst struct {
	wild  []*Socket
	exact []exactBucket
}

type exactBucket struct {
	a     addrKey
	socks []*Socket
}

// lstIndex finds a port's lookup buckets.
type lstIndex struct{ pages[*portLst] }

// bucket returns the lookup bucket for k (nil when absent and !create).
func (x *lstIndex) bucket(k lkey, create bool) *[]*Socket {
	pl := x.get(k.port)
	if pl == nil {
		if !create {
			return nil
		}
		pl = &portLst{}
		x.set(k.port, pl)
	}
	if k.a == (addrKey{}) {
		return &pl.wild
	}
	for i := range pl.exact {
		if pl.exact[i].a == k.a {
			return &pl.exact[i].socks
		}
	}
	if !create {
		return nil
	}
	pl.exact = append(pl.exact, exactBucket{a: k.a})
	return &pl.exact[len(pl.exact)-1].socks
}

// prune drops empty buckets of port p, and the port when none is left.
func (x *lstIndex) prune(p uint16) {
	pl := x.get(p)
	if pl == nil {
		return
	}
	keep := pl.exact[:0]
	for _, e := range pl.exact {
		if len(e.socks) > 0 {
			keep = append(keep, e)
		}
	}
	pl.exact = keep
	if len(pl.wild) == 0 && len(pl.exact) == 0 {
		x.set(p, nil)
	}
}

// table is one protocol's socket table on a host (TCP and UDP are separate
// port spaces; IPv4 and IPv6 share each).
type table struct {
	h     *Host
	proto Proto

	ports    portIndex
	explicit bitmap // ports that have explicit (non-connect) holders
	used     bitmap // ports that have any holder

	flows map[FlowKey]*Socket // TCP connections, TIME_WAIT apart
	tws   map[FlowKey]*Socket // TCP TIME_WAIT (and orphaned FIN_WAIT2) connections, but for twLate
	// TIME_WAIT connections not yet entered in tws (twAt). Entering
	// one is a map insert into a map as large as the host's TIME_WAIT
	// population, a cache miss or two; a client that keeps connecting to
	// new destinations never looks one up by its 4-tuple, so the inserts
	// wait for the first reader. twStale counts entries whose socket left
	// the index since (fTWLate cleared).
	twLate   []*Socket
	twStale  int
	devFlows int // connections bound to a device: lookups must check it
	// older connections that share a 4-tuple with the one in flows: a
	// connection bound to a device does not make the 4-tuple unique for a
	// socket bound elsewhere (inet_match checks the device). Nil unless used.
	dupFlows map[FlowKey][]*Socket
	uflows   map[FlowKey][]*Socket // UDP connected sockets, most recent first
	lst      lstIndex              // TCP listeners / UDP unconnected bound sockets, by port and address

	dests       map[destKey]*destPorts // ports connect() used per destination
	perturb     *perturbTable          // RFC 6056 alg. 4 table_perturb, sparse; nil until the first connect
	rng         uint64
	tw          twQueue // timers of TIME_WAIT and orphaned FIN_WAIT2 sockets, earliest first
	freeBuckets []*portBucket
	moving      bool // reown is moving a holder: its place in portBucket.order stays
	// UDP: sockets outside the table that share a port's hash slot
	// (SetUDPSlotOthers); nil until set.
	slotOthers map[uint16]int
}

func newTable(h *Host, p Proto) *table {
	return &table{
		h: h, proto: p,
		flows:  map[FlowKey]*Socket{},
		tws:    map[FlowKey]*Socket{},
		uflows: map[FlowKey][]*Socket{},
		dests:  map[destKey]*destPorts{},
		rng:    h.net.seed ^ uint64(p)*0x9e3779b97f4a7c15 ^ hashString(h.Name),
	}
}

// Reserve pre-sizes the connection map for n connections.
func (h *Host) Reserve(p Proto, n int) {
	t := h.table(p)
	if len(t.flows) == 0 {
		t.flows = make(map[FlowKey]*Socket, n)
	}
}

func (t *table) addOwner(s *Socket) {
	port := s.local.Port()
	b := t.ports.get(port)
	if b == nil {
		// Reuse an emptied bucket: connect()/close() churn would otherwise
		// allocate one per fresh port.
		if n := len(t.freeBuckets); n > 0 {
			b = t.freeBuckets[n-1]
			t.freeBuckets = t.freeBuckets[:n-1]
		} else {
			b = newPortBucket()
		}
		t.ports.set(port, b)
		t.used.set(port)
	}
	a := attrsOf(s)
	b.all.add(a, s)
	if !a.cat.wildcard() {
		b.addrClasses(addrKey(s.local.a), true).add(a, s)
	}
	b.owners++
	if t.proto == UDP && !t.moving {
		if s.fam == Inet6 && s.ReusePort() {
			// udp_lib_get_port: an AF_INET6 SO_REUSEPORT socket joins the
			// tail of the port's chain, so udp_lib_lport_inuse meets it
			// after every older holder (IPv4 sockets go to the head).
			b.order = append(b.order, nil)
			copy(b.order[1:], b.order)
			b.order[0] = s
		} else {
			b.order = append(b.order, s)
		}
	}
	if s.flags&fConnectBind == 0 {
		b.explicit++
		t.explicit.set(port)
	}
}

func (t *table) removeOwner(s *Socket) {
	port := s.local.Port()
	b := t.ports.get(port)
	if b == nil {
		return
	}
	a := attrsOf(s)
	b.all.remove(a, s)
	if !a.cat.wildcard() {
		k := addrKey(s.local.a)
		if cs := b.addrClasses(k, false); cs != nil {
			cs.remove(a, s)
			if len(*cs) == 0 {
				b.dropAddr(k)
			}
		}
	}
	b.owners--
	if t.proto == UDP && !t.moving {
		for i, x := range b.order {
			if x == s {
				b.order = append(b.order[:i], b.order[i+1:]...)
				break
			}
		}
	}
	if s.flags&fConnectBind == 0 {
		// Since v6.18 a bucket whose explicit holders are all gone is
		// connect()-shareable again ("tcp: Update bind bucket state on port
		// release", inet_bind_bucket_destroy).
		b.explicit--
		if b.explicit == 0 {
			t.explicit.clear(port)
			b.fast = BindBucket{FastReuse: -1, known: b.fast.known}
		}
	}
	if b.owners == 0 {
		t.ports.set(port, nil)
		t.used.clear(port)
		if len(t.freeBuckets) < 256 {
			// Field by field: a whole-struct store would copy (with write
			// barriers) the inline classes that the truncated slices
			// make dead anyway.
			b.all, b.firstCls, b.order = b.all[:0], b.firstCls[:0], b.order[:0]
			b.first, b.hasFirst, b.byAddr = addrKey{}, false, nil
			b.owners, b.explicit, b.fast = 0, 0, BindBucket{}
			t.freeBuckets = append(t.freeBuckets, b)
		}
	}
}

// reown moves s out of its port's classes and back in around change (a
// new state, address or option), keeping the port's bind-bucket cache: the
// kernel's bucket does not notice such changes, even when s is its only
// holder and leaves it empty for a moment here.
func (t *table) reown(s *Socket, change func()) {
	port := s.local.Port()
	var fast BindBucket
	var order []*Socket
	if b := t.ports.get(port); b != nil {
		fast, order = b.fast, b.order
	}
	t.moving = true
	t.removeOwner(s)
	change()
	t.addOwner(s)
	t.moving = false
	if b := t.ports.get(s.local.Port()); b != nil && s.local.Port() == port {
		b.fast, b.order = fast, order
	}
}

// restate moves s to state st when nothing else about it changes. Only its
// holder class's kind can move, so it changes class within its own bucket:
// what reown does when the kind changes, without emptying and refilling
// the bucket, and nothing when it does not (ESTABLISHED to CLOSE_WAIT)
// (the connect and close of every connection pass here; TestRestateIsReown).
func (t *table) restate(s *Socket, st State) {
	if s.flags&fHasPort == 0 {
		s.state = st
		return
	}
	old := attrsOf(s)
	s.state = st
	a := old
	a.kind = s.kind()
	if a == old {
		return
	}
	b := t.ports.get(s.local.Port())
	b.all.remove(old, s)
	b.all.add(a, s)
	if !a.cat.wildcard() {
		cs := b.addrClasses(addrKey(s.local.a), true)
		cs.remove(old, s)
		cs.add(a, s)
	}
}

// udpFirstOwnerShares is the short-cut of udp_lib_lport_inuse (net/ipv4/
// udp.c) for an explicit bind: the port's chain is walked from its head
// (the newest holder, except that AF_INET6 SO_REUSEPORT ones sit at the
// tail), and the first whose address overlaps and which does not share by
// SO_REUSEADDR on both decides alone: a SO_REUSEPORT sharer of the same
// owner declares the port free without a look at the older holders.
//
// With more than ten sockets in the port's hash slot, udp_lib_get_port
// checks a bind to a specific address with udp_lib_lport_inuse2 instead
// (inet_use_hash2_on_bind): the first overlapping holder of the address's
// own hash2 chain decides, and unless it refused, the first of the
// wildcards' chain decides too, so a sharer on the first chain no longer
// hides a wildcard that refuses (hash2 is then true). Both chains keep the
// primary chain's order. The slot is counted as the port's own holders
// and what SetUDPSlotOthers added: the kernel's slot also holds the
// sockets of ports that hash to it (port + a per-namespace salt, modulo
// udp_hash_entries) and of other namespaces sharing the table, which a
// simulated host does not have.
func (t *table) udpFirstOwnerShares(s *Socket, port uint16) (first *Socket, shared, hash2 bool) {
	b := t.ports.get(port)
	if b == nil {
		return nil, false, false
	}
	sa := attrsOf(s)
	all := func(cat) bool { return true }
	first, shared = t.udpFirstOverlap(b, s, sa, all)
	if !shared || int(b.owners)+t.slotOthers[port] <= udpHash2Slot || sa.cat.wildcard() { // 0.0.0.0, ::ffff:0.0.0.0 and :: are wildcard categories
		return first, shared, false
	}
	specific := func(c cat) bool { return !c.wildcard() }
	if o, share := t.udpFirstOverlap(b, s, sa, specific); o != nil && !share {
		return o, false, true
	}
	if o, share := t.udpFirstOverlap(b, s, sa, cat.wildcard); o != nil && !share {
		return o, false, true
	}
	return first, true, false
}

// udpHash2Slot is the count of sockets in a UDP hash slot above which a
// specific bind is checked on the hash2 chains (udp_lib_get_port:
// hslot->count > 10).
const udpHash2Slot = 10

// udpFirstOverlap is the first holder on the port's chain (newest first)
// whose category passes keep, whose address overlaps s's and which does
// not share with s by SO_REUSEADDR on both, and whether it shares by
// SO_REUSEPORT (same owner).
func (t *table) udpFirstOverlap(b *portBucket, s *Socket, sa attrs, keep func(cat) bool) (*Socket, bool) {
	for i := len(b.order) - 1; i >= 0; i-- {
		o := b.order[i]
		if o == s || (o.ReuseAddr() && s.ReuseAddr()) {
			continue
		}
		if d := o.device(); d != 0 && sa.dev != 0 && d != sa.dev {
			continue
		}
		oc := o.local.category(o.V6Only())
		if !keep(oc) || !overlaps[sa.cat][oc] || (!sa.cat.wildcard() && !oc.wildcard() && s.local.a != o.local.a) {
			continue
		}
		return o, o.ReusePort() && s.ReusePort() && o.uid == s.uid
	}
	return nil, false
}

// mode is how strict a conflict check is (Linux inet_bind_conflict's relax
// and reuseport_ok): explicit binds and listen relax both; the port-0 search
// relaxes neither, and its ip_autobind_reuse round relaxes only the first.
type mode uint8

const (
	modeExplicit mode = iota
	modeAuto
	modeAutoRelax
)

// conflict returns a holder of port that keeps s (with attributes sa at
// address addr) from binding it, and the errno to report, or nil.
func (t *table) conflict(s *Socket, sa attrs, addr netip.Addr, port uint16, m mode) (*Socket, Errno) {
	b := t.ports.get(port)
	if b == nil {
		return nil, OK
	}
	rule := t.h.prof.conflictRule(t.proto)
	for i := range b.all {
		c := &b.all[i]
		if !overlaps[sa.cat][c.a.cat] || (!sa.cat.wildcard() && !c.a.cat.wildcard()) || mappedAnyMissesDual(&sa, &c.a) {
			continue // two specific addresses: only the same address can clash (below)
		}
		exact := sa.cat.wildcard() && c.a.cat.wildcard()
		if e := rule(sa, c.a, exact, m); e != OK {
			return t.rep(c, port, b, s), e
		}
	}
	if sa.cat.wildcard() {
		return nil, OK // wildcard against specific holders was decided by category above
	}
	if cs := b.addrClasses(keyOf(addr), false); cs != nil {
		for i := range *cs {
			c := &(*cs)[i]
			if !overlaps[sa.cat][c.a.cat] {
				continue
			}
			if e := rule(sa, c.a, true, m); e != OK {
				return t.rep(c, port, b, s), e
			}
		}
	}
	return nil, OK
}

// mappedAnyMissesDual: an AF_INET6 socket on ::ffff:0.0.0.0 and a
// dual-stack one whose connect gave it a specific IPv6 source do not
// overlap: ipv6_rcv_saddr_equal compares them as IPv6 addresses (mapped
// against native), where an AF_INET 0.0.0.0 is compared by the IPv4 views
// and covers the other's placeholder.
func mappedAnyMissesDual(a, b *attrs) bool {
	return (a.cat == catV4Any && a.fam == Inet6 && b.cat == catV6Dual) ||
		(b.cat == catV4Any && b.fam == Inet6 && a.cat == catV6Dual)
}

// rep returns a member of class c, scanning for one if the remembered
// member left (only on this error path).
func (t *table) rep(c *class, port uint16, b *portBucket, self *Socket) *Socket {
	if c.rep != nil {
		return c.rep
	}
	for _, s := range t.h.socks {
		if s != nil && s != self && s.proto == t.proto && s.flags&fHasPort != 0 && s.local.Port() == port && attrsOf(s) == c.a {
			c.rep = s
			return s
		}
	}
	return nil
}

// twEntry is a timer set on a socket: when it runs out, the socket goes
// unless its timer was moved later since (a later entry has it then).
type twEntry struct {
	s     *Socket
	until time.Duration
}

// twQueue holds timers in expiry order. Timers are set to now + the host's
// TIME_WAIT, so nearly every new one is the latest and goes at the end of
// a FIFO kept in blocks of fixed size: a queue of a million timers grows
// and drains a block at a time, never copying (and write-barriering) a
// million pointers as one growing slice would. The rare timer earlier than
// the last one (a socket whose timer was set before the user closed it)
// goes to a small sorted list beside it instead of being shifted into
// place across the FIFO.
type twQueue struct {
	blocks []*[twBlock]twEntry
	head   int // the FIFO's first entry's index in blocks[0]
	n      int // entries in the FIFO
	early  []twEntry
}

const twBlock = 256

func (q *twQueue) at(i int) *twEntry {
	i += q.head
	return &q.blocks[i/twBlock][i%twBlock]
}

func (q *twQueue) len() int { return q.n + len(q.early) }

// push adds e in its place.
func (q *twQueue) push(e twEntry) {
	if q.n > 0 && q.at(q.n-1).until > e.until {
		i := sort.Search(len(q.early), func(i int) bool { return q.early[i].until > e.until })
		q.early = slices.Insert(q.early, i, e)
		return
	}
	if q.head+q.n == len(q.blocks)*twBlock {
		q.blocks = append(q.blocks, new([twBlock]twEntry))
	}
	*q.at(q.n) = e
	q.n++
}

// fromEarly reports whether the first timer is in the sorted list.
func (q *twQueue) fromEarly() bool {
	return len(q.early) > 0 && (q.n == 0 || q.early[0].until < q.at(0).until)
}

// front is the earliest timer (len() > 0).
func (q *twQueue) front() twEntry {
	if q.fromEarly() {
		return q.early[0]
	}
	return *q.at(0)
}

// pop removes the earliest timer; a drained block is let go, the last one
// kept for the next timers.
func (q *twQueue) pop() {
	if q.fromEarly() {
		q.early[0] = twEntry{}
		q.early = q.early[1:]
		if len(q.early) == 0 {
			q.early = nil
		}
		return
	}
	*q.at(0) = twEntry{}
	q.head++
	q.n--
	if q.n == 0 {
		q.blocks, q.head = q.blocks[:1], 0
	} else if q.head == twBlock {
		q.blocks[0] = nil
		q.blocks, q.head = q.blocks[1:], 0
	}
}

// noTimer is the network's next expiry when no timer runs.
const noTimer = time.Duration(1<<63 - 1)

// addTimeWait puts s's timer (Expires) on its table's queue (twQueue).
func (t *table) addTimeWait(s *Socket) {
	s.flags |= fTimed
	t.tw.push(twEntry{s, s.Expires()})
	if n := t.h.net; t.tw.front().until < n.twNext {
		n.twNext = t.tw.front().until
	}
}

// retime moves the timer of s, a FIN_WAIT2 socket its peer's close turned
// into TIME_WAIT, to until; a socket on the queue gets a new entry there
// (its old one is passed over when it runs out).
func (t *table) retime(s *Socket, until time.Duration) {
	s.x().until = until
	if s.flags&fTimed != 0 {
		t.addTimeWait(s)
	}
}

// expireTimeWait drops the TIME_WAIT / FIN_WAIT2 orphans whose timer ran
// out. It reads only the timers that ran out, so a clock that advances on
// every operation (memnet) costs nothing per step, however many
// connections wait.
func (t *table) expireTimeWait(now time.Duration) {
	for t.tw.len() > 0 && t.tw.front().until <= now {
		s := t.tw.front().s
		t.tw.pop()
		if s.state != Gone && s.Expires() <= now {
			t.drop(s)
		}
	}
}

// nextTimer is the earliest timer on the queue, noTimer when none.
func (t *table) nextTimer() time.Duration {
	if t.tw.len() == 0 {
		return noTimer
	}
	return t.tw.front().until
}

// hashFlow enters a TCP connection in the map its state belongs to.
// The socket's flags say which map it was entered in, so leaving costs one
// map, not a probe of both.
func (t *table) hashFlow(s *Socket) {
	if s.kind() == kTimeWait {
		t.twLate = append(t.twLate, s)
		s.flags |= fInTWs | fTWLate
	} else {
		k := flowKeyOf(s)
		if old := t.flows[k]; old != nil && old != s {
			// The newest first, as inet_ehash_insert adds at the chain's head.
			if t.dupFlows == nil {
				t.dupFlows = map[FlowKey][]*Socket{}
			}
			t.dupFlows[k] = append(t.dupFlows[k], old)
		}
		t.flows[k] = s
		s.flags |= fInFlows
	}
	if s.device() != 0 {
		t.devFlows++
	}
}

// enterLateTWs enters the waiting TIME_WAIT connections (twLate) in tws,
// in the order they were hashed, so a later one with the same 4-tuple wins
// as it did when hashFlow entered it at once. Every reader of tws goes
// through twAt, which calls it first.
func (t *table) enterLateTWs() {
	for _, s := range t.twLate {
		if s.flags&fTWLate != 0 {
			t.tws[flowKeyOf(s)] = s
			s.flags &^= fTWLate
		}
	}
	clear(t.twLate)
	t.twLate, t.twStale = t.twLate[:0], 0
	if cap(t.twLate) > 1<<12 {
		t.twLate = nil // a burst's list is not kept for good
	}
}

// compactTWs drops twLate's stale entries, once they are half of it or
// all: a host whose TIME_WAIT connections expire unread must not keep
// them.
func (t *table) compactTWs() {
	live := t.twLate[:0]
	for _, s := range t.twLate {
		if s.flags&fTWLate != 0 {
			live = append(live, s)
		}
	}
	clear(t.twLate[len(live):])
	t.twLate, t.twStale = live, 0
}

// hashedIn is the connection map hashFlow puts s in for its state now.
func (t *table) hashedIn(s *Socket) sflags {
	if s.kind() == kTimeWait {
		return fInTWs
	}
	return fInFlows
}

// unhashFlow removes a TCP connection from the connection maps.
func (t *table) unhashFlow(s *Socket) {
	if s.flags&(fInFlows|fInTWs) == 0 {
		return
	}
	k := flowKeyOf(s)
	found := false
	// An entry another socket took over since (same 4-tuple) stays. Such a
	// socket pushed s to dupFlows (hashFlow): with none there, s is its
	// key's entry and the check's lookup is skipped.
	if s.flags&fInFlows != 0 && len(t.dupFlows) == 0 {
		delete(t.flows, k)
		found = true
	} else if s.flags&fInFlows != 0 && t.flows[k] == s {
		delete(t.flows, k)
		found = true
		if len(t.dupFlows) > 0 {
			if d := t.dupFlows[k]; len(d) > 0 {
				t.flows[k] = d[len(d)-1]
				t.setDups(k, d[:len(d)-1])
			}
		}
	} else if d := t.dupFlows[k]; s.flags&fInFlows != 0 && len(d) > 0 {
		if rest := removeFrom(d, s); len(rest) != len(d) {
			t.setDups(k, rest)
			found = true
		}
	}
	late := s.flags&fTWLate != 0
	if late {
		t.twStale++ // its entry in twLate is passed over
		found = true
	} else if s.flags&fInTWs != 0 && t.tws[k] == s {
		delete(t.tws, k)
		found = true
	}
	s.flags &^= fInFlows | fInTWs | fTWLate
	if late && (t.twStale == len(t.twLate) || t.twStale > 32 && 2*t.twStale > len(t.twLate)) {
		t.compactTWs()
	}
	if found && s.device() != 0 {
		t.devFlows--
	}
}

func (t *table) setDups(k FlowKey, d []*Socket) {
	if len(d) == 0 {
		delete(t.dupFlows, k)
	} else {
		t.dupFlows[k] = d
	}
}

// flowFor is the connection (TIME_WAIT included) with key k that a socket
// bound to device dev (0: none) meets in __inet_check_established, or nil:
// inet_match takes a holder bound to no device, or to dev.
func (t *table) flowFor(k FlowKey, dev int32) *Socket {
	match := func(f *Socket) bool { return f != nil && (f.device() == 0 || f.device() == dev) }
	if f := t.flows[k]; match(f) {
		return f
	}
	for i := len(t.dupFlows[k]) - 1; i >= 0; i-- {
		if f := t.dupFlows[k][i]; match(f) {
			return f
		}
	}
	if f := t.twAt(k); match(f) {
		return f
	}
	return nil
}

// flowAt is the connection (TIME_WAIT included) with key k, or nil.
func (t *table) flowAt(k FlowKey) *Socket {
	if s := t.flows[k]; s != nil {
		return s
	}
	return t.twAt(k)
}

// twAt is the TIME_WAIT connection with key k, or nil. A TIME_WAIT
// connection holds its port (its bucket has a class of kind kTimeWait), so
// a port without one answers nil without entering the waiting ones: a SYN
// to a listener on the host that churns connections reads none.
func (t *table) twAt(k FlowKey) *Socket {
	if len(t.twLate) > 0 {
		if !t.ports.get(k.lport).holds(kTimeWait) {
			return nil
		}
		t.enterLateTWs()
	}
	return t.tws[k]
}
