package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strconv"

	"github.com/socktab/socktab/engine"
)

// The addresses every column uses: documentation ranges and loopback.
var (
	serverAddr = netip.MustParseAddr("192.0.2.1")
	connDst    = netip.MustParseAddrPort("198.51.100.10:443")
	peerNets   = [2][4]byte{{198, 51, 100, 0}, {203, 0, 113, 0}}
)

const (
	bindPort  = 5000 // the specific / wildcard bind workloads
	acceptPt  = 7000 // the accepted-connections workload
	httpsPort = 443  // established flows in the lookup table
	wildPort  = 80   // a listener on 0.0.0.0
	exactPort = 8080 // a listener on 192.0.2.1
	missPort  = 9    // nobody
	groupPort = 8443 // the reuseport group
)

// peer is the i-th distinct remote end: 512 addresses of two documentation
// ranges times ports from 1024 up.
func peer(i int) netip.AddrPort {
	a := peerNets[i%2]
	a[3] = byte(i / 2 % 256)
	return netip.AddrPortFrom(netip.AddrFrom4(a), uint16(1024+i/512))
}

// loopN is the n-th specific loopback address from 127.0.0.2 up.
func loopN(i int) [4]byte {
	v := i + 2
	return [4]byte{127, byte(v >> 16), byte(v >> 8), byte(v)}
}

// takenPorts lists the occupied ports of an occupancy row: the lowest
// ports of the range (contiguous) or a seeded random subset (scattered).
func takenPorts(seed uint64, lo, hi, occ int, contiguous bool) []int {
	ports := make([]int, 0, hi-lo+1)
	for p := lo; p <= hi; p++ {
		ports = append(ports, p)
	}
	if !contiguous {
		r := rand.New(rand.NewPCG(seed, uint64(occ)))
		r.Shuffle(len(ports), func(i, j int) { ports[i], ports[j] = ports[j], ports[i] })
	}
	return ports[:len(ports)*occ/100]
}

// probeOrder is a seeded permutation of the n flows' remote ends.
func probeOrder(seed uint64, n int) []netip.AddrPort {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]netip.AddrPort, n)
	for i, j := range r.Perm(n) {
		out[i] = peer(j)
	}
	return out
}

type socktabImpl struct{ cfg Config }

func (m *socktabImpl) host() *engine.Host {
	h := engine.NewNetwork(engine.Linux, m.cfg.Seed).AddHost("server")
	h.AddIface("eth0", netip.MustParsePrefix("192.0.2.1/24"))
	if err := h.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), "eth0"); err != nil {
		panic(err)
	}
	return h
}

func must(r engine.Result, want engine.Errno, what string) {
	if r.Err != want {
		panic(fmt.Sprintf("socktab %s: %v (%v), want %v", what, r.Err, r.Rule, want))
	}
}

func (m *socktabImpl) bindSpecific() prepared {
	h := m.host()
	ap := netip.AddrPortFrom(serverAddr, bindPort)
	return prepared{batch: loop(func() {
		s, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
		must(h.Bind(s, ap), engine.OK, "bind")
		h.Close(s)
	})}
}

func (m *socktabImpl) wildcardBind(n int) prepared {
	h := m.host()
	for i := range n {
		s, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
		h.SetReuseAddr(s, true)
		must(h.Bind(s, netip.AddrPortFrom(netip.AddrFrom4(loopN(i)), bindPort)), engine.OK, "specific bind")
	}
	wild := netip.AddrPortFrom(netip.IPv4Unspecified(), bindPort)
	return prepared{batch: loop(func() {
		s, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
		h.SetReuseAddr(s, true)
		must(h.Bind(s, wild), engine.OK, "wildcard bind")
		h.Close(s)
	})}
}

func (m *socktabImpl) acceptedBind(n int) prepared {
	h := m.host()
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), acceptPt)
	l, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
	must(h.Bind(l, ap), engine.OK, "listener bind")
	must(h.Listen(l), engine.OK, "listen")
	for range n {
		c, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
		must(h.Connect(c, ap), engine.OK, "connect")
		if _, r := h.Accept(l); r.Err != engine.OK {
			panic(r.Err)
		}
	}
	return prepared{batch: loop(func() {
		s, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
		must(h.Bind(s, ap), engine.EADDRINUSE, "bind on the listener's address")
		h.Close(s)
	}), note: "EADDRINUSE"}
}

