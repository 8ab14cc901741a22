//go:build linux

package kerneltest

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/internal/sockaddr"
	"github.com/socktab/socktab/scenario"
)

// probeWait bounds how long a datagram probe's answer (the datagram
// delivered, or the ICMP error it causes) may take; none by then is
// "drop". An answer ends the wait at once, so only a real drop costs it,
// and a loaded machine (8 replays at once) gets time to answer. A SYN
// probe waits for its answer or the SYN's retransmission instead.
const probeWait = 2 * time.Second

// packet answers a "packet" step with real traffic: a SYN is a connect()
// from a probe socket bound to the source, and the answer is which listener
// can accept() it (or a refused connect: rst); a datagram is sent from a
// probe socket and every UDP socket is read (or the probe gets the ICMP
// error: icmp-port-unreachable).
//
// A probe to this host that meets silence is tried once more: an answer
// on this host can only be late (a loaded machine, an ICMP rate limit).
func (r *replayer) packet(st *scenario.Step) Result {
	res := r.probe(st)
	if res.Result == "drop" && r.isLocal(st.Addr.Addr().Unmap()) {
		res = r.probe(st)
	}
	return res
}

func (r *replayer) probe(st *scenario.Step) Result {
	if st.Proto == engine.TCP && st.Flags != engine.FlagSYN {
		return r.probeRaw(st)
	}
	src, dst := unmapAP(st.Src), unmapAP(st.Addr)
	if st.Proto == engine.TCP && r.waitingTuple(dst, src) {
		// The SYN kills the TIME_WAIT socket (to a listener, or by the RST
		// its ACK provokes): the engine's query changes nothing.
		return skip("a SYN to a TIME_WAIT 4-tuple changes it in the kernel")
	}
	if st.Proto == engine.TCP && r.tupleIn(dst, src, "established", "close-wait", "fin-wait-1", "closing", "last-ack") {
		// The connection answers with a challenge ACK, the probe resets it
		// and its retried SYN meets what is left: the probe's outcome is
		// that of a connect (see syn-to-orphaned-close-wait.scenario), the
		// engine's query says who receives the SYN and changes nothing.
		return skip("a SYN to a connection's 4-tuple: the probe resets it in the kernel")
	}
	h := r.cur
	group := r.groupcast(dst.Addr())
	if group && h.isLocal(src.Addr()) {
		return skip("a broadcast or multicast probe from this host (its looped-back copy is not modelled)")
	}
	in := ""        // the interface a packet from elsewhere comes in on
	var from *netns // where the probe socket is made; nil: this host
	switch other := r.hostOf(src.Addr()); {
	case group && other != nil:
		return skip("a broadcast or multicast from another host of the scenario reaches every host on the link")
	case h.isLocal(src.Addr()):
		if why := r.localProbeOK(st, src, dst); why != "" {
			return skip(why)
		}
	case other != nil:
		if why := r.otherHostProbeOK(st, dst); why != "" {
			return skip(why)
		}
		from = other.ns
	default:
		var why string
		if group {
			in, why = r.groupIngress(st, dst.Addr())
		} else {
			in, why = r.ingress(st, dst)
		}
		if why != "" {
			return skip(why)
		}
		undo, err := r.routePeer(in, src.Addr(), dst.Addr())
		defer undo()
		if err != nil {
			return skip(err.Error())
		}
		from = r.peer
	}
	dom := unix.AF_INET
	if src.Addr().Is6() {
		dom = unix.AF_INET6
	}
	typ := unix.SOCK_STREAM
	if st.Proto == engine.UDP {
		typ = unix.SOCK_DGRAM
	}
	fd := -1
	var err error
	r.asRoot(func() error {
		if from != nil {
			// Made in another namespace, the probe's traffic comes in on
			// a veth as from another host.
			if err = from.enter(); err != nil {
				return err
			}
			defer h.ns.enter()
		}
		fd, err = unix.Socket(dom, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_FREEBIND, 1)
			var scope uint32
			if in != "" && src.Addr().IsLinkLocalUnicast() {
				// A link-local source is on the wire's bridge of the link.
				scope = uint32(ifindex(bridgeName(in)))
			}
			err = unix.Bind(fd, sockaddr.Inet(sockaddr.Family(src.Addr()), src, scope))
		}
		if err == nil && group {
			err = r.groupSender(fd, in, dst.Addr())
		}
		return err
	})
	if err != nil {
		if fd >= 0 {
			closeFD(fd)
		}
		return skip("probe socket at " + src.String() + ": " + errName(err))
	}
	if st.Proto == engine.UDP {
		defer closeGone(fd, "udp", "udp6") // (from this host: a probe elsewhere is not in these tables)
	} else {
		defer closeGone(fd, "tcp", "tcp6")
	}
	if st.Proto == engine.UDP {
		return r.probeUDP(fd, src, dst)
	}
	return r.probeTCP(fd, src, dst)
}

