//go:build linux

package live

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socktab/socktab/internal/sockaddr"
	"golang.org/x/sys/unix"
)

// optSock is a socket the options test plants, with the options it set.
type optSock struct {
	fd   int
	want SockOpts
}

// plantOptSockets creates, inside ns, sockets with known options: a TCP
// listener with SO_REUSEADDR and a TIME-WAIT connection it accepted
// (which inherits SO_REUSEADDR), a reuseport pair, a v6-only UDP socket,
// a device-bound UDP socket and a plain bound TCP socket. It returns the
// sockets by local address and the TIME-WAIT connection's local and
// remote ends.
func plantOptSockets(t *testing.T, ns *testNS) (map[netip.AddrPort]optSock, netip.AddrPort, netip.AddrPort) {
	t.Helper()
	socks := map[netip.AddrPort]optSock{}
	var twLocal, twRemote netip.AddrPort
	ns.do(t, func() error {
		mk := func(v6 bool, typ int, ap string, o SockOpts) (int, error) {
			fam := unix.AF_INET
			if v6 {
				fam = unix.AF_INET6
			}
			fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return -1, err
			}
			t.Cleanup(func() { unix.Close(fd) })
			set := func(level, opt int, on bool) {
				if on {
					if err == nil {
						err = unix.SetsockoptInt(fd, level, opt, 1)
					}
				}
			}
			set(unix.SOL_SOCKET, unix.SO_REUSEADDR, o.ReuseAddr)
			set(unix.SOL_SOCKET, unix.SO_REUSEPORT, o.ReusePort)
			if v6 {
				v := 0
				if o.V6Only {
					v = 1
				}
				if err == nil {
					err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v)
				}
			}
			if o.Device != 0 && err == nil {
				err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, o.Device)
			}
			a := netip.MustParseAddrPort(ap)
			if err == nil {
				err = unix.Bind(fd, sockaddr.Inet(fam, a, 0))
			}
			if err != nil {
				return -1, fmt.Errorf("planting %s: %w", ap, err)
			}
			socks[a] = optSock{fd, o}
			return fd, nil
		}
		ln, err := mk(false, unix.SOCK_STREAM, "192.0.2.1:7201", SockOpts{ReuseAddr: true})
		if err != nil {
			return err
		}
		if err := unix.Listen(ln, 8); err != nil {
			return err
		}
		if _, err := mk(false, unix.SOCK_STREAM, "127.0.0.1:7202", SockOpts{ReusePort: true}); err != nil {
			return err
		}
		for _, fd := range []int{socks[mustAP("127.0.0.1:7202")].fd} {
			if err := unix.Listen(fd, 8); err != nil {
				return err
			}
		}
		if _, err := mk(true, unix.SOCK_DGRAM, "[::]:7203", SockOpts{V6Only: true, ReuseAddr: true}); err != nil {
			return err
		}
		if _, err := mk(false, unix.SOCK_DGRAM, "0.0.0.0:7204", SockOpts{Device: 1}); err != nil {
			return err
		}
		if _, err := mk(true, unix.SOCK_STREAM, "[2001:db8::1]:7205", SockOpts{V6Only: true}); err != nil {
			return err
		}
		// A connection the server side closes first: the server's end
		// (local 192.0.2.1:7201) goes to TIME-WAIT with the listener's
		// SO_REUSEADDR.
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(c)
		if err := unix.Connect(c, sockaddr.Inet(unix.AF_INET, mustAP("192.0.2.1:7201"), 0)); err != nil {
			return err
		}
		a, _, err := unix.Accept(ln)
		if err != nil {
			return err
		}
		sa, _ := unix.Getsockname(a)
		pa, _ := unix.Getpeername(a)
		twLocal, twRemote = sockaddr.AddrPort(sa), sockaddr.AddrPort(pa)
		unix.Close(a)
		// Wait for the FIN to reach the client, then close it: the server
		// side moves FIN-WAIT-2 -> TIME-WAIT.
		buf := make([]byte, 1)
		if n, err := unix.Read(c, buf); n != 0 || err != nil {
			return fmt.Errorf("client read after server close: %d, %v", n, err)
		}
		return nil
	})
	return socks, twLocal, twRemote
}

