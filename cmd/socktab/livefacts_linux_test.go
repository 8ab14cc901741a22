package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/socktab/socktab/report"
	"golang.org/x/sys/unix"
)

// Tests of issue 10 items 2-6 against the kernel: each plants real sockets
// in a namespace whose interfaces are two veths, and checks socktab's
// answer and the kernel's.

// withVeths gives f two veths, vx0 (203.0.113.1/24, unused) and eth1
// (198.51.100.1/24, fe80::1/64), each paired with an end in a peer
// namespace (198.51.100.2 on eth1's peer). vx0 comes first so that eth1's
// kernel index is not the one an engine numbering its interfaces itself
// would give it. It returns the peer namespace's name.
func (f *netnsFixture) withVeths() string {
	f.t.Helper()
	peer := fmt.Sprintf("socktab-peer-%d", rand.IntN(1<<30))
	if out, err := exec.Command("ip", "netns", "add", peer).CombinedOutput(); err != nil {
		f.t.Fatalf("ip netns add: %v %s", err, out)
	}
	f.t.Cleanup(func() { exec.Command("ip", "netns", "del", peer).Run() })
	pip := func(args ...string) {
		f.t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", peer}, args...)...).CombinedOutput(); err != nil {
			f.t.Fatalf("ip -n peer %v: %v %s", args, err, out)
		}
	}
	for _, v := range []string{"vx0", "eth1"} {
		f.ip("link", "add", v, "type", "veth", "peer", "name", "p"+v, "netns", peer)
		f.ip("link", "set", v, "up")
		pip("link", "set", "p"+v, "up")
	}
	pip("link", "set", "lo", "up")
	f.ip("addr", "add", "203.0.113.1/24", "dev", "vx0")
	f.ip("addr", "add", "198.51.100.1/24", "dev", "eth1")
	f.ip("addr", "add", "fe80::1/64", "dev", "eth1", "nodad")
	pip("addr", "add", "198.51.100.2/24", "dev", "peth1")
	return peer
}

// sock makes a socket in the namespace with options, bound to sa (and
// listening for TCP); it fails the test if the kernel refuses.
func (f *netnsFixture) sock(fam, typ int, sa unix.Sockaddr, setup func(fd int) error) int {
	f.t.Helper()
	fd := -1
	f.in(func() {
		var err error
		if fd, err = unix.Socket(fam, typ, 0); err != nil {
			f.t.Fatal(err)
		}
		if setup != nil {
			if err := setup(fd); err != nil {
				f.t.Fatal(err)
			}
		}
		if err := unix.Bind(fd, sa); err != nil {
			f.t.Fatalf("bind %v: %v", sa, err)
		}
		if typ == unix.SOCK_STREAM {
			if err := unix.Listen(fd, 16); err != nil {
				f.t.Fatal(err)
			}
		}
	})
	f.fds = append(f.fds, fd)
	return fd
}

func reuseAddr(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) }

func bindDev(dev string, more ...func(int) error) func(int) error {
	return func(fd int) error {
		for _, m := range more {
			if err := m(fd); err != nil {
				return err
			}
		}
		return unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev)
	}
}

// inPeer runs fn on a thread inside namespace name.
func inPeer(t *testing.T, name string, fn func()) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open("/run/netns/" + name)
		if err != nil {
			done <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func whoJSON(t *testing.T, args ...string) (report.Who, int) {
	t.Helper()
	out, code := runCLI(t, append([]string{"who"}, append(args, "-o", "json")...)...)
	var got []report.Who
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Fatalf("who %v: %v: %s", args, err, out)
	}
	return got[0], code
}

