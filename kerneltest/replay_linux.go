//go:build linux

package kerneltest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/internal/sockaddr"
	"github.com/socktab/socktab/scenario"
)

// connectWait bounds how long a non-blocking connect may take before it
// counts as "in progress". The wait ends earlier, on a state: once the
// kernel retransmits the SYN (its first timeout, 1 s), the first SYN's
// answer is lost, whatever the load of the machine.
const connectWait = 5 * time.Second

// ksock is a real socket of the replay.
type ksock struct {
	name    string
	fd      int
	fam     engine.Family
	proto   engine.Proto
	closed  bool
	listen  bool
	host    *khost
	device  bool  // SO_BINDTODEVICE set
	pending bool  // a connect off this host still in progress, taken as done
	stashed []int // children a packet probe accepted before the scenario did
}

// khost is one host of the scenario: a namespace of its own. Its non-lo
// interfaces are veths whose other ends are ports of a bridge per
// interface name in the "wire" namespace, so that eth0 of one host and eth0
// of another share a link.
type khost struct {
	name   string
	ns     *netns
	index  int
	used   bool // a statement ran on it (the default host is named by its first "host")
	ifaces map[string]bool
	local  []netip.Addr              // addresses of iface statements
	addrs  map[string][]netip.Prefix // per veth
	order  []string                  // veths in the order the scenario made them
}

// replayer runs one scenario, each host in its own namespace, on one
// locked thread that enters the current host's namespace.
type replayer struct {
	hosts     []*khost
	cur       *khost
	peer      *netns          // the wire: bridges, and the sources of packets from elsewhere
	bridges   map[string]bool // made in the wire, by interface name
	tmp       string          // AF_UNIX paths live here
	abstract  string          // prefix of abstract names
	uid       int
	socks     map[string]*ksock
	all       []*ksock
	anon      int
	peerAddrs map[string]bool          // probe sources added in the wire, as "bridge addr"
	clock     time.Duration            // the scenario's clock, moved by advance
	born      map[string]time.Duration // TIME-WAIT / FIN-WAIT-2 sockets, by clock
	seen      map[string]time.Time     // and when each was first seen, in real time
	dates     bool                     // the scenario advances: date waiting sockets
	dead      string                   // once set, every later step is not comparable
}

func newHost(name string, index int) (*khost, error) {
	ns, err := addNetns()
	if err != nil {
		return nil, err
	}
	return &khost{name: name, ns: ns, index: index, ifaces: map[string]bool{},
		addrs: map[string][]netip.Prefix{}}, nil
}

// Replay runs sc against the kernel in a fresh network namespace and
// returns one Result per step.
func Replay(sc *scenario.Scenario) ([]Result, error) {
	h, err := newHost("local", 0)
	if err != nil {
		return nil, err
	}
	r := &replayer{hosts: []*khost{h}, cur: h, socks: map[string]*ksock{}, bridges: map[string]bool{},
		peerAddrs: map[string]bool{}, born: map[string]time.Duration{}, seen: map[string]time.Time{}}
	for _, st := range sc.Steps {
		r.dates = r.dates || st.Op == scenario.OpAdvance
	}
	defer r.cleanup()
	r.tmp, err = os.MkdirTemp("", "socktab-kt-")
	if err != nil {
		return nil, err
	}
	os.Chmod(r.tmp, 0o777) // binds as another uid create files here
	r.abstract = "@" + h.ns.name + "-"
	type answer struct {
		res []Result
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		// Locked and never unlocked: the thread leaves with the goroutine
		// and never runs other code inside the namespace or as another uid.
		runtime.LockOSThread()
		if err := h.ns.enter(); err != nil {
			ch <- answer{nil, err}
			return
		}
		tune()
		res := make([]Result, len(sc.Steps))
		for i := range sc.Steps {
			res[i] = r.step(&sc.Steps[i])
			if r.dates && sc.Steps[i].Op == scenario.OpClose {
				r.dateWaiting()
			}
		}
		ch <- answer{res, nil}
	}()
	a := <-ch
	return a.res, a.err
}

// tune lifts the rate limits of the calling thread's namespace, so every
// unreachable port answers and every out-of-window segment gets its ACK.
func tune() {
	for _, p := range []string{"net/ipv4/icmp_ratelimit", "net/ipv6/icmp/ratelimit",
		"net/ipv4/icmp_msgs_per_sec", "net/ipv4/icmp_msgs_burst", "net/ipv4/tcp_invalid_ratelimit"} {
		v := "0"
		if strings.Contains(p, "msgs") {
			v = "100000"
		}
		os.WriteFile("/proc/sys/"+p, []byte(v), 0)
	}
}

