package conformance

// UDP: binds (Go sets no SO_REUSEADDR on UDP), delivery by the socket
// table (connected first, specific before wildcard, reuseport groups, the
// most recent SO_REUSEADDR bind), datagram boundaries, truncation, and the
// ICMP port unreachable that only a connected socket hears.

import (
	"fmt"
	"net"
	"strings"
	"time"
)

func init() { suites = append(suites, udpBehaviours) }

var udpBehaviours = []behaviour{
	{"udp/bind-twice", func(c *C) {
		c.tryListenPacket("first", c.A(), def, "udp4", "127.0.0.1:8080", "ok")
		c.tryListenPacket("second", c.A(), def, "udp4", "127.0.0.1:8080", "listen/bind: EADDRINUSE")
	}},
	{"udp/addresses", func(c *C) {
		c.wantAddr("udp :8080", c.listenPacket(c.A(), def, "udp", ":8080").LocalAddr(), "udp [::]:8080")
		c.wantAddr("udp4 :8081", c.listenPacket(c.A(), def, "udp4", ":8081").LocalAddr(), "udp 0.0.0.0:8081")
		c.wantAddr("udp6 [::1]", c.listenPacket(c.A(), def, "udp6", "[::1]:8082").LocalAddr(), "udp [::1]:8082")
	}},
	{"udp/dualstack-takes-ipv4", func(c *C) {
		c.tryListenPacket("udp :8080", c.A(), def, "udp", ":8080", "ok")
		c.tryListenPacket("udp4 0.0.0.0", c.A(), def, "udp4", "0.0.0.0:8080", "listen/bind: EADDRINUSE")
		c.tryListenPacket("udp4 127.0.0.1", c.A(), def, "udp4", "127.0.0.1:8080", "listen/bind: EADDRINUSE")
	}},
	{"udp/udp4-and-udp6-coexist", func(c *C) {
		c.tryListenPacket("udp4 0.0.0.0", c.A(), def, "udp4", "0.0.0.0:8080", "ok")
		c.tryListenPacket("udp6 [::]", c.A(), def, "udp6", "[::]:8080", "ok")
	}},
	{"udp/wildcard-blocks-specific-without-reuseaddr", func(c *C) {
		c.tryListenPacket("0.0.0.0", c.A(), def, "udp4", "0.0.0.0:8080", "ok")
		c.tryListenPacket("127.0.0.1", c.A(), def, "udp4", "127.0.0.1:8080", "listen/bind: EADDRINUSE")
	}},
	{"udp/dualstack-receives-ipv4", func(c *C) {
		srv := c.listenPacket(c.A(), def, "udp", ":8080")
		cl := c.dial(c.A(), "udp4", "127.0.0.1:8080")
		c.write(cl, "hi")
		from := c.readFrom("server reads", srv, 64, "hi")
		c.wantAddr("from", from, "udp 127.0.0.1:*")
		c.want("from is the client", fmt.Sprint(from.String() == cl.LocalAddr().String()), "true")
	}},
	{"udp/boundaries-and-order", func(c *C) {
		srv := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:8080")
		cl := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:0")
		for i := 1; i <= 50; i++ {
			c.writeTo(cl, strings.Repeat(string(rune('a'+i%26)), i), udp("127.0.0.1:8080"))
		}
		var got []string
		b := make([]byte, 256)
		for range 50 {
			n, _, err := srv.ReadFrom(b)
			if err != nil {
				c.Fatalf("read: %v", err)
			}
			got = append(got, string(b[:n]))
		}
		ok := true
		for i, s := range got {
			ok = ok && s == strings.Repeat(string(rune('a'+(i+1)%26)), i+1)
		}
		c.want("50 datagrams, each whole and in order", fmt.Sprint(ok), "true")
	}},
	{"udp/truncation", func(c *C) {
		srv := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:8080")
		cl := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:0")
		c.writeTo(cl, "0123456789abcdefghij", udp("127.0.0.1:8080"))
		c.writeTo(cl, "next", udp("127.0.0.1:8080"))
		c.readFrom("short read", srv, 10, "0123456789")
		c.readFrom("the rest is gone", srv, 64, "next")
	}},
	{"udp/empty-datagram", func(c *C) {
		srv := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:8080")
		cl := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:0")
		c.writeTo(cl, "", udp("127.0.0.1:8080"))
		c.writeTo(cl, "x", udp("127.0.0.1:8080"))
		c.readFrom("empty", srv, 64, "")
		c.readFrom("then x", srv, 64, "x")
	}},
	{"udp/largest-datagram", func(c *C) {
		srv := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:8080")
		cl := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:0")
		_, err := cl.WriteTo(make([]byte, 65507), udp("127.0.0.1:8080"))
		c.wantErr("65507 bytes", err, "ok")
		_, err = cl.WriteTo(make([]byte, 65508), udp("127.0.0.1:8080"))
		c.wantErr("65508 bytes", err, "write/sendto: EMSGSIZE")
		n, _, err := srv.ReadFrom(make([]byte, 70000))
		c.want("received", fmt.Sprint(n, " ", errClass(err)), "65507 ok")
	}},
	{"udp/connected-refused", func(c *C) {
		cl := c.dial(c.A(), "udp4", "127.0.0.1:8080")
		c.write(cl, "anyone?")
		c.readErr("read", cl, "read/read: ECONNREFUSED")
	}},
	{"udp/connected-refused-ipv6", func(c *C) {
		cl := c.dial(c.A(), "udp6", "[::1]:8080")
		c.write(cl, "anyone?")
		c.readErr("read", cl, "read/read: ECONNREFUSED")
	}},
	{"udp/unconnected-hears-no-refusal", func(c *C) {
		cl := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:0")
		_, err := cl.WriteTo([]byte("anyone?"), udp("127.0.0.1:8080"))
		c.wantErr("write", err, "ok")
		cl.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, _, err = cl.ReadFrom(make([]byte, 16))
		c.wantErr("read", err, "read: timeout")
	}},
	{"udp/connected-socket-ignores-strangers", func(c *C) {
		srv := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:8080")
		cl := c.dialOpts(c.A(), Opts{LocalAddr: udp("127.0.0.1:9090")}, "udp4", "127.0.0.1:8080")
		stranger := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:0")
		c.writeTo(stranger, "stranger", udp("127.0.0.1:9090"))
		c.writeTo(srv, "peer", cl.LocalAddr())
		c.readErr("client reads", cl, `"peer", ok`)
	}},
	{"udp/connected-beats-unconnected", func(c *C) {
		open := c.listenPacket(c.A(), Opts{ReuseAddr: on}, "udp4", "127.0.0.1:9090")
		conn := c.dialOpts(c.A(), Opts{ReuseAddr: on, LocalAddr: udp("127.0.0.1:9090")}, "udp4", "127.0.0.1:8080")
		srv := c.listenPacket(c.A(), Opts{ReuseAddr: on}, "udp4", "127.0.0.1:8080")
		other := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:0")
		c.writeTo(srv, "to-connected", udp("127.0.0.1:9090"))
		c.readErr("connected socket gets its peer's", conn, `"to-connected", ok`)
		c.writeTo(other, "to-unconnected", udp("127.0.0.1:9090"))
		c.readFrom("the unconnected socket gets the rest", open, 64, "to-unconnected")
	}},
	{"udp/reuseaddr-most-recent-bind-receives", func(c *C) {
		first := c.listenPacket(c.A(), Opts{ReuseAddr: on}, "udp4", "127.0.0.1:8080")
		second := c.listenPacket(c.A(), Opts{ReuseAddr: on}, "udp4", "127.0.0.1:8080")
		cl := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:0")
		c.writeTo(cl, "one", udp("127.0.0.1:8080"))
		c.readFrom("second socket", second, 64, "one")
		first.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		c.readFrom("first socket", first, 64, "read: timeout")
	}},
	{"udp/specific-beats-wildcard", func(c *C) {
		s := c.listenPacket(c.A(), Opts{ReuseAddr: on}, "udp4", "127.0.0.1:8080")
		w := c.listenPacket(c.A(), Opts{ReuseAddr: on}, "udp4", "0.0.0.0:8080")
		cl := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:0")
		c.writeTo(cl, "to-1", udp("127.0.0.1:8080"))
		c.writeTo(cl, "to-2", udp("127.0.0.2:8080"))
		c.readFrom("specific", s, 64, "to-1")
		c.readFrom("wildcard", w, 64, "to-2")
	}},
	{"udp/reuseport-group-shares-senders", func(c *C) {
		g1 := c.listenPacket(c.A(), Opts{ReusePort: true}, "udp4", "127.0.0.1:8080")
		g2 := c.listenPacket(c.A(), Opts{ReusePort: true}, "udp4", "127.0.0.1:8080")
		c.tryListenPacket("a third without SO_REUSEPORT", c.A(), def, "udp4", "127.0.0.1:8080", "listen/bind: EADDRINUSE")
		const senders = 32
		for range senders {
			cl := c.dial(c.A(), "udp4", "127.0.0.1:8080")
			c.write(cl, "x")
			cl.Close()
		}
		count := func(p net.PacketConn) int {
			n := 0
			for {
				p.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if _, _, err := p.ReadFrom(make([]byte, 8)); err != nil {
					return n
				}
				n++
			}
		}
		n1, n2 := count(g1), count(g2)
		c.want("received in all", fmt.Sprint(n1+n2), fmt.Sprint(senders))
		c.want("both sockets got some", fmt.Sprint(n1 > 0 && n2 > 0), "true")
	}},
	{"udp/ephemeral-exhaustion", func(c *C) {
		if err := c.A().SetPortRange(40000, 40001); err != nil {
			c.Fatal(err)
		}
		c.tryListenPacket("first", c.A(), def, "udp4", "127.0.0.1:0", "ok")
		c.tryListenPacket("second", c.A(), def, "udp4", "127.0.0.1:0", "ok")
		c.tryListenPacket("third", c.A(), def, "udp4", "127.0.0.1:0", "listen/bind: EADDRINUSE")
		c.tryDial("dial", c.A(), def, "udp4", "127.0.0.1:8080", "dial/connect: EAGAIN")
		c.tryListenPacket("another local address", c.A(), def, "udp4", "127.0.0.2:0", "ok")
	}},
	{"udp/source-address-is-exact", func(c *C) {
		srv := c.listenPacket(c.A(), def, "udp6", "[::1]:8080")
		cl := c.listenPacket(c.A(), def, "udp6", "[::1]:9090")
		c.writeTo(cl, "hi", udp("[::1]:8080"))
		from := c.readFrom("read", srv, 64, "hi")
		c.wantAddr("from", from, "udp [::1]:9090")
		c.writeTo(srv, "back", from)
		c.readFrom("reply", cl, 64, "back")
	}},
	{"udp/use-after-close", func(c *C) {
		p := c.listenPacket(c.A(), def, "udp4", "127.0.0.1:8080")
		p.Close()
		_, _, err := p.ReadFrom(make([]byte, 8))
		c.wantErr("read", err, "read: closed")
		_, err = p.WriteTo([]byte("x"), udp("127.0.0.1:8080"))
		c.wantErr("write", err, "write: closed")
		c.tryListenPacket("the port is free", c.A(), def, "udp4", "127.0.0.1:8080", "ok")
	}},
}