// Item 2: a listener bound to an interface other than lo is found by who,
// rated by audit, shown with %dev by ls and with "device" in JSON.
func TestDeviceBoundListenerOnAnExternalInterface(t *testing.T) {
	f := newNetns(t)
	peer := f.withVeths()
	f.sock(unix.AF_INET, unix.SOCK_STREAM, v4([4]byte{}, 8443), bindDev("eth1"))
	f.sock(unix.AF_INET, unix.SOCK_DGRAM, v4([4]byte{}, 5300), bindDev("eth1"))
	f.sock(unix.AF_INET, unix.SOCK_STREAM, v4([4]byte{127, 0, 0, 1}, 8444), nil)

	// The kernel: a client on eth1's link reaches it.
	inPeer(t, peer, func() {
		fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		defer unix.Close(fd)
		if err := unix.Connect(fd, v4([4]byte{198, 51, 100, 1}, 8443)); err != nil {
			t.Fatalf("kernel: connect from eth1's link: %v", err)
		}
	})
	w, code := whoJSON(t, "tcp", "198.51.100.1:8443", "--from", "198.51.100.2:40000", "--netns", f.name)
	if code != 0 || w.Socket == nil || w.Socket.Device == nil || *w.Socket.Device != "eth1" {
		t.Errorf("who tcp 198.51.100.1:8443: exit %d, %+v; want the eth1-bound listener", code, w)
	}
	// Arriving on vx0 it does not match: the kernel answers RST.
	w, code = whoJSON(t, "tcp", "203.0.113.1:8443", "--netns", f.name)
	if code != 1 || w.Verdict != "rst" {
		t.Errorf("who tcp 203.0.113.1:8443 (arrives on vx0): exit %d verdict %s; want rst", code, w.Verdict)
	}
	w, code = whoJSON(t, "udp", "198.51.100.1:5300", "--netns", f.name)
	if code != 0 || w.Socket == nil {
		t.Errorf("who udp 198.51.100.1:5300: exit %d %+v", code, w)
	}

	out, _ := runCLI(t, "audit", "--netns", f.name, "-o", "json")
	var got []report.Finding
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range got {
		if *e.Socket.Local == "0.0.0.0:8443" {
			found = true
			if e.Severity == "info" || !strings.Contains(strings.Join(e.Accepts, ","), "198.51.100.1") || !strings.Contains(e.Finding, "eth1") {
				t.Errorf("audit of the eth1-bound listener: %s %v %q", e.Severity, e.Accepts, e.Finding)
			}
		}
	}
	if !found {
		t.Errorf("audit does not list 0.0.0.0:8443: %s", out)
	}

	out, _ = runCLI(t, "ls", "-t", "-l", "--netns", f.name)
	if !strings.Contains(out, "0.0.0.0%eth1:8443") {
		t.Errorf("ls should show the device as ss does (0.0.0.0%%eth1:8443):\n%s", out)
	}
	if ss, err := exec.Command("ip", "netns", "exec", f.name, "ss", "-tln").Output(); err == nil && !strings.Contains(string(ss), "0.0.0.0%eth1:8443") {
		t.Errorf("ss writes it differently:\n%s", ss)
	}
	out, _ = runCLI(t, "ls", "-l", "--netns", f.name, "-o", "json")
	var socks []report.Socket
	if err := json.Unmarshal([]byte(out), &socks); err != nil {
		t.Fatal(err)
	}
	for _, s := range socks {
		if s.Local == nil || s.Family == "unix" {
			continue
		}
		bound := strings.HasSuffix(*s.Local, ":8443") || strings.HasSuffix(*s.Local, ":5300")
		if bound != (s.Device != nil) || (bound && *s.Device != "eth1") {
			t.Errorf("ls -o json %s: device %v", *s.Local, s.Device)
		}
	}
	if !strings.Contains(out, `"device": null`) {
		t.Errorf(`an unbound socket's device is null: %s`, out)
	}
}

