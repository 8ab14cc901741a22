//go:build linux

package live

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socktab/socktab/internal/sockaddr"
	"golang.org/x/sys/unix"
)

// fixture is a known set of sockets created inside a test namespace.
type fixture struct {
	fds  []int
	want []Socket // as sock_diag must report them
}

func (fx *fixture) close() {
	for _, fd := range fx.fds {
		unix.Close(fd)
	}
	fx.fds = nil
}

const nobody = 65534

// buildFixture creates, inside ns: TCP listeners on 0.0.0.0 (owned by uid
// 65534), 192.0.2.1, [::] dual-stack, [::] v6only and [::1]; established
// pairs over IPv4, IPv6 and IPv4-to-dual-stack (v4-mapped); a TIME-WAIT;
// UDP sockets (bound v4, v6only on a specific v6 address, dual-stack [::],
// bound to lo, connected); unix stream listeners at a path and abstract,
// and an abstract seqpacket listener.
func buildFixture(t *testing.T, ns *testNS) *fixture {
	fx := &fixture{}
	t.Cleanup(fx.close)
	suffix := strings.TrimPrefix(ns.name, "socktab-live-")
	unixPath := filepath.Join(t.TempDir(), "s.sock")
	abstract := "@socktab-live-" + suffix
	abstractSeq := "@socktab-live-" + suffix + "-seq"

	type made struct {
		fd   int
		sock Socket
	}
	var ms []made
	var tw Socket
	var firstErr error
	ns.do(t, func() error {
		check := func(what string, e error) {
			if e != nil && firstErr == nil {
				firstErr = fmt.Errorf("%s: %w", what, e)
			}
		}
		sock := func(fam, typ int) int {
			fd, e := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
			check("socket", e)
			if fd >= 0 {
				fx.fds = append(fx.fds, fd)
			}
			return fd
		}
		v6only := func(fd int, v int) {
			check("IPV6_V6ONLY", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v))
		}
		add := func(fd int, s Socket) { ms = append(ms, made{fd, s}) }
		b := func(v bool) *bool { return &v }

		// TCP listeners.
		listen := func(ap string, v6 bool, only int) int {
			fam := unix.AF_INET
			if v6 {
				fam = unix.AF_INET6
			}
			fd := sock(fam, unix.SOCK_STREAM)
			if v6 {
				v6only(fd, only)
			}
			check("bind "+ap, unix.Bind(fd, sockaddr.Inet(fam, mustAP(ap), 0)))
			check("listen", unix.Listen(fd, 16))
			s := Socket{Proto: "tcp", Family: "inet", State: "LISTEN", Local: mustAP(ap), SendQ: 16}
			if v6 {
				// Binding a specific (non-mapped) IPv6 address makes the
				// kernel set sk_ipv6only (inet6_bind).
				s.Family, s.V6Only = "inet6", b(only == 1 || !mustAP(ap).Addr().IsUnspecified())
				s.Remote = mustAP("[::]:0")
			} else {
				s.Remote = mustAP("0.0.0.0:0")
			}
			add(fd, s)
			return fd
		}
		check("setfsuid", unix.Setfsuid(nobody))
		l1 := listen("0.0.0.0:7001", false, 0)
		check("setfsuid back", unix.Setfsuid(0))
		ms[len(ms)-1].sock.UID = nobody
		l2 := listen("192.0.2.1:7002", false, 0)
		l3 := listen("[::]:7003", true, 0)
		listen("[::]:7004", true, 1)
		l5 := listen("[::1]:7005", true, 0)
		// Bound, never listening: sock_diag reports it (TCP_BOUND_INACTIVE
		// in the request, state CLOSE in the reply); /proc/net does not.
		bi := sock(unix.AF_INET, unix.SOCK_STREAM)
		check("bind 7006", unix.Bind(bi, sockaddr.Inet(unix.AF_INET, mustAP("0.0.0.0:7006"), 0)))
		add(bi, Socket{Proto: "tcp", Family: "inet", State: "CLOSE", Local: mustAP("0.0.0.0:7006"), Remote: mustAP("0.0.0.0:0")})

		// Established pairs: client connects, listener accepts.
		pair := func(l int, to string, v6client bool) (client, server int) {
			fam := unix.AF_INET
			if v6client {
				fam = unix.AF_INET6
			}
			client = sock(fam, unix.SOCK_STREAM)
			check("connect "+to, unix.Connect(client, sockaddr.Inet(fam, mustAP(to), 0)))
			server, _, e := unix.Accept4(l, unix.SOCK_CLOEXEC)
			check("accept", e)
			if server >= 0 {
				fx.fds = append(fx.fds, server)
			}
			return client, server
		}
		estab := func(client, server int, fam, srvFam string) {
			cl, e1 := unix.Getsockname(client)
			cr, e2 := unix.Getpeername(client)
			sl, e3 := unix.Getsockname(server)
			sr, e4 := unix.Getpeername(server)
			for _, e := range []error{e1, e2, e3, e4} {
				check("getsockname", e)
			}
			add(client, Socket{Proto: "tcp", Family: fam, State: "ESTAB", Local: sockaddr.AddrPort(cl), Remote: sockaddr.AddrPort(cr)})
			add(server, Socket{Proto: "tcp", Family: srvFam, State: "ESTAB", Local: sockaddr.AddrPort(sl), Remote: sockaddr.AddrPort(sr)})
		}
		c, s := pair(l1, "127.0.0.1:7001", false)
		estab(c, s, "inet", "inet")
		c, s = pair(l5, "[::1]:7005", true)
		estab(c, s, "inet6", "inet6")
		c, s = pair(l3, "127.0.0.1:7003", false) // accepted as AF_INET6, v4-mapped
		estab(c, s, "inet", "inet6")

		// TIME-WAIT: the client closes first, then the server.
		c, s = pair(l2, "192.0.2.1:7002", false)
		cl, e1 := unix.Getsockname(c)
		check("getsockname", e1)
		tw = Socket{Proto: "tcp", Family: "inet", State: "TIME-WAIT", Local: sockaddr.AddrPort(cl), Remote: mustAP("192.0.2.1:7002")}
		check("close", unix.Close(c))
		time.Sleep(20 * time.Millisecond)
		check("close", unix.Close(s))
		fx.fds = slices.DeleteFunc(fx.fds, func(fd int) bool { return fd == c || fd == s })

		// UDP.
		udp := func(ap string, v6 bool, only int, dev string) int {
			fam := unix.AF_INET
			if v6 {
				fam = unix.AF_INET6
			}
			fd := sock(fam, unix.SOCK_DGRAM)
			if v6 {
				v6only(fd, only)
			}
			if dev != "" {
				check("SO_BINDTODEVICE", unix.BindToDevice(fd, dev))
			}
			check("bind "+ap, unix.Bind(fd, sockaddr.Inet(fam, mustAP(ap), 0)))
			s := Socket{Proto: "udp", Family: "inet", State: "UNCONN", Local: mustAP(ap), Remote: mustAP("0.0.0.0:0")}
			if v6 {
				s.Family, s.V6Only, s.Remote = "inet6", b(only == 1), mustAP("[::]:0")
			}
			if dev == "lo" {
				s.BoundDev = 1
			}
			add(fd, s)
			return fd
		}
		udp("0.0.0.0:7101", false, 0, "")
		udp("[2001:db8::1]:7102", true, 1, "")
		udp("[::]:7103", true, 0, "")
		udp("0.0.0.0:7104", false, 0, "lo")
		uc := sock(unix.AF_INET, unix.SOCK_DGRAM)
		check("udp connect", unix.Connect(uc, sockaddr.Inet(unix.AF_INET, mustAP("127.0.0.1:7101"), 0)))
		ucl, e1 := unix.Getsockname(uc)
		check("getsockname", e1)
		add(uc, Socket{Proto: "udp", Family: "inet", State: "ESTAB", Local: sockaddr.AddrPort(ucl), Remote: mustAP("127.0.0.1:7101")})

		// Unix listeners.
		ulisten := func(typ int, name, typName string) {
			fd := sock(unix.AF_UNIX, typ)
			check("bind "+name, unix.Bind(fd, &unix.SockaddrUnix{Name: name}))
			check("listen", unix.Listen(fd, 8))
			add(fd, Socket{Proto: "unix", Family: "unix", State: "LISTEN", Path: name, UnixType: typName, SendQ: 8})
		}
		ulisten(unix.SOCK_STREAM, unixPath, "stream")
		ulisten(unix.SOCK_STREAM, abstract, "stream")
		ulisten(unix.SOCK_SEQPACKET, abstractSeq, "seqpacket")
		return firstErr
	})
	for _, m := range ms {
		m.sock.Inode = inodeOf(t, m.fd)
		m.sock.Netns = ns.name
		fx.want = append(fx.want, m.sock)
	}
	tw.Netns = ns.name
	fx.want = append(fx.want, tw)
	return fx
}

