package inspect

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/live"
)

// snapshot is a small machine: eth0 with a public, a private and a
// link-local address; listeners on the wildcard, a specific address,
// dual-stack and v6-only [::]; two SO_REUSEPORT listeners; connections.
func snapshot() *live.Snapshot {
	return &live.Snapshot{
		Interfaces: []live.Interface{
			{Name: "lo", Index: 1, Addrs: []netip.Prefix{pfx("127.0.0.1/8"), pfx("::1/128")}},
			{Name: "eth0", Index: 2, Addrs: []netip.Prefix{pfx("203.0.113.5/24"),
				pfx("10.1.2.3/8"), pfx("fe80::1/64"), pfx("2001:db8::5/64")}},
		},
		Sysctls: live.Sysctls{PortLow: 32768, PortHigh: 60999, ReservedPorts: []uint16{40000, 40001}, UnprivilegedPortStart: 1024, TCPTWReuse: 2},
		Sockets: []live.Socket{
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("0.0.0.0:80"), Inode: 1},
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("10.1.2.3:80"), Inode: 2}, // takes 10.1.2.3 from the wildcard
			{Proto: "tcp", Family: "inet6", State: "LISTEN", Local: ap("[::]:443"), V6Only: bptr(false), Inode: 3},
			{Proto: "tcp", Family: "inet6", State: "LISTEN", Local: ap("[::]:8443"), V6Only: bptr(true), Inode: 4},
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("127.0.0.1:9000"), Inode: 5},
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("127.0.0.1:9000"), Inode: 6},
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("203.0.113.5:80"), Remote: ap("198.51.100.1:50000"), Inode: 7},
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("203.0.113.5:40002"), Remote: ap("198.51.100.9:443"), Inode: 8},
			{Proto: "tcp", Family: "inet", State: "TIME-WAIT", Local: ap("203.0.113.5:40004"), Remote: ap("198.51.100.9:443")},
			{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("10.1.2.3:53"), Inode: 9},
			// A dual-stack AF_INET6 socket whose source ::1 came from connect():
			// the kernel reports it not v6-only, and it holds port 5006 for IPv4
			// wildcards too (testdata/replay/connect-source-not-v6only.scenario).
			{Proto: "tcp", Family: "inet6", State: "ESTAB", Local: ap("[::1]:5006"), Remote: ap("[::1]:5000"), V6Only: bptr(false), Inode: 11},
			// An unconnected socket on an ephemeral port, its peer reported as 0.0.0.0:0.
			{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("0.0.0.0:40010"), Remote: ap("0.0.0.0:0"), Inode: 10},
		},
	}
}

func TestClass(t *testing.T) {
	for a, want := range map[string]string{"127.0.0.2": "loopback", "::1": "loopback", "169.254.1.1": "link-local",
		"fe80::1": "link-local", "10.0.0.1": "private", "192.168.1.1": "private", "100.64.0.1": "cgnat",
		"fd00::1": "ula", "8.8.8.8": "public", "2606:4700::1": "public", "::ffff:10.0.0.1": "private",
		"192.0.2.1": "documentation", "198.51.100.7": "documentation", "203.0.113.5": "documentation",
		"2001:db8::1": "documentation", "3fff::1": "documentation", "198.18.0.1": "benchmarking",
		"2001:2::1": "benchmarking", "240.0.0.1": "reserved", "192.0.0.9": "special-purpose",
		"100::1": "special-purpose", "224.0.0.251": "multicast", "::ffff:203.0.113.9": "documentation"} {
		if got := Class(netip.MustParseAddr(a)); got != want {
			t.Errorf("Class(%s) = %s, want %s", a, got, want)
		}
	}
}

func TestLoadInfersReusePortAndWho(t *testing.T) {
	tab := mustLoad(t, snapshot())
	d := tab.Who(engine.TCP, ap("127.0.0.1:5"), ap("127.0.0.1:9000"))
	if len(d.Group) != 2 {
		t.Fatalf("two listeners on one address:port must form a reuseport group, got %+v", d)
	}
	d = tab.Who(engine.TCP, ap("198.51.100.1:50000"), ap("203.0.113.5:80"))
	if d.Stage != engine.StageEstablished || tab.Live(d.Socket).Inode != 7 {
		t.Errorf("the established flow must win: %+v", d)
	}
	d = tab.Who(engine.TCP, ap("198.51.100.2:1"), ap("10.1.2.3:80"))
	if d.Stage != engine.StageListenerExact || tab.Live(d.Socket).Inode != 2 {
		t.Errorf("the specific listener must win: %+v", d)
	}
	d = tab.Who(engine.TCP, ap("198.51.100.2:1"), ap("203.0.113.5:8443"))
	if d.Verdict != engine.RST {
		t.Errorf("IPv4 to a v6-only listener's port must be RST: %+v", d)
	}
}