// Item 3: IPv6 scope in bind and who, each answer checked against a real
// bind in the namespace.
func TestIPv6ScopeInBindAndWho(t *testing.T) {
	f := newNetns(t)
	f.withVeths()
	eth1 := 0
	f.in(func() {
		i, err := net.InterfaceByName("eth1")
		if err != nil {
			t.Fatal(err)
		}
		eth1 = i.Index
	})
	ll := [16]byte{0xfe, 0x80, 15: 1}
	cases := []struct {
		typ  int
		addr string
		sa   *unix.SockaddrInet6
		want error
	}{
		{unix.SOCK_STREAM, "[fe80::1]:9000", &unix.SockaddrInet6{Addr: ll, Port: 9000}, unix.EINVAL},
		{unix.SOCK_STREAM, "[fe80::1%vx0]:9000", nil, unix.EADDRNOTAVAIL},
		{unix.SOCK_STREAM, "[fe80::1%eth1]:9000", &unix.SockaddrInet6{Addr: ll, Port: 9000, ZoneId: uint32(eth1)}, nil},
		{unix.SOCK_STREAM, fmt.Sprintf("[fe80::1%%%d]:9000", eth1), &unix.SockaddrInet6{Addr: ll, Port: 9000, ZoneId: uint32(eth1)}, nil},
		{unix.SOCK_STREAM, "[ff05::1]:9000", &unix.SockaddrInet6{Addr: [16]byte{0xff, 0x05, 15: 1}, Port: 9000}, unix.EINVAL},
		{unix.SOCK_DGRAM, "[ff05::1]:9000", &unix.SockaddrInet6{Addr: [16]byte{0xff, 0x05, 15: 1}, Port: 9000}, nil},
	}
	for _, c := range cases {
		if c.sa == nil { // the zone by name: resolve it in the namespace
			f.in(func() {
				i, _ := net.InterfaceByName(strings.TrimSuffix(strings.SplitN(c.addr, "%", 2)[1], "]:9000"))
				c.sa = &unix.SockaddrInet6{Addr: ll, Port: 9000, ZoneId: uint32(i.Index)}
			})
		}
		var kerr error
		f.in(func() {
			fd, _ := unix.Socket(unix.AF_INET6, c.typ, 0)
			defer unix.Close(fd)
			kerr = unix.Bind(fd, c.sa)
		})
		if !errors.Is(kerr, c.want) && !(kerr == nil && c.want == nil) {
			t.Errorf("kernel bind %s = %v, want %v (fixture)", c.addr, kerr, c.want)
		}
		proto := "tcp"
		if c.typ == unix.SOCK_DGRAM {
			proto = "udp"
		}
		out, code := runCLI(t, "bind", proto, c.addr, "--netns", f.name, "-o", "json")
		var got []report.Bind
		if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
			t.Fatalf("bind %s: %v %s", c.addr, err, out)
		}
		want := "ok"
		if c.want != nil {
			want = unix.ErrnoName(c.want.(unix.Errno))
		}
		if got[0].Result != want || (code == 0) != (c.want == nil) {
			t.Errorf("socktab bind %s %s: %s (exit %d), kernel %s", proto, c.addr, got[0].Result, code, want)
		}
	}

	f.sock(unix.AF_INET6, unix.SOCK_STREAM, &unix.SockaddrInet6{Port: 8444}, nil)
	w, code := whoJSON(t, "tcp", "[fe80::1%eth1]:8444", "--from", "[fe80::2]:4000", "--netns", f.name)
	if code != 0 || w.Socket == nil || *w.Socket.Local != "[::]:8444" {
		t.Errorf("who tcp [fe80::1%%eth1]:8444: exit %d %+v", code, w)
	}
	// fe80::1 is local only on eth1's link.
	if w, code = whoJSON(t, "tcp", "[fe80::1%vx0]:8444", "--from", "[fe80::2]:4000", "--netns", f.name); code != 1 || w.Verdict != "drop" {
		t.Errorf("who tcp [fe80::1%%vx0]:8444: exit %d verdict %s, want drop", code, w.Verdict)
	}
}

// Item 4: of two UDP sockets sharing an address through SO_REUSEADDR the
// most recently bound receives (no reuseport group); a device-bound
// socket beats an unbound one. The kernel says which received.
func TestWhoPicksTheKernelsReceiver(t *testing.T) {
	f := newNetns(t)
	peer := f.withVeths()
	f.sock(unix.AF_INET, unix.SOCK_DGRAM, v4([4]byte{}, 5400), reuseAddr)
	second := f.sock(unix.AF_INET, unix.SOCK_DGRAM, v4([4]byte{}, 5400), reuseAddr)
	devBound := f.sock(unix.AF_INET, unix.SOCK_DGRAM, v4([4]byte{}, 5401), bindDev("eth1", reuseAddr))
	f.sock(unix.AF_INET, unix.SOCK_DGRAM, v4([4]byte{}, 5401), reuseAddr) // bound later, unbound

	var st unix.Stat_t
	inode := func(fd int) uint64 { unix.Fstat(fd, &st); return st.Ino }
	w, _ := whoJSON(t, "udp", "127.0.0.1:5400", "--netns", f.name)
	if w.Socket == nil || w.Socket.Inode == nil || *w.Socket.Inode != inode(second) || len(w.Group) > 1 {
		t.Errorf("who udp 127.0.0.1:5400 should name the later SO_REUSEADDR socket (inode %d) and no group: %+v", inode(second), w)
	}
	w, _ = whoJSON(t, "udp", "198.51.100.1:5401", "--from", "198.51.100.2:4000", "--netns", f.name)
	if w.Socket == nil || w.Socket.Inode == nil || *w.Socket.Inode != inode(devBound) {
		t.Errorf("who udp 198.51.100.1:5401 should name the eth1-bound socket (inode %d): %+v", inode(devBound), w)
	}
	// The kernel: send both datagrams and see who got them.
	f.in(func() {
		c, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		defer unix.Close(c)
		unix.Sendto(c, []byte("x"), 0, v4([4]byte{127, 0, 0, 1}, 5400))
	})
	inPeer(t, peer, func() {
		c, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		defer unix.Close(c)
		unix.Sendto(c, []byte("x"), 0, v4([4]byte{198, 51, 100, 1}, 5401))
	})
	for _, fd := range []int{second, devBound} {
		if !readable(fd) {
			t.Errorf("kernel: the socket socktab named (inode %d) got no datagram", inode(fd))
		}
	}
}

