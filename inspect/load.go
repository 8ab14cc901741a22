// Package inspect answers questions about a live machine by loading its
// sockets (read by package live) into the same engine the simulator uses:
// who would receive a packet, would a bind succeed, what is exposed, how
// close the ephemeral ports are to exhaustion. It has no rules of its own.
package inspect

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/report"
)

// Table is one namespace's live sockets loaded into an engine host.
type Table struct {
	Snap   *live.Snapshot
	Host   *engine.Host
	bySock map[*engine.Socket]*live.Socket
	order  []*engine.Socket // in the snapshot's order
}

// Sockets lists the engine's sockets in the order the kernel listed them.
func (t *Table) Sockets() []*engine.Socket { return t.order }

// Live returns the live record behind an engine socket, or nil.
func (t *Table) Live(s *engine.Socket) *live.Socket { return t.bySock[s] }

// OptsSource says where the options the engine holds for a live socket
// came from: "kernel" (BPF), "socket" (getsockopt on a descriptor), or
// "inferred" (not read: the loader's assumption).
func OptsSource(ls *live.Socket) string {
	if ls.Opts != nil {
		return ls.OptsSource
	}
	return "inferred"
}

var stateOf = map[string]engine.State{
	"LISTEN": engine.Listen, "ESTAB": engine.Established, "SYN-SENT": engine.Established,
	"SYN-RECV": engine.Established, "FIN-WAIT-1": engine.Established, "CLOSE-WAIT": engine.CloseWait,
	"LAST-ACK": engine.CloseWait, "CLOSING": engine.Established, "FIN-WAIT-2": engine.FinWait2,
	"TIME-WAIT": engine.TimeWait, "CLOSE": engine.Closed, "UNCONN": engine.Closed,
}

// Load builds an engine host from a snapshot: its interfaces, the sysctls
// the rules read, and every socket. A socket's SO_REUSEADDR, SO_REUSEPORT
// and IPV6_V6ONLY come from its options when they were read
// (live.Socket.Opts); otherwise they are inferred: sockets sharing an
// identical address and port must have had SO_REUSEPORT (UDP:
// SO_REUSEADDR), every other option is taken as off. Answers that could
// change with an inferred value are found by Bind and Who (depends.go). A
// connection whose local port is in the ephemeral range and not a
// listener's port was bound by connect().
func Load(snap *live.Snapshot) (*Table, error) { return load(snap, false) }