func TestReadOptions(t *testing.T) {
	ns := newTestNS(t)
	socks, twLocal, twRemote := plantOptSockets(t, ns)
	// A socket on a planted port in the test's own namespace must not show
	// up: the iterator walks the namespace it is opened in.
	outside, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(outside)
	unix.SetsockoptInt(outside, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	if err := unix.Bind(outside, sockaddr.Inet(unix.AF_INET, mustAP("0.0.0.0:7204"), 0)); err != nil {
		t.Logf("outside socket not bound (%v); the namespace check is weaker", err)
	}

	read := func(mode string) *Snapshot {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			sn := one(t, readSettled(t, NetnsTarget{Name: ns.name}, Options{TCP: true, UDP: true, SockOpts: mode}))
			for _, s := range sn.Sockets {
				if s.State == "TIME-WAIT" && s.Local == twLocal {
					return sn
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no TIME-WAIT socket on %s", twLocal)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Run("bpf", func(t *testing.T) {
		if os.Getenv("CI") != "true" {
			if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
				t.Skip("SKIPPED: no kernel BTF, the BPF socket iterator cannot load")
			}
		}
		sn := read(OptsBPF)
		if sn.OptsSource != SourceKernel {
			t.Errorf("OptsSource = %q, want kernel", sn.OptsSource)
		}
		checkOpts(t, sn, socks, SourceKernel)
		tw := false
		for _, s := range sn.Sockets {
			if s.State == "TIME-WAIT" && s.Local == twLocal && s.Remote == twRemote {
				tw = true
				if s.Opts == nil || !s.Opts.ReuseAddr || s.OptsSource != SourceKernel {
					t.Errorf("TIME-WAIT %s -> %s: options %+v from %q, want SO_REUSEADDR from the kernel", s.Local, s.Remote, s.Opts, s.OptsSource)
				}
			}
		}
		if !tw {
			t.Errorf("TIME-WAIT socket %s -> %s not read", twLocal, twRemote)
		}
		var b *BindBucket
		for i := range sn.Buckets {
			if sn.Buckets[i].Port == 7202 {
				b = &sn.Buckets[i]
			}
		}
		// One reuseport listener: the kernel leaves fastreuseport
		// FASTREUSEPORT_STRICT (2) after listen() re-ran the bind check,
		// fastuid its uid, fastreuse 0 (a listener clears it).
		if b == nil || b.FastReuseport != 2 || b.FastReuse != 0 || b.FastUID != 0 || b.FastFamily != "inet" {
			t.Errorf("bucket of port 7202 = %+v, want fastreuseport 2, fastreuse 0, uid 0, inet", b)
		}
		// The port of a socket bound but not listening: its bucket too.
		b = nil
		for i := range sn.Buckets {
			if sn.Buckets[i].Port == 7205 {
				b = &sn.Buckets[i]
			}
		}
		if b == nil || b.FastReuseport != 0 || b.FastReuse != 0 {
			t.Errorf("bucket of port 7205 (bound, not listening) = %+v, want fastreuseport 0, fastreuse 0", b)
		}
		for _, m := range sn.Missing {
			if strings.Contains(m, "other namespaces") {
				t.Errorf("the iterator walked other namespaces: %s", m)
			}
		}
		for _, s := range sn.Sockets {
			if s.Local.Port() == 7204 && s.Opts != nil && s.Opts.ReusePort {
				t.Errorf("the iterator reported the socket of another namespace: %+v", s)
			}
		}
	})
	t.Run("fd", func(t *testing.T) {
		sn := read(OptsFD)
		checkOpts(t, sn, socks, SourceSocket)
		for _, s := range sn.Sockets {
			if s.State == "TIME-WAIT" && s.Opts != nil {
				t.Errorf("TIME-WAIT %s has options %+v without BPF", s.Local, s.Opts)
			}
		}
		if len(sn.Buckets) != 0 {
			t.Errorf("buckets without BPF: %+v", sn.Buckets)
		}
	})
}

func checkOpts(t *testing.T, sn *Snapshot, socks map[netip.AddrPort]optSock, source string) {
	t.Helper()
	seen := 0
	for _, s := range sn.Sockets {
		o, ok := socks[s.Local]
		if !ok || s.State == "TIME-WAIT" || s.Remote.Port() != 0 {
			continue
		}
		seen++
		// A TCP socket bound but not listening sits only in the bind hash,
		// which the tcp iterator does not walk: the BPF reader reaches it
		// through its descriptor (the task_file iterator).
		if s.Opts == nil || *s.Opts != o.want || s.OptsSource != source {
			t.Errorf("%s %s: options %+v from %q, want %+v from %q", s.Proto, s.Local, s.Opts, s.OptsSource, o.want, source)
		}
	}
	if seen != len(socks) {
		t.Errorf("%d of %d planted sockets found", seen, len(socks))
	}
}

func TestReadPortFilter(t *testing.T) {
	ns := newTestNS(t)
	plantOptSockets(t, ns)
	for _, port := range []uint16{7201, 7203, 7204} {
		sn := one(t, readSettled(t, NetnsTarget{Name: ns.name}, Options{TCP: true, UDP: true, Port: port}))
		all := one(t, readSettled(t, NetnsTarget{Name: ns.name}, Options{TCP: true, UDP: true}))
		want := keys(all.Sockets, false, func(s Socket) bool { return s.Local.Port() == port })
		if len(want) == 0 {
			t.Fatalf("no socket on port %d", port)
		}
		diffKeys(t, fmt.Sprintf("port %d", port), keys(sn.Sockets, false, nil), want)
	}
}

// TestReadUDPChainOrder plants UDP sockets of both families on one port and
// checks that the BPF reader reports their places on the port's hash chain:
// newest first, except an AF_INET6 SO_REUSEPORT socket, which udp_lib_get_port
// adds at the tail.
func TestReadUDPChainOrder(t *testing.T) {
	if os.Getenv("CI") != "true" {
		if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
			t.Skip("SKIPPED: no kernel BTF, the BPF socket iterator cannot load")
		}
	}
	ns := newTestNS(t)
	// In bind order; all SO_REUSEADDR so that every bind succeeds.
	binds := []struct {
		addr      string
		reuseport bool
	}{
		{"127.0.0.1:7210", false},
		{"[::]:7210", true}, // to the tail
		{"[::1]:7210", false},
		{"192.0.2.1:7210", false},
	}
	wantChain := []string{"192.0.2.1:7210", "[::1]:7210", "127.0.0.1:7210", "[::]:7210"}
	ns.do(t, func() error {
		for _, b := range binds {
			a := mustAP(b.addr)
			v6 := a.Addr().Is6()
			fam := unix.AF_INET
			if v6 {
				fam = unix.AF_INET6
			}
			fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			t.Cleanup(func() { unix.Close(fd) })
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
				return err
			}
			if b.reuseport {
				if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
					return err
				}
			}
			if v6 {
				if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
					return err
				}
			}
			if err := unix.Bind(fd, sockaddr.Inet(fam, a, 0)); err != nil {
				return fmt.Errorf("bind %s: %w", a, err)
			}
		}
		return nil
	})
	sn := one(t, readSettled(t, NetnsTarget{Name: ns.name}, Options{UDP: true, Port: 7210, SockOpts: OptsBPF}))
	pos := map[string]int{}
	for _, s := range sn.Sockets {
		if s.ChainPos == 0 {
			t.Fatalf("%s: no chain position read", s.Local)
		}
		pos[s.Local.String()] = int(s.ChainPos)
	}
	t.Logf("chain positions: %v", pos)
	for i := 1; i < len(wantChain); i++ {
		a, b := wantChain[i-1], wantChain[i]
		if pos[a] <= pos[b] {
			t.Errorf("chain positions %v: want %s before %s on the chain", pos, a, b)
		}
	}
}

