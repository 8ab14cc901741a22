package memnet_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/socktab/socktab/memnet"
)

// BenchmarkDialAcceptClose is the loop of bench -net's Dial + Accept +
// Close row (one Dial, the Accept of that connection in the same
// goroutine, the client's Close then the server's), as a Go benchmark so
// that -cpuprofile, -memprofile and allocs/op can guide its cost.
func BenchmarkDialAcceptClose(b *testing.B) {
	n := memnet.New(memnet.Options{Seed: 1})
	srv := n.Host("server", "192.0.2.1/24")
	cli := n.Host("client", "192.0.2.2/24")
	dialAcceptClose(b, srv, cli, "192.0.2.1:0")
}

// dialAcceptClose runs b.N Dials from cli to a listener of srv on
// listenAddr, each Accepted in the same goroutine and both ends closed,
// the client first. The listener moves to a fresh port every 10,000
// connections (untimed): each client port stays in TIME_WAIT toward the
// listener for 60 s, and one port's 4-tuples would run out.
func dialAcceptClose(b *testing.B, srv, cli *memnet.Host, listenAddr string) {
	const perPort = 10000
	var ln net.Listener
	relisten := func() {
		if ln != nil {
			ln.Close()
		}
		var err error
		if ln, err = srv.Listen("tcp4", listenAddr); err != nil {
			b.Fatal(err)
		}
	}
	relisten()
	addr := ln.Addr().String()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%perPort == perPort-1 {
			b.StopTimer()
			relisten()
			addr = ln.Addr().String()
			b.StartTimer()
		}
		c, err := cli.Dial("tcp4", addr)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
		s.Close()
	}
	ln.Close()
}

// BenchmarkDialAcceptCloseManyHosts is BenchmarkDialAcceptClose between
// two hosts of a network of 2, 200 and 2,000: finding the host that has
// the destination must not cost a scan of every host.
func BenchmarkDialAcceptCloseManyHosts(b *testing.B) {
	for _, hosts := range []int{2, 200, 2000} {
		b.Run(fmt.Sprint(hosts), func(b *testing.B) {
			n := memnet.New(memnet.Options{Seed: 1})
			for i := range hosts - 2 {
				n.Host(fmt.Sprintf("h%d", i), fmt.Sprintf("198.51.%d.%d/16", 100+i/250, 1+i%250))
			}
			srv := n.Host("server", "192.0.2.1/24")
			cli := n.Host("client", "192.0.2.2/24")
			dialAcceptClose(b, srv, cli, "192.0.2.1:0")
		})
	}
}

// BenchmarkDialAcceptCloseOneHost is BenchmarkDialAcceptClose with client
// and server on one host over 127.0.0.1, as most tests use memnet: the
// SYN of each connection is looked up on the host that holds the earlier
// connections' TIME_WAITs.
func BenchmarkDialAcceptCloseOneHost(b *testing.B) {
	n := memnet.New(memnet.Options{Seed: 1})
	h := n.Host("app", "192.0.2.1/24")
	dialAcceptClose(b, h, h, "127.0.0.1:0")
}
