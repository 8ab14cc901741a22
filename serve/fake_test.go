package serve

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/socktab/socktab/live"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func bptr(b bool) *bool { return &b }

// fakeHost is a small machine: eth0 with a public, a private and a
// link-local address; a wildcard listener shadowed on the private address
// by a specific one, a dual-stack [::] listener, a loopback one, and a
// tiny ephemeral range (40000-40009) almost used up toward one server.
func fakeHost(netns string) *live.Snapshot {
	s := &live.Snapshot{
		Netns:  netns,
		Source: "netlink",
		Interfaces: []live.Interface{
			{Name: "lo", Index: 1, Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")}},
			{Name: "eth0", Index: 2, Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("203.0.113.5/24"),
				netip.MustParsePrefix("10.1.2.3/8"), netip.MustParsePrefix("fe80::1/64")}},
		},
		Sysctls: live.Sysctls{PortLow: 40000, PortHigh: 40009, UnprivilegedPortStart: 1024},
		Sockets: []live.Socket{
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("0.0.0.0:80"), Inode: 1},
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("10.1.2.3:80"), Inode: 2},
			{Proto: "tcp", Family: "inet6", State: "LISTEN", Local: ap("[::]:443"), V6Only: bptr(false), Inode: 3},
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("127.0.0.1:9000"), Inode: 4},
			{Proto: "udp", Family: "inet", State: "UNCONN", Local: ap("10.1.2.3:53"), Remote: ap("0.0.0.0:0"), Inode: 5},
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("203.0.113.5:80"), Remote: ap("198.51.100.1:50000"), Inode: 6},
			{Proto: "unix", Family: "unix", State: "LISTEN", Path: "/run/x.sock", Inode: 7},
		},
	}
	for p := 40000; p < 40009; p++ { // 9 of 10 ports toward 198.51.100.9:443, one in TIME-WAIT
		st := "ESTAB"
		if p == 40000 {
			st = "TIME-WAIT"
		}
		s.Sockets = append(s.Sockets, live.Socket{Proto: "tcp", Family: "inet", State: st,
			Local: ap(fmt.Sprintf("203.0.113.5:%d", p)), Remote: ap("198.51.100.9:443"), Inode: uint64(100 + p)})
	}
	s.Sockets = append(s.Sockets, live.Socket{Proto: "tcp", Family: "inet", State: "ESTAB",
		Local: ap("203.0.113.5:40001"), Remote: ap("198.51.100.10:443"), Inode: 99})
	return s
}

// fakeRead replaces the live reader with snapshots, streamed through Emit
// the way the live reader does (including one rewound false start), for
// the duration of the test.
func fakeRead(t *testing.T, snaps ...*live.Snapshot) {
	t.Helper()
	old := readFunc
	readFunc = func(_ Target, opts live.Options) ([]*live.Snapshot, error) {
		var out []*live.Snapshot
		for _, s := range snaps {
			c := *s
			if opts.Emit == nil {
				c.Sockets = nil
				for _, x := range s.Sockets {
					listening := x.State == "LISTEN" || x.State == "UNCONN" || x.State == "CLOSE"
					if opts.States == live.StatesListening && !listening {
						continue
					}
					if (opts.TCP || opts.UDP) && !opts.Unix && x.Family == "unix" {
						continue
					}
					x.Netns = s.Netns
					if opts.SockOpts != live.OptsNone && x.Family != "unix" {
						x.Opts, x.OptsSource = &live.SockOpts{ReusePort: x.Inode == 2}, live.SourceKernel
					}
					c.Sockets = append(c.Sockets, x)
				}
				out = append(out, &c)
				continue
			}
			// A dump the kernel interrupted: two sockets emitted, then void.
			for i := 0; i < 2 && i < len(s.Sockets); i++ {
				x := s.Sockets[i]
				x.Netns = s.Netns
				opts.Emit(&x)
			}
			opts.Rewind(min(2, len(s.Sockets)))
			for i := range s.Sockets {
				x := s.Sockets[i]
				x.Netns = s.Netns
				opts.Emit(&x)
			}
			c.Sockets = nil
			out = append(out, &c)
		}
		return out, nil
	}
	t.Cleanup(func() { readFunc = old })
}
