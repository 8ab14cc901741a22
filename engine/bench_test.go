package engine_test

// Benchmarks for the issue "engine speed". Results and how to reproduce
// them: docs/benchmarks.md. Every figure is a benchmark; no test here
// asserts a time.
//
//	go test ./engine -run '^$' -bench . -benchmem -count 5
//
// SOCKTAB_BENCH_FLOWS sets the number of established flows the lookup and
// memory benchmarks build (default 1,000,000).

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/socktab/socktab/engine"
)

const benchSeed = 1

func benchFlows(b *testing.B) int {
	if v := os.Getenv("SOCKTAB_BENCH_FLOWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 16<<20 {
			b.Fatalf("SOCKTAB_BENCH_FLOWS=%q: want 1..16777216", v)
		}
		return n
	}
	return 1_000_000
}

var (
	serverAddr = netip.MustParseAddr("192.0.2.1")
	peerNets   = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")}
)

// peer returns the i-th distinct remote endpoint: 512 addresses of the two
// documentation ranges times ports from 1024 up.
func peer(i int) netip.AddrPort {
	a := peerNets[i%2].Addr().As4()
	a[3] = byte(i / 2 % 256)
	return netip.AddrPortFrom(netip.AddrFrom4(a), uint16(1024+i/512))
}

// newServer is a host with 192.0.2.1/24 on eth0 and a default route.
func newServer() *engine.Host {
	h := engine.NewNetwork(engine.Linux, benchSeed).AddHost("server")
	h.AddIface("eth0", netip.MustParsePrefix("192.0.2.1/24"))
	if err := h.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), "eth0"); err != nil {
		panic(err)
	}
	return h
}

// flowKey is the tuple the plain map is keyed by, as an arriving packet
// names it.
type flowKey struct{ Src, Dst netip.AddrPort }

// lookupFixture is n established flows to 192.0.2.1:443 in the engine and
// the same flows in a plain Go map, plus listeners on other ports.
type lookupFixture struct {
	h    *engine.Host
	m    map[flowKey]*engine.Socket
	srcs []netip.AddrPort // the flows' remote ends in a seeded random order: the probe order
	n    int
}

var (
	fixtureOnce sync.Once
	fixture     *lookupFixture
)

const (
	httpsPort   = 443  // the established flows
	wildPort    = 80   // a listener on 0.0.0.0
	exactPort   = 8080 // a listener on 192.0.2.1
	nobodysPort = 9    // nobody
)

func getLookupFixture(b *testing.B) *lookupFixture {
	n := benchFlows(b)
	fixtureOnce.Do(func() {
		h := newServer()
		h.Reserve(engine.TCP, n)
		f := &lookupFixture{h: h, m: make(map[flowKey]*engine.Socket, n), n: n}
		local := netip.AddrPortFrom(serverAddr, httpsPort)
		for i := range n {
			s, err := h.Insert(engine.SocketSpec{Family: engine.Inet, Proto: engine.TCP, State: engine.Established,
				Local: local, Remote: peer(i)})
			if err != nil {
				panic(err)
			}
			f.m[flowKey{peer(i), local}] = s
		}
		for _, l := range []netip.AddrPort{
			netip.AddrPortFrom(netip.IPv4Unspecified(), wildPort),
			netip.AddrPortFrom(serverAddr, exactPort),
		} {
			if _, err := h.Insert(engine.SocketSpec{Family: engine.Inet, Proto: engine.TCP, State: engine.Listen, Local: l}); err != nil {
				panic(err)
			}
		}
		r := rand.New(rand.NewPCG(benchSeed, 2))
		for _, i := range r.Perm(n) {
			f.srcs = append(f.srcs, peer(i))
		}
		fixture = f
	})
	if fixture.n != n {
		b.Fatalf("fixture built with %d flows, want %d", fixture.n, n)
	}
	return fixture
}