// readable waits up to a second for a datagram on fd.
func readable(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, _ := unix.Poll(p, 1000)
	return n == 1
}

// Item 5: broadcast reaches every wildcard socket on the port, multicast
// every one on an interface that joined; who says so, and the kernel too.
func TestWhoBroadcastAndMulticast(t *testing.T) {
	f := newNetns(t)
	peer := f.withVeths()
	a := f.sock(unix.AF_INET, unix.SOCK_DGRAM, v4([4]byte{}, 5353), reuseAddr)
	b := f.sock(unix.AF_INET, unix.SOCK_DGRAM, v4([4]byte{}, 5353), reuseAddr)
	f.sock(unix.AF_INET, unix.SOCK_DGRAM, v4([4]byte{198, 51, 100, 1}, 5353), reuseAddr)
	w, code := whoJSON(t, "udp", "198.51.100.255:5353", "--from", "198.51.100.2:4000", "--netns", f.name)
	if code != 0 || len(w.Receivers) != 2 || w.Answer != "ok" {
		t.Errorf("who udp 198.51.100.255:5353: exit %d, %d receivers (%s), want the 2 wildcard sockets", code, len(w.Receivers), w.Stage)
	}
	inPeer(t, peer, func() {
		c, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		defer unix.Close(c)
		unix.SetsockoptInt(c, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
		if err := unix.Sendto(c, []byte("x"), 0, v4([4]byte{198, 51, 100, 255}, 5353)); err != nil {
			t.Fatal(err)
		}
	})
	for _, fd := range []int{a, b} {
		if !readable(fd) {
			t.Errorf("kernel: a wildcard socket got no copy of the broadcast")
		}
	}

	// Multicast: nobody joined 239.1.2.3 on eth1 yet: dropped.
	if w, code = whoJSON(t, "udp", "239.1.2.3:5353", "--dev", "eth1", "--netns", f.name); code != 1 || w.Verdict != "drop" {
		t.Errorf("who udp 239.1.2.3:5353 before any join: exit %d verdict %s", code, w.Verdict)
	}
	f.in(func() {
		mr := &unix.IPMreqn{Multiaddr: [4]byte{239, 1, 2, 3}}
		i, _ := net.InterfaceByName("eth1")
		mr.Ifindex = int32(i.Index)
		if err := unix.SetsockoptIPMreqn(a, unix.SOL_IP, unix.IP_ADD_MEMBERSHIP, mr); err != nil {
			t.Fatal(err)
		}
	})
	// Both AF_INET sockets take it (IP_MULTICAST_ALL, read from sock_diag).
	if w, code = whoJSON(t, "udp", "239.1.2.3:5353", "--dev", "eth1", "--netns", f.name); code != 0 || len(w.Receivers) != 2 {
		t.Errorf("who udp 239.1.2.3:5353 after a join on eth1: exit %d, %d receivers (%s %v)", code, len(w.Receivers), w.Stage, w.Unknowns)
	}
	// One that turned IP_MULTICAST_ALL off takes it only if it joined:
	// its own descriptor says whether it did (MCAST_MSFILTER).
	e := f.sock(unix.AF_INET, unix.SOCK_DGRAM, v4([4]byte{}, 5353), func(fd int) error {
		reuseAddr(fd)
		return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_MULTICAST_ALL, 0)
	})
	if w, code = whoJSON(t, "udp", "239.1.2.3:5353", "--dev", "eth1", "--netns", f.name); code != 0 || len(w.Receivers) != 2 || len(w.Unknowns) != 0 {
		t.Errorf("who with an unjoined IP_MULTICAST_ALL=0 socket: exit %d, %d receivers, unknowns %v", code, len(w.Receivers), w.Unknowns)
	}
	f.in(func() {
		mr := &unix.IPMreqn{Multiaddr: [4]byte{239, 1, 2, 3}}
		i, _ := net.InterfaceByName("eth1")
		mr.Ifindex = int32(i.Index)
		if err := unix.SetsockoptIPMreqn(e, unix.SOL_IP, unix.IP_ADD_MEMBERSHIP, mr); err != nil {
			t.Fatal(err)
		}
	})
	if w, code = whoJSON(t, "udp", "239.1.2.3:5353", "--dev", "eth1", "--netns", f.name); code != 0 || len(w.Receivers) != 3 {
		t.Errorf("who once it joined: exit %d, %d receivers, unknowns %v", code, len(w.Receivers), w.Unknowns)
	}
	// The kernel: all three get the datagram from eth1's link.
	inPeer(t, peer, func() {
		c, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		defer unix.Close(c)
		unix.SetsockoptString(c, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "peth1")
		if err := unix.Sendto(c, []byte("x"), 0, v4([4]byte{239, 1, 2, 3}, 5353)); err != nil {
			t.Fatal(err)
		}
	})
	for _, fd := range []int{a, b, e} {
		if !readable(fd) {
			t.Errorf("kernel: a socket socktab named got no copy of the multicast datagram")
		}
	}

	// IPv6: IPV6_MULTICAST_ALL (on by default) read from the descriptor.
	x := f.sock(unix.AF_INET6, unix.SOCK_DGRAM, &unix.SockaddrInet6{Port: 5354}, reuseAddr)
	f.sock(unix.AF_INET6, unix.SOCK_DGRAM, &unix.SockaddrInet6{Port: 5354}, func(fd int) error {
		reuseAddr(fd)
		return unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_MULTICAST_ALL, 0)
	})
	f.in(func() {
		i, _ := net.InterfaceByName("eth1")
		mr := &unix.IPv6Mreq{Multiaddr: [16]byte{0xff, 0x05, 14: 0x01, 15: 0x23}, Interface: uint32(i.Index)}
		if err := unix.SetsockoptIPv6Mreq(x, unix.SOL_IPV6, unix.IPV6_JOIN_GROUP, mr); err != nil {
			t.Fatal(err)
		}
	})
	if w, code = whoJSON(t, "udp", "[ff05::123]:5354", "--dev", "eth1", "--netns", f.name); code != 0 || len(w.Receivers) != 1 || len(w.Unknowns) != 0 {
		t.Errorf("who udp [ff05::123]:5354: exit %d, %d receivers, unknowns %v", code, len(w.Receivers), w.Unknowns)
	}
}

