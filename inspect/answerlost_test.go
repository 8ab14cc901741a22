package inspect

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/live"
)

// The differential test's namespace: lo (127.0.0.1/8, ::1, 198.51.100.1/24)
// and eth0 (192.0.2.1/24, 2001:db8::1/64) with a peer at 192.0.2.2 /
// 2001:db8::2, and one TCP listener bound to a device. Found by the live
// differential test (seeds 33 and 44): a device-bound listener takes the
// SYN, but its SYN-ACK leaves through its device and cannot reach a local
// source that the device does not carry; the RST to ::1 for a SYN that
// arrived on eth0 leaves through eth0 and is lost too. The connect times
// out; the kernel answers nothing (checked by hand in namespaces:
// Ip6OutNoRoutes, TcpExtListenDrops).
func devSnapshot(local string, dev int) *live.Snapshot {
	fam := "inet"
	if ap(local).Addr().Is6() {
		fam = "inet6"
	}
	return &live.Snapshot{
		Interfaces: []live.Interface{
			{Name: "lo", Index: 1, Up: true, Loopback: true, Addrs: []netip.Prefix{pfx("127.0.0.1/8"), pfx("::1/128"), pfx("198.51.100.1/24")}},
			{Name: "eth0", Index: 2, Up: true, Addrs: []netip.Prefix{pfx("192.0.2.1/24"), pfx("2001:db8::1/64")}},
		},
		Sysctls: linuxSysctls(),
		Sockets: []live.Socket{{Proto: "tcp", Family: fam, State: "LISTEN", Local: ap(local), Inode: 7, BoundDev: dev,
			Opts: &live.SockOpts{V6Only: true}, OptsSource: live.SourceKernel}},
	}
}

func TestWhoAnswerLost(t *testing.T) {
	for _, c := range []struct {
		listen   string
		dev      int
		src, dst string
		answer   Answer
		verdict  engine.Verdict
		taker    bool // the listener is named as taking the SYN
		lost     bool
	}{
		// The SYN-ACK of an eth0-bound listener to a source on lo.
		{"0.0.0.0:7000", 2, "198.51.100.1:50953", "192.0.2.1:7000", AnswerFails, engine.Drop, true, true},
		{"192.0.2.1:7000", 2, "127.0.0.1:50953", "192.0.2.1:7000", AnswerFails, engine.Drop, true, true},
		{"[2001:db8::1]:7000", 2, "[::1]:50953", "[2001:db8::1]:7000", AnswerFails, engine.Drop, true, true},
		// ... reaches a source eth0 carries, and the peer.
		{"0.0.0.0:7000", 2, "192.0.2.1:50953", "192.0.2.1:7000", AnswerOK, engine.Deliver, true, false},
		{"0.0.0.0:7000", 2, "192.0.2.2:50953", "192.0.2.1:7000", AnswerOK, engine.Deliver, true, false},
		{"[2001:db8::1]:7000", 2, "[2001:db8::1]:50953", "[2001:db8::1]:7000", AnswerOK, engine.Deliver, true, false},
		// A lo-bound listener: IPv4 answers through lo reach every local
		// address; IPv6 routes strictly and finds no way to 2001:db8::1.
		{"198.51.100.1:7000", 1, "192.0.2.1:50953", "198.51.100.1:7000", AnswerOK, engine.Deliver, true, false},
		{"[::1]:7000", 1, "[2001:db8::1]:50953", "[::1]:7000", AnswerFails, engine.Drop, true, true},
		// A SYN from ::1 to eth0's address misses the lo-bound listener;
		// the RST would leave through eth0 and is lost.
		{"[::]:7000", 1, "[::1]:50953", "[2001:db8::1]:7000", AnswerFails, engine.Drop, false, true},
		// An IPv4 RST is routed normally: refused.
		{"0.0.0.0:7000", 1, "198.51.100.1:50953", "192.0.2.1:7000", AnswerFails, engine.RST, false, false},
	} {
		tab := mustLoad(t, devSnapshot(c.listen, c.dev))
		a := whoAnswer(t, tab, engine.TCP, c.src, c.dst)
		name := c.listen + " dev " + map[int]string{1: "lo", 2: "eth0"}[c.dev] + ", SYN " + c.src + " -> " + c.dst
		taker := a.Delivery.Socket != nil && tab.Live(a.Delivery.Socket) != nil && tab.Live(a.Delivery.Socket).Inode == 7
		if a.Answer != c.answer || a.Delivery.Verdict != c.verdict || taker != c.taker || (a.AnswerLost != "") != c.lost {
			t.Errorf("%s: answer %s verdict %d taker %v lost %q; want %s %d %v lost %v", name, a.Answer, a.Delivery.Verdict, taker, a.AnswerLost, c.answer, c.verdict, c.taker, c.lost)
		}
		if c.lost && c.taker && !strings.Contains(a.AnswerLost, map[int]string{1: "lo", 2: "eth0"}[c.dev]) {
			t.Errorf("%s: the reason %q does not name the device", name, a.AnswerLost)
		}
	}
}

// AF_INET6 SO_REUSEPORT TCP listeners enter their lookup chain at the tail
// and are dumped oldest first; the first reuseport listener that scores
// decides at once, even over a device-bound one scoring higher behind it.
// (Found by the live differential test, seed 22: an unbound and an
// eth0-bound reuseport listener on [2001:db8::1]:7002.)
func TestWhoReuseportV6ChainOrder(t *testing.T) {
	snap := devSnapshot("[2001:db8::1]:7002", 0)
	bound := snap.Sockets[0]
	bound.Inode, bound.BoundDev = 8, 2
	snap.Sockets = append(snap.Sockets, bound) // dumped after: bound later
	for i := range snap.Sockets {
		snap.Sockets[i].Opts = &live.SockOpts{ReusePort: true, V6Only: true}
	}
	tab := mustLoad(t, snap)
	for _, src := range []string{"[::1]:50786", "[2001:db8::2]:50247", "[2001:db8::1]:50000"} {
		a := whoAnswer(t, tab, engine.TCP, src, "[2001:db8::1]:7002")
		if a.Answer != AnswerOK || a.Delivery.Socket == nil || tab.Live(a.Delivery.Socket).Inode != 7 {
			t.Errorf("SYN from %s: %+v, want the older, unbound listener (inode 7)", src, a)
		}
	}
}