// ephemeral: connects toward one destination, a second simulated host on
// which nobody listens, so each connect chooses a port, is refused and
// gives the port back; the occupancy stays fixed.
func (m *socktabImpl) ephemeral(lo, hi, occ int, contiguous bool) prepared {
	h := m.host()
	if e, err := h.Sysctl.Set("net.ipv4.ip_local_port_range", []string{strconv.Itoa(lo), strconv.Itoa(hi)}); err != nil || e != engine.OK {
		panic(fmt.Sprint("sysctl ", e, err))
	}
	peer := h.Network().AddHost("peer")
	peer.AddIface("eth0", netip.MustParsePrefix("198.51.100.10/24"))
	// The way back: a host with no route to the source never sends its
	// RST, and the connect would stay in progress instead of refused.
	if err := peer.AddRoute(netip.MustParsePrefix("0.0.0.0/0"), "eth0"); err != nil {
		panic(err)
	}
	for _, p := range takenPorts(m.cfg.Seed, lo, hi, occ, contiguous) {
		if _, err := h.Insert(engine.SocketSpec{Family: engine.Inet, Proto: engine.TCP, State: engine.Established,
			Local: netip.AddrPortFrom(serverAddr, uint16(p)), Remote: connDst, ConnectBind: true}); err != nil {
			panic(err)
		}
	}
	return prepared{batch: loop(func() {
		s, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
		must(h.Connect(s, connDst), engine.ECONNREFUSED, "connect")
		h.Close(s)
	})}
}

// lookupHost is n established flows to 192.0.2.1:443, a listener on
// 192.0.2.1:8080 and one on 0.0.0.0:80.
func (m *socktabImpl) lookupHost(n int) *engine.Host {
	h := m.host()
	h.Reserve(engine.TCP, n)
	local := netip.AddrPortFrom(serverAddr, httpsPort)
	for i := range n {
		if _, err := h.Insert(engine.SocketSpec{Family: engine.Inet, Proto: engine.TCP, State: engine.Established,
			Local: local, Remote: peer(i)}); err != nil {
			panic(err)
		}
	}
	for _, l := range []netip.AddrPort{
		netip.AddrPortFrom(netip.IPv4Unspecified(), wildPort),
		netip.AddrPortFrom(serverAddr, exactPort),
	} {
		if _, err := h.Insert(engine.SocketSpec{Family: engine.Inet, Proto: engine.TCP, State: engine.Listen, Local: l}); err != nil {
			panic(err)
		}
	}
	return h
}

func (m *socktabImpl) lookup(n int) []prepared {
	h := m.lookupHost(n)
	srcs := probeOrder(m.cfg.Seed, n)
	var out []prepared
	for k, c := range []struct {
		port  uint16
		flags uint8
		stage engine.Stage
	}{
		{httpsPort, engine.FlagACK, engine.StageEstablished},
		{exactPort, engine.FlagSYN, engine.StageListenerExact},
		{wildPort, engine.FlagSYN, engine.StageListenerWildcard},
		{missPort, engine.FlagSYN, engine.StageNoSocket},
	} {
		dst := netip.AddrPortFrom(serverAddr, c.port)
		i := 0
		out = append(out, prepared{batch: loop(func() {
			d := h.Lookup(engine.Packet{Proto: engine.TCP, Src: srcs[i], Dst: dst, Flags: c.flags})
			if d.Stage != c.stage {
				panic(fmt.Sprintf("socktab lookup %s: stage %v", lookupKinds[k], d.Stage))
			}
			if i++; i == len(srcs) {
				i = 0
			}
		})})
	}
	return out
}

// groupSources are the seeded sources hashed onto a reuseport group.
func groupSources(seed uint64, n int) []netip.AddrPort {
	r := rand.New(rand.NewPCG(seed, 11))
	out := make([]netip.AddrPort, n)
	for i := range out {
		a := peerNets[r.IntN(2)]
		a[3] = byte(r.IntN(256))
		out[i] = netip.AddrPortFrom(netip.AddrFrom4(a), uint16(1024+r.IntN(64512)))
	}
	return out
}

func (m *socktabImpl) reuseport(n, flows int) prepared {
	h := m.host()
	ap := netip.AddrPortFrom(netip.IPv4Unspecified(), groupPort)
	idx := map[*engine.Socket]int{}
	for i := range n {
		s, _ := h.NewSocket(engine.Inet, engine.TCP, 1000)
		h.SetReusePort(s, true)
		must(h.Bind(s, ap), engine.OK, "reuseport bind")
		must(h.Listen(s), engine.OK, "listen")
		idx[s] = i
	}
	srcs := groupSources(m.cfg.Seed, flows)
	dst := netip.AddrPortFrom(serverAddr, groupPort)
	counts := make([]int, n)
	for _, src := range srcs {
		d := h.Lookup(engine.Packet{Proto: engine.TCP, Src: src, Dst: dst, Flags: engine.FlagSYN})
		if len(d.Group) != n {
			panic(fmt.Sprintf("socktab reuseport: group of %d", len(d.Group)))
		}
		counts[idx[d.Socket]]++
	}
	i := 0
	return prepared{batch: loop(func() {
		h.Lookup(engine.Packet{Proto: engine.TCP, Src: srcs[i], Dst: dst, Flags: engine.FlagSYN})
		if i++; i == len(srcs) {
			i = 0
		}
	}), note: spread(counts)}
}

func (m *socktabImpl) memory(n int) prepared {
	before := heapAlloc()
	h := m.lookupHost(n)
	after := heapAlloc()
	runtime.KeepAlive(h)
	return fixed(Cell{V: float64(after-before) / float64(n)})
}
