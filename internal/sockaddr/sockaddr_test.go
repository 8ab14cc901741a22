//go:build linux

package sockaddr

import (
	"net"
	"net/netip"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFamily(t *testing.T) {
	for _, c := range []struct {
		addr string
		want int
	}{
		{"192.0.2.1", unix.AF_INET},
		{"0.0.0.0", unix.AF_INET},
		{"2001:db8::1", unix.AF_INET6},
		{"::", unix.AF_INET6},
		{"::ffff:192.0.2.1", unix.AF_INET6},
		{"fe80::1%lo", unix.AF_INET6},
	} {
		if got := Family(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Family(%s) = %d, want %d", c.addr, got, c.want)
		}
	}
}

func TestInet(t *testing.T) {
	mapped := [16]byte{10: 0xff, 11: 0xff, 12: 192, 14: 2, 15: 1}
	for _, c := range []struct {
		name   string
		family int
		ap     string
		scope  uint32
		want   unix.Sockaddr
	}{
		{"ipv4", unix.AF_INET, "192.0.2.1:80", 7, &unix.SockaddrInet4{Addr: [4]byte{192, 0, 2, 1}, Port: 80}},
		{"v4-mapped as ipv4", unix.AF_INET, "[::ffff:192.0.2.1]:80", 0, &unix.SockaddrInet4{Addr: [4]byte{192, 0, 2, 1}, Port: 80}},
		{"ipv6", unix.AF_INET6, "[2001:db8::1]:443", 0, &unix.SockaddrInet6{Addr: [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, Port: 443}},
		{"ipv6 scope", unix.AF_INET6, "[fe80::1]:443", 3, &unix.SockaddrInet6{Addr: [16]byte{0xfe, 0x80, 15: 1}, Port: 443, ZoneId: 3}},
		{"zone not read", unix.AF_INET6, "[fe80::1%lo]:443", 0, &unix.SockaddrInet6{Addr: [16]byte{0xfe, 0x80, 15: 1}, Port: 443}},
		{"ipv4 as ipv6 is v4-mapped", unix.AF_INET6, "192.0.2.1:53", 0, &unix.SockaddrInet6{Addr: mapped, Port: 53}},
		{"v4-mapped stays mapped", unix.AF_INET6, "[::ffff:192.0.2.1]:53", 0, &unix.SockaddrInet6{Addr: mapped, Port: 53}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Inet(c.family, netip.MustParseAddrPort(c.ap), c.scope)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Inet(%d, %s, %d) = %#v, want %#v", c.family, c.ap, c.scope, got, c.want)
			}
		})
	}
}

func TestScope(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no lo:", err)
	}
	for _, c := range []struct {
		zone          string
		unknown, want uint32
	}{
		{"", 99, 0},
		{"lo", 99, uint32(lo.Index)},
		{"no-such-if0", 99, 99},
		{"no-such-if0", 0, 0},
		{"1", 99, 99}, // a number is not a name
	} {
		if got := Scope(c.zone, c.unknown); got != c.want {
			t.Errorf("Scope(%q, %d) = %d, want %d", c.zone, c.unknown, got, c.want)
		}
	}
}

func TestAddrPort(t *testing.T) {
	for _, ap := range []string{"192.0.2.1:80", "0.0.0.0:0", "[2001:db8::1]:443", "[::ffff:192.0.2.1]:53", "[::]:9"} {
		want := netip.MustParseAddrPort(ap)
		if got := AddrPort(Inet(Family(want.Addr()), want, 5)); got != want {
			t.Errorf("AddrPort(Inet(%s)) = %s", ap, got)
		}
	}
	if got := AddrPort(&unix.SockaddrInet6{Addr: [16]byte{0xfe, 0x80, 15: 1}, Port: 1, ZoneId: 2}); got != netip.MustParseAddrPort("[fe80::1]:1") {
		t.Errorf("scope id kept: %s", got)
	}
	if got := AddrPort(&unix.SockaddrUnix{Name: "/tmp/x"}); got.IsValid() {
		t.Errorf("unix socket address gave %s", got)
	}
	if got := AddrPort(nil); got.IsValid() {
		t.Errorf("nil gave %s", got)
	}
}
