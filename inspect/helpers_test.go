package inspect

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/live"
)

// Helpers for the tests' hand-made snapshots and the questions they ask.

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func bptr(b bool) *bool { return &b }

// linuxSysctls are Linux's defaults: ephemeral ports 32768-60999, ports
// below 1024 privileged, nothing reserved.
func linuxSysctls() live.Sysctls {
	return live.Sysctls{PortLow: 32768, PortHigh: 60999, UnprivilegedPortStart: 1024}
}

// loSnapshot is a host with only lo (index 1, no addresses) and Linux's
// default sysctls, holding socks.
func loSnapshot(socks ...live.Socket) *live.Snapshot {
	return &live.Snapshot{
		Interfaces: []live.Interface{{Name: "lo", Index: 1}},
		Sysctls:    linuxSysctls(),
		Sockets:    socks,
	}
}

// serviceOnLo is lo with a service address (198.51.100.1/24) besides
// 127.0.0.1/8, and eth0 on 192.0.2.1/24, then extra.
func serviceOnLo(extra ...live.Interface) []live.Interface {
	return append([]live.Interface{
		{Name: "lo", Index: 1, Loopback: true, Addrs: []netip.Prefix{pfx("127.0.0.1/8"), pfx("198.51.100.1/24")}},
		{Name: "eth0", Index: 2, Addrs: []netip.Prefix{pfx("192.0.2.1/24")}},
	}, extra...)
}

// withKernelOpts is s with its options opts as read from the kernel; nil
// leaves them unread.
func withKernelOpts(s live.Socket, opts *live.SockOpts) live.Socket {
	if opts != nil {
		s.Opts, s.OptsSource = opts, live.SourceKernel
	}
	return s
}

// mustLoad loads snap into a table or fails the test.
func mustLoad(t *testing.T, snap *live.Snapshot) *Table {
	t.Helper()
	tab, err := Load(snap)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func bindAnswer(t *testing.T, snap *live.Snapshot, r BindRequest) BindAnswer {
	t.Helper()
	a, err := mustLoad(t, snap).Bind(r)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// whoAnswer is tab's WhoAnswer for a packet from src to dst, or fails the
// test.
func whoAnswer(t *testing.T, tab *Table, proto engine.Proto, src, dst string) WhoAnswer {
	t.Helper()
	a, err := tab.WhoAnswer(proto, ap(src), ap(dst))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkPools compares tab's port pools, each written by line, with want.
func checkPools(t *testing.T, tab *Table, line func(u PortUse) string, want ...string) {
	t.Helper()
	var got []string
	for _, u := range tab.Ports() {
		got = append(got, line(u))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("pools:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// eth0Joined is eth0 on 192.168.1.2/24, which joined 239.1.2.3.
func eth0Joined() []live.Interface {
	return []live.Interface{{Name: "eth0", Index: 3, Addrs: []netip.Prefix{pfx("192.168.1.2/24")},
		Groups: []netip.Addr{netip.MustParseAddr("239.1.2.3")}}}
}
