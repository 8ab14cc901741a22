package conformance

// A partition between the two hosts: packets are lost and nobody is told,
// so a dial waits until its context ends, a datagram vanishes, and bytes
// written on an established connection arrive once the link heals (TCP
// retransmits them).

import (
	"context"
	"time"
)

func init() { suites = append(suites, faultBehaviours) }

func (c *C) partition(cut bool) {
	c.Helper()
	if err := c.n.Partition(cut); err != nil {
		c.Fatal(err)
	}
}

var faultBehaviours = []behaviour{
	{"faults/partition-dial-waits-for-its-context", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "0.0.0.0:8080")
		c.partition(true)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := c.B().Dial(ctx, def, "tcp4", "192.0.2.1:8080") // "i/o timeout", os.ErrDeadlineExceeded
		c.wantErr("dial across the partition", err, "dial: timeout")
		c.partition(false)
		c.dial(c.B(), "tcp4", "192.0.2.1:8080")
		c.wantAddr("after healing", c.accept(l).RemoteAddr(), "tcp 192.0.2.2:*")
	}},
	{"faults/partition-loses-datagrams", func(c *C) {
		srv := c.listenPacket(c.A(), def, "udp4", "0.0.0.0:8080")
		cl := c.dial(c.B(), "udp4", "192.0.2.1:8080")
		c.write(cl, "before")
		c.readFrom("before the partition", srv, 64, "before")
		c.partition(true)
		_, err := cl.Write([]byte("lost"))
		c.wantErr("send across the partition", err, "ok")
		srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		c.readFrom("nothing arrives", srv, 64, "read: timeout")
		cl.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		c.readErr("the sender hears nothing", cl, "read: timeout")
	}},
	{"faults/partition-holds-bytes-until-healed", func(c *C) {
		l := c.listen(c.A(), def, "tcp4", "0.0.0.0:8080")
		client, server := c.pair(c.B(), l, "tcp4", "192.0.2.1:8080")
		c.write(client, "one")
		c.want("before", c.readN(server, 3), "one")
		c.partition(true)
		c.write(client, "two") // buffered: a write does not wait for the peer
		server.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		c.readErr("during the partition", server, "read: timeout")
		c.partition(false)
		server.SetReadDeadline(time.Now().Add(patience))
		c.want("after healing", c.readN(server, 3), "two")
	}},
}
