package memnet_test

import (
	"io"
	"net"
	"runtime"
	"testing"

	"github.com/socktab/socktab/memnet"
)

func BenchmarkZDialAcceptClose(b *testing.B) {
	n := memnet.New(memnet.Options{})
	h := n.Host("h", "192.0.2.1/24")
	l, _ := h.Listen("tcp", "127.0.0.1:8080")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c, err := h.Dial("tcp", "127.0.0.1:8080")
		if err != nil {
			b.Fatal(err)
		}
		s, _ := l.Accept()
		s.Close()
		c.Close()
	}
}

func BenchmarkZStream64K(b *testing.B) {
	n := memnet.New(memnet.Options{})
	h := n.Host("h", "192.0.2.1/24")
	l, _ := h.Listen("tcp", "127.0.0.1:8080")
	c, _ := h.Dial("tcp", "127.0.0.1:8080")
	s, _ := l.Accept()
	buf := make([]byte, 64<<10)
	go func() { io.Copy(io.Discard, s) }()
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		c.Write(buf)
	}
	c.Close()
}

func BenchmarkZPingPong(b *testing.B) {
	n := memnet.New(memnet.Options{})
	h := n.Host("h", "192.0.2.1/24")
	l, _ := h.Listen("tcp", "127.0.0.1:8080")
	c, _ := h.Dial("tcp", "127.0.0.1:8080")
	s, _ := l.Accept()
	go func() {
		x := make([]byte, 1)
		for {
			if _, err := s.Read(x); err != nil {
				return
			}
			s.Write(x)
		}
	}()
	x := make([]byte, 1)
	for i := 0; i < b.N; i++ {
		c.Write(x)
		c.Read(x)
	}
	c.Close()
}

func BenchmarkZUDP64(b *testing.B) {
	n := memnet.New(memnet.Options{})
	h := n.Host("h", "192.0.2.1/24")
	srv, _ := h.ListenPacket("udp4", "127.0.0.1:9000")
	c, _ := h.Dial("udp4", "127.0.0.1:9000")
	done := make(chan int)
	go func() {
		x := make([]byte, 64)
		k := 0
		for {
			if _, _, err := srv.ReadFrom(x); err != nil {
				done <- k
				return
			}
			k++
		}
	}()
	x := make([]byte, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Write(x)
	}
	srv.Close()
	k := <-done
	b.ReportMetric(float64(k)/float64(b.N), "delivered")
}

func BenchmarkZIdleMemory(b *testing.B) {
	const N = 20000
	for i := 0; i < b.N; i++ {
		n := memnet.New(memnet.Options{})
		h := n.Host("h", "192.0.2.1/24")
		c2 := n.Host("c", "192.0.2.2/24")
		l, _ := h.Listen("tcp", ":8080")
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		conns := make([]net.Conn, 0, 2*N)
		for j := 0; j < N; j++ {
			c, err := c2.Dial("tcp", "192.0.2.1:8080")
			if err != nil {
				b.Fatal(err)
			}
			s, _ := l.Accept()
			conns = append(conns, c, s)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/N, "bytes/conn")
		runtime.KeepAlive(conns)
	}
}
