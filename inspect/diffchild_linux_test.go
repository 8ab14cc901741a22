//go:build linux

package inspect

// The child side of the live differential test (diff_linux_test.go): the
// test binary re-executed inside a namespace (as root or, after
// setresuid, as another user) plants real sockets and does the kernel's
// side of each question, driven by JSON lines on stdin.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socktab/socktab/internal/sockaddr"
	"golang.org/x/sys/unix"
)

const childEnv = "SOCKTAB_DIFF_CHILD" // the uid the child runs as

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		os.Exit(runChild(v))
	}
	os.Exit(m.Run())
}

// childReq is one command to a child.
type childReq struct {
	Op        string `json:"op"` // sock, tw, ctw, estab, bind, connect, send, got, accepted
	Proto     string `json:"proto,omitempty"`
	Addr      string `json:"addr,omitempty"` // local address (sock, bind; source for connect/send)
	Peer      string `json:"peer,omitempty"` // destination
	ReuseAddr bool   `json:"reuseaddr,omitempty"`
	ReusePort bool   `json:"reuseport,omitempty"`
	V6Only    bool   `json:"v6only,omitempty"`
	Dev       string `json:"dev,omitempty"`
	Listen    bool   `json:"listen,omitempty"`
	KeepLn    bool   `json:"keep_listener,omitempty"`
	Token     string `json:"token,omitempty"`
}

// childResp is a child's answer: Err is "" or an errno name; Ino the
// inode of a planted socket (or of the receiving socket for got/accepted).
type childResp struct {
	Err   string   `json:"err,omitempty"`
	Ino   uint64   `json:"ino,omitempty"`
	Inos  []uint64 `json:"inos,omitempty"`
	Local string   `json:"local,omitempty"`
}

type child struct {
	mu       sync.Mutex
	got      map[string]uint64 // datagram token -> inode of the receiver
	senders  map[string]int    // datagram token -> the prober's socket
	accepted map[string]uint64 // client address -> inode of the listener
	keep     []int
}

func runChild(uid string) int {
	if uid != "0" {
		id, err := strconv.Atoi(uid)
		if err == nil {
			err = syscall.Setresgid(id, id, id)
		}
		if err == nil {
			err = syscall.Setresuid(id, id, id)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child: setresuid:", err)
			return 1
		}
	}
	c := &child{got: map[string]uint64{}, accepted: map[string]uint64{}, senders: map[string]int{}}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<16), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var r childReq
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			fmt.Fprintln(os.Stderr, "child: bad request:", err)
			return 1
		}
		out.Encode(c.do(r))
	}
	return 0
}

func errName(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		if n := unix.ErrnoName(en); n != "" {
			return n
		}
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// sockaddrOf is ap as the child's sockets take it, with its family: the
// family the address is written in, and a zone read as an interface name
// (a name no interface has gives no scope).
func sockaddrOf(ap netip.AddrPort) (unix.Sockaddr, int) {
	fam := sockaddr.Family(ap.Addr())
	return sockaddr.Inet(fam, ap, sockaddr.Scope(ap.Addr().Zone(), 0)), fam
}

func inoOf(fd int) uint64 {
	var st unix.Stat_t
	unix.Fstat(fd, &st)
	return st.Ino
}

// open makes a socket with the request's options and binds it to addr.
func open(r childReq, addr string) (int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return -1, err
	}
	sa, fam := sockaddrOf(ap)
	typ := unix.SOCK_STREAM
	if r.Proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	set := func(level, opt, v int) {
		if err == nil {
			err = unix.SetsockoptInt(fd, level, opt, v)
		}
	}
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	set(unix.SOL_SOCKET, unix.SO_REUSEADDR, b(r.ReuseAddr))
	set(unix.SOL_SOCKET, unix.SO_REUSEPORT, b(r.ReusePort))
	if fam == unix.AF_INET6 {
		set(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, b(r.V6Only))
	}
	if r.Dev != "" && err == nil {
		err = unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, r.Dev)
	}
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (c *child) do(r childReq) childResp {
	switch r.Op {
	case "sock":
		fd, err := open(r, r.Addr)
		if err != nil {
			return childResp{Err: errName(err)}
		}
		if r.Listen {
			if err := unix.Listen(fd, 64); err != nil {
				unix.Close(fd)
				return childResp{Err: errName(err)}
			}
			go c.acceptLoop(fd)
		}
		if r.Proto == "udp" {
			if r.Peer != "" {
				pa, _ := netip.ParseAddrPort(r.Peer)
				sa, _ := sockaddrOf(pa)
				if err := unix.Connect(fd, sa); err != nil {
					unix.Close(fd)
					return childResp{Err: errName(err)}
				}
			}
			go c.recvLoop(fd)
		}
		c.keep = append(c.keep, fd)
		sa, _ := unix.Getsockname(fd)
		return childResp{Ino: inoOf(fd), Local: sockaddr.AddrPort(sa).String()}
	case "tw", "ctw", "estab":
		return c.connection(r)
	case "bind":
		fd, err := open(r, r.Addr)
		if err != nil {
			return childResp{Err: errName(err)}
		}
		unix.Close(fd)
		return childResp{}
	case "connect":
		return c.probeTCP(r)
	case "send":
		return c.probeUDP(r)
	case "refused", "forget":
		return c.refused(r.Token, r.Op == "forget")
	case "got":
		c.mu.Lock()
		defer c.mu.Unlock()
		return childResp{Ino: c.got[r.Token]}
	case "accepted":
		c.mu.Lock()
		defer c.mu.Unlock()
		return childResp{Ino: c.accepted[r.Addr]}
	}
	return childResp{Err: "bad op " + r.Op}
}

