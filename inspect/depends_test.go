package inspect

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/live"
)

// twSnapshot: a server restarted over its own TIME-WAIT connection on
// 127.0.0.1:7201, with the TIME-WAIT socket's options as given.
func twSnapshot(opts *live.SockOpts) *live.Snapshot {
	return loSnapshot(withKernelOpts(live.Socket{Proto: "tcp", Family: "inet", State: "TIME-WAIT",
		Local: ap("127.0.0.1:7201"), Remote: ap("127.0.0.1:43772")}, opts))
}

func TestBindDependsOnTimeWait(t *testing.T) {
	restart := BindRequest{Proto: engine.TCP, Addr: ap("127.0.0.1:7201"), ReuseAddr: true}
	// Read from the kernel: the answer is exact either way.
	if a := bindAnswer(t, twSnapshot(&live.SockOpts{ReuseAddr: true}), restart); a.Answer != AnswerOK || a.Inferred {
		t.Errorf("TIME-WAIT with SO_REUSEADDR: %+v, want ok", a)
	}
	if a := bindAnswer(t, twSnapshot(&live.SockOpts{}), restart); a.Answer != AnswerFails {
		t.Errorf("TIME-WAIT without SO_REUSEADDR: %+v, want fails", a)
	}
	// Unknown: it depends, and the unknown is named.
	a := bindAnswer(t, twSnapshot(nil), restart)
	if a.Answer != AnswerDepends || len(a.Unknowns) != 1 ||
		!strings.Contains(a.Unknowns[0], "TIME-WAIT connection 127.0.0.1:7201 -> 127.0.0.1:43772 allows the bind only if its listener had SO_REUSEADDR") {
		t.Errorf("unknown TIME-WAIT: %+v, want depends naming its listener's SO_REUSEADDR", a)
	}
	// Without SO_REUSEADDR on the new socket no value of the unknown helps.
	plain := restart
	plain.ReuseAddr = false
	if a := bindAnswer(t, twSnapshot(nil), plain); a.Answer != AnswerFails || !a.Inferred {
		t.Errorf("plain bind over unknown TIME-WAIT: %+v, want fails (inferred)", a)
	}
	// Another port is not concerned.
	other := BindRequest{Proto: engine.TCP, Addr: ap("127.0.0.1:7202")}
	if a := bindAnswer(t, twSnapshot(nil), other); a.Answer != AnswerOK || a.Inferred {
		t.Errorf("bind to another port: %+v, want ok", a)
	}
}

func TestWhoDependsOnReuseport(t *testing.T) {
	// Two UDP sockets on one address whose options are unknown: whether
	// they form a reuseport group or the last bound takes all changes who
	// receives.
	snap := loSnapshot(
		live.Socket{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("127.0.0.1:5353"), Inode: 1},
		live.Socket{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("127.0.0.1:5353"), Inode: 2},
	)
	a := whoAnswer(t, mustLoad(t, snap), engine.UDP, "127.0.0.1:40000", "127.0.0.1:5353")
	if a.Answer != AnswerDepends || len(a.Unknowns) == 0 {
		t.Errorf("who with unknown sharers: %+v, want depends", a)
	}
	for i := range snap.Sockets {
		snap.Sockets[i].Opts, snap.Sockets[i].OptsSource = &live.SockOpts{ReusePort: true}, live.SourceKernel
	}
	a = whoAnswer(t, mustLoad(t, snap), engine.UDP, "127.0.0.1:40000", "127.0.0.1:5353")
	if a.Answer != AnswerOK || len(a.Delivery.Group) != 2 {
		t.Errorf("who with a known reuseport pair: %+v, want ok with a group of 2", a)
	}
}

