package memnet_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/memnet"
)

func twoHosts() (*memnet.Network, *memnet.Host, *memnet.Host) {
	n := memnet.New(memnet.Options{})
	return n, n.Host("web", "192.0.2.10/24", "2001:db8::10/64"), n.Host("client", "192.0.2.20/24", "2001:db8::20/64")
}

func mustListen(t *testing.T, h *memnet.Host, network, addr string) net.Listener {
	t.Helper()
	l, err := h.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestDualStackListenerTakesIPv4Port(t *testing.T) {
	_, web, _ := twoHosts()
	mustListen(t, web, "tcp", ":8080")
	_, err := web.Listen("tcp4", "0.0.0.0:8080")
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("tcp4 0.0.0.0:8080 next to tcp :8080: %v, want EADDRINUSE", err)
	}
	var op *net.OpError
	var sc *os.SyscallError
	if !errors.As(err, &op) || op.Op != "listen" || !errors.As(err, &sc) || sc.Syscall != "bind" {
		t.Fatalf("error shape %#v", err)
	}
	var why *engine.Error
	if !errors.As(err, &why) || !strings.Contains(why.Error(), "tcp dual-stack [::]:8080 LISTEN") {
		t.Fatalf("the engine's reason is not reachable: %v", err)
	}
	// tcp6 with IPV6_V6ONLY leaves IPv4 alone.
	if _, err := web.Listen("tcp6", "[::]:9090"); err != nil {
		t.Fatal(err)
	}
	if _, err := web.Listen("tcp4", ":9090"); err != nil {
		t.Fatalf("tcp4 next to a v6-only listener: %v", err)
	}
}

func TestDialAcrossHostsAndAddresses(t *testing.T) {
	_, web, client := twoHosts()
	l := mustListen(t, web, "tcp", ":8080")
	for _, addr := range []string{"web:8080", "192.0.2.10:8080", "[2001:db8::10]:8080"} {
		c, err := client.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if c.LocalAddr().String() != s.RemoteAddr().String() || c.RemoteAddr().String() != s.LocalAddr().String() {
			t.Fatalf("%s: client %v->%v, server %v<-%v", addr, c.LocalAddr(), c.RemoteAddr(), s.LocalAddr(), s.RemoteAddr())
		}
		if _, ok := c.LocalAddr().(*net.TCPAddr); !ok {
			t.Fatalf("LocalAddr is %T", c.LocalAddr())
		}
		c.Write([]byte("hello"))
		buf := make([]byte, 5)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("read %q %v", buf, err)
		}
		c.Close()
		s.Close()
	}
	if _, err := client.Dial("tcp", "web:9"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial a closed port: %v", err)
	}
	// Names are matched without regard to case, with or without the
	// root's trailing dot, as DNS names are.
	for _, name := range []string{"WEB:9", "Web.:9"} {
		if _, err := client.Dial("tcp", name); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s (a closed port of web): %v", name, err)
		}
	}
	_, err := client.Dial("tcp", "nosuchhost:80")
	var dns *net.DNSError
	if !errors.As(err, &dns) || !dns.IsNotFound {
		t.Fatalf("unknown name: %v", err)
	}
	if _, err := client.Dial("tcp", "127.0.0.1:8080"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("the client's own loopback: %v", err)
	}
}

func TestCloseWriteEOFAndResetOnUnreadData(t *testing.T) {
	_, web, client := twoHosts()
	l := mustListen(t, web, "tcp", ":8080")
	c, _ := client.Dial("tcp", "web:8080")
	s, _ := l.Accept()
	c.Write([]byte("abc"))
	c.(*memnet.Conn).CloseWrite()
	b, err := io.ReadAll(s)
	if string(b) != "abc" || err != nil {
		t.Fatalf("after CloseWrite: %q %v", b, err)
	}
	c2, _ := client.Dial("tcp", "web:8080")
	s2, _ := l.Accept()
	s2.Write([]byte("x")) // in c2's buffer as soon as Write returns
	c2.Close()
	if _, err := s2.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the peer closed with unread data: %v, want ECONNRESET", err)
	}
	c.Close()
	s.Close()
}

func TestRestartOverTimeWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New(memnet.Options{})
		web := n.Host("web", "192.0.2.10/24")
		client := n.Host("client", "192.0.2.20/24")
		for i, tc := range []struct {
			reuse *bool
			want  error
		}{{nil, nil}, {new(bool), syscall.EADDRINUSE}} {
			addr := []string{":8080", ":8081"}[i]
			listen := func() (net.Listener, error) {
				return web.ListenConfig(memnet.SockOpts{ReuseAddr: tc.reuse}).Listen(context.Background(), "tcp", addr)
			}
			l, err := listen()
			if err != nil {
				t.Fatal(err)
			}
			c, _ := client.Dial("tcp", "web"+addr)
			s, _ := l.Accept()
			s.Close() // the server closes first: TIME_WAIT on web
			c.Close()
			l.Close()
			l, err = listen()
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("restart with SO_REUSEADDR %v: %v, want %v\n%s", tc.reuse == nil, err, tc.want, web)
			}
			if err != nil {
				time.Sleep(61 * time.Second) // TIME_WAIT runs out on the virtual clock
				if l, err = listen(); err != nil {
					t.Fatalf("after TIME_WAIT: %v", err)
				}
			}
			l.Close()
		}
	})
}

// TestTimeWaitRunsOutUnderChurn: a client that opens and closes a
// connection every second of virtual time for 300 s holds TIME_WAIT only
// for the connections of the last 60 s: each one's timer runs out on time
// while new ones start.
func TestTimeWaitRunsOutUnderChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, web, client := twoHosts()
		l := mustListen(t, web, "tcp", ":8080")
		defer l.Close()
		for i := range 300 {
			c, err := client.Dial("tcp", "web:8080")
			if err != nil {
				t.Fatalf("dial %d: %v", i, err)
			}
			s, _ := l.Accept()
			c.Close() // the client closes first: TIME_WAIT on client
			s.Close()
			time.Sleep(time.Second)
		}
		// Closed at 0 s ... 299 s, each for 60 s: at 300 s those closed
		// after 240 s are left.
		waiting := 0
		for _, s := range client.Sockets() {
			if s.State == "TIME-WAIT" {
				waiting++
			}
		}
		if waiting != 59 {
			t.Fatalf("%d TIME-WAIT sockets at 300 s, want 59\n%s", waiting, client)
		}
	})
}

func TestReadDeadlineInSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, web, client := twoHosts()
		l := mustListen(t, web, "tcp", ":8080")
		c, _ := client.Dial("tcp", "web:8080")
		defer c.Close()
		s, _ := l.Accept()
		defer s.Close()
		start := time.Now()
		c.SetReadDeadline(start.Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read past its deadline: %v", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("the deadline fired after %v of virtual time", d)
		}
	})
}

func TestBacklogFullDialWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, web, client := twoHosts()
		// Nobody accepts: the queue takes backlog+1 connections (Go's
		// backlog on Linux is somaxconn, 4096), then a dial waits.
		l := mustListen(t, web, "tcp", ":8080")
		_ = l
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var conns []net.Conn
		for i := 0; i < 4097; i++ {
			c, err := client.DialContext(ctx, "tcp", "web:8080")
			if err != nil {
				t.Fatalf("dial %d within the backlog: %v", i, err)
			}
			conns = append(conns, c)
		}
		if _, err := client.DialContext(ctx, "tcp", "web:8080"); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("dial with a full queue: %v, want a timeout", err)
		}
		for _, c := range conns {
			c.Close()
		}
	})
}

func TestUDPDeliveryAndConnectedRefused(t *testing.T) {
	_, web, client := twoHosts()
	srv, err := web.ListenPacket("udp", ":5353")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := client.Dial("udp", "web:5353")
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("0123456789"))
	buf := make([]byte, 4)
	k, from, err := srv.ReadFrom(buf)
	if err != nil || k != 4 || string(buf) != "0123" || from.String() != c.LocalAddr().String() {
		t.Fatalf("truncated read: %d %q from %v (client %v) %v", k, buf[:k], from, c.LocalAddr(), err)
	}
	srv.WriteTo([]byte("pong"), from)
	k, err = c.Read(make([]byte, 64))
	if err != nil || k != 4 {
		t.Fatalf("reply: %d %v", k, err)
	}
	srv.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("the first write to a closed port succeeds: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read after a datagram to a closed port: %v, want ECONNREFUSED", err)
	}
}

