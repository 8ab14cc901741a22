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

// BenchmarkBindWildcard is a bind to 0.0.0.0:5000 on a port that n
// sockets hold on n distinct specific loopback addresses (127.0.0.2 up),
// then the close that undoes it, so the table stays as it was. ok: all
// holders and the newcomer have SO_REUSEADDR and none listens, so the bind
// succeeds; conflict: nobody has it, so it fails with EADDRINUSE. Both
// must cost the same at every n: the check reads classes of holders, not
// the holders.
func BenchmarkBindWildcard(b *testing.B) {
	const port = 5000
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
				h := newServer()
				for i := range n {
					s, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
					h.SetSockOpt(s, engine.SO_REUSEADDR, reuse, "")
					a := netip.AddrFrom4([4]byte{127, byte((i + 2) >> 16), byte((i + 2) >> 8), byte(i + 2)})
					if r := h.Bind(s, netip.AddrPortFrom(a, port)); r.Err != engine.OK {
						b.Fatalf("bind %s: %v", a, r.Err)
					}
				}
				wild := netip.AddrPortFrom(netip.IPv4Unspecified(), port)
				b.ReportAllocs()
				for b.Loop() {
					s, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
					h.SetSockOpt(s, engine.SO_REUSEADDR, reuse, "")
					if r := h.Bind(s, wild); r.Err != want {
						b.Fatalf("wildcard bind: %v, want %v", r.Err, want)
					}
					h.Close(s)
				}
			})
		}
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
	const lo, hi = 32768, 60999
	dst := netip.MustParseAddrPort("198.51.100.10:443")
	for _, mode := range []string{"choice", "cycle"} {
		for _, layout := range []string{"scattered", "contiguous"} {
			for _, occ := range []int{0, 50, 90, 99} {
				b.Run(fmt.Sprintf("%s/%s/occupancy=%d%%", mode, layout, occ), func(b *testing.B) {
					h := newServer()
					if e, err := h.Sysctl.Set("net.ipv4.ip_local_port_range", []string{strconv.Itoa(lo), strconv.Itoa(hi)}); err != nil || e != engine.OK {
						b.Fatalf("sysctl: %v %v", e, err)
					}
					net := h.Network()
					peerHost := net.AddHost("peer")
					peerHost.AddIface("eth0", netip.MustParsePrefix("198.51.100.10/24"))
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
					b.ReportAllocs()
					for b.Loop() {
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
					if got := len(h.Sockets()); got != taken {
						b.Fatalf("%d sockets left, want %d: occupancy drifted", got, taken)
					}
				})
			}
		}
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