// BenchmarkLookup compares, in one run over the same flows and the same
// probe order: a plain Go map lookup keyed by the 4-tuple (map), the
// engine's lookup of an established flow (established), and lookups that
// miss the flow table and fall through to a listener on the exact address,
// a wildcard listener, or nobody (RST).
func BenchmarkLookup(b *testing.B) {
	f := getLookupFixture(b)
	dst := netip.AddrPortFrom(serverAddr, httpsPort)
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			k := flowKey{f.srcs[i], dst}
			if f.m[k] == nil {
				b.Fatal("missing flow")
			}
			if i++; i == f.n {
				i = 0
			}
		}
	})
	b.Run("established", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			d := f.h.Lookup(engine.Packet{Proto: engine.TCP, Src: f.srcs[i], Dst: dst, Flags: engine.FlagACK})
			if d.Stage != engine.StageEstablished {
				b.Fatalf("stage %v", d.Stage)
			}
			if i++; i == f.n {
				i = 0
			}
		}
	})
	// The listener cases probe the 1M-flow map with a tuple it lacks first,
	// as the kernel does, with the same sources in the same order.
	for _, c := range []struct {
		name  string
		port  uint16
		stage engine.Stage
	}{
		{"exact-listener", exactPort, engine.StageListenerExact},
		{"wildcard-listener", wildPort, engine.StageListenerWildcard},
		{"miss", nobodysPort, engine.StageNoSocket},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			dst := netip.AddrPortFrom(serverAddr, c.port)
			i := 0
			for b.Loop() {
				d := f.h.Lookup(engine.Packet{Proto: engine.TCP, Src: f.srcs[i], Dst: dst, Flags: engine.FlagSYN})
				if d.Stage != c.stage {
					b.Fatalf("stage %v, want %v", d.Stage, c.stage)
				}
				if i++; i == f.n {
					i = 0
				}
			}
		})
	}
}

// BenchmarkLookupRatio measures the same lookups as BenchmarkLookup, but
// interleaved: each op is a chunk of 256 plain-map lookups followed by 256
// engine lookups of the same tuples (established) or of tuples that fall
// through to the wildcard listener, each chunk timed on its own, so that
// load from elsewhere falls on both alike. It reports both times per
// lookup and their ratio (x-map), the figure the targets are stated in.
func BenchmarkLookupRatio(b *testing.B) {
	f := getLookupFixture(b)
	const chunk = 256
	for _, c := range []struct {
		name  string
		port  uint16
		flags uint8
		stage engine.Stage
	}{
		{"established", httpsPort, engine.FlagACK, engine.StageEstablished},
		{"wildcard-listener", wildPort, engine.FlagSYN, engine.StageListenerWildcard},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			mapDst := netip.AddrPortFrom(serverAddr, httpsPort)
			dst := netip.AddrPortFrom(serverAddr, c.port)
			var tMap, tEngine time.Duration
			i, lookups := 0, 0
			for b.Loop() {
				if i+chunk > f.n {
					i = 0
				}
				t0 := time.Now()
				for _, src := range f.srcs[i : i+chunk] {
					if f.m[flowKey{src, mapDst}] == nil {
						b.Fatal("missing flow")
					}
				}
				t1 := time.Now()
				for _, src := range f.srcs[i : i+chunk] {
					if d := f.h.Lookup(engine.Packet{Proto: engine.TCP, Src: src, Dst: dst, Flags: c.flags}); d.Stage != c.stage {
						b.Fatalf("stage %v", d.Stage)
					}
				}
				t2 := time.Now()
				tMap += t1.Sub(t0)
				tEngine += t2.Sub(t1)
				i += chunk
				lookups += chunk
			}
			b.ReportMetric(float64(tMap.Nanoseconds())/float64(lookups), "map-ns/lookup")
			b.ReportMetric(float64(tEngine.Nanoseconds())/float64(lookups), "engine-ns/lookup")
			b.ReportMetric(float64(tEngine)/float64(tMap), "x-map")
		})
	}
}

// BenchmarkBindWildcard is a bind to 0.0.0.0:5000 on a port that n
// sockets hold on n distinct specific loopback addresses (127.0.0.2 up),
// then the close that undoes it, so the table stays as it was. ok: all
// holders and the newcomer have SO_REUSEADDR and none listens, so the bind
// succeeds; conflict: nobody has it, so it fails with EADDRINUSE. Both
// must cost the same at every n: the check reads classes of holders, not
// the holders.
func BenchmarkBindWildcard(b *testing.B) {
	for _, outcome := range []string{"ok", "conflict"} {
		for _, n := range []int{10, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/specific=%d", outcome, n), func(b *testing.B) {
				reuse := 0
				want := engine.OK
				if outcome == "ok" {
					reuse = 1
				} else {
					want = engine.EADDRINUSE
				}
				op := wildcardBindOp(b, n, reuse, want)
				b.ReportAllocs()
				for b.Loop() {
					op()
				}
			})
		}
	}
}