func TestUDPDropsWhenBufferFull(t *testing.T) {
	_, web, client := twoHosts()
	srv, _ := web.ListenPacket("udp4", ":7000")
	defer srv.Close()
	c, _ := client.Dial("udp4", "192.0.2.10:7000")
	defer c.Close()
	for i := 0; i < 1000; i++ {
		c.Write(make([]byte, 64))
	}
	// The datagrams are queued when Write returns: the listing's Recv-Q
	// says how many bytes the socket holds.
	want := 212992 / (64 + 768)
	var recvQ uint32
	for _, so := range web.Sockets() {
		if so.Proto == "udp" {
			recvQ = so.RecvQ
		}
	}
	if recvQ != uint32(want*64) {
		t.Fatalf("Recv-Q %d bytes, want %d datagrams of 64 (the receive buffer)", recvQ, want)
	}
	for i := 0; i < want; i++ {
		if k, _, err := srv.ReadFrom(make([]byte, 100)); k != 64 || err != nil {
			t.Fatalf("datagram %d: %d bytes, %v", i, k, err)
		}
	}
}

func TestUnixPathsPerHost(t *testing.T) {
	_, web, client := twoHosts()
	pc, err := web.ListenPacket("unixgram", "/run/app.sock")
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
	if _, err := web.Listen("unix", "/run/app.sock"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("bind over a stale path: %v", err)
	}
	if _, err := client.Listen("unix", "/run/app.sock"); err != nil {
		t.Fatalf("the same path on another host: %v", err)
	}
	if err := web.Remove("/run/app.sock"); err != nil {
		t.Fatal(err)
	}
	l, err := web.Listen("unix", "/run/app.sock")
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // removes the path, as package net does
	if l, err = web.Listen("unix", "/run/app.sock"); err != nil {
		t.Fatalf("after the listener's Close: %v", err)
	}
	l.Close()
	if _, err := web.Dial("unix", "/run/none.sock"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("dial a missing path: %v", err)
	}
}

func TestPartitionHoldsBytesAndDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, web, client := twoHosts()
		l := mustListen(t, web, "tcp", ":8080")
		c, _ := client.Dial("tcp", "web:8080")
		s, _ := l.Accept()
		n.Partition(web, client)
		c.Write([]byte("held"))
		s.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := s.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read across a partition: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := client.DialContext(ctx, "tcp", "web:8080"); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("dial across a partition: %v", err)
		}
		n.Heal(web, client)
		s.SetReadDeadline(time.Time{})
		buf := make([]byte, 4)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "held" {
			t.Fatalf("after healing: %q %v", buf, err)
		}
		n.SetLatency(web, client, 10*time.Millisecond)
		start := time.Now()
		c.Write([]byte("late"))
		io.ReadFull(s, buf)
		if d := time.Since(start); d != 10*time.Millisecond {
			t.Fatalf("bytes arrived after %v, want the link's 10ms", d)
		}
		c.Close()
		s.Close()
	})
}

func TestInjectedFaults(t *testing.T) {
	_, web, client := twoHosts()
	l := mustListen(t, web, "tcp", ":8080")
	c, _ := client.Dial("tcp", "web:8080")
	s, _ := l.Accept()
	boom := errors.New("boom")
	c.(*memnet.Conn).SetWriteError(boom)
	if _, err := c.Write([]byte("x")); !errors.Is(err, boom) {
		t.Fatalf("injected write error: %v", err)
	}
	c.(*memnet.Conn).SetWriteError(nil)
	c.(*memnet.Conn).Reset()
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after an injected reset: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write after an injected reset: %v", err)
	}
}

func TestSocketsListing(t *testing.T) {
	_, web, client := twoHosts()
	l := mustListen(t, web, "tcp", ":8080")
	c, _ := client.Dial("tcp", "web:8080")
	defer c.Close()
	s, _ := l.Accept()
	defer s.Close()
	socks := web.Sockets()
	if len(socks) != 2 || socks[0].State != "LISTEN" || socks[0].Local == nil || *socks[0].Local != "[::]:8080" || socks[0].V6Only == nil || *socks[0].V6Only ||
		socks[1].State != "ESTAB" || socks[1].Remote == nil || netip.MustParseAddrPort(*socks[1].Remote).Addr().Unmap().String() != c.LocalAddr().(*net.TCPAddr).IP.String() {
		t.Fatalf("listing: %+v", socks)
	}
	// The options are the ones the program set, not read from a kernel:
	// Go's SO_REUSEADDR on the listener, inherited by the accepted end,
	// and none on the dialer's end.
	for _, so := range append(socks, client.Sockets()...) {
		if want := so.Netns == "web"; so.OptionsSource != "memnet" || so.Options == nil || so.Options.ReuseAddr != want {
			t.Fatalf("%s %s: options %+v from %q, want SO_REUSEADDR %v from memnet", so.Netns, so.State, so.Options, so.OptionsSource, want)
		}
	}
	if txt := web.String(); !strings.Contains(txt, "*:8080") || !strings.Contains(txt, "ESTAB") {
		t.Fatalf("table:\n%s", txt)
	}
}