func (c *child) acceptLoop(ln int) {
	ino := inoOf(ln)
	for {
		fd, sa, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
		if err != nil {
			if err == unix.EINTR || err == unix.ECONNABORTED {
				continue
			}
			return
		}
		c.mu.Lock()
		ap := sockaddr.AddrPort(sa)
		c.accepted[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()] = ino
		c.mu.Unlock()
		go func() {
			// The prober resets the connection: read until then, so
			// that this end never closes first (no TIME-WAIT is left).
			buf := make([]byte, 64)
			for {
				n, err := unix.Read(fd, buf)
				if n <= 0 && err != unix.EINTR {
					break
				}
			}
			unix.Close(fd)
		}()
	}
}

func (c *child) recvLoop(fd int) {
	ino := inoOf(fd)
	buf := make([]byte, 256)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if err == unix.EINTR || err == unix.ECONNREFUSED {
				continue
			}
			return
		}
		c.mu.Lock()
		c.got[string(buf[:n])] = ino
		c.mu.Unlock()
	}
}

// connection plants a TCP connection: a listener on Addr with the
// request's options and a client from Peer (or an ephemeral port). estab
// keeps both ends; tw closes the server end first (the accepted socket
// goes to TIME-WAIT with the listener's options); ctw closes the client
// first (its end goes to TIME-WAIT). Unless KeepLn, the listener is closed
// afterwards.
func (c *child) connection(r childReq) childResp {
	r.Listen = true
	ln, err := open(r, r.Addr)
	if err != nil {
		return childResp{Err: errName(err)}
	}
	if err := unix.Listen(ln, 8); err != nil {
		unix.Close(ln)
		return childResp{Err: errName(err)}
	}
	lsa, _ := unix.Getsockname(ln)
	lap := sockaddr.AddrPort(lsa)
	if lap.Addr().IsUnspecified() {
		if lap.Addr().Is4() {
			lap = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), lap.Port())
		} else {
			lap = netip.AddrPortFrom(netip.IPv6Loopback(), lap.Port())
		}
	}
	sa, fam := sockaddrOf(lap)
	cl, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		err = unix.Connect(cl, sa)
	}
	if err != nil {
		unix.Close(ln)
		return childResp{Err: "client: " + errName(err)}
	}
	// Another listener on the port may have taken the connection (a more
	// specific address, or a reuseport group member): then ours has
	// nothing to accept.
	pfd := []unix.PollFd{{Fd: int32(ln), Events: unix.POLLIN}}
	if n, _ := unix.Poll(pfd, 3000); n != 1 {
		unix.Close(ln)
		unix.Close(cl)
		return childResp{Err: "accept: the connection went to another listener"}
	}
	a, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		unix.Close(ln)
		unix.Close(cl)
		return childResp{Err: "accept: " + errName(err)}
	}
	first, second := a, cl
	if r.Op == "ctw" {
		first, second = cl, a
	}
	resp := childResp{Inos: []uint64{inoOf(ln), inoOf(a), inoOf(cl)}}
	switch r.Op {
	case "estab":
		c.keep = append(c.keep, a, cl)
	default:
		unix.Close(first)
		buf := make([]byte, 1)
		unix.SetsockoptTimeval(second, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
		unix.Read(second, buf) // the FIN arrived
		unix.Close(second)
	}
	if r.KeepLn {
		go c.acceptLoop(ln)
		c.keep = append(c.keep, ln)
	} else {
		unix.Close(ln)
	}
	return resp
}

