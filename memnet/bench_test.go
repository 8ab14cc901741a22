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
// that -cpuprofile, -memprofile and allocs/op can guide its cost. The
// listener moves to a fresh port every few thousand connections: each
// client port stays in TIME_WAIT toward the listener for 60 s, and one
// port's 4-tuples would run out.
func BenchmarkDialAcceptClose(b *testing.B) {
	n := memnet.New(memnet.Options{Seed: 1})
	srv := n.Host("server", "192.0.2.1/24")
	cli := n.Host("client", "192.0.2.2/24")
	const perPort = 10000
	var l interface {
		Close() error
	}
	var addr string
	var accept func() (net.Conn, error)
	relisten := func() {
		if l != nil {
			l.Close()
		}
		ln, err := srv.Listen("tcp4", "192.0.2.1:0")
		if err != nil {
			b.Fatal(err)
		}
		l, addr = ln, ln.Addr().String()
		accept = func() (net.Conn, error) { return ln.Accept() }
	}
	relisten()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%perPort == perPort-1 {
			b.StopTimer()
			relisten()
			b.StartTimer()
		}
		c, err := cli.Dial("tcp4", addr)
		if err != nil {
			b.Fatal(err)
		}
		s, err := accept()
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
		s.Close()
	}
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
			ln, err := srv.Listen("tcp4", "192.0.2.1:0")
			if err != nil {
				b.Fatal(err)
			}
			addr := ln.Addr().String()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%10000 == 9999 { // a fresh port: each client port waits in TIME_WAIT toward this one
					b.StopTimer()
					ln.Close()
					if ln, err = srv.Listen("tcp4", "192.0.2.1:0"); err != nil {
						b.Fatal(err)
					}
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
	ln, err := h.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%10000 == 9999 { // a fresh port, as in BenchmarkDialAcceptClose
			b.StopTimer()
			ln.Close()
			if ln, err = h.Listen("tcp4", "127.0.0.1:0"); err != nil {
				b.Fatal(err)
			}
			addr = ln.Addr().String()
			b.StartTimer()
		}
		c, err := h.Dial("tcp4", addr)
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
}