// A TIME-WAIT connection that a dual-stack [::] listener accepted over
// IPv6 still claims 0.0.0.0 (the kernel gives an IPv6 socket the IPv4
// placeholder LOOPBACK4_IPV6, which a wildcard IPv4 bind matches), but
// sock_diag does not report its inherited IPV6_V6ONLY: without BPF the
// answer to a 0.0.0.0 bind depends on it and is never a confident ok.
// (Found by the live differential test, seed 1796062764708599174.)
func TestBindDependsOnTimeWaitV6Only(t *testing.T) {
	snap := func(opts *live.SockOpts) *live.Snapshot {
		return loSnapshot(withKernelOpts(live.Socket{Proto: "tcp", Family: "inet6", State: "TIME-WAIT",
			Local: ap("[::1]:7000"), Remote: ap("[::1]:43772")}, opts))
	}
	req := BindRequest{Proto: engine.TCP, Addr: ap("0.0.0.0:7000"), ReuseAddr: true}
	if a := bindAnswer(t, snap(&live.SockOpts{V6Only: false}), req); a.Answer != AnswerFails {
		t.Errorf("dual-stack TIME-WAIT without SO_REUSEADDR, read: %+v, want fails", a)
	}
	if a := bindAnswer(t, snap(&live.SockOpts{V6Only: true}), req); a.Answer != AnswerOK {
		t.Errorf("IPv6-only TIME-WAIT, read: %+v, want ok", a)
	}
	a := bindAnswer(t, snap(nil), req)
	if a.Answer != AnswerDepends || len(a.Unknowns) != 1 || !strings.Contains(a.Unknowns[0], "IPV6_V6ONLY") {
		t.Errorf("TIME-WAIT with unread options: %+v, want depends naming IPV6_V6ONLY", a)
	}
}

// udpOrderSnapshot: an IPv4 SO_REUSEADDR+SO_REUSEPORT socket of uid 0 on
// 127.0.0.1:7001 and an IPv6 v6-only socket of uid 1000 without options on
// [2001:db8::1]:7001, every option read; chain is their ChainPos (0: not
// placed). Found by the live differential test (seed 11).
func udpOrderSnapshot(chain [2]uint16) *live.Snapshot {
	return loSnapshot(
		withKernelOpts(live.Socket{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("127.0.0.1:7001"), ChainPos: chain[0]},
			&live.SockOpts{ReuseAddr: true, ReusePort: true}),
		withKernelOpts(live.Socket{Proto: "udp", Family: "inet6", State: "UNCONN", Local: ap("[2001:db8::1]:7001"), UID: 1000, V6Only: bptr(true), ChainPos: chain[1]},
			&live.SockOpts{V6Only: true}),
	)
}

func TestBindUDPChainOrderAcrossFamilies(t *testing.T) {
	// A dual-stack [::] with SO_REUSEPORT overlaps both; udp_lib_lport_inuse
	// stops at the first on the port's chain: the IPv4 reuseport sharer
	// lets it pass, the IPv6 socket without options refuses it.
	r := BindRequest{Proto: engine.UDP, Addr: ap("[::]:7001"), ReusePort: true}
	if a := bindAnswer(t, udpOrderSnapshot([2]uint16{2, 1}), r); a.Answer != AnswerOK || a.Inferred {
		t.Errorf("IPv4 socket newer (placed by BPF): %+v, want ok", a)
	}
	if a := bindAnswer(t, udpOrderSnapshot([2]uint16{1, 2}), r); a.Answer != AnswerFails || a.Inferred {
		t.Errorf("IPv6 socket newer (placed by BPF): %+v, want fails", a)
	}
	a := bindAnswer(t, udpOrderSnapshot([2]uint16{}), r)
	if a.Answer != AnswerDepends || len(a.Unknowns) != 1 ||
		!strings.Contains(a.Unknowns[0], "the IPv4 and the IPv6 udp sockets on port 7001: the bind succeeds only if the IPv4 ones were bound more recently") {
		t.Errorf("order not read: %+v, want depends naming the order", a)
	}
	// A bind that the order does not decide stays exact.
	v4 := BindRequest{Proto: engine.UDP, Addr: ap("0.0.0.0:7001"), ReusePort: true}
	if a := bindAnswer(t, udpOrderSnapshot([2]uint16{}), v4); a.Answer != AnswerOK {
		t.Errorf("0.0.0.0:7001 with SO_REUSEPORT: %+v, want ok", a)
	}
}