// wildcardBindOp sets up BenchmarkBindWildcard's table of n specific
// bindings on port 5000 and returns one wildcard bind + close.
func wildcardBindOp(b *testing.B, n, reuse int, want engine.Errno) func() {
	const port = 5000
	h := newServer()
	for i := range n {
		s, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
		h.SetReuseAddr(s, reuse != 0)
		a := netip.AddrFrom4([4]byte{127, byte((i + 2) >> 16), byte((i + 2) >> 8), byte(i + 2)})
		if r := h.Bind(s, netip.AddrPortFrom(a, port)); r.Err != engine.OK {
			b.Fatalf("bind %s: %v", a, r.Err)
		}
	}
	wild := netip.AddrPortFrom(netip.IPv4Unspecified(), port)
	return func() {
		s, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
		h.SetReuseAddr(s, reuse != 0)
		if r := h.Bind(s, wild); r.Err != want {
			b.Fatalf("wildcard bind: %v, want %v", r.Err, want)
		}
		h.Close(s)
	}
}

// interleave times chunks of each op in turn, so that load from elsewhere
// falls on all alike, and reports each one's time per op as a metric
// named by unit, and the last one's time relative to the first (x-first).
func interleave(b *testing.B, ops []func(), units []string) {
	const chunk = 64
	total := make([]time.Duration, len(ops))
	n := 0
	for b.Loop() {
		for i, op := range ops {
			t := time.Now()
			for range chunk {
				op()
			}
			total[i] += time.Since(t)
		}
		n += chunk
	}
	for i, u := range units {
		b.ReportMetric(float64(total[i].Nanoseconds())/float64(n), u)
	}
	b.ReportMetric(float64(total[len(ops)-1])/float64(total[0]), "x-first")
}

// BenchmarkBindWildcardFlat runs BenchmarkBindWildcard's three table sizes
// interleaved in one benchmark: ns per bind at each size, and x-first, the
// cost at 10,000 specific bindings relative to 10.
func BenchmarkBindWildcardFlat(b *testing.B) {
	for _, outcome := range []string{"ok", "conflict"} {
		b.Run(outcome, func(b *testing.B) {
			reuse, want := 1, engine.OK
			if outcome == "conflict" {
				reuse, want = 0, engine.EADDRINUSE
			}
			var ops []func()
			for _, n := range []int{10, 1000, 10000} {
				ops = append(ops, wildcardBindOp(b, n, reuse, want))
			}
			interleave(b, ops, []string{"ns/bind@10", "ns/bind@1000", "ns/bind@10000"})
		})
	}
}

// BenchmarkConnectEphemeral is connect() choosing an ephemeral port toward
// one destination (198.51.100.10:443, a second simulated host) while a
// fraction of the range (32768-60999, 28,232 ports) already carries
// connections to it, the taken ports scattered at random or one contiguous
// block from the bottom of the range. The occupancy stays fixed:
//
//   - choice: nobody listens on the destination, so the connect chooses a
//     port, is refused and gives the port back (tcp_done → inet_put_port);
//     one op is socket + connect + close. The 10-second hash slot stays the
//     same, so successive connects walk the range as a burst does in Linux
//     (the per-slot perturbation moves the start past the last port used).
//   - cycle: the destination listens; one op is socket + connect (the
//     connection is established on both hosts) + close on both ends +
//     expiry of the TIME_WAIT (Network.Advance by 61 s, a new hash slot
//     each time).
func BenchmarkConnectEphemeral(b *testing.B) {
	for _, mode := range []string{"choice", "cycle"} {
		for _, layout := range []string{"scattered", "contiguous"} {
			for _, occ := range []int{0, 50, 90, 99} {
				b.Run(fmt.Sprintf("%s/%s/occupancy=%d%%", mode, layout, occ), func(b *testing.B) {
					op, check := connectOp(b, mode, layout, occ)
					b.ReportAllocs()
					for b.Loop() {
						op()
					}
					check()
				})
			}
		}
	}
}

