package engine

import (
	"errors"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
)

// setFlagOption sets an on/off option through its typed setter.
func setFlagOption(h *Host, s *Socket, o Option, on bool) Result {
	switch o {
	case SO_REUSEADDR:
		return h.SetReuseAddr(s, on)
	case SO_REUSEPORT:
		return h.SetReusePort(s, on)
	case IPV6_V6ONLY:
		return h.SetV6Only(s, on)
	case IP_FREEBIND:
		return h.SetFreeBind(s, on)
	case IP_BIND_ADDRESS_NO_PORT:
		return h.SetBindAddressNoPort(s, on)
	case SO_EXCLUSIVEADDRUSE:
		return h.SetExclusiveAddrUse(s, on)
	case IP_MULTICAST_ALL:
		return h.SetMulticastAll(s, on)
	case IPV6_MULTICAST_ALL:
		return h.SetMulticastAll6(s, on)
	}
	panic("not an on/off option: " + o.String())
}

func TestSocketBelongsToItsHost(t *testing.T) {
	n := NewNetwork(Linux, 1)
	a, b := n.AddHost("a"), n.AddHost("b")
	s, _ := a.NewSocket(Inet, TCP, 0)
	ap := netip.MustParseAddrPort("127.0.0.1:8080")
	for name, r := range map[string]Result{
		"bind":        b.Bind(s, ap),
		"listen":      b.Listen(s),
		"connect":     b.Connect(s, ap),
		"close":       b.Close(s),
		"reuseaddr":   b.SetReuseAddr(s, true),
		"device":      b.BindToDevice(s, "lo"),
		"local range": b.SetLocalPortRange(s, 40000, 40010),
	} {
		if r.Err != EBADF || r.Rule != ruleOtherHost {
			t.Errorf("%s with another host's socket: %v (%s), want EBADF (%s)", name, r.Err, r.Rule, ruleOtherHost)
		}
	}
	if len(b.Sockets()) != 0 {
		t.Fatalf("host b holds %d sockets after refusing a's", len(b.Sockets()))
	}
	if r := a.Bind(s, ap); r.Err != OK {
		t.Fatalf("own bind: %v", r.Err)
	}
	a.Close(s)
	if d := a.Lookup(Packet{Proto: TCP, Src: netip.MustParseAddrPort("127.0.0.1:1"), Dst: ap, Flags: FlagSYN}); d.Verdict == Deliver {
		t.Fatalf("a closed socket still receives: %+v", d)
	}
	if r := a.Bind(s, ap); r.Err != EBADF {
		t.Fatalf("bind after close: %v, want EBADF", r.Err)
	}
}

func TestLocalPortRangeIsUsed(t *testing.T) {
	n := NewNetwork(Linux, 7)
	h := n.AddHost("h")
	for i := 0; i < 20; i++ {
		s, _ := h.NewSocket(Inet, TCP, 0)
		if r := h.SetLocalPortRange(s, 40000, 40003); r.Err != OK {
			t.Fatal(r.Err)
		}
		r := h.Connect(s, netip.MustParseAddrPort("198.51.100.1:80"))
		if r.Err == ENETUNREACH {
			h.AddIface("eth0", netip.MustParsePrefix("198.51.100.2/24"))
			r = h.Connect(s, netip.MustParseAddrPort("198.51.100.1:80"))
		}
		if i < 4 {
			if r.Err != OK || r.Local.Port() < 40000 || r.Local.Port() > 40003 {
				t.Fatalf("connect %d: %v from %v, want a port in 40000-40003", i, r.Err, r.Local)
			}
		} else if r.Err != EADDRNOTAVAIL {
			t.Fatalf("connect %d with the 4 ports of the range taken: %v, want EADDRNOTAVAIL", i, r.Err)
		}
	}
	s, _ := h.NewSocket(Inet, TCP, 0)
	if r := h.SetLocalPortRange(s, 5, 4); r.Err != EINVAL {
		t.Fatalf("lo > hi: %v, want EINVAL", r.Err)
	}
	if lo, hi := s.LocalPortRange(); lo != 0 || hi != 0 {
		t.Fatalf("a refused range was kept: %d-%d", lo, hi)
	}
}

