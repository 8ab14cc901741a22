package engine_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/socktab/socktab/engine"
)

// BenchmarkTimeWaitChurn is a steady churn of connections between two
// simulated hosts once TIME_WAIT timers run out as fast as new ones start:
// 20,000 connections are made 1 ms apart and left in TIME_WAIT, the clock
// moves on until the first of them runs out, and each op then advances the
// clock by 1 ms (one timer runs out) and makes, accepts and closes one more
// connection. The cost per op must not grow with the
// TIME_WAIT population (the expiry reads only the timers that ran out).
func BenchmarkTimeWaitChurn(b *testing.B) {
	n := engine.NewNetwork(engine.Linux, 1)
	srv, cli := n.AddHost("server"), n.AddHost("client")
	srv.AddIface("eth0", netip.MustParsePrefix("192.0.2.1/24"))
	cli.AddIface("eth0", netip.MustParsePrefix("192.0.2.2/24"))
	l, _ := srv.NewSocket(engine.Inet, engine.TCP, 0)
	if r := srv.Bind(l, netip.MustParseAddrPort("192.0.2.1:80")); r.Err != engine.OK {
		b.Fatal(r)
	}
	if r := srv.Listen(l); r.Err != engine.OK {
		b.Fatal(r)
	}
	dst := netip.MustParseAddrPort("192.0.2.1:80")
	conn := func() {
		s, _ := cli.NewSocket(engine.Inet, engine.TCP, 0)
		if r := cli.Connect(s, dst); r.Err != engine.OK {
			b.Fatal(r)
		}
		c, r := srv.Accept(l)
		if r.Err != engine.OK {
			b.Fatal(r)
		}
		cli.Close(s)
		srv.Close(c)
	}
	for range 20000 {
		n.Advance(time.Millisecond)
		conn()
	}
	n.Advance(40 * time.Second)
	b.ResetTimer()
	for range b.N {
		n.Advance(time.Millisecond)
		conn()
	}
}