// connectOp sets up one BenchmarkConnectEphemeral case and returns its op
// and a check that the occupancy did not drift.
func connectOp(b *testing.B, mode, layout string, occ int) (op func(), check func()) {
	const lo, hi = 32768, 60999
	dst := netip.MustParseAddrPort("198.51.100.10:443")
	h := newServer()
	if e, err := h.Sysctl.Set("net.ipv4.ip_local_port_range", []string{strconv.Itoa(lo), strconv.Itoa(hi)}); err != nil || e != engine.OK {
		b.Fatalf("sysctl: %v %v", e, err)
	}
	net := h.Network()
	peerHost := net.AddHost("peer")
	peerHost.AddIface("eth0", netip.MustParsePrefix("198.51.100.10/24"))
	// The way back to the server: since a1a6d34 a host with no route to
	// the source never sends its answer, and the connect would stay in
	// progress instead of being refused.
	if err := peerHost.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), "eth0"); err != nil {
		b.Fatal(err)
	}
	var lst *engine.Socket
	if mode == "cycle" {
		lst, _ = peerHost.NewSocket(engine.Inet, engine.TCP, 0)
		if r := peerHost.Bind(lst, dst); r.Err != engine.OK {
			b.Fatal(r.Err)
		}
		if r := peerHost.Listen(lst); r.Err != engine.OK {
			b.Fatal(r.Err)
		}
	}
	ports := make([]int, 0, hi-lo+1)
	for p := lo; p <= hi; p++ {
		ports = append(ports, p)
	}
	if layout == "scattered" {
		r := rand.New(rand.NewPCG(benchSeed, uint64(occ)))
		r.Shuffle(len(ports), func(i, j int) { ports[i], ports[j] = ports[j], ports[i] })
	}
	taken := len(ports) * occ / 100
	for _, p := range ports[:taken] {
		if _, err := h.Insert(engine.SocketSpec{Family: engine.Inet, Proto: engine.TCP, State: engine.Established,
			Local: netip.AddrPortFrom(serverAddr, uint16(p)), Remote: dst, ConnectBind: true}); err != nil {
			b.Fatal(err)
		}
	}
	want := engine.ECONNREFUSED
	if mode == "cycle" {
		want = engine.OK
	}
	op = func() {
		s, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
		if r := h.Connect(s, dst); r.Err != want {
			b.Fatalf("connect: %v (%v), want %v", r.Err, r.Rule, want)
		}
		if mode == "cycle" {
			c, _ := peerHost.Accept(lst)
			h.Close(s)
			peerHost.Close(c)
			net.Advance(61 * time.Second)
		} else {
			h.Close(s)
		}
	}
	check = func() {
		if got := len(h.Sockets()); got != taken {
			b.Fatalf("%d sockets left, want %d: occupancy drifted", got, taken)
		}
	}
	return op, check
}

// BenchmarkConnectEphemeralFlat runs the choice cases of
// BenchmarkConnectEphemeral at 0, 50, 90 and 99% occupancy interleaved in
// one benchmark: ns per connect at each, and x-first, the cost at 99%
// relative to an empty range.
func BenchmarkConnectEphemeralFlat(b *testing.B) {
	for _, layout := range []string{"scattered", "contiguous"} {
		b.Run(layout, func(b *testing.B) {
			var ops []func()
			var checks []func()
			for _, occ := range []int{0, 50, 90, 99} {
				op, check := connectOp(b, "choice", layout, occ)
				ops, checks = append(ops, op), append(checks, check)
			}
			b.ReportAllocs()
			interleave(b, ops, []string{"ns/connect@0%", "ns/connect@50%", "ns/connect@90%", "ns/connect@99%"})
			for _, c := range checks {
				c()
			}
		})
	}
}

// BenchmarkMemory reports the heap one established flow costs at n flows
// (runtime.MemStats.HeapAlloc after a GC, before and after Insert), as
// bytes/flow; map-baseline is the plain map of the Lookup benchmark with a
// 128-byte value per flow, for scale.
func BenchmarkMemory(b *testing.B) {
	n := benchFlows(b)
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	b.Run("established", func(b *testing.B) {
		var per float64
		for b.Loop() {
			h := newServer()
			before := heap()
			h.Reserve(engine.TCP, n)
			local := netip.AddrPortFrom(serverAddr, httpsPort)
			for i := range n {
				if _, err := h.Insert(engine.SocketSpec{Family: engine.Inet, Proto: engine.TCP, State: engine.Established,
					Local: local, Remote: peer(i)}); err != nil {
					b.Fatal(err)
				}
			}
			after := heap()
			runtime.KeepAlive(h)
			per = float64(after-before) / float64(n)
		}
		b.ReportMetric(per, "bytes/flow")
	})
	b.Run("map-baseline", func(b *testing.B) {
		type value [128]byte
		var per float64
		for b.Loop() {
			before := heap()
			m := make(map[flowKey]*value, n)
			local := netip.AddrPortFrom(serverAddr, httpsPort)
			for i := range n {
				m[flowKey{peer(i), local}] = new(value)
			}
			after := heap()
			runtime.KeepAlive(m)
			per = float64(after-before) / float64(n)
		}
		b.ReportMetric(per, "bytes/flow")
	})
}
