package engine

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// pair connects a client of host c to a listener on 127.0.0.1:port of c
// itself and returns client, accepted child and listener.
func pair(t *testing.T, h *Host, port uint16) (*Socket, *Socket, *Socket) {
	t.Helper()
	ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	l, _ := h.NewSocket(Inet, TCP, 0)
	if r := h.Bind(l, ap); r.Err != OK {
		if r.Err != EADDRINUSE {
			t.Fatal(r.Err)
		}
	}
	h.Listen(l)
	c, _ := h.NewSocket(Inet, TCP, 0)
	if r := h.Connect(c, ap); r.Err != OK {
		t.Fatalf("connect: %v", r.Err)
	}
	child, r := h.Accept(l)
	if r.Err != OK {
		t.Fatalf("accept: %v", r.Err)
	}
	return c, child, l
}

func TestAbortLeavesNoTimeWaitAndResetsPeer(t *testing.T) {
	h := NewNetwork(Linux, 1).AddHost("h")
	c, child, _ := pair(t, h, 8080)
	if r := h.Abort(c); r.Err != OK {
		t.Fatal(r.Err)
	}
	if c.State() != Gone {
		t.Fatalf("aborted socket in %v, want gone", c.State())
	}
	if child.State() != Closed {
		t.Fatalf("peer in %v after a RST, want CLOSE", child.State())
	}
	for _, s := range h.Sockets() {
		if s.State() == TimeWait || s.State() == FinWait2 {
			t.Fatalf("%s left after an abort", Describe(s))
		}
	}
}

func TestAbortUnacceptedLeavesQueue(t *testing.T) {
	h := NewNetwork(Linux, 1).AddHost("h")
	ap := netip.MustParseAddrPort("127.0.0.1:8080")
	l, _ := h.NewSocket(Inet, TCP, 0)
	h.Bind(l, ap)
	h.Listen(l)
	c, _ := h.NewSocket(Inet, TCP, 0)
	h.Connect(c, ap)
	child := l.Queue()[0]
	h.Abort(child) // memnet: a dial that gave up while the queue was full
	if len(l.Queue()) != 0 || c.State() != Closed {
		t.Fatalf("queue %d, client %v", len(l.Queue()), c.State())
	}
}

func TestShutdownFirstHoldsTimeWait(t *testing.T) {
	n := NewNetwork(Linux, 1)
	h := n.AddHost("h")
	c, child, l := pair(t, h, 8080)
	h.Shutdown(c) // client sends FIN first
	if c.State() != FinWait2 || child.State() != CloseWait {
		t.Fatalf("after shutdown: %v / %v", c.State(), child.State())
	}
	h.Close(child) // server closes second: it leaves, the client goes TIME_WAIT
	if c.State() != TimeWait || child.State() != Gone {
		t.Fatalf("after the server's close: %v / %v", c.State(), child.State())
	}
	h.Close(c)
	if c.State() != TimeWait {
		t.Fatalf("closing a TIME_WAIT socket: %v", c.State())
	}
	h.Close(l)
	// The TIME_WAIT keeps the 4-tuple; it expires after 60 s.
	if got := len(h.Sockets()); got != 1 {
		t.Fatalf("%d sockets, want the TIME_WAIT only", got)
	}
	n.Advance(61 * time.Second)
	if got := len(h.Sockets()); got != 0 {
		t.Fatalf("%d sockets after 61 s", got)
	}
}

func TestResetByPeerDropsOrphan(t *testing.T) {
	h := NewNetwork(Linux, 1).AddHost("h")
	c, child, _ := pair(t, h, 8080)
	h.Close(child) // server closes first: FIN_WAIT2 orphan, client CLOSE_WAIT
	if child.State() != FinWait2 || c.State() != CloseWait {
		t.Fatalf("%v / %v", child.State(), c.State())
	}
	h.Reset(c) // the client wrote: the orphan answered RST
	if child.State() != Gone || c.State() != Closed {
		t.Fatalf("after the RST: orphan %v, client %v", child.State(), c.State())
	}
	if r := h.Connect(c, netip.MustParseAddrPort("127.0.0.1:8080")); r.Err != EISCONN {
		t.Fatalf("connect after a reset: %v, want EISCONN", r.Err)
	}
}

