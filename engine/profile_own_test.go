package engine

import (
	"net/netip"
	"testing"
	"time"
)

// Tests that the other profiles never take Linux's choices: connect's port
// parity, the TIME_WAIT length and the listener lookup come from each
// profile.

// connectPorts runs n connects from unbound sockets to a destination on no
// simulated host and returns the local ports chosen.
func connectPorts(t *testing.T, p *Profile, n int) []uint16 {
	t.Helper()
	h := otherHost(t, p)
	dst := netip.MustParseAddrPort("198.51.100.7:443")
	if err := h.AddRoute(netip.MustParsePrefix("198.51.100.0/24"), "eth0"); err != nil {
		t.Fatal(err)
	}
	var ports []uint16
	for range n {
		s := sock(t, h, Inet, TCP, 0)
		r := h.Connect(s, dst)
		if r.Err != OK {
			t.Fatalf("%s connect: %v (%s)", p.Name, r.Err, r.Rule)
		}
		ports = append(ports, r.Local.Port())
	}
	return ports
}

func TestConnectParityIsLinuxOnly(t *testing.T) {
	for _, p := range []*Profile{Windows, FreeBSD, MacOS} {
		ports := connectPorts(t, p, 50)
		odd := 0
		for _, q := range ports {
			if q%2 == 1 {
				odd++
			}
			if int(q) < p.PortLow || int(q) > p.PortHigh {
				t.Errorf("%s: port %d outside %d-%d", p.Name, q, p.PortLow, p.PortHigh)
			}
		}
		if odd == 0 || odd == len(ports) {
			t.Errorf("%s: %d of %d connect ports odd: a parity split the profile does not have", p.Name, odd, len(ports))
		}
	}
	// Linux keeps low's parity (even for 32768) while the range has room.
	for _, q := range connectPorts(t, Linux, 50) {
		if q%2 != 0 {
			t.Errorf("linux: connect port %d is odd", q)
		}
	}
}