// probeSocket opens a probe's socket of type typ bound to r.Addr (a TCP
// one with SO_REUSEADDR, so that its source port can be used again at once)
// and returns it with r.Peer's address; fail says which step failed.
func probeSocket(r childReq, typ int) (fd int, peer unix.Sockaddr, fail *childResp) {
	src, err := netip.ParseAddrPort(r.Addr)
	if err != nil {
		return -1, nil, &childResp{Err: "source: " + err.Error()}
	}
	dst, err := netip.ParseAddrPort(r.Peer)
	if err != nil {
		return -1, nil, &childResp{Err: "peer: " + err.Error()}
	}
	ssa, fam := sockaddrOf(src)
	peer, _ = sockaddrOf(dst)
	if fd, err = unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0); err != nil {
		return -1, nil, &childResp{Err: errName(err)}
	}
	if typ == unix.SOCK_STREAM {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err := unix.Bind(fd, ssa); err != nil {
		unix.Close(fd)
		return -1, nil, &childResp{Err: "bind: " + errName(err)}
	}
	return fd, peer, nil
}

// probeTCP connects from Addr to Peer and resets the connection: Err is
// "" when a listener accepted it (ask "accepted" which), else the errno.
func (c *child) probeTCP(r childReq) childResp {
	fd, dsa, fail := probeSocket(r, unix.SOCK_STREAM)
	if fail != nil {
		return *fail
	}
	defer unix.Close(fd)
	// A connect that nobody answers (neither SYN-ACK nor RST) counts as
	// silent (EINPROGRESS) after 10 s; on loopback and a veth an answer
	// comes well before, even on a loaded machine. The connect runs
	// non-blocking and its end is polled for: a blocking connect with a
	// timeout returns EINTR at any signal (the Go runtime's preemption
	// signals included), which once read as "no answer" under load.
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	if err := unix.SetNonblock(fd, true); err != nil {
		return childResp{Err: errName(err)}
	}
	if err := unix.Connect(fd, dsa); err != unix.EINPROGRESS {
		if err != nil {
			return childResp{Err: errName(err)}
		}
		return childResp{}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return childResp{Err: "EINPROGRESS"}
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(pfd, int(left/time.Millisecond)+1)
		if err == unix.EINTR || n == 0 {
			continue
		}
		if err != nil {
			return childResp{Err: errName(err)}
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return childResp{Err: errName(err)}
		}
		if soerr != 0 {
			return childResp{Err: errName(unix.Errno(soerr))}
		}
		return childResp{}
	}
}

// probeUDP sends Token from Addr to Peer on a connected socket, kept open
// under the token so that "refused" can tell whether the ICMP port
// unreachable that says nobody received it came back.
func (c *child) probeUDP(r childReq) childResp {
	fd, dsa, fail := probeSocket(r, unix.SOCK_DGRAM)
	if fail != nil {
		return *fail
	}
	if err := unix.Connect(fd, dsa); err != nil {
		unix.Close(fd)
		return childResp{Err: "connect: " + errName(err)}
	}
	if _, err := unix.Write(fd, []byte(r.Token)); err != nil {
		unix.Close(fd)
		return childResp{Err: errName(err)}
	}
	c.mu.Lock()
	c.senders[r.Token] = fd
	c.mu.Unlock()
	return childResp{}
}

// refused reports "ECONNREFUSED" once the ICMP error for Token's datagram
// arrived, "" while it has not; "forget" closes the sender.
func (c *child) refused(token string, forget bool) childResp {
	c.mu.Lock()
	fd, ok := c.senders[token]
	if ok && forget {
		delete(c.senders, token)
	}
	c.mu.Unlock()
	if !ok {
		return childResp{}
	}
	if forget {
		unix.Close(fd)
		return childResp{}
	}
	buf := make([]byte, 16)
	if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err == unix.ECONNREFUSED {
		return childResp{Err: "ECONNREFUSED"}
	}
	return childResp{}
}