// selectHost makes name the current host, creating its namespace; the
// default host becomes name when nothing ran on it yet (as the engine
// creates "local" only when a statement needs a host).
func (r *replayer) selectHost(name string) error {
	for _, h := range r.hosts {
		if h.name == name {
			return r.enterHost(h)
		}
	}
	if len(r.hosts) == 1 && !r.cur.used && r.cur.name == "local" {
		r.cur.name = name
		return nil
	}
	var h *khost
	err := r.asRoot(func() error {
		var err error
		h, err = newHost(name, len(r.hosts))
		return err
	})
	if err != nil {
		return err
	}
	r.hosts = append(r.hosts, h)
	if err := r.enterHost(h); err != nil {
		return err
	}
	r.asRoot(func() error { tune(); return nil })
	return nil
}

// enterHost moves the replay's thread into h's namespace: new sockets, ss
// and ip without -n act there.
func (r *replayer) enterHost(h *khost) error {
	err := r.asRoot(h.ns.enter)
	if err == nil {
		r.cur = h
	}
	return err
}

// inHost runs f as root in h's namespace and comes back.
func (r *replayer) inHost(h *khost, f func() error) error {
	return r.asRoot(func() error {
		if h != r.cur {
			if err := h.ns.enter(); err != nil {
				return err
			}
			defer r.cur.ns.enter()
		}
		return f()
	})
}

// hostOf is the host that has a as a local address, or nil.
func (r *replayer) hostOf(a netip.Addr) *khost {
	for _, h := range r.hosts {
		if h.isLocal(a) {
			return h
		}
	}
	return nil
}

func (r *replayer) cleanup() {
	for _, s := range r.all {
		if !s.closed {
			closeFD(s.fd)
		}
		for _, c := range s.stashed {
			closeFD(c)
		}
	}
	if r.tmp != "" {
		os.RemoveAll(r.tmp)
	}
	if r.peer != nil {
		r.peer.del()
	}
	for _, h := range r.hosts {
		h.ns.del()
	}
}

// asRoot runs f with the thread's effective uid 0 (nested calls are fine).
func (r *replayer) asRoot(f func() error) error {
	if unix.Geteuid() != 0 {
		seteuid(0)
		defer seteuid(r.uid)
	}
	return f()
}

func ok(err error) Result { return Result{Result: errName(err)} }

func skip(why string) Result { return Result{Skip: why} }

func (r *replayer) step(st *scenario.Step) Result {
	if r.dead != "" {
		return skip(r.dead)
	}
	if st.Op != scenario.OpOS && st.Op != scenario.OpHost {
		r.cur.used = true
	}
	switch st.Op {
	case scenario.OpOS:
		if st.Str != "linux" {
			r.dead = "os " + st.Str
			return skip(r.dead)
		}
		return Result{Result: "ok"}
	case scenario.OpHost:
		if err := r.selectHost(st.Str); err != nil {
			r.dead = "host " + st.Str + ": " + err.Error()
			return skip(r.dead)
		}
		return Result{Result: "ok"}
	case scenario.OpIface:
		return r.iface(st)
	case scenario.OpRoute:
		for _, p := range st.Prefixes {
			if err := r.asRoot(func() error { return r.cur.ns.ip("route", "add", p.String(), "dev", st.Str) }); err != nil {
				return skip(err.Error())
			}
		}
		return Result{Result: "ok"}
	case scenario.OpSysctl:
		return r.sysctl(st)
	case scenario.OpUID:
		if err := seteuid(0); err != nil {
			return skip("setresuid: " + err.Error())
		}
		if err := seteuid(st.Int); err != nil {
			return skip("setresuid: " + err.Error())
		}
		r.uid = st.Int
		return Result{Result: "ok"}
	case scenario.OpAdvance:
		r.advance(st.Duration)
		return Result{Result: "ok"}
	case scenario.OpSocket:
		return r.socket(st)
	case scenario.OpUnlink:
		err := os.Remove(r.path(st.Path))
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return ok(err)
	case scenario.OpPacket:
		return r.packet(st)
	}
	s := r.socks[st.Sock]
	if s == nil {
		// Its socket or accept failed: no descriptor, as the engine says.
		return Result{Result: "EBADF"}
	}
	if s.closed {
		return Result{Result: "EBADF"}
	}
	switch st.Op {
	case scenario.OpSetsockopt:
		return r.setsockopt(s, st)
	case scenario.OpBind:
		sa, err := r.sockaddr(st)
		if err != nil {
			return skip(err.Error())
		}
		err = unix.Bind(s.fd, sa)
		if err == nil && strings.HasPrefix(st.Path, "/") {
			// The engine has no file permissions: any uid may connect.
			r.asRoot(func() error { return os.Chmod(r.path(st.Path), 0o777) })
		}
		return ok(err)
	case scenario.OpListen:
		err := unix.Listen(s.fd, 128)
		if err == nil {
			s.listen = true
		}
		return ok(err)
	case scenario.OpConnect:
		return r.connect(s, st)
	case scenario.OpAccept:
		return r.accept(s, st)
	case scenario.OpJoin:
		return r.join(s, st)
	case scenario.OpClose:
		s.closed = true
		for _, c := range s.stashed {
			closeFD(c)
		}
		s.stashed = nil
		local, peer := r.tuple(s)
		err := r.closeSock(s)
		if err == nil && peer.IsValid() {
			r.settleClose(s.host, local, peer)
		}
		return ok(err)
	}
	return skip("unknown statement " + string(st.Op))
}

