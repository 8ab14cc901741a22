package engine

import (
	"net/netip"
	"testing"
)

// The connect path writes endpoints directly (anyEndpoint, a port set to
// 0): they must be what ep makes of the same address and port.
func TestEndpointShortcuts(t *testing.T) {
	for _, f := range []Family{Inet, Inet6} {
		for _, port := range []uint16{0, 1, 443, 65535} {
			if got, want := anyEndpoint(f, port), ep(netip.AddrPortFrom(anyAddr(f), port)); got != want {
				t.Errorf("anyEndpoint(%v, %d) = %+v, want %+v", f, port, got, want)
			}
		}
	}
	for _, a := range []string{"192.0.2.1", "0.0.0.0", "::ffff:192.0.2.1", "::ffff:0.0.0.0", "2001:db8::1", "::"} {
		e := ep(netip.AddrPortFrom(netip.MustParseAddr(a), 5000))
		want := ep(netip.AddrPortFrom(e.Addr(), 0))
		e.port = 0
		if e != want {
			t.Errorf("%s with port 0: %+v, want %+v", a, e, want)
		}
	}
}

// routeByScans is route as it was before it became one pass (ifaceFor,
// then every prefix, then the routes), kept to check that the one pass
// answers the same.
func routeByScans(h *Host, dst netip.Addr) (src netip.Addr, out *Iface, ok bool) {
	dst = dst.Unmap()
	if i := h.ifaceFor(dst); i != nil {
		if i.Loopback && dst.Is4() {
			for _, p := range i.Addrs {
				if p.Addr().Is4() && p.Contains(dst) {
					return p.Addr(), h.Ifaces[0], true
				}
			}
		}
		return dst, h.Ifaces[0], true
	}
	best := -1
	for _, i := range h.Ifaces {
		for _, p := range i.Addrs {
			if p.Addr().Is4() == dst.Is4() && p.Contains(dst) && p.Bits() > best {
				best, out, src = p.Bits(), i, p.Addr()
			}
		}
	}
	for _, r := range h.Routes {
		if r.Dst.Addr().Is4() == dst.Is4() && r.Dst.Contains(dst) && r.Dst.Bits() > best {
			if a, ok := firstAddr(r.Iface, dst.Is4()); ok {
				best, out, src = r.Dst.Bits(), r.Iface, a
			}
		}
	}
	return src, out, best >= 0
}

func TestRouteOnePass(t *testing.T) {
	pfx := []string{"192.0.2.1/24", "192.0.2.130/25", "198.51.100.7/24", "203.0.113.1/32", "127.0.0.2/8",
		"2001:db8::1/64", "2001:db8:1::1/48", "fe80::1/64", "::1/128", "10.0.0.1/8"}
	routes := []string{"0.0.0.0/0", "198.51.100.0/24", "203.0.113.0/24", "::/0", "2001:db8::/32"}
	dsts := []string{"192.0.2.1", "192.0.2.200", "192.0.2.129", "198.51.100.7", "198.51.100.9", "203.0.113.1",
		"203.0.113.5", "127.0.0.1", "127.3.4.5", "::ffff:192.0.2.1", "::ffff:127.0.0.9", "2001:db8::1",
		"2001:db8::99", "2001:db8:1::5", "2001:db8:2::1", "fe80::1", "fe80::2", "::1", "8.8.8.8", "2002::1", "0.0.0.0", "::"}
	seed := uint64(1)
	next := func(n int) int { seed = seed*6364136223846793005 + 1442695040888963407; return int(seed>>33) % n }
	for round := range 300 {
		h := NewNetwork(Linux, 1).AddHost("h")
		for k := range 1 + next(4) {
			name := []string{"eth0", "eth1", "lo", "veth0"}[k%4]
			for range next(4) {
				h.AddIface(name, netip.MustParsePrefix(pfx[next(len(pfx))]))
			}
		}
		for range next(4) {
			i := h.Ifaces[next(len(h.Ifaces))]
			if err := h.AddRoute(netip.MustParsePrefix(routes[next(len(routes))]), i.Name); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range dsts {
			a := netip.MustParseAddr(d)
			src, out, ok := h.route(a)
			wsrc, wout, wok := routeByScans(h, a)
			if src != wsrc || out != wout || ok != wok {
				t.Fatalf("round %d: route(%s) = %v %v %v, want %v %v %v", round, a, src, out, ok, wsrc, wout, wok)
			}
			if _, _, _, local := h.routeLocal(a); local != h.isLocal(a) {
				t.Fatalf("round %d: routeLocal(%s) says local %v, isLocal %v", round, a, local, !local)
			}
		}
	}
}

// The sparse perturbation table answers as the map it replaced.
func TestPerturbTable(t *testing.T) {
	var pt *perturbTable
	if _, ok := pt.get(7); ok {
		t.Fatal("a nil table has a slot")
	}
	pt = new(perturbTable)
	m := map[uint16]uint32{}
	seed := uint64(3)
	for n := range 20000 {
		seed = seed*6364136223846793005 + 1442695040888963407
		i := uint16(seed >> 48)
		if n%3 == 0 {
			i &= 0x0f0f // revisit some slots
		}
		if n%2 == 0 {
			pt.put(i, uint32(seed))
			m[i] = uint32(seed)
		}
		v, ok := pt.get(i)
		w, wok := m[i]
		if v != w || ok != wok {
			t.Fatalf("slot %d: %d %v, want %d %v", i, v, ok, w, wok)
		}
	}
	for i := range 1 << 16 {
		v, ok := pt.get(uint16(i))
		w, wok := m[uint16(i)]
		if v != w || ok != wok {
			t.Fatalf("slot %d: %d %v, want %d %v", i, v, ok, w, wok)
		}
	}
}