// load is Load. v6First says how a UDP port's IPv4 and IPv6 sockets
// interleave on the port's chain when the BPF reader did not place them
// (live.Socket.ChainPos): false puts the IPv4 ones nearer the head (bound
// more recently), true the IPv6 ones (udpChain).
func load(snap *live.Snapshot, v6First bool) (*Table, error) {
	h := engine.NewNetwork(engine.Linux, 1).AddHost(label(snap.Netns))
	for _, i := range snap.Interfaces {
		// The kernel's index, so that a socket's SO_BINDTODEVICE ifindex
		// names the same interface here (lo exists already, as index 1).
		ei, err := h.AddIfaceAt(i.Name, i.Index, i.Loopback, i.Addrs...)
		if err != nil {
			return nil, fmt.Errorf("load interfaces: %v", err)
		}
		ei.Broadcast = i.Broadcast
		for _, g := range i.Groups {
			h.JoinIface(g, i.Index)
		}
	}
	sc := snap.Sysctls
	if sc.PortLow > 0 {
		h.Sysctl.PortLow, h.Sysctl.PortHigh = sc.PortLow, sc.PortHigh
	}
	h.Sysctl.UnprivilegedStart = sc.UnprivilegedPortStart
	h.Sysctl.BindV6Only, h.Sysctl.TWReuse = sc.BindV6Only, sc.TCPTWReuse
	h.Sysctl.NonlocalBind4, h.Sysctl.NonlocalBind6 = sc.NonlocalBind4, sc.NonlocalBind6
	if len(sc.ReservedPorts) > 0 {
		vals := make([]string, len(sc.ReservedPorts))
		for i, p := range sc.ReservedPorts {
			vals[i] = strconv.Itoa(int(p))
		}
		h.Sysctl.Set("net.ipv4.ip_local_reserved_ports", vals)
	}
	t := &Table{Snap: snap, Host: h, bySock: make(map[*engine.Socket]*live.Socket, len(snap.Sockets))}
	type bk struct {
		proto string
		ap    netip.AddrPort
	}
	shared := map[bk]int{}
	listenPorts := map[bk]bool{}
	for i := range snap.Sockets {
		ls := &snap.Sockets[i]
		if ls.State == "LISTEN" || ls.State == "UNCONN" {
			shared[bk{ls.Proto, ls.Local}]++
			listenPorts[bk{ls.Proto, netip.AddrPortFrom(netip.Addr{}, ls.Local.Port())}] = true
		}
	}
	// The kernel dumps each lookup chain newest first (sockets enter at its
	// head), and equal scores go to the first socket met: inserted oldest
	// first, the engine's chains end up in the kernel's order, so two UDP
	// sockets sharing an address through SO_REUSEADDR give the datagram to
	// the most recently bound one, as Linux does. AF_INET6 SO_REUSEPORT TCP
	// listeners are the exception: they enter their chain at the tail
	// (__inet_hash), and the dump walks that chain, so they are listed
	// oldest first and go in last, in the snapshot's order (their
	// reuseport group too is oldest first). A UDP port's sockets go in
	// last, in their chain's order (udpChain).
	var tail []pending
	udp := map[uint16][]pending{}
	bySnap := make([]*engine.Socket, len(snap.Sockets))
	for i := len(snap.Sockets) - 1; i >= 0; i-- {
		ls := &snap.Sockets[i]
		sp, ok := specOf(ls)
		if !ok {
			continue
		}
		if o := ls.Opts; o != nil {
			sp.ReuseAddr, sp.ReusePort = o.ReuseAddr, o.ReusePort
			if sp.Family == engine.Inet6 {
				sp.V6Only = o.V6Only
			}
		} else if ls.State == "LISTEN" || ls.State == "UNCONN" {
			if shared[bk{ls.Proto, ls.Local}] > 1 {
				sp.ReusePort = true
				sp.ReuseAddr = ls.Proto == "udp"
			}
		}
		if ls.State != "LISTEN" && ls.State != "UNCONN" && sp.Proto == engine.TCP && sp.State != engine.Closed {
			p := int(ls.Local.Port())
			sp.ConnectBind = p >= h.Sysctl.PortLow && p <= h.Sysctl.PortHigh &&
				!listenPorts[bk{ls.Proto, netip.AddrPortFrom(netip.Addr{}, ls.Local.Port())}]
			if ls.ConnectBind != nil {
				sp.ConnectBind = *ls.ConnectBind // read, not guessed
			}
		}
		if sp.Proto == engine.TCP && sp.Family == engine.Inet6 && sp.ReusePort && sp.State == engine.Listen {
			tail = append(tail, pending{i, sp})
			continue
		}
		if p := sp.Local.Port(); sp.Proto == engine.UDP && p != 0 {
			udp[p] = append(udp[p], pending{i, sp})
			continue
		}
		if err := t.insert(i, sp, bySnap); err != nil {
			return nil, err
		}
	}
	for j := len(tail) - 1; j >= 0; j-- {
		if err := t.insert(tail[j].i, tail[j].sp, bySnap); err != nil {
			return nil, err
		}
	}
	for _, port := range slices.Sorted(maps.Keys(udp)) {
		for _, p := range udpInsertOrder(snap, udp[port], v6First) {
			if err := t.insert(p.i, p.sp, bySnap); err != nil {
				return nil, err
			}
		}
		if n, ok := udpSlotRead(snap, udp[port]); ok && n > len(udp[port]) {
			// Sockets of other ports and namespaces in the port's hash
			// slot, which the kernel counts when it picks the chains a
			// bind is checked on.
			if err := h.SetUDPSlotOthers(port, n-len(udp[port])); err != nil {
				return nil, fmt.Errorf("load: %v", err)
			}
		}
	}
	for _, s := range bySnap {
		if s != nil {
			t.order = append(t.order, s)
		}
	}
	// The kernel's bind-bucket caches, when the BPF reader saw them: the
	// engine would otherwise run the full conflict check (no fast path).
	for _, b := range snap.Buckets {
		if _, held := h.BindBucket(engine.TCP, b.Port); !held {
			continue // its holders were not read (another port filter, or gone)
		}
		// A bucket that connect() created has fastreuseport -1
		// (inet_bind_bucket_create from __inet_hash_connect), which
		// sk_reuseport_match and inet_csk_update_fastreuse treat as 0.
		fr := max(b.FastReuseport, 0)
		eb := engine.BindBucket{FastReuse: b.FastReuse, FastReuseport: uint8(fr), FastUID: b.FastUID,
			FastIPv6Only: b.FastIPv6Only, FastFamily: engine.Inet, FastRcvSaddr: b.FastRcvSaddr}
		if b.FastFamily == "inet6" {
			eb.FastFamily = engine.Inet6
		}
		if err := h.SetBindBucket(engine.TCP, b.Port, eb); err != nil {
			return nil, fmt.Errorf("load: %v", err)
		}
	}
	return t, nil
}

