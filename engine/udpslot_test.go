package engine

import (
	"net/netip"
	"testing"
)

// A UDP bind to a specific address on a port whose hash slot holds more
// than ten sockets is checked on the address's chain, then the wildcards'
// (udp_lib_lport_inuse2): a SO_REUSEPORT sharer on the address no longer
// hides an older wildcard that refuses. The slot counts the port's own
// holders and the others SetUDPSlotOthers names.
func TestUDPBindHash2Slot(t *testing.T) {
	bindOne := func(h *Host, addr string, reuseAddr, reusePort bool) Result {
		s, _ := h.NewSocket(Inet, UDP, 0)
		if reuseAddr {
			h.SetReuseAddr(s, true)
		}
		if reusePort {
			h.SetReusePort(s, true)
		}
		return h.Bind(s, netip.MustParseAddrPort(addr))
	}
	setup := func(fill int) *Host {
		h := NewNetwork(Linux, 1).AddHost("h")
		if r := bindOne(h, "0.0.0.0:6000", true, false); r.Err != OK {
			t.Fatal(r)
		}
		for range fill {
			if r := bindOne(h, "127.0.0.2:6000", true, false); r.Err != OK {
				t.Fatal(r)
			}
		}
		if r := bindOne(h, "127.0.0.1:6000", true, true); r.Err != OK {
			t.Fatal(r)
		}
		return h
	}
	for _, c := range []struct {
		fill, others int
		want         Errno
	}{
		{8, 0, OK},          // 10 in the slot: the newest holder on the chain shares
		{9, 0, EADDRINUSE},  // 11: the wildcard refuses on its own chain
		{3, 6, EADDRINUSE},  // the port's 5 and 6 of other ports: 11
		{3, 5, OK},          // 5 and 5: 10
		{20, 0, EADDRINUSE}, // well past ten
	} {
		h := setup(c.fill)
		if err := h.SetUDPSlotOthers(6000, c.others); err != nil {
			t.Fatal(err)
		}
		if r := bindOne(h, "127.0.0.1:6000", false, true); r.Err != c.want {
			t.Errorf("%d sockets on the port, %d others in its slot: %v (%s), want %v", c.fill+2, c.others, r.Err, r.Rule, c.want)
		}
	}
	h := NewNetwork(Linux, 1).AddHost("h")
	if err := h.SetUDPSlotOthers(6000, -1); err == nil {
		t.Error("a negative count was taken")
	}
}
