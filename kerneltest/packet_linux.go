//go:build linux

package kerneltest

import (
	"errors"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/scenario"
)

// udpWait bounds how long a probe datagram, or the ICMP error it causes,
// may take to arrive.
const udpWait = 100 * time.Millisecond

// packet answers a "packet" step with real traffic: a SYN is a connect()
// from a probe socket bound to the source, and the answer is which listener
// can accept() it (or a refused connect: rst); a datagram is sent from a
// probe socket and every UDP socket is read (or the probe gets the ICMP
// error: icmp-port-unreachable).
func (r *replayer) packet(st *scenario.Step) Result {
	if st.Proto == engine.TCP && st.Flags != engine.FlagSYN {
		return skip("only a plain SYN can be probed")
	}
	src, dst := unmapAP(st.Src), unmapAP(st.Addr)
	if !r.isLocal(src.Addr()) {
		return skip("the source is not an address of this host")
	}
	if st.Dev != "" {
		return skip("a probe from this host arrives on lo, not on " + st.Dev)
	}
	for _, s := range r.socks {
		if s.device && !s.closed {
			return skip("a probe from this host arrives on lo; a socket is bound to a device")
		}
	}
	dom := unix.AF_INET
	if src.Addr().Is6() {
		dom = unix.AF_INET6
	}
	typ := unix.SOCK_STREAM
	if st.Proto == engine.UDP {
		typ = unix.SOCK_DGRAM
	}
	var fd int
	var err error
	r.asRoot(func() error {
		fd, err = unix.Socket(dom, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_FREEBIND, 1)
			err = unix.Bind(fd, inetAddr(src))
		}
		return err
	})
	if err != nil {
		if fd > 0 {
			unix.Close(fd)
		}
		return skip("probe socket at " + src.String() + ": " + errName(err))
	}
	defer unix.Close(fd)
	if st.Proto == engine.UDP {
		return r.probeUDP(fd, src, dst)
	}
	return r.probeTCP(fd, src, dst)
}

func (r *replayer) probeTCP(fd int, src, dst netip.AddrPort) Result {
	// Linger 0: the probe leaves with a RST, never in TIME_WAIT.
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	err := unix.Connect(fd, inetAddr(dst))
	if errors.Is(err, unix.EINPROGRESS) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, _ := unix.Poll(pfd, int(connectWait/time.Millisecond)); n == 0 {
			return Result{Result: "drop"}
		}
		err = unix.Connect(fd, inetAddr(dst))
		if errors.Is(err, unix.EISCONN) {
			err = nil
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
	me := unmapAP(addrPortOf(local))
	for _, l := range r.listeners() {
		for {
			c, peer, err := unix.Accept4(l.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if err != nil {
				break
			}
			if unmapAP(addrPortOf(peer)) != me {
				// A connection of the scenario: keep it, in order, for
				// the scenario's own accept.
				l.stashed = append(l.stashed, c)
				continue
			}
			unix.SetsockoptLinger(c, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			unix.Close(c)
			return Result{Result: l.name}
		}
	}
	return skip("the probe connected but no listener of the scenario accepted it")
}

func (r *replayer) probeUDP(fd int, src, dst netip.AddrPort) Result {
	if err := unix.Connect(fd, inetAddr(dst)); err != nil {
		if errors.Is(err, unix.ENETUNREACH) {
			return Result{Result: "drop"}
		}
		return skip("probe connect: " + errName(err))
	}
	if _, err := unix.Write(fd, []byte("socktab")); err != nil {
		return skip("probe send: " + errName(err))
	}
	local, _ := unix.Getsockname(fd)
	me := unmapAP(addrPortOf(local))
	buf := make([]byte, 64)
	deadline := time.Now().Add(udpWait)
	for {
		got := ""
		for _, s := range r.all {
			if s.closed || s.proto != engine.UDP {
				continue
			}
			for {
				_, from, err := unix.Recvfrom(s.fd, buf, unix.MSG_DONTWAIT)
				if err != nil {
					break
				}
				if from != nil && unmapAP(addrPortOf(from)) == me && got == "" {
					got = s.name
				}
			}
		}
		if got != "" {
			return Result{Result: got}
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

func (r *replayer) isLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	for _, l := range r.local {
		if l == a {
			return true
		}
	}
	return false
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

func addrPortOf(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}