// TestReadUDPSlot checks that the BPF reader reads how many sockets the
// kernel counts in a UDP port's primary hash slot: the port's own, and
// those of a port udp_hash_entries apart, which hashes to the same slot in
// one namespace whatever its salt.
func TestReadUDPSlot(t *testing.T) {
	if os.Getenv("CI") != "true" {
		if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
			t.Skip("SKIPPED: no kernel BTF, the BPF socket iterator cannot load")
		}
	}
	ns := newTestNS(t)
	var entries int
	counts := map[uint16]int{7220: 12, 7221: 2}
	ns.do(t, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/udp_hash_entries")
		if err != nil {
			return err
		}
		if entries, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return err
		}
		entries = max(entries, -entries) // negative: the namespace shares the initial one's table
		if 7221+entries < 65536 {
			counts[uint16(7221+entries)] = 3 // the same slot as 7221
		}
		for port, n := range counts {
			for range n {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					return err
				}
				t.Cleanup(func() { unix.Close(fd) })
				if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
					return err
				}
				if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}}); err != nil {
					return fmt.Errorf("bind 127.0.0.1:%d: %w", port, err)
				}
			}
		}
		return nil
	})
	t.Logf("udp_hash_entries %d", entries)
	sn := one(t, readSettled(t, NetnsTarget{Name: ns.name}, Options{UDP: true, SockOpts: OptsBPF}))
	seen := map[uint16]int{}
	for _, s := range sn.Sockets {
		p := s.Local.Port()
		if counts[p] == 0 {
			continue
		}
		if seen[p]++; seen[p] == 1 {
			t.Logf("port %d: slot count %d", p, s.UDPSlot)
		}
		if s.UDPSlot == 0 {
			t.Fatalf("%s: no slot count read", s.Local)
		}
		// Sockets of other namespaces may hash there too: at least.
		want := counts[p]
		if p == 7221 || int(p) == 7221+entries {
			want = counts[7221] + counts[uint16(7221+entries)]
		}
		if s.UDPSlot < want {
			t.Errorf("%s: slot count %d, want at least %d", s.Local, s.UDPSlot, want)
		}
		// Other packages' tests run at once and may crowd a port of their
		// own namespace into this slot (a dozen sockets, rarely): far above
		// means a wrong slot or a wrong count, not a neighbour.
		if s.UDPSlot > want+64 {
			t.Errorf("%s: slot count %d, far above the %d sockets planted there", s.Local, s.UDPSlot, want)
		}
	}
	for p, n := range counts {
		if seen[p] != n {
			t.Errorf("port %d: %d sockets read, %d planted", p, seen[p], n)
		}
	}
}