// readSettled reads until no socket is in a transient closing state (the
// TIME-WAIT fixture's peer passes through LAST-ACK).
func readSettled(t *testing.T, target NetnsTarget, opts Options) []*Snapshot {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		snaps, err := ReadNetns(target, opts)
		if err != nil {
			t.Fatalf("ReadNetns(%+v, %+v): %v", target, opts, err)
		}
		transient := false
		for _, sn := range snaps {
			for _, s := range sn.Sockets {
				switch s.State {
				case "LAST-ACK", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING":
					transient = true
				}
			}
		}
		if !transient || time.Now().After(deadline) {
			return snaps
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func one(t testing.TB, snaps []*Snapshot) *Snapshot {
	t.Helper()
	if len(snaps) != 1 {
		t.Fatalf("got %d snapshots, want 1", len(snaps))
	}
	return snaps[0]
}

func TestNetns(t *testing.T) {
	ns := newTestNS(t)
	// Namespace sysctls that differ from the defaults, written from inside
	// the namespace by another process.
	ns.sh(t, "echo '20000 30000' > /proc/sys/net/ipv4/ip_local_port_range; "+
		"echo '8080,9000-9002' > /proc/sys/net/ipv4/ip_local_reserved_ports; "+
		"echo 0 > /proc/sys/net/ipv4/tcp_tw_reuse; echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind")
	fx := buildFixture(t, ns)
	byName := NetnsTarget{Name: ns.name}

	t.Run("netlink", func(t *testing.T) {
		sn := one(t, readSettled(t, byName, Options{}))
		if sn.Netns != ns.name || sn.Source != "netlink" {
			t.Errorf("Netns=%q Source=%q, want %q netlink", sn.Netns, sn.Source, ns.name)
		}
		if len(sn.Missing) != 0 {
			t.Errorf("Missing = %q, want none", sn.Missing)
		}
		diffKeys(t, "netlink", keys(sn.Sockets, false, nil), keys(fx.want, false, nil))
		for _, s := range sn.Sockets {
			if s.Proto != "unix" && s.Family == "inet" && (s.Local.Addr().BitLen() != 32 || s.Remote.Addr().BitLen() != 32) {
				t.Errorf("AF_INET socket with non-4-byte address: %+v", s)
			}
		}
		checkInterfaces(t, sn.Interfaces)
		want := Sysctls{PortLow: 20000, PortHigh: 30000, ReservedPorts: []uint16{8080, 9000, 9001, 9002},
			UnprivilegedPortStart: 1024, TCPTWReuse: 0, NonlocalBind4: true}
		if b, err := os.ReadFile("/proc/sys/net/ipv6/bindv6only"); err == nil {
			want.BindV6Only = strings.TrimSpace(string(b)) == "1" // a new netns copies the init ns default
		}
		got := sn.Sysctls
		if got.PortLow != want.PortLow || got.PortHigh != want.PortHigh || !slices.Equal(got.ReservedPorts, want.ReservedPorts) ||
			got.TCPTWReuse != want.TCPTWReuse || got.NonlocalBind4 != want.NonlocalBind4 || got.NonlocalBind6 ||
			got.UnprivilegedPortStart != want.UnprivilegedPortStart {
			t.Errorf("Sysctls = %+v, want %+v", got, want)
		}
	})

	t.Run("listeners-only", func(t *testing.T) {
		sn := one(t, readSettled(t, byName, Options{States: StatesListen}))
		for _, s := range sn.Sockets {
			if s.State != "LISTEN" {
				t.Errorf("non-listener in a listeners-only read: %s", key(s, false))
			}
		}
		diffKeys(t, "listen", keys(sn.Sockets, false, nil),
			keys(fx.want, false, func(s Socket) bool { return s.State == "LISTEN" }))
		// TCP only, listeners plus unconnected UDP (ss -l), through /proc too.
		for _, force := range []bool{false, true} {
			sn := one(t, readSettled(t, byName, Options{TCP: true, UDP: true, States: StatesListening, ForceProc: force}))
			want := keys(fx.want, true, func(s Socket) bool { return s.Proto != "unix" && (s.State == "LISTEN" || s.State == "UNCONN") })
			diffKeys(t, fmt.Sprintf("listening forceProc=%v", force), keys(sn.Sockets, true, nil), want)
		}
	})

	t.Run("proc-fallback", func(t *testing.T) {
		sn := one(t, readSettled(t, byName, Options{ForceProc: true}))
		if sn.Source != "proc" {
			t.Errorf("Source = %q, want proc", sn.Source)
		}
		if !slices.Contains(sn.Missing, "v6only unknown (read from /proc/net)") {
			t.Errorf("Missing = %q, want the v6only note", sn.Missing)
		}
		for _, s := range sn.Sockets {
			if s.V6Only != nil {
				t.Errorf("V6Only set from /proc: %s", key(s, false))
			}
		}
		// Same inet sockets (state, addresses, uid, inode); unix sockets
		// too, without uid.
		diffKeys(t, "proc", keys(sn.Sockets, true, nil), keys(fx.want, true, notBoundOnly))
	})

	t.Run("pid-and-owners", func(t *testing.T) {
		cmd := exec.Command("ip", "netns", "exec", ns.name, "sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		nsKeyWant, err := statNS(ns.f.Name())
		if err != nil {
			t.Fatal(err)
		}
		// ip enters the namespace, then execs sleep.
		for deadline := time.Now().Add(3 * time.Second); ; {
			k, err := statNS(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))
			if err == nil && k == nsKeyWant {
				if comm := readComm("/proc", cmd.Process.Pid); comm == "sleep" {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("pid %d did not enter %s", cmd.Process.Pid, ns.name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		sn := one(t, readSettled(t, NetnsTarget{PID: cmd.Process.Pid}, Options{Processes: true}))
		if sn.Netns != ns.name {
			t.Errorf("label of a named namespace by pid = %q, want %q", sn.Netns, ns.name)
		}
		diffKeys(t, "by pid", keys(sn.Sockets, false, nil), keys(fx.want, false, nil))
		self := Process{PID: os.Getpid(), Command: readComm("/proc", os.Getpid())}
		for _, s := range sn.Sockets {
			if s.Inode == 0 {
				if len(s.Processes) != 0 {
					t.Errorf("inode-less socket with owners: %s %v", key(s, false), s.Processes)
				}
				continue
			}
			if len(s.Processes) != 1 || s.Processes[0].PID != self.PID || s.Processes[0].Command != self.Command || s.Processes[0].FD < 3 || len(s.Processes[0].FDs) != 1 {
				t.Errorf("owners of %s = %v, want [%v]", key(s, false), s.Processes, self)
			}
		}
	})

	t.Run("all", func(t *testing.T) {
		snaps, err := ReadNetns(NetnsTarget{All: true}, Options{TCP: true, States: StatesListen})
		if err != nil {
			t.Fatal(err)
		}
		if len(snaps) == 0 || snaps[0].Netns != "" {
			t.Fatalf("first snapshot should be the caller's own namespace (label \"\"), got %d snapshots", len(snaps))
		}
		seen := map[string]bool{}
		var mine *Snapshot
		for _, sn := range snaps {
			if seen[sn.Netns] {
				t.Errorf("namespace %q listed twice", sn.Netns)
			}
			seen[sn.Netns] = true
			for _, s := range sn.Sockets {
				if s.Netns != sn.Netns {
					t.Errorf("socket label %q in snapshot %q", s.Netns, sn.Netns)
				}
			}
			if sn.Netns == ns.name {
				mine = sn
			}
		}
		if mine == nil {
			labels := make([]string, 0, len(snaps))
			for _, sn := range snaps {
				labels = append(labels, sn.Netns)
			}
			t.Fatalf("test namespace %s not among %q", ns.name, labels)
		}
		diffKeys(t, "all", keys(mine.Sockets, false, nil),
			keys(fx.want, false, func(s Socket) bool { return s.Proto == "tcp" && s.State == "LISTEN" }))
	})
}

func checkInterfaces(t *testing.T, ifs []Interface) {
	t.Helper()
	if len(ifs) == 0 || ifs[0].Name != "lo" || ifs[0].Index != 1 || !ifs[0].Up {
		t.Fatalf("interfaces = %+v, want lo (index 1, up) first", ifs)
	}
	var got []string
	for _, p := range ifs[0].Addrs {
		got = append(got, p.String())
	}
	slices.Sort(got)
	want := []string{"127.0.0.1/8", "192.0.2.1/24", "2001:db8::1/128", "::1/128"}
	if !slices.Equal(got, want) {
		t.Errorf("lo addrs = %q, want %q", got, want)
	}
}

func TestReadOwnNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: reading the host namespace with owners is checked as root only")
	}
	// A listener of our own in the caller's namespace must come back with
	// this process as owner, from netlink and from /proc.
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 4); err != nil {
		t.Fatal(err)
	}
	ino := inodeOf(t, fd)
	for _, force := range []bool{false, true} {
		sn, err := Read(Options{TCP: true, States: StatesListen, Processes: true, ForceProc: force})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range sn.Sockets {
			if s.Inode == ino {
				found = true
				if len(s.Processes) != 1 || s.Processes[0].PID != os.Getpid() || s.Netns != "" {
					t.Errorf("forceProc=%v: own listener %s owners %v", force, key(s, false), s.Processes)
				}
			}
		}
		if !found {
			t.Errorf("forceProc=%v: own listener (inode %d) not found", force, ino)
		}
	}
}

// notBoundOnly drops the bound-but-inactive TCP socket, which /proc/net
// does not list.
func notBoundOnly(s Socket) bool { return !(s.Proto == "tcp" && s.State == "CLOSE") }

// TestUnixPeerInode: a connected unix pair reports each other's inode.
func TestUnixPeerInode(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	var st [2]unix.Stat_t
	for i := range fds {
		if err := unix.Fstat(fds[i], &st[i]); err != nil {
			t.Fatal(err)
		}
	}
	sn, err := Read(Options{Unix: true, SocketsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	peers := map[uint64]uint64{}
	for _, s := range sn.Sockets {
		peers[s.Inode] = s.PeerInode
	}
	if peers[st[0].Ino] != st[1].Ino || peers[st[1].Ino] != st[0].Ino {
		t.Errorf("peer inodes: %d -> %d, %d -> %d; want each other's", st[0].Ino, peers[st[0].Ino], st[1].Ino, peers[st[1].Ino])
	}
}