// cacheSnapshot: uid 1000's SO_REUSEADDR listener on 127.0.0.1:7400, its
// options read; buckets is what the BPF reader saw of the port's cache
// (nil: not read).
func cacheSnapshot(buckets []live.BindBucket) *live.Snapshot {
	s := loSnapshot(live.Socket{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("127.0.0.1:7400"), UID: 1000,
		Opts: &live.SockOpts{ReuseAddr: true}, OptsSource: live.SourceSocket})
	s.Buckets = buckets
	return s
}

func TestBindDependsOnBucketCache(t *testing.T) {
	// The full check refuses a SO_REUSEPORT bind of uid 0 on 0.0.0.0:7400
	// (uid 1000 listens on 127.0.0.1), but a cache last reset by a
	// SO_REUSEPORT socket of uid 0 on 0.0.0.0 (which joined while the
	// listener was still only bound with SO_REUSEADDR) lets it through.
	r := BindRequest{Proto: engine.TCP, Addr: ap("0.0.0.0:7400"), ReusePort: true}
	a := bindAnswer(t, cacheSnapshot(nil), r)
	if a.Answer != AnswerDepends || len(a.Unknowns) != 1 ||
		!strings.Contains(a.Unknowns[0], "the bind-bucket cache of tcp port 7400: the bind succeeds only if the kernel's cache") {
		t.Errorf("cache not read: %+v, want depends naming the bucket cache", a)
	}
	// Read: exact either way.
	none := []live.BindBucket{{Port: 7400, FastFamily: "inet"}}
	if a := bindAnswer(t, cacheSnapshot(none), r); a.Answer != AnswerFails || a.Inferred {
		t.Errorf("cache read, no fast path: %+v, want fails", a)
	}
	strict := []live.BindBucket{{Port: 7400, FastReuseport: 2, FastUID: 0, FastFamily: "inet", FastRcvSaddr: netip.IPv4Unspecified()}}
	if a := bindAnswer(t, cacheSnapshot(strict), r); a.Answer != AnswerOK {
		t.Errorf("cache read, strict on uid 0 0.0.0.0: %+v, want ok", a)
	}
	// Without SO_REUSEPORT no cache helps on Linux 6.18: still exact.
	plain := BindRequest{Proto: engine.TCP, Addr: ap("0.0.0.0:7400"), ReuseAddr: true}
	if a := bindAnswer(t, cacheSnapshot(nil), plain); a.Answer != AnswerFails {
		t.Errorf("SO_REUSEADDR bind, cache not read: %+v, want fails", a)
	}
}

func TestLoadConnectCreatedBucket(t *testing.T) {
	// A port that connect() took has a bucket with fastreuse and
	// fastreuseport -1 (__inet_hash_connect); loading it used to fail.
	snap := loSnapshot(withKernelOpts(live.Socket{Proto: "tcp", Family: "inet", State: "ESTAB",
		Local: ap("127.0.0.1:40001"), Remote: ap("127.0.0.1:7300")}, &live.SockOpts{}))
	snap.Buckets = []live.BindBucket{{Port: 40001, FastReuse: -1, FastReuseport: -1, FastFamily: "inet", FastRcvSaddr: netip.MustParseAddr("127.0.0.1")}}
	r := BindRequest{Proto: engine.TCP, Addr: ap("127.0.0.1:40001"), ReuseAddr: true}
	if a := bindAnswer(t, snap, r); a.Answer != AnswerFails {
		t.Errorf("bind over a connect()-bound port: %+v, want fails", a)
	}
}