// Item 6: bind --uid defaults to the caller: an unprivileged caller gets
// EACCES for a privileged port, as the kernel gives it.
func TestBindUIDDefaultsToTheCaller(t *testing.T) {
	f := newNetns(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// This test binary is also the socktab command when called so
	// (TestMain); a copy anyone may run, as uid 65534 inside the namespace.
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := dir + "/socktab"
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr, want string
		uid        uint32
	}{
		{"0.0.0.0:80", "EACCES", 65534},
		{"0.0.0.0:8080", "ok", 65534},
	} {
		cmd := exec.Command("ip", "netns", "exec", f.name, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
			bin, "bind", "tcp", c.addr, "-o", "json")
		out, _ := cmd.Output()
		var got []report.Bind
		if err := json.Unmarshal(out, &got); err != nil || len(got) != 1 {
			t.Fatalf("socktab bind as uid 65534: %v: %s", err, out)
		}
		if got[0].Result != c.want || got[0].Request.UID != c.uid {
			t.Errorf("bind tcp %s as uid 65534: %s (uid %d), want %s as uid %d", c.addr, got[0].Result, got[0].Request.UID, c.want, c.uid)
		}
	}
	// The kernel agrees.
	var kerr error
	f.in(func() {
		fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		defer unix.Close(fd)
		// This thread only (a raw setresuid); it is discarded afterwards.
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), 65534, ^uintptr(0)); e != 0 {
			t.Fatal(e)
		}
		kerr = unix.Bind(fd, v4([4]byte{}, 80))
	})
	if !errors.Is(kerr, unix.EACCES) {
		t.Errorf("kernel bind :80 as euid 65534 = %v, want EACCES", kerr)
	}
}

