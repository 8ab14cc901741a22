package conformance

// TCP connections: who answers a SYN, the ephemeral port, the byte stream
// and how it ends (FIN, RST, TIME_WAIT), deadlines and closed sockets.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"
)

func init() { suites = append(suites, tcpConnect, tcpStream) }

var tcpConnect = []behaviour{
	{"tcp/refused-ipv4", func(c *C) {
		c.tryDial("dial", c.A(), def, "tcp4", "127.0.0.1:8080", "dial/connect: ECONNREFUSED")
	}},
	{"tcp/refused-ipv6", func(c *C) {
		c.tryDial("dial", c.A(), def, "tcp6", "[::1]:8080", "dial/connect: ECONNREFUSED")
	}},
	{"tcp/dualstack-listener-accepts-both-families", func(c *C) {
		l := c.listen(c.A(), def, "tcp", ":8080")
		_, s4 := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		c.wantAddr("ipv4 local", s4.LocalAddr(), "tcp 127.0.0.1:8080")
		c.wantAddr("ipv4 remote", s4.RemoteAddr(), "tcp 127.0.0.1:*")
		_, s6 := c.pair(c.A(), l, "tcp6", "[::1]:8080")
		c.wantAddr("ipv6 local", s6.LocalAddr(), "tcp [::1]:8080")
		c.wantAddr("ipv6 remote", s6.RemoteAddr(), "tcp [::1]:*")
	}},
	{"tcp/tcp6-listener-refuses-ipv4", func(c *C) {
		c.listen(c.A(), def, "tcp6", "[::]:8080")
		c.tryDial("ipv4", c.A(), def, "tcp4", "127.0.0.1:8080", "dial/connect: ECONNREFUSED")
		c.tryDial("ipv6", c.A(), def, "tcp6", "[::1]:8080", "ok")
	}},
	{"tcp/tcp4-listener-refuses-ipv6", func(c *C) {
		c.listen(c.A(), def, "tcp4", "0.0.0.0:8080")
		c.tryDial("ipv6", c.A(), def, "tcp6", "[::1]:8080", "dial/connect: ECONNREFUSED")
		c.tryDial("ipv4", c.A(), def, "tcp4", "127.0.0.1:8080", "ok")
	}},
	{"tcp/specific-listener-refuses-other-local-addresses", func(c *C) {
		c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		c.tryDial("127.0.0.2", c.A(), def, "tcp4", "127.0.0.2:8080", "dial/connect: ECONNREFUSED")
		c.tryDial("192.0.2.1", c.A(), def, "tcp4", "192.0.2.1:8080", "dial/connect: ECONNREFUSED")
	}},
	{"tcp/dial-unspecified-reaches-loopback", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "0.0.0.0:8080")
		client, server := c.pair(c.A(), l, "tcp4", "0.0.0.0:8080")
		c.wantAddr("client remote", client.RemoteAddr(), "tcp 127.0.0.1:8080")
		c.wantAddr("server local", server.LocalAddr(), "tcp 127.0.0.1:8080")
	}},
	{"tcp/addresses-mirror", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		c.wantAddr("client remote", client.RemoteAddr(), "tcp 127.0.0.1:8080")
		c.wantAddr("client local", client.LocalAddr(), "tcp 127.0.0.1:*")
		c.want("client local is server remote", fmt.Sprint(client.LocalAddr().String() == server.RemoteAddr().String()), "true")
		c.want("client remote is server local", fmt.Sprint(client.RemoteAddr().String() == server.LocalAddr().String()), "true")
	}},
	{"tcp/ephemeral-port-from-the-range", func(c *C) {
		if err := c.A().SetPortRange(40000, 40009); err != nil {
			c.Fatal(err)
		}
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, _ := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		p := port(client.LocalAddr())
		c.want("port in 40000-40009", fmt.Sprint(p >= 40000 && p <= 40009), "true")
	}},
	{"tcp/ephemeral-exhaustion", func(c *C) {
		if err := c.A().SetPortRange(40000, 40001); err != nil {
			c.Fatal(err)
		}
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		c.tryDial("first", c.A(), def, "tcp4", "127.0.0.1:8080", "ok")
		c.tryDial("second", c.A(), def, "tcp4", "127.0.0.1:8080", "ok")
		c.tryDial("third", c.A(), def, "tcp4", "127.0.0.1:8080", "dial/connect: EADDRNOTAVAIL")
		_ = l
	}},
	{"tcp/ephemeral-port-reused-for-another-destination", func(c *C) {
		if err := c.A().SetPortRange(40000, 40001); err != nil {
			c.Fatal(err)
		}
		c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		c.listen(c.A(), def, "tcp4", "127.0.0.1:8081")
		for i := range 2 {
			c.tryDial(fmt.Sprint("to 8080 #", i), c.A(), def, "tcp4", "127.0.0.1:8080", "ok")
			c.tryDial(fmt.Sprint("to 8081 #", i), c.A(), def, "tcp4", "127.0.0.1:8081", "ok")
		}
		c.tryDial("to 8080 #2", c.A(), def, "tcp4", "127.0.0.1:8080", "dial/connect: EADDRNOTAVAIL")
	}},
	{"tcp/dial-from-a-fixed-port", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		c.dialOpts(c.A(), Opts{LocalAddr: tcp("127.0.0.1:9090")}, "tcp4", "127.0.0.1:8080")
		c.wantAddr("server remote", c.accept(l).RemoteAddr(), "tcp 127.0.0.1:9090")
	}},
	{"tcp/dial-from-a-listening-port", func(c *C) {
		c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		c.listen(c.A(), def, "tcp4", "127.0.0.1:9090")
		c.tryDial("dial", c.A(), Opts{LocalAddr: tcp("127.0.0.1:9090")}, "tcp4", "127.0.0.1:8080", "dial/bind: EADDRINUSE")
	}},
	{"tcp/dial-twice-from-one-fixed-port", func(c *C) {
		c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		c.listen(c.A(), def, "tcp4", "127.0.0.1:8081")
		from := Opts{LocalAddr: tcp("127.0.0.1:9090")}
		c.tryDial("first", c.A(), from, "tcp4", "127.0.0.1:8080", "ok")
		c.tryDial("second, other destination", c.A(), from, "tcp4", "127.0.0.1:8081", "dial/bind: EADDRINUSE")
	}},
	{"tcp/dial-with-canceled-context", func(c *C) {
		c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.A().Dial(ctx, def, "tcp4", "127.0.0.1:8080")
		c.wantErr("dial", err, "dial: canceled")
	}},
}