func TestCheckBindNamesTheHolder(t *testing.T) {
	tab := mustLoad(t, snapshot())
	req := BindRequest{Proto: engine.TCP, Addr: ap("127.0.0.1:443")}
	res, err := tab.CheckBind(req)
	if err != nil || res.Err != engine.EADDRINUSE {
		t.Fatalf("127.0.0.1:443 under a dual-stack [::]:443 must be EADDRINUSE, got %v %v", res.Err, err)
	}
	if why := tab.Explain(req, res); why == "" || tab.Live(res.Other).Inode != 3 {
		t.Errorf("blocker should be inode 3: %s", why)
	}
	res, _ = tab.CheckBind(BindRequest{Proto: engine.TCP, Addr: ap("127.0.0.1:8443")})
	if res.Err != engine.OK {
		t.Errorf("IPv4 beside a v6-only [::]:8443 must bind: %v", res.Err)
	}
	res, _ = tab.CheckBind(BindRequest{Proto: engine.TCP, Addr: ap("0.0.0.0:5006")})
	if res.Err != engine.EADDRINUSE {
		t.Errorf("0.0.0.0:5006 beside a non-v6-only [::1]:5006 connection must be EADDRINUSE, as the kernel says: %v", res.Err)
	}
	res, _ = tab.CheckBind(BindRequest{Proto: engine.TCP, Addr: ap("0.0.0.0:81"), UID: 1000})
	if res.Err != engine.EACCES {
		t.Errorf("port 81 as uid 1000 must be EACCES: %v", res.Err)
	}
}

func TestAuditExpandsWildcards(t *testing.T) {
	tab := mustLoad(t, snapshot())
	got := map[uint64]Exposure{}
	for _, e := range tab.Audit() {
		got[tab.Live(e.Socket).Inode] = e
	}
	wild := got[1]
	if wild.Severity != Medium || len(wild.Accepts) == 0 {
		t.Fatalf("0.0.0.0:80 must be medium (documentation and private addresses): %+v", wild)
	}
	for _, a := range wild.Accepts {
		if a == netip.MustParseAddr("10.1.2.3") {
			t.Errorf("10.1.2.3 belongs to the specific listener, not the wildcard")
		}
		if a.Is6() {
			t.Errorf("an AF_INET wildcard takes no IPv6: %v", a)
		}
	}
	dual := got[3]
	has4 := false
	for _, a := range dual.Accepts {
		has4 = has4 || a.Is4()
	}
	if !has4 {
		t.Errorf("dual-stack [::]:443 must accept IPv4 too: %v", dual.Accepts)
	}
	for _, a := range got[4].Accepts {
		if a.Is4() {
			t.Errorf("v6-only [::]:8443 must not accept IPv4: %v", got[4].Accepts)
		}
	}
	if got[5].Severity != Info || len(got[5].Group) != 2 {
		t.Errorf("the loopback SO_REUSEPORT pair is one info finding with its group of 2: %+v", got[5])
	}
	if _, ok := got[6]; ok {
		t.Errorf("the second member of a SO_REUSEPORT group must not be a finding of its own")
	}
	if want := "[::1]"; !strings.Contains(got[4].Fix, want) || strings.Contains(got[4].Fix, "127.0.0.1") {
		t.Errorf("the fix for the IPv6-only [::]:8443 should suggest %s, not IPv4: %q", want, got[4].Fix)
	}
	if got[9].Severity != Medium {
		t.Errorf("UDP on a private address is medium: %+v", got[9])
	}
}

func TestPortsCountsPerDestination(t *testing.T) {
	tab := mustLoad(t, snapshot())
	if tab.Usable() != 60999-32768+1-2 {
		t.Fatalf("usable = %d", tab.Usable())
	}
	ps := tab.Ports()
	if len(ps) != 2 || ps[0].InUse != 1 || ps[0].TimeWait != 1 || ps[0].DstPort != 443 {
		t.Fatalf("want the TCP pool of 198.51.100.9:443 with 1 in use and 1 TIME-WAIT first: %+v", ps)
	}
	// The unconnected UDP socket on 40010 is in the one UDP pool.
	if u := ps[1]; u.Proto != "udp" || u.InUse != 1 || u.SrcText() != "*" || u.DstText() != "*" {
		t.Fatalf("want the UDP pool with 1 port: %+v", u)
	}
}