// TestReadConnectBind checks that the BPF reader tells a connection whose
// port connect() chose from one whose port was bound first, TIME-WAIT
// included (SOCK_CONNECT_BIND / tw_connect_bind, Linux 6.18).
func TestReadConnectBind(t *testing.T) {
	if os.Getenv("CI") != "true" {
		if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
			t.Skip("SKIPPED: no kernel BTF, the BPF socket iterator cannot load")
		}
	}
	ns := newTestNS(t)
	var auto, bound, twAuto netip.AddrPort
	ns.do(t, func() error {
		tcp := func() (int, error) {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err == nil {
				t.Cleanup(func() { unix.Close(fd) })
			}
			return fd, err
		}
		ln, err := tcp()
		if err != nil {
			return err
		}
		if err := unix.Bind(ln, sockaddr.Inet(unix.AF_INET, mustAP("127.0.0.1:7230"), 0)); err != nil {
			return err
		}
		if err := unix.Listen(ln, 8); err != nil {
			return err
		}
		connect := func(local string) (int, netip.AddrPort, error) {
			c, err := tcp()
			if err != nil {
				return -1, netip.AddrPort{}, err
			}
			if local != "" {
				if err := unix.Bind(c, sockaddr.Inet(unix.AF_INET, mustAP(local), 0)); err != nil {
					return -1, netip.AddrPort{}, err
				}
			}
			if err := unix.Connect(c, sockaddr.Inet(unix.AF_INET, mustAP("127.0.0.1:7230"), 0)); err != nil {
				return -1, netip.AddrPort{}, err
			}
			sa, err := unix.Getsockname(c)
			return c, sockaddr.AddrPort(sa), err
		}
		var c int
		if _, auto, err = connect(""); err != nil {
			return err
		}
		if _, bound, err = connect("127.0.0.1:7231"); err != nil {
			return err
		}
		// A client that closes first keeps TIME-WAIT on its connect()-chosen port.
		if c, twAuto, err = connect(""); err != nil {
			return err
		}
		a, _, err := unix.Accept(ln)
		for ; err == nil; a, _, err = unix.Accept(ln) {
			t.Cleanup(func() { unix.Close(a) })
			if sa, _ := unix.Getpeername(a); sockaddr.AddrPort(sa) == twAuto {
				unix.Close(c)
				buf := make([]byte, 1)
				if n, err := unix.Read(a, buf); n != 0 || err != nil {
					return fmt.Errorf("server read after client close: %d, %v", n, err)
				}
				return unix.Close(a)
			}
		}
		return err
	})
	want := map[netip.AddrPort]bool{auto: true, bound: false, twAuto: true}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sn := one(t, readSettled(t, NetnsTarget{Name: ns.name}, Options{TCP: true, SockOpts: OptsBPF}))
		got := map[netip.AddrPort]*bool{}
		tw := false
		for _, s := range sn.Sockets {
			if _, ok := want[s.Local]; ok && s.Remote.Port() == 7230 {
				got[s.Local] = s.ConnectBind
				tw = tw || s.Local == twAuto && s.State == "TIME-WAIT"
			}
		}
		if !tw && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		for ap, w := range want {
			if g := got[ap]; g == nil || *g != w {
				t.Errorf("client end %s: ConnectBind %v, want %v", ap, g, w)
			}
		}
		return
	}
}
