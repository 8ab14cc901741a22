package conformance

// Unix sockets: paths live in the host's file system (EADDRINUSE until the
// file is removed; Go's stream listener removes its own on Close, a
// unixgram socket does not), abstract names (a leading "@") vanish with
// their socket.

import (
	"net"
)

func init() { suites = append(suites, unixBehaviours) }

var unixBehaviours = []behaviour{
	{"unix/listen-on-a-path-in-use", func(c *C) {
		p := c.A().Path("s")
		c.tryListen("first", c.A(), def, "unix", p, "ok")
		c.tryListen("second", c.A(), def, "unix", p, "listen/bind: EADDRINUSE")
	}},
	{"unix/listener-close-removes-its-path", func(c *C) {
		p := c.A().Path("s")
		l := c.listen(c.A(), def, "unix", p)
		c.wantUnix("listener address", c.A(), l.Addr(), "unix $DIR/s")
		l.Close()
		c.tryDial("dial after close", c.A(), def, "unix", p, "dial/connect: ENOENT")
		c.tryListen("listen again", c.A(), def, "unix", p, "ok")
	}},
	{"unixgram/path-stays-until-removed", func(c *C) {
		p := c.A().Path("g")
		g := c.listenPacket(c.A(), def, "unixgram", p)
		g.Close()
		c.tryListenPacket("bind again", c.A(), def, "unixgram", p, "listen/bind: EADDRINUSE")
		c.wantErr("remove", c.A().Remove(p), "ok")
		c.tryListenPacket("bind after remove", c.A(), def, "unixgram", p, "ok")
	}},
	{"unix/dial-a-missing-path", func(c *C) {
		c.tryDial("dial", c.A(), def, "unix", c.A().Path("none"), "dial/connect: ENOENT")
	}},
	{"unix/dial-a-stale-path", func(c *C) {
		p := c.A().Path("stale")
		c.listenPacket(c.A(), def, "unixgram", p).Close()
		c.tryDial("dial", c.A(), def, "unix", p, "dial/connect: ECONNREFUSED")
	}},
	{"unix/dial-the-wrong-type", func(c *C) {
		p := c.A().Path("g")
		c.listenPacket(c.A(), def, "unixgram", p)
		c.tryDial("stream to a datagram socket", c.A(), def, "unix", p, "dial/connect: EPROTOTYPE")
	}},
	{"unix/abstract-names", func(c *C) {
		l := c.tryListen("listen", c.A(), def, "unix", "@socktab-conf", "ok")
		if l == nil {
			return
		}
		c.wantUnix("address", c.A(), l.Addr(), "unix @socktab-conf")
		c.tryListen("listen again", c.A(), def, "unix", "@socktab-conf", "listen/bind: EADDRINUSE")
		client := c.dial(c.A(), "unix", "@socktab-conf")
		server := c.accept(l)
		c.write(client, "hi")
		c.want("server reads", c.readN(server, 2), "hi")
		l.Close()
		c.tryListen("listen after close", c.A(), def, "unix", "@socktab-conf", "ok")
	}},
	{"unix/abstract-names-are-per-host", func(c *C) {
		c.listen(c.A(), def, "unix", "@socktab-conf")
		c.tryDial("from b", c.B(), def, "unix", "@socktab-conf", "dial/connect: ECONNREFUSED")
		c.tryListen("listen on b", c.B(), def, "unix", "@socktab-conf", "ok")
	}},
	{"unix/stream-eof-after-closewrite", func(c *C) {
		p := c.A().Path("s")
		l := c.listen(c.A(), def, "unix", p)
		client, server := c.pair(c.A(), l, "unix", p)
		c.write(client, "hello")
		c.wantErr("closewrite", client.(interface{ CloseWrite() error }).CloseWrite(), "ok")
		c.readAll("server reads", server, "hello")
		c.write(server, "bye")
		server.Close()
		c.readAll("client reads", client, "bye")
	}},
	{"unix/addresses", func(c *C) {
		p := c.A().Path("s")
		l := c.listen(c.A(), def, "unix", p)
		client, server := c.pair(c.A(), l, "unix", p)
		c.wantUnix("client remote", c.A(), client.RemoteAddr(), "unix $DIR/s")
		c.wantUnix("server local", c.A(), server.LocalAddr(), "unix $DIR/s")
		// An unnamed socket's address is all zeros; package net reads the
		// leading NUL as an abstract name and shows "@".
		c.wantUnix("client local (unnamed)", c.A(), client.LocalAddr(), "unix @")
		c.wantUnix("server remote (unnamed)", c.A(), server.RemoteAddr(), "unix @")
	}},
	{"unix/reset-on-close-with-unread-data", func(c *C) {
		p := c.A().Path("s")
		l := c.listen(c.A(), def, "unix", p)
		client, server := c.pair(c.A(), l, "unix", p)
		c.write(client, "ab")
		c.readN(server, 1)
		server.Close()
		c.readErr("client read", client, "read/read: ECONNRESET")
	}},
	{"unix/write-after-the-peer-closed", func(c *C) {
		p := c.A().Path("s")
		l := c.listen(c.A(), def, "unix", p)
		client, server := c.pair(c.A(), l, "unix", p)
		server.Close()
		c.readErr("client read", client, "EOF")
		_, err := client.Write([]byte("x"))
		c.wantErr("write", err, "write/write: EPIPE")
	}},
	{"unixgram/boundaries-and-source", func(c *C) {
		pa, pb := c.A().Path("ga"), c.A().Path("gb")
		ga := c.listenPacket(c.A(), def, "unixgram", pa)
		gb := c.listenPacket(c.A(), def, "unixgram", pb)
		to := &net.UnixAddr{Name: pa, Net: "unixgram"}
		c.writeTo(gb, "x", to)
		c.writeTo(gb, "yy", to)
		from := c.readFrom("first", ga, 64, "x")
		c.wantUnix("from", c.A(), from, "unixgram $DIR/gb")
		c.readFrom("second", ga, 64, "yy")
	}},
	{"unixgram/send-to-a-closed-peer", func(c *C) {
		pa := c.A().Path("ga")
		ga := c.listenPacket(c.A(), def, "unixgram", pa)
		cl := c.dial(c.A(), "unixgram", pa)
		c.write(cl, "1")
		ga.Close()
		_, err := cl.Write([]byte("2"))
		c.wantErr("write after the peer closed", err, "write/write: ECONNREFUSED")
	}},
}
