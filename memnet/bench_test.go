package memnet_test

import (
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