// Item 7: ports counts the pools the kernel draws from: a listener on a
// port of the range takes it off the TCP pool, accepted connections are no
// destination, UDP is one pool for every destination. The kernel then
// fails the connect that the figures say is one too many.
func TestPortsAgreeWithTheKernel(t *testing.T) {
	f := newNetns(t)
	f.ip("addr", "add", "127.0.0.2/8", "dev", "lo")
	f.in(func() {
		os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("40000 40003"), 0)
	})
	f.sock(unix.AF_INET, unix.SOCK_STREAM, v4([4]byte{127, 0, 0, 1}, 40000), nil) // in the range
	f.sock(unix.AF_INET, unix.SOCK_STREAM, v4([4]byte{127, 0, 0, 1}, 8080), nil)
	connect := func(typ int, dst unix.Sockaddr) error {
		var err error
		f.in(func() {
			fd, _ := unix.Socket(unix.AF_INET, typ, 0)
			if err = unix.Connect(fd, dst); err == nil {
				f.fds = append(f.fds, fd)
			} else {
				unix.Close(fd)
			}
		})
		return err
	}
	for i := 0; i < 2; i++ {
		if err := connect(unix.SOCK_STREAM, v4([4]byte{127, 0, 0, 1}, 8080)); err != nil {
			t.Fatal(err)
		}
	}
	// A client of the listener on 40000: its accepted end is not a pool.
	if err := connect(unix.SOCK_STREAM, v4([4]byte{127, 0, 0, 1}, 40000)); err != nil {
		t.Fatal(err)
	}
	for i := byte(0); i < 3; i++ {
		if err := connect(unix.SOCK_DGRAM, v4([4]byte{127, 0, 0, 2 + i}, 53)); err != nil {
			t.Fatal(err)
		}
	}
	out, code := runCLI(t, "ports", "--netns", f.name, "-o", "json")
	if code != 0 {
		t.Fatalf("ports -o json: exit %d\n%s", code, out)
	}
	var got []report.Ports
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Fatalf("%v: %s", err, out)
	}
	pools := map[string]string{}
	for _, d := range got[0].Destinations {
		// (the accepted ends, from 40000 and 8080, would show up as pools
		// toward the clients' ports: the exact set below excludes them)
		pools[d.Proto+" "+d.Dst] = fmt.Sprintf("in=%d blocked=%d of=%d", d.InUse, d.Blocked, d.Capacity)
	}
	want := map[string]string{
		"tcp 127.0.0.1:8080":  "in=2 blocked=1 of=3",
		"tcp 127.0.0.1:40000": "in=1 blocked=1 of=3",
		"udp *":               "in=3 blocked=0 of=4",
	}
	for k, w := range want {
		if pools[k] != w {
			t.Errorf("pool %s: %q, want %q (all: %v)", k, pools[k], w, pools)
		}
	}
	if len(pools) != len(want) {
		t.Errorf("pools %v, want exactly %v", pools, want)
	}
	if _, code = runCLI(t, "ports", "--netns", f.name, "--fail-on", "70"); code != 1 {
		t.Errorf("ports --fail-on 70 with a pool at 75%%: exit %d, want 1", code)
	}
	if _, code = runCLI(t, "ports", "--netns", f.name, "--fail-on", "75"); code != 0 {
		t.Errorf("ports --fail-on 75 with no pool above 75%%: exit %d, want 0", code)
	}
	// The kernel: one more TCP connect to 8080 fits (of=3), the next fails;
	// one more UDP connect anywhere fits (of=4), the next gets EAGAIN.
	if err := connect(unix.SOCK_STREAM, v4([4]byte{127, 0, 0, 1}, 8080)); err != nil {
		t.Errorf("kernel: the third TCP connect to 8080: %v", err)
	}
	if err := connect(unix.SOCK_STREAM, v4([4]byte{127, 0, 0, 1}, 8080)); !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Errorf("kernel: the fourth TCP connect to 8080 = %v, want EADDRNOTAVAIL", err)
	}
	if err := connect(unix.SOCK_DGRAM, v4([4]byte{127, 0, 0, 9}, 53)); err != nil {
		t.Errorf("kernel: the fourth UDP connect: %v", err)
	}
	if err := connect(unix.SOCK_DGRAM, v4([4]byte{127, 0, 0, 10}, 53)); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("kernel: the fifth UDP connect (another destination) = %v, want EAGAIN", err)
	}
}