func (r *replayer) iface(st *scenario.Step) Result {
	h := r.cur
	err := r.asRoot(func() error {
		if st.Str != "lo" && !h.ifaces[st.Str] {
			if err := r.veth(h, st.Str); err != nil {
				return err
			}
			h.ifaces[st.Str] = true
			h.order = append(h.order, st.Str)
		}
		for _, p := range st.Prefixes {
			args := []string{"addr", "add", p.String(), "dev", st.Str}
			if p.Addr().Is6() {
				args = append(args, "nodad")
			}
			if err := h.ns.ip(args...); err != nil {
				return err
			}
			h.local = append(h.local, p.Addr())
			h.addrs[st.Str] = append(h.addrs[st.Str], p)
		}
		return h.ns.untentative(st.Prefixes)
	})
	if err != nil {
		return skip(err.Error())
	}
	return Result{Result: "ok"}
}

// veth makes interface name in h's namespace, one end of a veth pair whose
// other end is a port of the wire's bridge for that name; all are up.
func (r *replayer) veth(h *khost, name string) error {
	if r.peer == nil {
		p, err := addNetns()
		if err != nil {
			return err
		}
		r.peer = p
	}
	br := bridgeName(name)
	if !r.bridges[name] {
		// No STP, no forwarding delay, no multicast snooping: a plain hub.
		if err := r.peer.ip("link", "add", br, "type", "bridge", "forward_delay", "0", "stp_state", "0",
			"mcast_snooping", "0"); err != nil {
			return err
		}
		if err := r.peer.ip("link", "set", br, "up"); err != nil {
			return err
		}
		r.bridges[name] = true
	}
	pn := ifName(fmt.Sprintf("k%d", h.index), name)
	if err := h.ns.ip("link", "add", name, "type", "veth", "peer", "name", pn, "netns", r.peer.name); err != nil {
		return err
	}
	if err := r.peer.ip("link", "set", pn, "master", br, "up"); err != nil {
		return err
	}
	return h.ns.ip("link", "set", name, "up")
}