func TestConnectNoteInTrace(t *testing.T) {
	h := otherHost(t, Windows)
	h.AddRoute(netip.MustParsePrefix("198.51.100.0/24"), "eth0")
	s := sock(t, h, Inet, TCP, 0)
	r := h.Connect(s, netip.MustParseAddrPort("198.51.100.7:443"))
	if r.Err != OK || !contains(string(r.Rule), "not modelled") {
		t.Errorf("windows connect: %v %q, want the trace to say what is not modelled", r.Err, r.Rule)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// XNU and Windows give a connect a port nobody holds: two connects to two
// destinations never share one, even in a range of two ports.
func TestConnectPortUnusedNeverShares(t *testing.T) {
	for _, p := range []*Profile{Windows, MacOS} {
		h := otherHost(t, p)
		h.Sysctl.PortLow, h.Sysctl.PortHigh = 50000, 50001
		h.AddRoute(netip.MustParsePrefix("198.51.100.0/24"), "eth0")
		var got []uint16
		for i, d := range []string{"198.51.100.7:443", "198.51.100.8:443", "198.51.100.9:443"} {
			s := sock(t, h, Inet, TCP, 0)
			r := h.Connect(s, netip.MustParseAddrPort(d))
			if i < 2 {
				if r.Err != OK {
					t.Fatalf("%s connect %d: %v", p.Name, i, r.Err)
				}
				got = append(got, r.Local.Port())
			} else if r.Err != EADDRNOTAVAIL {
				t.Errorf("%s: third connect in a two-port range: %v, want EADDRNOTAVAIL", p.Name, r.Err)
			}
		}
		if got[0] == got[1] {
			t.Errorf("%s: two connects share port %d", p.Name, got[0])
		}
	}
	// FreeBSD shares across destinations (in_pcb_lport_dest).
	h := otherHost(t, FreeBSD)
	h.Sysctl.PortLow, h.Sysctl.PortHigh = 50000, 50000
	h.AddRoute(netip.MustParsePrefix("198.51.100.0/24"), "eth0")
	for _, d := range []string{"198.51.100.7:443", "198.51.100.8:443"} {
		if r := h.Connect(sock(t, h, Inet, TCP, 0), netip.MustParseAddrPort(d)); r.Err != OK {
			t.Errorf("freebsd: connect to %s in a one-port range: %v, want ok (shared)", d, r.Err)
		}
	}
}

func TestTimeWaitLengthPerProfile(t *testing.T) {
	for _, c := range []struct {
		p    *Profile
		want time.Duration
	}{{Linux, 60 * time.Second}, {FreeBSD, 60 * time.Second}, {MacOS, 30 * time.Second}, {Windows, 120 * time.Second}} {
		n := NewNetwork(c.p, 1)
		srv, cli := n.AddHost("srv"), n.AddHost("cli")
		srv.AddIface("eth0", netip.MustParsePrefix("192.0.2.1/24"))
		cli.AddIface("eth0", netip.MustParsePrefix("192.0.2.2/24"))
		l := sock(t, srv, Inet, TCP, 0)
		mustBind(t, srv, l, netip.MustParseAddr("192.0.2.1"), 80)
		srv.Listen(l)
		c1 := sock(t, cli, Inet, TCP, 0)
		if r := cli.Connect(c1, netip.MustParseAddrPort("192.0.2.1:80")); r.Err != OK {
			t.Fatalf("%s: connect %v", c.p.Name, r.Err)
		}
		a, _ := srv.Accept(l)
		cli.Close(c1)
		srv.Close(a)
		if c1.State() != TimeWait || c1.Expires() != c.want {
			t.Errorf("%s: client is %s until %s, want TIME-WAIT until %s", c.p.Name, c1.State(), c1.Expires(), c.want)
		}
		n.Advance(c.want - time.Second)
		if c1.State() != TimeWait {
			t.Errorf("%s: TIME-WAIT gone before %s", c.p.Name, c.want)
		}
		n.Advance(time.Second)
		if c1.State() != Gone {
			t.Errorf("%s: TIME-WAIT still there after %s", c.p.Name, c.want)
		}
	}
}

func TestLookupPerProfile(t *testing.T) {
	syn := func(h *Host, port uint16) Delivery {
		return h.Lookup(Packet{Proto: TCP, Src: netip.MustParseAddrPort("198.51.100.1:40000"),
			Dst: netip.AddrPortFrom(spec4, port), Flags: FlagSYN})
	}
	// BSD: two SO_REUSEPORT listeners on one address: the newest takes
	// unicast, no group; an AF_INET wildcard beats a dual-stack [::].
	for _, p := range []*Profile{FreeBSD, MacOS} {
		h := otherHost(t, p)
		a := sock(t, h, Inet, TCP, 0, SO_REUSEPORT)
		b := sock(t, h, Inet, TCP, 0, SO_REUSEPORT)
		mustBind(t, h, a, spec4, 80)
		mustBind(t, h, b, spec4, 80)
		h.Listen(a)
		h.Listen(b)
		if d := syn(h, 80); d.Socket != b || len(d.Group) != 0 {
			t.Errorf("%s: SYN went to %v (group %d), want the newest listener alone", p.Name, d.Socket.Name(), len(d.Group))
		}
		v4 := sock(t, h, Inet, TCP, 0)
		mustBind(t, h, v4, wild4, 81)
		h.Listen(v4)
		d6 := sock(t, h, Inet6, TCP, 0)
		if r := h.SetV6Only(d6, false); r.Err != OK {
			t.Fatal(r.Err)
		}
		mustBind(t, h, d6, wild6, 81)
		h.Listen(d6)
		if d := syn(h, 81); d.Socket != v4 {
			t.Errorf("%s: IPv4 SYN to the wildcards went to the dual-stack socket, want AF_INET (local_wild first)", p.Name)
		}
	}
	// Windows: two SO_REUSEADDR sharers of one address: indeterminate.
	h := otherHost(t, Windows)
	a := sock(t, h, Inet, UDP, 0, SO_REUSEADDR)
	b := sock(t, h, Inet, UDP, 0, SO_REUSEADDR)
	mustBind(t, h, a, spec4, 53)
	mustBind(t, h, b, spec4, 53)
	d := h.Lookup(Packet{Proto: UDP, Src: netip.MustParseAddrPort("198.51.100.1:40000"), Dst: netip.AddrPortFrom(spec4, 53)})
	if !d.Indeterminate || len(d.Group) != 2 {
		t.Errorf("windows: datagram to two SO_REUSEADDR sharers: indeterminate=%v group=%d, want indeterminate among 2", d.Indeterminate, len(d.Group))
	}
	// One socket alone is determinate.
	c := sock(t, h, Inet, UDP, 0)
	mustBind(t, h, c, spec4, 54)
	if d := h.Lookup(Packet{Proto: UDP, Src: netip.MustParseAddrPort("198.51.100.1:40000"), Dst: netip.AddrPortFrom(spec4, 54)}); d.Indeterminate || d.Socket != c {
		t.Errorf("windows: a lone socket: %+v", d)
	}
}

func TestSetBindBucket(t *testing.T) {
	h := NewNetwork(Linux, 1).AddHost("h")
	lo := netip.MustParseAddr("127.0.0.1")
	a := sock(t, h, Inet, TCP, 1000, SO_REUSEPORT)
	mustBind(t, h, a, lo, 5000)
	got, ok := h.BindBucket(TCP, 5000)
	// Linux 6.18: the first SO_REUSEPORT joiner resets the cache to STRICT
	// on its own address (inet_csk_update_fastreuse), never ANY.
	if !ok || got.FastReuseport != FastReuseportStrict || got.FastUID != 1000 || got.FastRcvSaddr != lo || got.FastFamily != Inet {
		t.Fatalf("cache after one SO_REUSEPORT bind: %+v %v", got, ok)
	}
	// The kernel's bucket, as read live, says uid 2000 shares: a uid 2000
	// SO_REUSEPORT bind then skips the check that would refuse it.
	b := sock(t, h, Inet, TCP, 2000, SO_REUSEPORT)
	if r := h.Bind(b, netip.AddrPortFrom(lo, 5000)); r.Err != EADDRINUSE {
		t.Fatalf("uid 2000 beside uid 1000: %v, want EADDRINUSE", r.Err)
	}
	if err := h.SetBindBucket(TCP, 5000, BindBucket{FastReuseport: FastReuseportAny, FastUID: 2000, FastFamily: Inet, FastRcvSaddr: lo}); err != nil {
		t.Fatal(err)
	}
	if r := h.Bind(b, netip.AddrPortFrom(lo, 5000)); r.Err != OK || r.Rule != ruleBoundFast {
		t.Errorf("with the kernel's cache: %v %q, want ok by the fast path", r.Err, r.Rule)
	}
	// A port whose holder was only inserted (a live table) has an unknown
	// cache until the loader sets it.
	if _, err := h.Insert(SocketSpec{Family: Inet, Proto: TCP, State: Listen, Local: netip.MustParseAddrPort("127.0.0.1:6000")}); err != nil {
		t.Fatal(err)
	}
	if h.BindBucketKnown(TCP, 6000) || !h.BindBucketKnown(TCP, 5000) {
		t.Errorf("known: inserted port %v, bound port %v; want false, true", h.BindBucketKnown(TCP, 6000), h.BindBucketKnown(TCP, 5000))
	}
	if err := h.SetBindBucket(TCP, 6000, BindBucket{}); err != nil || !h.BindBucketKnown(TCP, 6000) {
		t.Errorf("after SetBindBucket: %v, known %v", err, h.BindBucketKnown(TCP, 6000))
	}
	for _, c := range []struct {
		p    Proto
		port uint16
		b    BindBucket
	}{
		{UDP, 5000, BindBucket{}},
		{TCP, 5001, BindBucket{}},
		{TCP, 5000, BindBucket{FastReuseport: 3}},
		{TCP, 5000, BindBucket{FastReuse: 2}},
		{TCP, 5000, BindBucket{FastReuseport: FastReuseportStrict, FastFamily: Inet}},
	} {
		if err := h.SetBindBucket(c.p, c.port, c.b); err == nil {
			t.Errorf("SetBindBucket(%s, %d, %+v): no error", c.p, c.port, c.b)
		}
	}
}