func TestUDPLossAndPartition(t *testing.T) {
	n, web, client := twoHosts()
	srv, _ := web.ListenPacket("udp4", ":7000")
	defer srv.Close()
	c, _ := client.Dial("udp4", "192.0.2.10:7000")
	defer c.Close()
	recvQ := func() int {
		for _, so := range web.Sockets() {
			if so.Proto == "udp" {
				return int(so.RecvQ)
			}
		}
		return -1
	}
	n.SetLoss(web, client, 0.5)
	for i := 0; i < 200; i++ {
		c.Write([]byte{byte(i)})
	}
	if got := recvQ(); got < 60 || got > 140 {
		t.Fatalf("%d of 200 datagrams arrived with 50%% loss", got)
	}
	for recvQ() > 0 {
		srv.ReadFrom(make([]byte, 1))
	}
	n.SetLoss(web, client, 0)
	n.Partition(web, client)
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("a datagram into a partition: %v (UDP does not know)", err)
	}
	if got := recvQ(); got != 0 {
		t.Fatalf("%d bytes crossed a partition", got)
	}
	n.Heal(web, client)
	c.Write([]byte("y"))
	if got := recvQ(); got != 1 {
		t.Fatalf("%d bytes after healing, want 1", got)
	}
}

func TestSocketsQueues(t *testing.T) {
	_, web, client := twoHosts()
	l := mustListen(t, web, "tcp", ":8080")
	c, _ := client.Dial("tcp", "web:8080")
	defer c.Close()
	s, _ := l.Accept()
	defer s.Close()
	c.Write([]byte("12345"))
	for _, so := range web.Sockets() {
		if so.State == "ESTAB" && so.RecvQ != 5 {
			t.Fatalf("Recv-Q %d, want the 5 unread bytes\n%s", so.RecvQ, web)
		}
	}
	s.Read(make([]byte, 5))
	for _, so := range web.Sockets() {
		if so.State == "ESTAB" && so.RecvQ != 0 {
			t.Fatalf("Recv-Q %d after reading", so.RecvQ)
		}
	}
}

func TestConfigurationErrors(t *testing.T) {
	n := memnet.New(memnet.Options{OS: "plan9"})
	if n.Err() == nil || !strings.Contains(n.Err().Error(), `unknown os "plan9"`) {
		t.Fatalf("unknown OS: %v", n.Err())
	}
	if _, err := n.Host("h", "192.0.2.1/24").Listen("tcp", ":80"); err == nil || !strings.Contains(err.Error(), "plan9") {
		t.Fatalf("listen on a network with a bad OS: %v", err)
	}
	h := memnet.New(memnet.Options{}).Host("h", "192.0.2.300/24")
	if _, err := h.Dial("tcp", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), `"192.0.2.300/24"`) {
		t.Fatalf("dial from a host with a bad address: %v", err)
	}
	if err := memnet.New(memnet.Options{}).Host("h").Sysctl("net.ipv4.ip_local_port_range", "5000 4000"); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("a range the kernel refuses: %v", err)
	}
	if _, err := memnet.New(memnet.Options{}).Host("h").Listen("tcp", "127.0.0.1:99999"); err == nil {
		t.Fatal("port 99999 accepted")
	}
	if _, err := memnet.New(memnet.Options{}).Host("h").Listen("udp", ":53"); err == nil {
		t.Fatal("Listen accepted udp")
	}
}

func TestPrivilegedPortNeedsRoot(t *testing.T) {
	h := memnet.New(memnet.Options{}).Host("h")
	if _, err := h.Listen("tcp", ":80"); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("uid 1000 on :80: %v", err)
	}
	h.SetUID(0)
	if _, err := h.Listen("tcp", ":80"); err != nil {
		t.Fatalf("root on :80: %v", err)
	}
}