// udpSlotSnapshot: UDP port 7600 with, from its chain's head, a
// SO_REUSEADDR + SO_REUSEPORT socket on 127.0.0.1, fill SO_REUSEADDR
// sockets on 127.0.0.2, and the oldest, a SO_REUSEADDR socket on 0.0.0.0,
// every option read.
func udpSlotSnapshot(fill int) *live.Snapshot {
	n := fill + 2
	udp := func(local string, pos int, inode uint64) live.Socket {
		return live.Socket{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap(local), Inode: inode, ChainPos: uint16(pos)}
	}
	socks := []live.Socket{withKernelOpts(udp("127.0.0.1:7600", n, 1), &live.SockOpts{ReuseAddr: true, ReusePort: true})}
	for i := range fill {
		socks = append(socks, withKernelOpts(udp("127.0.0.2:7600", n-1-i, uint64(10+i)), &live.SockOpts{ReuseAddr: true}))
	}
	socks = append(socks, withKernelOpts(udp("0.0.0.0:7600", 1, 2), &live.SockOpts{ReuseAddr: true}))
	return loSnapshot(socks...)
}

func TestBindUDPDependsOnHashSlot(t *testing.T) {
	// A SO_REUSEPORT bind on 127.0.0.1: the newest holder there shares,
	// which ends udp_lib_lport_inuse's walk; the hash2 walk goes on to the
	// wildcard, which refuses (kernel replay:
	// testdata/replay/udp-hash2-bind-over-ten.scenario).
	r := BindRequest{Proto: engine.UDP, Addr: ap("127.0.0.1:7600"), ReusePort: true}
	a := bindAnswer(t, udpSlotSnapshot(8), r)
	if a.Answer != AnswerDepends || len(a.Unknowns) != 1 ||
		!strings.Contains(a.Unknowns[0], "the hash slot of udp port 7600: the bind succeeds only while the slot holds ten sockets or fewer: it holds this port's 10") {
		t.Errorf("10 sockets on the port: %+v, want depends naming the slot", a)
	}
	if a := bindAnswer(t, udpSlotSnapshot(9), r); a.Answer != AnswerFails || a.Inferred {
		t.Errorf("11 sockets on the port: %+v, want fails (the slot holds more than ten whatever else is there)", a)
	}
	if a := bindAnswer(t, udpSlotSnapshot(3), r); a.Answer != AnswerDepends {
		t.Errorf("5 sockets on the port: %+v, want depends", a)
	}
	// With SO_REUSEADDR too, every holder shares on either walk: exact.
	both := r
	both.ReuseAddr = true
	if a := bindAnswer(t, udpSlotSnapshot(8), both); a.Answer != AnswerOK || a.Inferred || len(a.Unknowns) != 0 {
		t.Errorf("SO_REUSEADDR and SO_REUSEPORT: %+v, want ok, not inferred", a)
	}
	// A wildcard bind is never checked on the hash2 chains.
	wild := BindRequest{Proto: engine.UDP, Addr: ap("0.0.0.0:7600"), ReuseAddr: true}
	if a := bindAnswer(t, udpSlotSnapshot(8), wild); a.Answer != AnswerOK || a.Inferred {
		t.Errorf("0.0.0.0:7600 with SO_REUSEADDR: %+v, want ok", a)
	}
	// The BPF reader's count of the slot decides: the port's 10 and one
	// socket of another port or namespace make eleven.
	for slot, want := range map[int]Answer{10: AnswerOK, 11: AnswerFails, 30: AnswerFails} {
		snap := udpSlotSnapshot(8)
		for i := range snap.Sockets {
			snap.Sockets[i].UDPSlot = slot
		}
		if a := bindAnswer(t, snap, r); a.Answer != want || a.Inferred || len(a.Unknowns) != 0 {
			t.Errorf("10 sockets on the port, %d in its slot (read): %+v, want %s", slot, a, want)
		}
	}
}
