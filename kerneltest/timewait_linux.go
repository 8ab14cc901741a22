//go:build linux

package kerneltest

import (
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/internal/sockaddr"
)

// timeWaitLen is how long Linux keeps a TIME_WAIT socket, and by default
// an orphaned FIN_WAIT2 one (tcp_fin_timeout).
const timeWaitLen = 60 * time.Second

// settleWait bounds the wait for a close's FIN exchange to finish. It is a
// deadline, not a delay: the wait ends as soon as sock_diag shows every
// local connection in a resting state, which takes microseconds on an idle
// machine; only a loaded one comes near it.
const settleWait = 10 * time.Second

// The kernel's clock cannot be advanced, so "advance" runs a clock of its
// own: every TIME-WAIT and FIN-WAIT-2 socket is dated when a close step
// makes it appear (or change state), and one whose 60 s have passed on
// that clock is destroyed (sock_diag SOCK_DESTROY, through ss -K), as the
// timer would have removed it.

// tcpSock is one line of ss -tan: state, local and peer endpoints.
type tcpSock struct {
	state       string
	local, peer netip.AddrPort
	key         string // "STATE LOCAL PEER" as ss wrote them
}

// sockets reads the namespace's TCP sockets through sock_diag (ss runs on
// this thread, so in this namespace).
func sockets() []tcpSock {
	b, err := exec.Command("ss", "-tanH").Output()
	if err != nil {
		return nil
	}
	var out []tcpSock
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		local, peer := withoutDevice(f[3]), withoutDevice(f[4])
		la, _ := netip.ParseAddrPort(local) // "*" (a listener's peer) stays invalid
		pa, _ := netip.ParseAddrPort(peer)
		out = append(out, tcpSock{state: f[0], local: la, peer: pa, key: f[0] + " " + local + " " + peer})
	}
	return out
}

// withoutDevice drops the "%DEVICE" ss writes after the address of a
// socket bound to a device ("192.0.2.1%eth0:5002"): ss's own filters (ss -K
// src ...) refuse that form, and the address is the same without it.
func withoutDevice(ep string) string {
	i := strings.LastIndex(ep, ":")
	if i < 0 {
		return ep
	}
	host, port := ep[:i], ep[i:]
	j := strings.Index(host, "%")
	if j < 0 {
		return ep
	}
	if strings.HasSuffix(host, "]") {
		return host[:j] + "]" + port
	}
	return host[:j] + port
}

