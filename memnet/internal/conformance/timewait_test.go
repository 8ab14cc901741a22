package conformance

// TIME_WAIT: the side that closes first keeps the 4-tuple, and with it
// the port, for the profile's time; a restarted server needs SO_REUSEADDR
// (Go sets it on every TCP listener) to bind over it.

func init() { suites = append(suites, timeWait) }

// serverClosesFirst leaves the server's side of one connection to
// 127.0.0.1:8080 in TIME_WAIT and closes the listener.
func serverClosesFirst(c *C, o Opts) {
	c.Helper()
	l := c.listen(c.A(), o, "tcp4", "127.0.0.1:8080")
	client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
	server.Close()
	c.readErr("client sees the FIN", client, "EOF")
	client.Close() // the server's FIN_WAIT2 becomes TIME_WAIT
	l.Close()
}

var timeWait = []behaviour{
	{"tcp/restart-over-time-wait", func(c *C) {
		serverClosesFirst(c, def)
		c.tryListen("listen again (Go's SO_REUSEADDR)", c.A(), def, "tcp4", "127.0.0.1:8080", "ok")
	}},
	{"tcp/restart-over-time-wait-without-reuseaddr", func(c *C) {
		serverClosesFirst(c, def)
		c.tryListen("listen again without SO_REUSEADDR", c.A(), Opts{ReuseAddr: off}, "tcp4", "127.0.0.1:8080", "listen/bind: EADDRINUSE")
	}},
	{"tcp/time-wait-blocks-a-dualstack-restart-without-reuseaddr", func(c *C) {
		serverClosesFirst(c, def)
		c.tryListen("tcp :8080 without SO_REUSEADDR", c.A(), Opts{ReuseAddr: off}, "tcp", ":8080", "listen/bind: EADDRINUSE")
		c.tryListen("tcp :8080", c.A(), def, "tcp", ":8080", "ok")
	}},
	{"tcp/passive-closer-keeps-no-time-wait", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		client, server := c.pair(c.A(), l, "tcp4", "127.0.0.1:8080")
		client.Close()
		c.readErr("server sees the FIN", server, "EOF")
		server.Close() // LAST_ACK, then closed when the client's ACK comes
		l.Close()
		c.tryListen("listen again without SO_REUSEADDR", c.A(), Opts{ReuseAddr: off}, "tcp4", "127.0.0.1:8080", "ok")
	}},
	{"tcp/client-time-wait-holds-its-port", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "127.0.0.1:8080")
		from := Opts{LocalAddr: tcp("127.0.0.1:9090")}
		client := c.dialOpts(c.A(), from, "tcp4", "127.0.0.1:8080")
		server := c.accept(l)
		client.Close()
		c.readErr("server sees the FIN", server, "EOF")
		server.Close()
		c.tryDial("same tuple again", c.A(), from, "tcp4", "127.0.0.1:8080", "dial/bind: EADDRINUSE")
		c.tryListen("listen on the client's port", c.A(), Opts{ReuseAddr: off}, "tcp4", "127.0.0.1:9090", "listen/bind: EADDRINUSE")
	}},
}