func TestTimeWaitExpiresAfterSkippedScans(t *testing.T) {
	n := NewNetwork(Linux, 1)
	h := n.AddHost("h")
	for i := 0; i < 3; i++ {
		c, child, l := pair(t, h, uint16(8080+i))
		h.Close(c)
		h.Close(child)
		h.Close(l)
		n.Advance(10 * time.Second) // the three TIME_WAITs expire 10 s apart
	}
	count := func() int { return h.NumSockets() }
	if got := count(); got != 3 {
		t.Fatalf("%d sockets, want 3 TIME_WAITs", got)
	}
	for i := 0; i < 100; i++ {
		n.Advance(100 * time.Millisecond) // 30 s to 40 s: nothing expires
	}
	if got := count(); got != 3 {
		t.Fatalf("%d sockets at 40 s", got)
	}
	n.Advance(21 * time.Second) // 61 s: the first one
	if got := count(); got != 2 {
		t.Fatalf("%d sockets at 61 s, want 2", got)
	}
	n.Advance(20 * time.Second)
	if got := count(); got != 0 {
		t.Fatalf("%d sockets at 81 s, want 0", got)
	}
}

// A bound connect over the 4-tuple of a closed client's connection whose
// server end stays in CLOSE_WAIT (kernel replay, wide seeds 3888 and
// 5157): the orphaned FIN_WAIT2 is taken over, the server end answers the
// SYN with a challenge ACK, the client's RST kills it, and the
// retransmitted SYN reaches the listener, behind the reset connection in
// its queue. Other profiles say Linux's rules were used.
func TestSYNToOrphanedCloseWait(t *testing.T) {
	for _, p := range []*Profile{Linux, FreeBSD} {
		h := NewNetwork(p, 1).AddHost("h")
		l, _ := h.NewSocket(Inet, TCP, 0)
		srv := netip.MustParseAddrPort("127.0.0.1:5000")
		cli := netip.MustParseAddrPort("127.0.0.1:5003")
		h.SetReuseAddr(l, true)
		h.Bind(l, srv)
		h.Listen(l)
		c, _ := h.NewSocket(Inet, TCP, 0)
		h.SetReuseAddr(c, true)
		h.Bind(c, cli)
		if r := h.Connect(c, srv); r.Err != OK {
			t.Fatalf("%s: connect: %v", p.Name, r.Err)
		}
		h.Close(c)
		old := l.Queue()[0]
		if old.State() != CloseWait {
			t.Fatalf("%s: server end in %v, want CLOSE-WAIT", p.Name, old.State())
		}
		d, _ := h.NewSocket(Inet, TCP, 0)
		h.SetReuseAddr(d, true)
		h.Bind(d, cli)
		r := h.Connect(d, srv)
		if r.Err != OK || !contains(string(r.Rule), "challenge ACK") {
			t.Fatalf("%s: connect over the orphan: %v %q, want ok through the challenge ACK", p.Name, r.Err, r.Rule)
		}
		if note := contains(string(r.Rule), "not modelled"); note != (p != Linux) {
			t.Errorf("%s: trace %q says what is not modelled: %v", p.Name, r.Rule, note)
		}
		q := l.Queue()
		if len(q) != 2 || q[0] != old || old.State() != Closed || q[1].State() != Established {
			t.Fatalf("%s: queue %v, want the reset connection, then the new one", p.Name, q)
		}
		if c.State() != Gone {
			t.Errorf("%s: the orphan is %v, want gone (taken over)", p.Name, c.State())
		}
	}
}

// A timer moved later (an orphaned FIN_WAIT2 whose peer closes turns
// TIME_WAIT, 60 s from then) runs out at its new time, not the first one;
// a timer set before its socket was closed (TIME_WAIT after shutdown, the
// user closes later) runs out at its own time even though later timers
// were queued in between.
func TestTimeWaitTimersMovedAndOutOfOrder(t *testing.T) {
	n := NewNetwork(Linux, 1)
	h := n.AddHost("h")
	// a: the client closes first at 0 s (FIN_WAIT2 orphan, timer 60 s),
	// the server closes at 10 s (a turns TIME_WAIT, timer 70 s).
	a, aChild, _ := pair(t, h, 8080)
	h.Close(a)
	n.Advance(10 * time.Second)
	h.Close(aChild)
	// b: shutdown at 10 s, the server closes at once (b TIME_WAIT, timer
	// 70 s, still the user's); c: closed by its client at 15 s (timer
	// 75 s); then the user closes b at 20 s: its timer stays 70 s.
	b, bChild, _ := pair(t, h, 8081)
	h.Shutdown(b)
	h.Close(bChild)
	n.Advance(5 * time.Second)
	c, cChild, _ := pair(t, h, 8082)
	h.Close(c)
	h.Close(cChild)
	n.Advance(5 * time.Second)
	h.Close(b)
	if a.Expires() != 70*time.Second || b.Expires() != 70*time.Second || c.Expires() != 75*time.Second {
		t.Fatalf("timers %v %v %v, want 70s 70s 75s", a.Expires(), b.Expires(), c.Expires())
	}
	n.Advance(45 * time.Second) // 65 s: a's first timer has passed
	if a.State() != TimeWait {
		t.Fatalf("a at 65 s: %v, want TIME_WAIT until 70 s", a.State())
	}
	n.Advance(5 * time.Second) // 70 s
	if a.State() != Gone || b.State() != Gone || c.State() != TimeWait {
		t.Fatalf("at 70 s: a %v, b %v, c %v; want gone, gone, TIME_WAIT", a.State(), b.State(), c.State())
	}
	n.Advance(5 * time.Second)
	if c.State() != Gone {
		t.Fatalf("c at 75 s: %v", c.State())
	}
}