// untentative waits until every IPv6 address of addrs has its local route.
// Even a "nodad" address gets it only when the kernel's address work queue
// has run, which a loaded machine may delay past a SYN's retransmission
// timeout (the SYN meanwhile waits for neighbour discovery of an address of
// this very host): a wait on the state, bounded by a deadline.
func (n *netns) untentative(addrs []netip.Prefix) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", n.name, "-6", "route", "show", "table", "local").Output()
		if err != nil || time.Now().After(deadline) {
			return err
		}
		ready := true
		for _, p := range addrs {
			ready = ready && (!p.Addr().Is6() || strings.Contains(string(out), "local "+p.Addr().String()+" "))
		}
		if ready {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bridgeName is the wire's bridge joining the interfaces called name.
func bridgeName(name string) string { return ifName("b", name) }

func ifName(prefix, name string) string {
	n := prefix + name
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

func (r *replayer) sysctl(st *scenario.Step) Result {
	sep := " "
	if st.Str == "net.ipv4.ip_local_reserved_ports" {
		sep = ","
	}
	path := "/proc/sys/" + strings.ReplaceAll(st.Str, ".", "/")
	var err error
	r.asRoot(func() error {
		var f *os.File
		if f, err = os.OpenFile(path, os.O_WRONLY, 0); err != nil {
			return err
		}
		_, err = f.WriteString(strings.Join(st.Values, sep) + "\n")
		if e := f.Close(); err == nil {
			err = e
		}
		return err
	})
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return skip("sysctl " + st.Str + ": " + err.Error())
	}
	return ok(err)
}

func (r *replayer) socket(st *scenario.Step) Result {
	dom, typ := unix.AF_INET, unix.SOCK_STREAM
	switch st.Family {
	case engine.Inet6:
		dom = unix.AF_INET6
	case engine.Unix:
		dom = unix.AF_UNIX
	}
	if st.Proto == engine.UDP || st.Proto == engine.UnixDgram {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(dom, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ok(err)
	}
	r.add(&ksock{name: st.Assign, fd: fd, fam: st.Family, proto: st.Proto, host: r.cur})
	return Result{Result: "ok"}
}

func (r *replayer) add(s *ksock) {
	r.socks[s.name] = s
	r.all = append(r.all, s)
}

func (r *replayer) setsockopt(s *ksock, st *scenario.Step) Result {
	var err error
	switch st.Option {
	case engine.SO_REUSEADDR:
		err = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, st.Int)
	case engine.SO_REUSEPORT:
		err = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, st.Int)
	case engine.IPV6_V6ONLY:
		err = unix.SetsockoptInt(s.fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, st.Int)
	case engine.IP_FREEBIND:
		err = unix.SetsockoptInt(s.fd, unix.SOL_IP, unix.IP_FREEBIND, st.Int)
	case engine.IP_BIND_ADDRESS_NO_PORT:
		err = unix.SetsockoptInt(s.fd, unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, st.Int)
	case engine.IP_LOCAL_PORT_RANGE:
		err = unix.SetsockoptInt(s.fd, unix.SOL_IP, unix.IP_LOCAL_PORT_RANGE, st.Int)
	case engine.IP_MULTICAST_ALL:
		err = unix.SetsockoptInt(s.fd, unix.SOL_IP, unix.IP_MULTICAST_ALL, st.Int)
	case engine.IPV6_MULTICAST_ALL:
		err = unix.SetsockoptInt(s.fd, unix.SOL_IPV6, unix.IPV6_MULTICAST_ALL, st.Int)
	case engine.SO_BINDTODEVICE:
		err = unix.SetsockoptString(s.fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, st.Str)
		if err == nil {
			s.device = st.Str != ""
		}
	default:
		err = unix.ENOPROTOOPT // not a Linux option
	}
	return ok(err)
}

// path maps a scenario path into the run's temp dir, and an abstract
// "@name" to a name unique to the run.
func (r *replayer) path(p string) string {
	if strings.HasPrefix(p, "@") {
		return r.abstract + p[1:]
	}
	// Files are shared by namespaces; each host has a file namespace of
	// its own in the engine.
	return filepath.Join(r.tmp, r.cur.name+"_"+strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", "_"))
}

func (r *replayer) sockaddr(st *scenario.Step) (unix.Sockaddr, error) {
	if st.Path != "" {
		p := r.path(st.Path)
		if len(p) > 107 {
			return nil, fmt.Errorf("unix path %q too long once mapped", st.Path)
		}
		return &unix.SockaddrUnix{Name: p}, nil
	}
	// The address as the scenario wrote it: a sockaddr_in for IPv4, a
	// sockaddr_in6 for IPv6 and v4-mapped addresses, whatever the socket.
	var scope uint32
	if z := st.Addr.Addr().Zone(); z != "" {
		scope = uint32(ifindex(z))
	}
	return sockaddr.Inet(sockaddr.Family(st.Addr.Addr()), st.Addr, scope), nil
}

// ifindex is the index of the interface called name in the calling
// thread's namespace (the current host's), or an index no interface has.
func ifindex(name string) int {
	if i, err := net.InterfaceByName(name); err == nil {
		return i.Index
	}
	return 1 << 20
}

func (r *replayer) connect(s *ksock, st *scenario.Step) Result {
	sa, err := r.sockaddr(st)
	if err != nil {
		return skip(err.Error())
	}
	if st.Path == "" {
		r.silentPeer(s.host, st.Addr.Addr().Unmap())
	}
	err = unix.Connect(s.fd, sa)
	if errors.Is(err, unix.EINPROGRESS) {
		err = finishConnect(s.fd, sa, connectWait)
	}
	if errors.Is(err, errPending) {
		// A peer elsewhere may answer later (the engine assumes it does);
		// one on this host answers at once, so a wait means it never will.
		if d := st.Addr.Addr().Unmap(); d.IsUnspecified() || r.hostOf(d) != nil {
			return Result{Result: "EINPROGRESS"}
		}
		s.pending = true
		return Result{Result: "ok"}
	}
	if errors.Is(err, unix.EALREADY) && s.pending {
		return Result{Result: "EISCONN"} // taken as connected, as the engine does
	}
	return ok(err)
}

// silentMAC is a documentation MAC address (RFC 7042) nobody answers to.
const silentMAC = "00:00:5e:00:53:01"

// silentPeer makes a destination on no host of the scenario resolve on
// every veth of h to a MAC nobody has: a connect there stays in progress,
// as the engine's "assumed to answer" peer would, instead of failing with
// EHOSTUNREACH when address resolution gives up after a few seconds.
func (r *replayer) silentPeer(h *khost, a netip.Addr) {
	if a.IsUnspecified() || r.hostOf(a) != nil || a.IsMulticast() || !a.IsValid() {
		return
	}
	r.asRoot(func() error {
		for n := range h.ifaces {
			h.ns.ip("neigh", "replace", a.String(), "lladdr", silentMAC, "dev", n, "nud", "permanent")
		}
		return nil
	})
}

// synRetransmitted reports whether the kernel sent a connecting socket's
// SYN again because the first one met silence for a whole retransmission
// timeout. A socket that did hear an answer (a challenge ACK from an old
// connection of the 4-tuple, which it reset) retransmits too, and its
// retransmitted SYN is answered: only a second retransmission says silence
// there.
func synRetransmitted(fd int) bool {
	ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return false
	}
	n := max(uint32(ti.Retransmits), ti.Total_retrans)
	return n > 1 || n == 1 && ti.Segs_in == 0
}

