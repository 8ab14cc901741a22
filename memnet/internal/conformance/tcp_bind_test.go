package conformance

// Binding TCP listeners: which Listen calls conflict, with Go's default
// options (SO_REUSEADDR on every TCP listener, IPV6_V6ONLY on tcp6, a
// dual-stack AF_INET6 socket for "tcp" with an empty or unspecified host).

import (
	"fmt"
	"net"
)

func init() { suites = append(suites, tcpBind) }

var tcpBind = []behaviour{
	{"tcp/listen-twice-same-address", func(c *C) {
		c.tryListen("first", c.A(), def, "tcp4", "127.0.0.1:8080", "ok")
		c.tryListen("second", c.A(), def, "tcp4", "127.0.0.1:8080", "listen/bind: EADDRINUSE")
	}},
	{"tcp/listener-addresses", func(c *C) {
		c.wantAddr("tcp :8080", c.listen(c.A(), def, "tcp", ":8080").Addr(), "tcp [::]:8080")
		c.wantAddr("tcp4 :8081", c.listen(c.A(), def, "tcp4", ":8081").Addr(), "tcp 0.0.0.0:8081")
		c.wantAddr("tcp6 :8082", c.listen(c.A(), def, "tcp6", ":8082").Addr(), "tcp [::]:8082")
		c.wantAddr("tcp 127.0.0.1", c.listen(c.A(), def, "tcp", "127.0.0.1:8083").Addr(), "tcp 127.0.0.1:8083")
		c.wantAddr("tcp [::1]", c.listen(c.A(), def, "tcp", "[::1]:8084").Addr(), "tcp [::1]:8084")
	}},
	{"tcp/dualstack-listener-takes-ipv4", func(c *C) {
		c.tryListen("tcp :8080", c.A(), def, "tcp", ":8080", "ok")
		c.tryListen("tcp4 127.0.0.1", c.A(), def, "tcp4", "127.0.0.1:8080", "listen/bind: EADDRINUSE")
		c.tryListen("tcp4 0.0.0.0", c.A(), def, "tcp4", "0.0.0.0:8080", "listen/bind: EADDRINUSE")
		c.tryListen("tcp6 [::1]", c.A(), def, "tcp6", "[::1]:8080", "listen/bind: EADDRINUSE")
	}},
	{"tcp/ipv4-wildcard-blocks-dualstack", func(c *C) {
		c.tryListen("tcp4 0.0.0.0", c.A(), def, "tcp4", "0.0.0.0:8080", "ok")
		c.tryListen("tcp :8080", c.A(), def, "tcp", ":8080", "listen/bind: EADDRINUSE")
	}},
	{"tcp/ipv4-specific-blocks-dualstack", func(c *C) {
		c.tryListen("tcp4 127.0.0.1", c.A(), def, "tcp4", "127.0.0.1:8080", "ok")
		c.tryListen("tcp :8080", c.A(), def, "tcp", ":8080", "listen/bind: EADDRINUSE")
		c.tryListen("tcp6 [::]", c.A(), def, "tcp6", "[::]:8080", "ok")
	}},
	{"tcp/tcp4-then-tcp6-coexist", func(c *C) {
		c.tryListen("tcp4 0.0.0.0", c.A(), def, "tcp4", "0.0.0.0:8080", "ok")
		c.tryListen("tcp6 [::]", c.A(), def, "tcp6", "[::]:8080", "ok")
	}},
	{"tcp/tcp6-then-tcp4-coexist", func(c *C) {
		c.tryListen("tcp6 [::]", c.A(), def, "tcp6", "[::]:8080", "ok")
		c.tryListen("tcp4 0.0.0.0", c.A(), def, "tcp4", "0.0.0.0:8080", "ok")
	}},
	{"tcp/tcp6-wildcard-blocks-dualstack", func(c *C) {
		c.tryListen("tcp6 [::]", c.A(), def, "tcp6", "[::]:8080", "ok")
		c.tryListen("tcp :8080", c.A(), def, "tcp", ":8080", "listen/bind: EADDRINUSE")
	}},
	{"tcp/v6only-option-frees-ipv4", func(c *C) {
		c.tryListen("tcp :8080 v6only", c.A(), Opts{V6Only: on}, "tcp6", "[::]:8080", "ok")
		l4 := c.tryListen("tcp4 0.0.0.0", c.A(), def, "tcp4", "0.0.0.0:8080", "ok")
		if l4 == nil {
			return
		}
		c.dial(c.A(), "tcp4", "127.0.0.1:8080")
		c.wantAddr("accepted by the ipv4 listener", c.accept(l4).LocalAddr(), "tcp 127.0.0.1:8080")
	}},
	{"tcp/v6only-off-makes-tcp6-dualstack", func(c *C) {
		c.tryListen("tcp6 [::] v6only=0", c.A(), Opts{V6Only: off}, "tcp6", "[::]:8080", "ok")
		c.tryListen("tcp4 0.0.0.0", c.A(), def, "tcp4", "0.0.0.0:8080", "listen/bind: EADDRINUSE")
	}},
	{"tcp/different-specific-addresses-share-a-port", func(c *C) {
		c.tryListen("127.0.0.1", c.A(), def, "tcp4", "127.0.0.1:8080", "ok")
		c.tryListen("127.0.0.2", c.A(), def, "tcp4", "127.0.0.2:8080", "ok")
		c.tryListen("192.0.2.1", c.A(), def, "tcp4", "192.0.2.1:8080", "ok")
		c.tryListen("[::1]", c.A(), def, "tcp6", "[::1]:8080", "ok")
		c.tryListen("[2001:db8::1]", c.A(), def, "tcp6", "[2001:db8::1]:8080", "ok")
	}},
	{"tcp/wildcard-then-specific", func(c *C) {
		c.tryListen("0.0.0.0", c.A(), def, "tcp4", "0.0.0.0:8080", "ok")
		c.tryListen("127.0.0.1", c.A(), def, "tcp4", "127.0.0.1:8080", "listen/bind: EADDRINUSE")
	}},
	{"tcp/specific-then-wildcard", func(c *C) {
		c.tryListen("127.0.0.1", c.A(), def, "tcp4", "127.0.0.1:8080", "ok")
		c.tryListen("0.0.0.0", c.A(), def, "tcp4", "0.0.0.0:8080", "listen/bind: EADDRINUSE")
	}},
	{"tcp/without-reuseaddr-too", func(c *C) {
		c.tryListen("first", c.A(), Opts{ReuseAddr: off}, "tcp4", "127.0.0.1:8080", "ok")
		c.tryListen("second", c.A(), Opts{ReuseAddr: off}, "tcp4", "127.0.0.1:8080", "listen/bind: EADDRINUSE")
	}},
	{"tcp/listen-on-an-address-the-host-lacks", func(c *C) {
		c.tryListen("198.51.100.1", c.A(), def, "tcp4", "198.51.100.1:8080", "listen/bind: EADDRNOTAVAIL")
		c.tryListen("[2001:db8::99]", c.A(), def, "tcp6", "[2001:db8::99]:8080", "listen/bind: EADDRNOTAVAIL")
		c.tryListen("b's address", c.A(), def, "tcp4", "192.0.2.2:8080", "listen/bind: EADDRNOTAVAIL")
	}},
	{"tcp/whole-127/8-is-local", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.3.4.5:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.3.4.5:8080")
		c.wantAddr("client remote", client.RemoteAddr(), "tcp 127.3.4.5:8080")
		c.wantAddr("server remote", server.RemoteAddr(), "tcp 127.0.0.1:*")
	}},
	{"tcp/port-zero-takes-from-the-range", func(c *C) {
		if err := c.A().SetPortRange(40000, 40009); err != nil {
			c.Fatal(err)
		}
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:0")
		p := port(l.Addr())
		c.want("port in 40000-40009", fmt.Sprint(p >= 40000 && p <= 40009), "true")
	}},
	{"tcp/listen-port-zero-exhaustion", func(c *C) {
		if err := c.A().SetPortRange(40000, 40001); err != nil {
			c.Fatal(err)
		}
		c.tryListen("first", c.A(), def, "tcp4", "127.0.0.1:0", "ok")
		c.tryListen("second", c.A(), def, "tcp4", "127.0.0.1:0", "ok")
		c.tryListen("third", c.A(), def, "tcp4", "127.0.0.1:0", "listen/bind: EADDRINUSE")
	}},
	{"tcp/reuseport-needs-it-on-both", func(c *C) {
		c.tryListen("reuseport", c.A(), Opts{ReusePort: true}, "tcp4", "127.0.0.1:8080", "ok")
		c.tryListen("plain", c.A(), def, "tcp4", "127.0.0.1:8080", "listen/bind: EADDRINUSE")
		c.tryListen("plain first", c.A(), def, "tcp4", "127.0.0.1:8081", "ok")
		c.tryListen("reuseport second", c.A(), Opts{ReusePort: true}, "tcp4", "127.0.0.1:8081", "listen/bind: EADDRINUSE")
	}},
	{"tcp/reuseport-group-shares-connections", func(c *C) {
		l1 := c.listen(c.A(), Opts{ReusePort: true}, "tcp4", "127.0.0.1:8080")
		l2 := c.listen(c.A(), Opts{ReusePort: true}, "tcp4", "127.0.0.1:8080")
		const dials = 32
		counts := make(chan int, 2)
		for _, l := range []net.Listener{l1, l2} {
			go func() {
				n := 0
				for {
					conn, err := l.Accept()
					if err != nil {
						counts <- n
						return
					}
					conn.Close()
					n++
				}
			}()
		}
		for range dials {
			conn := c.dial(c.A(), "tcp4", "127.0.0.1:8080")
			c.readErr("accepted and closed", conn, "EOF") // the listener that took it closed it
			conn.Close()
		}
		l1.Close()
		l2.Close()
		n1, n2 := <-counts, <-counts
		c.want("accepted in all", fmt.Sprint(n1+n2), fmt.Sprint(dials))
		c.want("both listeners took some", fmt.Sprint(n1 > 0 && n2 > 0), "true")
	}},
	{"tcp/specific-beats-wildcard", func(c *C) {
		w := c.listen(c.A(), Opts{ReusePort: true}, "tcp4", "0.0.0.0:8080")
		s := c.listen(c.A(), Opts{ReusePort: true}, "tcp4", "127.0.0.1:8080")
		c.dial(c.A(), "tcp4", "127.0.0.1:8080")
		c.wantAddr("to 127.0.0.1: specific", c.accept(s).LocalAddr(), "tcp 127.0.0.1:8080")
		c.dial(c.A(), "tcp4", "127.0.0.2:8080")
		c.wantAddr("to 127.0.0.2: wildcard", c.accept(w).LocalAddr(), "tcp 127.0.0.2:8080")
	}},
}