var tcpStream = []behaviour{
	{"tcp/bytes-arrive-whole-and-in-order", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		data := make([]byte, 1<<20)
		for i := range data {
			data[i] = byte(i * 7 / 251)
		}
		go func() { io.Copy(server, server); server.(interface{ CloseWrite() error }).CloseWrite() }()
		go func() { client.Write(data); client.(interface{ CloseWrite() error }).CloseWrite() }()
		got, err := io.ReadAll(client)
		c.wantErr("echo ends", err, "ok")
		c.want("1 MiB echoed", fmt.Sprint(bytes.Equal(got, data)), "true")
	}},
	{"tcp/eof-after-closewrite", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		c.write(client, "hello")
		c.wantErr("closewrite", client.(interface{ CloseWrite() error }).CloseWrite(), "ok")
		c.readAll("server reads", server, "hello")
		c.write(server, "bye")
		server.Close()
		c.readAll("client reads", client, "bye")
	}},
	{"tcp/write-after-closewrite", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, _ := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		client.(interface{ CloseWrite() error }).CloseWrite()
		_, err := client.Write([]byte("late"))
		c.wantErr("write", err, "write/write: EPIPE")
	}},
	{"tcp/graceful-close-gives-data-then-eof", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		c.write(server, "bye")
		server.Close()
		c.readAll("client reads", client, "bye")
		c.readErr("read again", client, "EOF")
	}},
	{"tcp/reset-on-close-with-unread-data", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		c.write(client, "ab")
		c.want("server reads one byte", c.readN(server, 1), "a") // so "b" has arrived
		server.Close()
		c.readErr("client read", client, "read/read: ECONNRESET")
		c.readErr("client read again", client, "EOF")
	}},
	{"tcp/write-after-reset", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		c.write(client, "ab")
		c.readN(server, 1)
		server.Close()
		c.readErr("client read", client, "read/read: ECONNRESET")
		_, err := client.Write([]byte("x"))
		c.wantErr("client write", err, "write/write: EPIPE")
	}},
	{"tcp/linger-zero-resets", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		lg, ok := server.(interface{ SetLinger(int) error })
		if !ok {
			c.Fatalf("%T has no SetLinger", server)
		}
		c.wantErr("setlinger 0", lg.SetLinger(0), "ok")
		server.Close()
		c.readErr("client read", client, "read/read: ECONNRESET")
	}},
	{"tcp/write-to-a-closed-peer", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		server.Close()
		c.readErr("client read", client, "EOF")
		_, err := client.Write([]byte("x"))
		c.wantErr("first write (the peer answers RST)", err, "ok")
		_, err = client.Write([]byte("y"))
		c.wantErr("second write", err, "write/write: EPIPE")
	}},
	{"tcp/listener-close-resets-unaccepted", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client := c.dial(c.A(), "tcp4", "127.0.0.1:8080")
		l.Close()
		c.readErr("client read", client, "read/read: ECONNRESET")
	}},
	{"tcp/connection-outlives-its-listener", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		l.Close()
		c.write(client, "ping")
		c.want("server reads", c.readN(server, 4), "ping")
		c.write(server, "pong")
		c.want("client reads", c.readN(client, 4), "pong")
		c.tryDial("new dial", c.A(), def, "tcp4", "127.0.0.1:8080", "dial/connect: ECONNREFUSED")
	}},
	{"tcp/accept-after-close", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		l.Close()
		_, err := l.Accept()
		c.wantErr("accept", err, "accept: closed")
		c.wantErr("close again", l.Close(), "close: closed")
	}},
	{"tcp/use-after-own-close", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, _ := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		client.Close()
		_, err := client.Read(make([]byte, 1))
		c.wantErr("read", err, "read: closed")
		_, err = client.Write([]byte("x"))
		c.wantErr("write", err, "write: closed")
		c.wantErr("close again", client.Close(), "close: closed")
	}},
	{"tcp/read-deadline", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		client.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		c.readErr("read before data", client, "read: timeout")
		client.SetReadDeadline(time.Time{})
		c.write(server, "x")
		c.readErr("read after clearing", client, `"x", ok`)
	}},
	{"tcp/past-deadline-beats-buffered-data", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		c.write(server, "xy")
		c.want("first byte", c.readN(client, 1), "x")
		client.SetReadDeadline(time.Now().Add(-time.Second))
		c.readErr("read with a past deadline", client, "read: timeout")
		client.SetReadDeadline(time.Time{})
		c.readErr("read after clearing", client, `"y", ok`)
	}},
	{"tcp/write-deadline-when-the-peer-does-not-read", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, _ := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		client.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		chunk := make([]byte, 1<<20)
		var err error
		for i := 0; i < 256 && err == nil; i++ {
			_, err = client.Write(chunk)
		}
		c.wantErr("write", err, "write: timeout")
	}},
}