// errPending is a connect still in progress at the deadline.
var errPending = errors.New("connect still in progress")

// finishConnect waits for a non-blocking connect to finish, then asks
// connect() again for the outcome, as a blocking connect would have
// returned it: that also puts a failed socket back to unconnected (reading
// SO_ERROR instead would leave it "connecting", and the next connect would
// fail with ECONNABORTED). One whose SYN the kernel retransmitted, or
// still in progress at the deadline, is errPending.
func finishConnect(fd int, sa unix.Sockaddr, d time.Duration) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	deadline := time.Now().Add(d)
	for {
		left := min(time.Until(deadline), 50*time.Millisecond)
		if left <= 0 {
			return errPending
		}
		n, err := unix.Poll(pfd, int(left/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			if synRetransmitted(fd) {
				return errPending
			}
			continue
		}
		err = unix.Connect(fd, sa)
		if errors.Is(err, unix.EISCONN) {
			return nil
		}
		if errors.Is(err, unix.EALREADY) {
			return errPending
		}
		return err
	}
}

func (r *replayer) accept(s *ksock, st *scenario.Step) Result {
	var fd int
	var err error
	if len(s.stashed) > 0 {
		fd, s.stashed = s.stashed[0], s.stashed[1:]
	} else {
		fd, _, err = unix.Accept4(s.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	}
	if err != nil {
		return ok(err)
	}
	name := st.Assign
	if name == "" {
		r.anon++
		name = fmt.Sprintf("%s.child%d", st.Sock, r.anon)
	}
	r.add(&ksock{name: name, fd: fd, fam: s.fam, proto: s.proto, host: s.host})
	return Result{Result: "ok"}
}

// listeners lists the open listening TCP sockets of h by name.
func (r *replayer) listeners(h *khost) []*ksock {
	var out []*ksock
	for _, s := range r.socks {
		if s.listen && !s.closed && s.proto == engine.TCP && s.host == h {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// join is IP_ADD_MEMBERSHIP (IPv4 group) or IPV6_JOIN_GROUP (IPv6 group)
// on the named interface (index 0, the kernel's choice, when none). A name
// that is no interface here becomes an index no interface has.
func (r *replayer) join(s *ksock, st *scenario.Step) Result {
	idx := 0
	if st.Dev != "" {
		r.inHost(s.host, func() error { // the socket's host's interfaces
			idx = ifindex(st.Dev)
			return nil
		})
	}
	if st.Group.Is4() {
		mr := &unix.IPMreqn{Ifindex: int32(idx)}
		mr.Multiaddr = st.Group.As4()
		return ok(unix.SetsockoptIPMreqn(s.fd, unix.SOL_IP, unix.IP_ADD_MEMBERSHIP, mr))
	}
	mr := &unix.IPv6Mreq{Multiaddr: st.Group.As16(), Interface: uint32(idx)}
	return ok(unix.SetsockoptIPv6Mreq(s.fd, unix.SOL_IPV6, unix.IPV6_JOIN_GROUP, mr))
}