// Issue 10 item 7: listeners and bound sockets in the range come off every
// TCP pool, connections accepted on a listening port are no pool, UDP is
// one pool whatever the destination, and equal pools come in a fixed order.
func TestPortsPoolsAsTheKernelDraws(t *testing.T) {
	snap := &live.Snapshot{
		Interfaces: []live.Interface{{Name: "eth0", Index: 2, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}}},
		Sysctls:    live.Sysctls{PortLow: 40000, PortHigh: 40009, UnprivilegedPortStart: 1024, ReservedPorts: []uint16{40009}},
		Sockets: []live.Socket{
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("0.0.0.0:40005")},
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("0.0.0.0:40006")},
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("0.0.0.0:40009")}, // reserved: not usable anyway
			// Accepted on the listener's port: not a destination.
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:40005"), Remote: ap("198.51.100.7:50000")},
			{Proto: "tcp", Family: "inet", State: "TIME-WAIT", Local: ap("192.0.2.1:40005"), Remote: ap("198.51.100.8:50000")},
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:40000"), Remote: ap("203.0.113.9:443")},
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:40001"), Remote: ap("203.0.113.8:443")},
			{Proto: "udp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:40002"), Remote: ap("203.0.113.9:53")},
			{Proto: "udp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:40003"), Remote: ap("203.0.113.8:53")},
			{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("0.0.0.0:40004")},
			{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("0.0.0.0:40004")}, // SO_REUSEADDR twin: one port
		},
	}
	checkPools(t, mustLoad(t, snap), func(u PortUse) string {
		return fmt.Sprintf("%s %s %s in=%d tw=%d blocked=%d of=%d", u.Proto, u.SrcText(), u.DstText(), u.InUse, u.TimeWait, u.Blocked, u.Capacity)
	},
		"udp * * in=3 tw=0 blocked=0 of=9",
		"tcp 192.0.2.1 203.0.113.8:443 in=1 tw=0 blocked=2 of=7",
		"tcp 192.0.2.1 203.0.113.9:443 in=1 tw=0 blocked=2 of=7",
	)
}

// A UDP socket bound to a multicast group or a broadcast address receives
// what is sent there: audit must not call it "receives nothing".
func TestAuditGroupcastBoundSockets(t *testing.T) {
	snap := &live.Snapshot{
		Interfaces: eth0Joined(),
		Sysctls:    linuxSysctls(),
		Sockets: []live.Socket{
			{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("239.1.2.3:5000")},
			{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("192.168.1.255:5001")},
		},
	}
	tab := mustLoad(t, snap)
	for _, e := range tab.Audit() {
		if len(e.Accepts) != 1 || e.Accepts[0] != e.Socket.Local().Addr() || strings.Contains(e.Finding, "nothing") {
			t.Errorf("%s: accepts %v, %q", e.Socket.Local(), e.Accepts, e.Finding)
		}
	}
}

// Which socket joined which group is not in the kernel's tables: without a
// readable owner, a multicast answer that turns on it is "depends".
func TestWhoMulticastDependsOnUnreadableMemberships(t *testing.T) {
	off, on := false, true
	snap := &live.Snapshot{
		Interfaces: eth0Joined(),
		Sysctls:    linuxSysctls(),
		Sockets: []live.Socket{
			{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("0.0.0.0:5000"), MulticastAll: &on, Inode: 1},
			{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("0.0.0.0:5000"), MulticastAll: &off, Inode: 2},
		},
	}
	tab := mustLoad(t, snap)
	a, err := tab.WhoAnswerOn(engine.UDP, ap("192.168.1.7:4000"), ap("239.1.2.3:5000"), 3)
	if err != nil {
		t.Fatal(err)
	}
	if a.Answer != AnswerDepends || len(a.Delivery.All) != 1 || len(a.Unknowns) != 1 || !strings.Contains(a.Unknowns[0], "inode 2") {
		t.Errorf("want depends, one certain receiver and the IP_MULTICAST_ALL=0 socket named: %+v", a)
	}
	// A group the interface did not join is dropped, whatever the sockets.
	a, _ = tab.WhoAnswerOn(engine.UDP, ap("192.168.1.7:4000"), ap("239.9.9.9:5000"), 3)
	if a.Answer != AnswerFails || a.Delivery.Stage != engine.StageNotJoined {
		t.Errorf("a group nobody joined: %+v", a)
	}
}

// A connection whose port was bound before connect() (read by the BPF
// reader: SOCK_CONNECT_BIND off) holds that port against every other
// destination's connect(); one whose port connect() chose does not.
func TestPortsConnectBindRead(t *testing.T) {
	yes, no := true, false
	snap := &live.Snapshot{
		Interfaces: []live.Interface{{Name: "eth0", Index: 2, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}}},
		Sysctls:    live.Sysctls{PortLow: 40000, PortHigh: 40009, UnprivilegedPortStart: 1024},
		Sockets: []live.Socket{
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:40000"), Remote: ap("203.0.113.9:443"), ConnectBind: &yes},
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:40001"), Remote: ap("203.0.113.8:443"), ConnectBind: &no},
		},
	}
	checkPools(t, mustLoad(t, snap), func(u PortUse) string {
		return fmt.Sprintf("%s %s in=%d blocked=%d of=%d", u.Proto, u.DstText(), u.InUse, u.Blocked, u.Capacity)
	},
		"tcp 203.0.113.9:443 in=1 blocked=1 of=9",
		"tcp 203.0.113.8:443 in=1 blocked=0 of=10",
	)
}