// otherHostProbeOK says why a probe from another host of the scenario
// cannot stand for the packet, or "".
func (r *replayer) otherHostProbeOK(st *scenario.Step, dst netip.AddrPort) string {
	switch {
	case st.Dev != "":
		return "a packet from another host of the scenario comes in where its route sends it, not on a chosen dev"
	case dst.Addr().IsLoopback():
		return "a packet from another host to a loopback address is a martian"
	case !r.cur.isLocal(dst.Addr()):
		return "from another host, a packet for an address that is not this host's goes elsewhere"
	}
	return ""
}

func (r *replayer) probeTCP(fd int, src, dst netip.AddrPort) Result {
	// Linger 0: the probe leaves with a RST, never in TIME_WAIT.
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	sa := sockaddr.Inet(sockaddr.Family(dst.Addr()), dst, 0)
	err := unix.Connect(fd, sa)
	if errors.Is(err, unix.EINPROGRESS) {
		err = finishConnect(fd, sa, connectWait)
		if errors.Is(err, errPending) {
			return Result{Result: "drop"}
		}
	}
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		return Result{Result: "rst"}
	case errors.Is(err, unix.ENETUNREACH), errors.Is(err, unix.EHOSTUNREACH), errors.Is(err, unix.ETIMEDOUT):
		return Result{Result: "drop"}
	case err != nil:
		return skip("probe connect: " + errName(err))
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		return skip("probe getsockname: " + errName(err))
	}
	me := unmapAP(sockaddr.AddrPort(local))
	for _, l := range r.listeners(r.cur) {
		for {
			c, peer, err := unix.Accept4(l.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if err != nil {
				break
			}
			if unmapAP(sockaddr.AddrPort(peer)) != me {
				// A connection of the scenario: keep it, in order, for
				// the scenario's own accept.
				l.stashed = append(l.stashed, c)
				continue
			}
			unix.SetsockoptLinger(c, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			closeGone(c, "tcp", "tcp6") // it holds the listener's port until really gone
			return Result{Result: l.name}
		}
	}
	return skip("the probe connected but no listener of the scenario accepted it")
}

func (r *replayer) probeUDP(fd int, src, dst netip.AddrPort) Result {
	if err := unix.Connect(fd, sockaddr.Inet(sockaddr.Family(dst.Addr()), dst, 0)); err != nil {
		if errors.Is(err, unix.ENETUNREACH) {
			return Result{Result: "drop"}
		}
		return skip("probe connect: " + errName(err))
	}
	if _, err := unix.Write(fd, []byte("socktab")); err != nil {
		return skip("probe send: " + errName(err))
	}
	local, _ := unix.Getsockname(fd)
	me := unmapAP(sockaddr.AddrPort(local))
	buf := make([]byte, 64)
	deadline := time.Now().Add(probeWait)
	got := map[string]bool{}
	for {
		// Every receiver gets its copy in one pass of the receive path:
		// once one has it, one more read of all of them finds the rest.
		for pass := 0; pass < 2; pass++ {
			for _, s := range r.all {
				if s.closed || s.proto != engine.UDP || s.host != r.cur {
					continue
				}
				for {
					_, from, err := unix.Recvfrom(s.fd, buf, unix.MSG_DONTWAIT)
					if err != nil {
						break
					}
					if from != nil && unmapAP(sockaddr.AddrPort(from)) == me {
						got[s.name] = true
					}
				}
			}
			if len(got) == 0 {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if len(got) > 0 {
			var names []string
			for n := range got {
				names = append(names, n)
			}
			sort.Strings(names)
			return Result{Result: strings.Join(names, "+")}
		}
		if _, err := unix.Read(fd, buf); errors.Is(err, unix.ECONNREFUSED) {
			return Result{Result: "icmp-port-unreachable"}
		}
		if time.Now().After(deadline) {
			return Result{Result: "drop"}
		}
		time.Sleep(time.Millisecond)
	}
}

// localProbeOK says why a probe from this host cannot stand for the
// packet, or "".
func (r *replayer) localProbeOK(st *scenario.Step, src, dst netip.AddrPort) string {
	if st.Dev != "" {
		return "a probe from this host arrives on lo, not on " + st.Dev
	}
	if z := st.Addr.Addr().Zone(); z != "" {
		return "a probe from this host arrives on lo, not on " + z
	}
	for _, s := range r.socks {
		if s.device && !s.closed && s.host == r.cur {
			return "a probe from this host arrives on lo; a socket is bound to a device"
		}
	}
	if src.Addr().Is6() && src.Addr().IsLoopback() && !dst.Addr().IsLoopback() {
		return "the kernel never sends from ::1 to another address"
	}
	return ""
}

// ingress is the interface a packet from another host to dst arrives on:
// st's dev, or the veth that carries dst.
func (r *replayer) ingress(st *scenario.Step, dst netip.AddrPort) (string, string) {
	if dst.Addr().IsLoopback() {
		return "", "a packet from another host to a loopback address is a martian"
	}
	if dev := st.Dev; dev != "" || st.Addr.Addr().Zone() != "" {
		if dev == "" {
			dev = st.Addr.Addr().Zone()
		}
		if !r.cur.ifaces[dev] {
			return "", "no veth for dev " + dev
		}
		return dev, ""
	}
	var names []string
	for n := range r.cur.ifaces {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, p := range r.cur.addrs[n] {
			if p.Addr() == dst.Addr() {
				return n, ""
			}
		}
	}
	if len(names) == 0 || r.isLocal(dst.Addr()) {
		return "", "no interface that a packet from another host to " + dst.Addr().String() + " comes in on"
	}
	if r.hostOf(dst.Addr()) != nil {
		return "", "the destination is an address of another host of the scenario: a packet for it arrives there"
	}
	return names[0], "" // not local: it comes in somewhere, and is dropped
}

// routePeer lets the wire send from src to dst over the link of interface
// in, and this host answer back, until undo.
func (r *replayer) routePeer(in string, src, dst netip.Addr) (undo func(), err error) {
	undo = func() {}
	bits := 32
	if src.Is6() {
		bits = 128
	}
	sp, dp := netip.PrefixFrom(src, bits).String(), netip.PrefixFrom(dst, bits).String()
	pdev := bridgeName(in)
	h := r.cur
	err = r.asRoot(func() error {
		if !r.peerAddrs[pdev+" "+src.String()] {
			args := []string{"addr", "add", sp, "dev", pdev}
			if src.Is6() {
				args = append(args, "nodad")
			}
			if err := r.peer.ip(args...); err != nil {
				return err
			}
			r.peerAddrs[pdev+" "+src.String()] = true
		}
		if err := r.peer.ip("route", "replace", dp, "dev", pdev); err != nil {
			return err
		}
		h.ns.ip("neigh", "del", src.String(), "dev", in) // a silentPeer entry
		if err := h.ns.ip("route", "add", sp, "dev", in); err != nil {
			return err
		}
		undo = func() { r.asRoot(func() error { return h.ns.ip("route", "del", sp, "dev", in) }) }
		return nil
	})
	return undo, err
}

// isLocal reports whether a is an address of the current host.
func (r *replayer) isLocal(a netip.Addr) bool { return r.cur.isLocal(a) }

func (h *khost) isLocal(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() {
		return true
	}
	for _, l := range h.local {
		if l == a {
			return true
		}
	}
	return false
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// waitingTuple reports whether the current host has a TIME-WAIT or
// FIN-WAIT-2 socket from local to remote. Packet sources at ports 61000 and
// above (the generators') never are one: ss is not asked.
func (r *replayer) waitingTuple(local, remote netip.AddrPort) bool {
	return r.tupleIn(local, remote, "time-wait", "fin-wait-2")
}

// tupleIn reports whether this host has a TCP socket local-remote in one of
// states (ss's names).
func (r *replayer) tupleIn(local, remote netip.AddrPort, states ...string) bool {
	if remote.Port() >= 61000 {
		return false
	}
	args := []string{"-tanH"}
	for _, s := range states {
		args = append(args, "state", s)
	}
	args = append(args, "src", fmtSS(local), "dst", fmtSS(remote))
	var out []byte
	r.asRoot(func() error {
		var err error
		out, err = exec.Command("ss", args...).Output()
		return err
	})
	return len(strings.TrimSpace(string(out))) > 0
}

// fmtSS writes an endpoint as ss filters take it.
func fmtSS(ap netip.AddrPort) string {
	if ap.Addr().Is6() {
		return "[" + ap.Addr().String() + "]:" + fmt.Sprint(ap.Port())
	}
	return ap.String()
}

// groupcast reports whether a datagram to a takes the kernel's broadcast /
// multicast path here: a multicast group, 255.255.255.255, or the last
// address of an IPv4 subnet of an iface statement.
func (r *replayer) groupcast(a netip.Addr) bool {
	if a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	_, ok := r.subnetOf(a)
	return ok
}

// subnetOf is the veth whose IPv4 subnet has broadcast address a.
func (r *replayer) subnetOf(a netip.Addr) (string, bool) {
	if !a.Is4() {
		return "", false
	}
	for _, n := range r.cur.order {
		for _, p := range r.cur.addrs[n] {
			if p.Addr().Is4() && p.Bits() < 31 && lastAddr(p) == a {
				return n, true
			}
		}
	}
	return "", false
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b)
}

// groupIngress is the veth a broadcast or multicast datagram from another
// host comes in on, as the engine chooses it: the step's dev, else the
// veth of the subnet it is broadcast for, else the first veth made.
func (r *replayer) groupIngress(st *scenario.Step, dst netip.Addr) (string, string) {
	if st.Dev != "" {
		if !r.cur.ifaces[st.Dev] {
			return "", "no veth for dev " + st.Dev
		}
		return st.Dev, ""
	}
	if n, ok := r.subnetOf(dst); ok {
		return n, ""
	}
	if len(r.cur.order) == 0 {
		return "", "no interface that a broadcast or multicast from another host comes in on"
	}
	return r.cur.order[0], ""
}

// groupSender makes probe fd in the wire send its broadcast or multicast
// datagram out of the bridge of veth in's link, as a link-layer broadcast or
// multicast frame (every host on the link gets it; the query asks about the
// current one).
func (r *replayer) groupSender(fd int, in string, dst netip.Addr) error {
	pdev := bridgeName(in)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
		return err
	}
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, pdev); err != nil {
		return err
	}
	if dst.Is4() && !dst.IsMulticast() && dst != netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		// The peer does not know the subnet: its route says unicast, so
		// the frame's destination is set to the link's broadcast here.
		return r.peer.ip("neigh", "replace", dst.String(), "lladdr", "ff:ff:ff:ff:ff:ff", "dev", pdev, "nud", "permanent")
	}
	return nil
}
