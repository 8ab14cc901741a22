package conformance

// Two hosts on one link: each has its own socket table, loopback and port
// range; a dial across the link carries the dialer's link address.

import (
	"fmt"
	"time"
)

func init() { suites = append(suites, hostBehaviours) }

var hostBehaviours = []behaviour{
	{"hosts/dial-across-the-link-ipv4", func(c *C) {
		l := c.listen(c.A(), def, "tcp", ":8080")
		client, server := c.pair(c.B(), l, "tcp4", "192.0.2.1:8080")
		c.wantAddr("client local", client.LocalAddr(), "tcp 192.0.2.2:*")
		c.wantAddr("server local", server.LocalAddr(), "tcp 192.0.2.1:8080")
		c.wantAddr("server remote", server.RemoteAddr(), "tcp 192.0.2.2:*")
		c.write(client, "ping")
		c.want("server reads", c.readN(server, 4), "ping")
	}},
	{"hosts/dial-across-the-link-ipv6", func(c *C) {
		l := c.listen(c.A(), def, "tcp", ":8080")
		client, server := c.pair(c.B(), l, "tcp6", "[2001:db8::1]:8080")
		c.wantAddr("client local", client.LocalAddr(), "tcp [2001:db8::2]:*")
		c.wantAddr("server remote", server.RemoteAddr(), "tcp [2001:db8::2]:*")
	}},
	{"hosts/loopback-is-per-host", func(c *C) {
		c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		c.tryDial("b dials 127.0.0.1", c.B(), def, "tcp4", "127.0.0.1:8080", "dial/connect: ECONNREFUSED")
		c.tryDial("b dials a's loopback listener by a's address", c.B(), def, "tcp4", "192.0.2.1:8080", "dial/connect: ECONNREFUSED")
	}},
	{"hosts/refused-across-the-link", func(c *C) {
		c.tryDial("ipv4", c.B(), def, "tcp4", "192.0.2.1:8080", "dial/connect: ECONNREFUSED")
		c.tryDial("ipv6", c.B(), def, "tcp6", "[2001:db8::1]:8080", "dial/connect: ECONNREFUSED")
	}},
	{"hosts/link-address-listener-from-both-sides", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "192.0.2.1:8080")
		_, server := c.pair(c.A(), l, "tcp4", "192.0.2.1:8080")
		c.wantAddr("from a itself", server.RemoteAddr(), "tcp 192.0.2.1:*")
		_, server = c.pair(c.B(), l, "tcp4", "192.0.2.1:8080")
		c.wantAddr("from b", server.RemoteAddr(), "tcp 192.0.2.2:*")
		c.tryDial("a via loopback", c.A(), def, "tcp4", "127.0.0.1:8080", "dial/connect: ECONNREFUSED")
	}},
	{"hosts/no-route", func(c *C) {
		c.tryDial("ipv4", c.B(), def, "tcp4", "198.51.100.7:8080", "dial/connect: ENETUNREACH")
		c.tryDial("ipv6", c.B(), def, "tcp6", "[2001:db8:1::7]:8080", "dial/connect: ENETUNREACH")
	}},
	{"hosts/same-port-on-each-host", func(c *C) {
		c.tryListen("a", c.A(), def, "tcp", ":8080", "ok")
		c.tryListen("b", c.B(), def, "tcp", ":8080", "ok")
		c.tryListenPacket("a udp", c.A(), def, "udp", ":8080", "ok")
		c.tryListenPacket("b udp", c.B(), def, "udp", ":8080", "ok")
	}},
	{"hosts/port-range-is-per-host", func(c *C) {
		if err := c.A().SetPortRange(40000, 40000); err != nil {
			c.Fatal(err)
		}
		if err := c.B().SetPortRange(50000, 50000); err != nil {
			c.Fatal(err)
		}
		l := c.listen(c.B(), def, "tcp4", "0.0.0.0:8080")
		client := c.dial(c.A(), "tcp4", "192.0.2.2:8080")
		c.wantAddr("a's port", client.LocalAddr(), "tcp 192.0.2.1:40000")
		c.accept(l)
		la := c.listen(c.A(), def, "tcp4", "0.0.0.0:8080")
		client = c.dial(c.B(), "tcp4", "192.0.2.1:8080")
		c.wantAddr("b's port", client.LocalAddr(), "tcp 192.0.2.2:50000")
		c.accept(la)
	}},
	{"hosts/udp-across-the-link", func(c *C) {
		srv := c.listenPacket(c.A(), def, "udp", ":8080")
		cl := c.listenPacket(c.B(), def, "udp4", "0.0.0.0:0")
		c.writeTo(cl, "hi", udp("192.0.2.1:8080"))
		from := c.readFrom("a reads", srv, 64, "hi")
		c.wantAddr("from", from, "udp 192.0.2.2:*")
		c.writeTo(srv, "back", from)
		from = c.readFrom("b reads", cl, 64, "back")
		c.wantAddr("reply from", from, "udp 192.0.2.1:8080")
	}},
	{"hosts/connected-udp-refused-across-the-link", func(c *C) {
		cl := c.dial(c.B(), "udp4", "192.0.2.1:8080")
		c.write(cl, "anyone?")
		c.readErr("read", cl, "read/read: ECONNREFUSED")
	}},
	{"hosts/dial-from-a-local-address-across-the-link", func(c *C) {
		l := c.listen(c.A(), def, "tcp", ":8080")
		c.dialOpts(c.B(), Opts{LocalAddr: tcp("192.0.2.2:9090")}, "tcp4", "192.0.2.1:8080")
		c.wantAddr("server remote", c.accept(l).RemoteAddr(), "tcp 192.0.2.2:9090")
		c.tryDial("from an address b lacks", c.B(), Opts{LocalAddr: tcp("192.0.2.1:0")}, "tcp4", "192.0.2.1:8080", "dial/bind: EADDRNOTAVAIL")
	}},
	{"hosts/stream-across-the-link", func(c *C) {
		l := c.listen(c.A(), def, "tcp", ":8080")
		client, server := c.pair(c.B(), l, "tcp6", "[2001:db8::1]:8080")
		data := make([]byte, 256<<10)
		for i := range data {
			data[i] = byte(i)
		}
		go func() { client.Write(data); client.Close() }()
		got := make([]byte, 0, len(data))
		buf := make([]byte, 32<<10)
		server.SetReadDeadline(time.Now().Add(patience))
		for {
			n, err := server.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				c.wantErr("ends with", err, "EOF")
				break
			}
		}
		c.want("bytes", fmt.Sprint(len(got), string(got) == string(data)), "262144 true")
	}},
}