// Audit looks from outside: a socket bound to lo takes nothing that comes
// from another host, even for the addresses it covers; an address
// configured on lo (a service address) is reached through the other
// interfaces, so a socket bound to eth0 takes it. Found by the live
// differential test (audit claims checked against connects from a peer).
func TestAuditFromOutside(t *testing.T) {
	snap := &live.Snapshot{
		Interfaces: serviceOnLo(),
		Sysctls:    linuxSysctls(),
		Sockets: []live.Socket{
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("0.0.0.0:7000"), BoundDev: 1, Inode: 1},
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("0.0.0.0:7001"), BoundDev: 2, Inode: 2},
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("198.51.100.1:7002"), Inode: 3},
		},
	}
	tab := mustLoad(t, snap)
	got := map[uint64][]string{}
	for _, e := range tab.Audit() {
		var as []string
		for _, a := range e.Accepts {
			as = append(as, a.String())
		}
		got[tab.Live(e.Socket).Inode] = as
	}
	want := map[uint64][]string{
		1: {"127.0.0.1"},                 // lo-bound: from this host only
		2: {"198.51.100.1", "192.0.2.1"}, // eth0-bound: every non-loopback address arriving there
		3: {"198.51.100.1"},              // on lo, reached from outside through eth0
	}
	for ino, w := range want {
		if strings.Join(got[ino], ",") != strings.Join(w, ",") {
			t.Errorf("socket %d accepts on %v, want %v", ino, got[ino], w)
		}
	}
}

// who from outside to a service address on lo: the packet arrives on the
// first other interface, so a listener bound to lo does not take it and
// one bound to eth0 does; from this host itself it is local traffic.
func TestWhoFromOutsideToAddressOnLo(t *testing.T) {
	snap := &live.Snapshot{
		Interfaces: serviceOnLo(),
		Sysctls:    linuxSysctls(),
		Sockets: []live.Socket{
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("0.0.0.0:7000"), BoundDev: 1, Inode: 1},
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("0.0.0.0:7001"), BoundDev: 2, Inode: 2},
		},
	}
	tab := mustLoad(t, snap)
	for _, c := range []struct {
		src, dst string
		want     uint64
	}{
		{"203.0.113.254:54321", "198.51.100.1:7000", 0}, // lo-bound: nothing from outside
		{"203.0.113.254:54321", "198.51.100.1:7001", 2}, // arrives on eth0
		{"198.51.100.1:54321", "198.51.100.1:7000", 1},  // local traffic, on lo
	} {
		a := whoAnswer(t, tab, engine.TCP, c.src, c.dst)
		var got uint64
		if a.Answer == AnswerOK && a.Delivery.Socket != nil {
			got = tab.Live(a.Delivery.Socket).Inode
		}
		if got != c.want {
			t.Errorf("who %s from %s: inode %d (%s), want %d", c.dst, c.src, got, a.Answer, c.want)
		}
	}
}

// With two interfaces a packet from another host could come in on, and a
// listener bound to one of them, which one it arrives on decides: who says
// depends and names the question's missing part instead of picking one.
func TestWhoFromOutsideDependsOnArrival(t *testing.T) {
	snap := &live.Snapshot{
		Interfaces: serviceOnLo(live.Interface{Name: "eth1", Index: 3, Addrs: []netip.Prefix{pfx("203.0.113.1/24")}}),
		Sysctls:    linuxSysctls(),
		Sockets: []live.Socket{
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("0.0.0.0:7001"), BoundDev: 3, Inode: 1},
		},
	}
	tab := mustLoad(t, snap)
	a := whoAnswer(t, tab, engine.TCP, "192.0.2.99:54321", "198.51.100.1:7001")
	if a.Answer != AnswerDepends || len(a.Unknowns) != 1 || !strings.Contains(a.Unknowns[0], "name one with --dev") {
		t.Errorf("who 198.51.100.1:7001 from outside: %+v, want depends on the arrival interface", a)
	}
	// Named, it is exact.
	if a, _ := tab.WhoAnswerOn(engine.TCP, ap("192.0.2.99:54321"), ap("198.51.100.1:7001"), 3); a.Answer != AnswerOK {
		t.Errorf("arriving on eth1: %+v, want ok", a)
	}
	if a, _ := tab.WhoAnswerOn(engine.TCP, ap("192.0.2.99:54321"), ap("198.51.100.1:7001"), 2); a.Answer != AnswerFails {
		t.Errorf("arriving on eth0: %+v, want fails", a)
	}
}