// The timer queue keeps expiry order across its blocks, with pushes mostly
// in order and some earlier than the last, and pops interleaved.
func TestTimerQueueOrder(t *testing.T) {
	var q twQueue
	var want []time.Duration
	rng := uint64(7)
	next := func() uint64 { rng = rng*6364136223846793005 + 1442695040888963407; return rng >> 33 }
	now := time.Duration(0)
	for i := range 3000 {
		now += time.Duration(next() % 3)
		until := now + 60
		if next()%10 == 0 {
			until -= time.Duration(next() % 50) // set before the user closed it
		}
		q.push(twEntry{until: until})
		want = append(want, until)
		if i%7 == 0 { // drain what ran out
			for q.len() > 0 && q.front().until <= now {
				q.pop()
			}
		}
	}
	slices.Sort(want)
	got := []time.Duration{}
	for q.len() > 0 {
		got = append(got, q.front().until)
		q.pop()
	}
	if !slices.IsSorted(got) || len(got) == 0 || got[len(got)-1] != want[len(want)-1] {
		t.Fatalf("queue out of order or lost its latest timer: %d entries, sorted %v", len(got), slices.IsSorted(got))
	}
	if len(q.blocks) > 1 {
		t.Fatalf("a drained queue keeps %d blocks", len(q.blocks))
	}
}

// Owner answers from a memo that every added host or address drops: an
// address added to an earlier host makes that host its owner (the first
// added wins, as the scan it replaces decides).
func TestOwnerFollowsAddedAddresses(t *testing.T) {
	n := NewNetwork(Linux, 1)
	a, b := n.AddHost("a"), n.AddHost("b")
	addr := netip.MustParseAddr("192.0.2.2")
	if n.Owner(addr) != nil {
		t.Fatal("an address no host has has an owner")
	}
	b.AddIface("eth0", netip.MustParsePrefix("192.0.2.2/24"))
	if n.Owner(addr) != b {
		t.Fatal("owner of b's address is not b")
	}
	a.AddIface("eth0", netip.MustParsePrefix("192.0.2.2/24"))
	if n.Owner(addr) != a {
		t.Fatal("after a got the address too, the owner is not a (the first host)")
	}
	c := n.AddHost("c")
	if _, err := c.AddIfaceAt("eth1", 7, false, netip.MustParsePrefix("198.51.100.3/24")); err != nil {
		t.Fatal(err)
	}
	if n.Owner(netip.MustParseAddr("198.51.100.3")) != c {
		t.Fatal("owner of c's address is not c")
	}
}