// settle waits until no connection between two hosts of the scenario (or
// two ends on one) is half way through a close (FIN-WAIT-1, CLOSING,
// LAST-ACK): the peer is there and answers, so each such state is
// transient, and reading the table before it passes (as a loaded machine
// may) would date a TIME-WAIT that is not there yet. A peer on no host may
// never answer; its states are left alone.
func (r *replayer) settle() {
	deadline := time.Now().Add(settleWait)
	for {
		busy := false
		for _, h := range r.hosts {
			r.inHost(h, func() error {
				for _, s := range sockets() {
					switch s.state {
					case "FIN-WAIT-1", "CLOSING", "LAST-ACK", "SYN-RECV":
						busy = busy || r.hostOf(s.peer.Addr().Unmap().WithZone("")) != nil
					}
				}
				return nil
			})
		}
		if !busy || time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// closeSock closes a socket of the scenario and waits until the kernel has
// let go of it: its inode no longer listed in its host's /proc/net tables
// (an orphan left to finish its FIN exchange is listed with inode 0).
// closeFD holds syscall.ForkLock, but a child that another goroutine forks
// still holds a copy of every descriptor for a moment after its parent
// resumes (until its exec closes them), and a close meanwhile only drops
// our reference: under load a bind right after met the socket's port
// taken, or a connect its listener still there.
func (r *replayer) closeSock(s *ksock) error {
	tables := []string{"tcp", "tcp6"}
	switch s.proto {
	case engine.UDP:
		tables = []string{"udp", "udp6"}
	case engine.UnixStream, engine.UnixDgram:
		tables = []string{"unix"}
	}
	var err error
	r.inHost(s.host, func() error {
		err = closeGone(s.fd, tables...)
		return nil
	})
	return err
}

// closeGone closes fd and waits until its inode has left tables of the
// calling thread's namespace (see closeSock), with settleWait as a
// deadline only.
func closeGone(fd int, tables ...string) error {
	var st unix.Stat_t
	statErr := unix.Fstat(fd, &st)
	if err := closeFD(fd); err != nil || statErr != nil {
		return err
	}
	deadline := time.Now().Add(settleWait)
	for inodeListed(st.Ino, tables...) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return nil
}

// tuple is the local and peer endpoints of a connected TCP socket whose
// peer is a host of the scenario, or zero values.
func (r *replayer) tuple(s *ksock) (local, peer netip.AddrPort) {
	if s.proto != engine.TCP {
		return
	}
	pa, err := unix.Getpeername(s.fd)
	if err != nil {
		return
	}
	la, err := unix.Getsockname(s.fd)
	if err != nil {
		return
	}
	local, peer = sockaddr.AddrPort(la), sockaddr.AddrPort(pa)
	if r.hostOf(peer.Addr().Unmap().WithZone("")) == nil {
		return netip.AddrPort{}, netip.AddrPort{}
	}
	return local, peer
}

// settleClose waits until the connection local-peer just closed on h is
// past its FIN exchange (no longer FIN-WAIT-1, CLOSING or LAST-ACK). The
// peer acknowledges a FIN with a delayed ACK (tcp_fin puts it in pingpong
// mode), so for tens of milliseconds the orphan is a full socket, which a
// connect over its 4-tuple cannot take over (EADDRNOTAVAIL); once the ACK
// is in, it is a timewait sock (tcp_time_wait with TCP_FIN_WAIT2), which
// it can. The engine models the settled state: the replay waits for it,
// on the state, with settleWait as a deadline only.
func (r *replayer) settleClose(h *khost, local, peer netip.AddrPort) {
	deadline := time.Now().Add(settleWait)
	for {
		busy := false
		r.inHost(h, func() error {
			for _, s := range sockets() {
				if s.local.Addr().Unmap() == local.Addr().Unmap() && s.local.Port() == local.Port() &&
					s.peer.Addr().Unmap() == peer.Addr().Unmap() && s.peer.Port() == peer.Port() {
					switch s.state {
					case "FIN-WAIT-1", "CLOSING", "LAST-ACK":
						busy = true
					}
				}
			}
			return nil
		})
		if !busy || time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waiting lists the TIME-WAIT and FIN-WAIT-2 sockets of every host as
// "STATE LOCAL PEER HOSTINDEX".
func (r *replayer) waiting() map[string]bool {
	out := map[string]bool{}
	for _, h := range r.hosts {
		r.inHost(h, func() error {
			for _, s := range sockets() {
				if s.state == "TIME-WAIT" || s.state == "FIN-WAIT-2" {
					out[s.key+" "+strconv.Itoa(h.index)] = true
				}
			}
			return nil
		})
	}
	return out
}

// dateWaiting lets the close settle, then records when each waiting socket
// appeared on the scenario's clock, and on the real one.
func (r *replayer) dateWaiting() {
	r.asRoot(func() error {
		r.settle()
		now := r.waiting()
		for k := range r.born {
			if !now[k] {
				delete(r.born, k)
				delete(r.seen, k)
			}
		}
		for k := range now {
			if _, ok := r.born[k]; !ok {
				r.born[k] = r.clock
				r.seen[k] = time.Now()
			}
		}
		return nil
	})
}

// advance moves the clock and destroys the waiting sockets whose time is
// up. tcp_tw_reuse_delay is a timer of real time (the TIME-WAIT's
// timestamp against jiffies): when the scenario's clock passes it, advance
// also waits until every TIME-WAIT socket has been seen that long ago in
// real time, which bounds its kernel age from below whatever the load.
func (r *replayer) advance(d time.Duration) {
	reuse := r.twReuseDelay()
	var oldest time.Time
	for k, t := range r.seen {
		if strings.HasPrefix(k, "TIME-WAIT") && r.clock+d-r.born[k] >= reuse && t.After(oldest) {
			oldest = t
		}
	}
	if !oldest.IsZero() {
		time.Sleep(time.Until(oldest.Add(reuse + 10*time.Millisecond)))
	}
	r.clock += d
	r.asRoot(func() error {
		for k, born := range r.born {
			if r.clock-born < timeWaitLen {
				continue
			}
			f := strings.Fields(k)
			i, _ := strconv.Atoi(f[3])
			r.inHost(r.hosts[i], func() error {
				return exec.Command("ss", "-K", "-tnH", "state", strings.ToLower(f[0]), "src", f[1], "dst", f[2]).Run()
			})
			delete(r.born, k)
			delete(r.seen, k)
		}
		return nil
	})
}

// twReuseDelay reads net.ipv4.tcp_tw_reuse_delay (milliseconds; 1 s before
// Linux 6.14, when the file did not exist).
func (r *replayer) twReuseDelay() time.Duration {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_tw_reuse_delay")
	if err != nil {
		return time.Second
	}
	ms, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return time.Second
	}
	return time.Duration(ms) * time.Millisecond
}