func TestResultAsError(t *testing.T) {
	n := NewNetwork(Linux, 1)
	h := n.AddHost("h")
	ap := netip.MustParseAddrPort("[::]:8080")
	s1, _ := h.NewSocket(Inet6, TCP, 0)
	if err := h.Bind(s1, ap).AsError(); err != nil {
		t.Fatalf("bind: %v", err)
	}
	h.Listen(s1)
	s2, _ := h.NewSocket(Inet, TCP, 0)
	r := h.Bind(s2, netip.MustParseAddrPort("0.0.0.0:8080"))
	err := r.AsError()
	if err == nil {
		t.Fatal("second bind succeeded")
	}
	if runtime.GOOS != "plan9" && !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("errors.Is(%v, EADDRINUSE) is false", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Errno != EADDRINUSE || e.Other != s1 || e.Rule == "" {
		t.Fatalf("error %#v does not carry errno, rule and holder", err)
	}
	if want := "EADDRINUSE: " + string(ruleConflictListen) + " (tcp dual-stack [::]:8080 LISTEN)"; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, &Error{Errno: EADDRINUSE}) {
		t.Fatal("errors.Is with an *Error of the same errno is false")
	}
}

func TestEveryErrnoMapsToSyscall(t *testing.T) {
	if runtime.GOOS == "plan9" {
		t.Skip("no errno numbers on plan9")
	}
	for e := Errno(1); int(e) < len(errnoNames); e++ {
		if e.Syscall() == 0 {
			t.Errorf("%s has no syscall.Errno", e)
		}
	}
}

func TestSocketsCreationOrderAndCopy(t *testing.T) {
	n := NewNetwork(Linux, 1)
	h := n.AddHost("h")
	var all []*Socket
	for i := 0; i < 300; i++ {
		s, _ := h.NewSocket(Inet, UDP, 0)
		all = append(all, s)
	}
	var want []*Socket
	for i, s := range all {
		if i%3 != 0 {
			h.Close(s)
		} else {
			want = append(want, s)
		}
	}
	got := h.Sockets()
	if len(got) != len(want) || h.NumSockets() != len(want) {
		t.Fatalf("%d sockets (NumSockets %d), want %d", len(got), h.NumSockets(), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("socket %d out of creation order", i)
		}
	}
	got[0] = nil
	if h.Sockets()[0] != want[0] {
		t.Fatal("Sockets returned the host's own slice")
	}
	s, _ := h.NewSocket(Inet, UDP, 0)
	if l := h.Sockets(); l[len(l)-1] != s {
		t.Fatal("a new socket is not last")
	}
}

// Changing SO_BINDTODEVICE once set needs the caller's CAP_NET_RAW
// (sock_bindtoindex_locked): the owner of the socket does not matter.
func TestDeviceChangeChecksCaller(t *testing.T) {
	h := NewNetwork(Linux, 1).AddHost("h")
	for _, c := range []struct {
		owner, caller uint32
		want          Errno
	}{
		{0, 1000, EPERM},
		{1000, 0, OK},
		{1000, 1000, EPERM},
		{0, 0, OK},
	} {
		s, _ := h.NewSocket(Inet, UDP, c.owner)
		if r := h.BindToDeviceAs(s, "lo", c.caller); r.Err != OK {
			t.Fatalf("first bind to lo (owner %d, caller %d): %v", c.owner, c.caller, r.Err)
		}
		if r := h.BindToDeviceAs(s, "", c.caller); r.Err != c.want {
			t.Errorf("clearing the device (owner %d, caller %d): %v, want %v", c.owner, c.caller, r.Err, c.want)
		}
		h.Close(s)
	}
}