// TIME_WAIT connections enter the 4-tuple index only when something reads
// it (twAt): here a client host that connects to ever new ports of
// another host, so its own index is never read while it connects. Packets
// find the same connections as if each had been entered at once, those
// that expired unread are not found, and a host whose TIME_WAITs all
// expire unread keeps none of them.
func TestTimeWaitIndexedOnFirstRead(t *testing.T) {
	n := NewNetwork(Linux, 1)
	srv, cli := n.AddHost("server"), n.AddHost("client")
	srv.AddIface("eth0", netip.MustParsePrefix("192.0.2.1/24"))
	cli.AddIface("eth0", netip.MustParsePrefix("192.0.2.2/24"))
	port := uint16(8000)
	closed := func(count int) []*Socket {
		var out []*Socket
		for range count {
			l, _ := srv.NewSocket(Inet, TCP, 0)
			if r := srv.Bind(l, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port)); r.Err != OK {
				t.Fatal(r)
			}
			port++ // a new destination each time
			srv.Listen(l)
			c, _ := cli.NewSocket(Inet, TCP, 0)
			if r := cli.Connect(c, l.Local()); r.Err != OK {
				t.Fatal(r)
			}
			child, r := srv.Accept(l)
			if r.Err != OK {
				t.Fatal(r)
			}
			cli.Close(c) // the client closes first: TIME_WAIT
			srv.Close(child)
			srv.Close(l)
			if c.State() != TimeWait {
				t.Fatalf("client %v after closing first", c.State())
			}
			out = append(out, c)
		}
		return out
	}
	ack := func(c *Socket) Delivery {
		return cli.Lookup(Packet{Proto: TCP, Src: c.Remote(), Dst: c.Local(), Flags: FlagACK})
	}
	tb := cli.tcp
	old := closed(60)
	n.Advance(30 * time.Second)
	young := closed(40)
	if len(tb.tws) != 0 || len(tb.twLate) != 100 {
		t.Fatalf("before any read: %d indexed, %d waiting; want 0 and 100", len(tb.tws), len(tb.twLate))
	}
	n.Advance(31 * time.Second) // the first 60 expire unread
	if len(tb.twLate) >= 100 || len(tb.tws) != 0 {
		t.Fatalf("after 60 expired unread: %d waiting (stale ones kept), %d indexed", len(tb.twLate), len(tb.tws))
	}
	for _, c := range old {
		if d := ack(c); d.Stage == StageTimeWait {
			t.Fatalf("an expired TIME_WAIT %v → %v still answers", c.Local(), c.Remote())
		}
	}
	for _, c := range young {
		if d := ack(c); d.Stage != StageTimeWait || d.Socket != c {
			t.Fatalf("TIME_WAIT %v → %v: stage %v, socket %p; want it (%p)", c.Local(), c.Remote(), d.Stage, d.Socket, c)
		}
	}
	if len(tb.tws) != 40 || len(tb.twLate) != 0 {
		t.Fatalf("after reads: %d indexed, %d waiting; want 40 and 0", len(tb.tws), len(tb.twLate))
	}
	more := closed(50)
	n.Advance(61 * time.Second) // every TIME_WAIT expires, read or not
	if len(tb.tws) != 0 || len(tb.twLate) != 0 || cli.NumSockets() != 0 {
		t.Fatalf("after all expired: %d indexed, %d waiting, %d sockets", len(tb.tws), len(tb.twLate), cli.NumSockets())
	}
	if d := ack(more[0]); d.Stage == StageTimeWait {
		t.Fatal("an expired TIME_WAIT still answers")
	}
}

// On one host, the SYN of each new connection asks its listener's port for
// a TIME_WAIT connection (tcp_v4_rcv looks up the 4-tuple first). A port
// that no TIME_WAIT connection holds answers without entering the waiting
// ones, which hold the clients' ephemeral ports.
func TestTimeWaitNotEnteredForAListenersPort(t *testing.T) {
	h := NewNetwork(Linux, 1).AddHost("h")
	ap := netip.MustParseAddrPort("127.0.0.1:8080")
	l, _ := h.NewSocket(Inet, TCP, 0)
	if r := h.Bind(l, ap); r.Err != OK {
		t.Fatal(r)
	}
	h.Listen(l)
	var clients []*Socket
	for range 50 {
		c, _ := h.NewSocket(Inet, TCP, 0)
		if r := h.Connect(c, ap); r.Err != OK {
			t.Fatal(r)
		}
		child, r := h.Accept(l)
		if r.Err != OK {
			t.Fatal(r)
		}
		h.Close(c)
		h.Close(child)
		clients = append(clients, c)
	}
	tb := h.tcp
	if len(tb.twLate) != 50 || len(tb.tws) != 0 {
		t.Fatalf("%d waiting, %d entered; want 50 and 0", len(tb.twLate), len(tb.tws))
	}
	// A SYN to a client's TIME_WAIT 4-tuple, on a port no listener has,
	// meets the connection (TCP_TW_ACK).
	c := clients[17]
	d := h.Lookup(Packet{Proto: TCP, Src: c.Remote(), Dst: c.Local(), Flags: FlagSYN})
	if d.Stage != StageTimeWait || d.Socket != c {
		t.Fatalf("SYN to a TIME_WAIT 4-tuple: stage %v, socket %p; want the TIME_WAIT (%p)", d.Stage, d.Socket, c)
	}
}