// udpSlotRead is the kernel's count of the hash slot of one UDP port's
// sockets ps, when the BPF reader read it for every one of them (the
// largest: the reads are a moment apart).
func udpSlotRead(snap *live.Snapshot, ps []pending) (int, bool) {
	n := 0
	for _, p := range ps {
		ls := &snap.Sockets[p.i]
		if ls.UDPSlot == 0 {
			return 0, false
		}
		n = max(n, ls.UDPSlot)
	}
	return n, len(ps) > 0
}

// pending is a snapshot socket (index i) waiting to be inserted as sp.
type pending struct {
	i  int
	sp engine.SocketSpec
}

// udpInsertOrder orders one UDP port's sockets (ps, in the reverse of the
// snapshot's order) so that the engine rebuilds the port's chain as the
// kernel has it. udp_lib_lport_inuse walks that chain from its head and
// the first overlapping holder decides a bind; udp_lib_get_port adds a
// socket at the head, an AF_INET6 SO_REUSEPORT one at the tail, and so
// does the engine's Insert. So the chain is the head-added sockets, newest
// first, then the tail-added ones, oldest first: they are inserted
// in the reverse of their chain order, then these in it.
//
// The chain's order is the BPF reader's when it placed every socket
// (ChainPos); otherwise sock_diag's, which dumps the chain one address
// family at a time, and v6First says which family comes first. (A socket
// that turned SO_REUSEPORT on after its bind sits among the head-added
// ones, but goes to the tail here.)
func udpInsertOrder(snap *live.Snapshot, ps []pending, v6First bool) []pending {
	chain := slices.Clone(ps)
	slices.Reverse(chain) // the snapshot's order
	placed := true
	for _, p := range chain {
		placed = placed && snap.Sockets[p.i].ChainPos != 0
	}
	if placed {
		slices.SortStableFunc(chain, func(a, b pending) int {
			return int(snap.Sockets[b.i].ChainPos) - int(snap.Sockets[a.i].ChainPos)
		})
	} else {
		first := engine.Inet
		if v6First {
			first = engine.Inet6
		}
		slices.SortStableFunc(chain, func(a, b pending) int {
			return b2i(b.sp.Family == first) - b2i(a.sp.Family == first)
		})
	}
	out := make([]pending, 0, len(chain))
	var tailAdded []pending
	for j := len(chain) - 1; j >= 0; j-- {
		if p := chain[j]; p.sp.Family == engine.Inet6 && p.sp.ReusePort {
			tailAdded = append(tailAdded, p)
		} else {
			out = append(out, p)
		}
	}
	slices.Reverse(tailAdded)
	return append(out, tailAdded...)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// insert loads the snapshot's socket i as sp.
func (t *Table) insert(i int, sp engine.SocketSpec, bySnap []*engine.Socket) error {
	ls := &t.Snap.Sockets[i]
	s, err := t.Host.Insert(sp)
	if err != nil {
		return fmt.Errorf("load %s %s: %v", ls.Proto, ls.Local, err)
	}
	s.SetName(Name(ls))
	t.bySock[s], bySnap[i] = ls, s
	return nil
}

func specOf(ls *live.Socket) (engine.SocketSpec, bool) {
	sp := engine.SocketSpec{Local: ls.Local, Remote: ls.Remote, UID: ls.UID, Dev: ls.BoundDev, Path: ls.Path,
		MulticastAll: ls.MulticastAll}
	if ls.Remote.Port() == 0 && (!ls.Remote.IsValid() || ls.Remote.Addr().IsUnspecified()) {
		sp.Remote = netip.AddrPort{} // sock_diag reports "no peer" as 0.0.0.0:0 / [::]:0
	}
	st, ok := stateOf[ls.State]
	if !ok {
		return sp, false
	}
	sp.State = st
	switch ls.Family {
	case "inet":
		sp.Family = engine.Inet
	case "inet6":
		sp.Family = engine.Inet6
		if ls.V6Only != nil {
			sp.V6Only = *ls.V6Only
		} else {
			// Unknown (read from /proc): a specific IPv6 address was most
			// likely bound, which makes a socket v6-only (__inet6_bind).
			a := ls.Local.Addr()
			sp.V6Only = !a.IsUnspecified() && !a.Is4In6()
		}
	case "unix":
		sp.Family = engine.Unix
		sp.Proto = engine.UnixStream
		if ls.UnixType == "dgram" {
			sp.Proto = engine.UnixDgram
		}
		return sp, true
	default:
		return sp, false
	}
	switch ls.Proto {
	case "tcp":
		sp.Proto = engine.TCP
	case "udp":
		sp.Proto = engine.UDP
	default:
		return sp, false
	}
	if sp.Family == engine.Inet6 && ls.Local.Addr().Is4() {
		// sock_diag reports v4-mapped addresses of AF_INET6 sockets as such;
		// keep the engine's view consistent if a reader unmapped them.
		sp.Local = netip.AddrPortFrom(netip.AddrFrom16(ls.Local.Addr().As16()), ls.Local.Port())
	}
	return sp, true
}

func label(ns string) string {
	if ns == "" {
		return "host"
	}
	return ns
}

// Name labels a live socket by its owners ("nginx(812)") or its inode.
func Name(ls *live.Socket) string {
	if len(ls.Processes) > 0 {
		p := ls.Processes[0]
		n := fmt.Sprintf("%s(%d)", report.Escape(p.Command), p.PID)
		if len(ls.Processes) > 1 {
			n += fmt.Sprintf("+%d", len(ls.Processes)-1)
		}
		return n
	}
	return fmt.Sprintf("inode:%d", ls.Inode)
}

// Owners describes who holds a socket: "nginx (pid 812)", or its uid and
// inode when the owners were not read. Process names are escaped for a
// terminal (report.Escape).
func Owners(ls *live.Socket) string {
	if ls == nil {
		return "?"
	}
	if len(ls.Processes) == 0 && ls.Inode == 0 {
		return "no process (a " + ls.State + " entry has no owner)"
	}
	if len(ls.Processes) == 0 {
		return fmt.Sprintf("uid %d, inode %d", ls.UID, ls.Inode)
	}
	out := ""
	for i, p := range ls.Processes {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s (pid %d)", report.Escape(p.Command), p.PID)
	}
	return out
}
