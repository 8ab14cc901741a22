package main

// The memnet column of the network table: two hosts of one memnet network
// (Linux profile), "server" with 192.0.2.1 and "client" with 192.0.2.2.

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/socktab/socktab/memnet"
)

func newMemnetOps() (*netOps, error) {
	n := memnet.New(memnet.Options{OS: "linux", Seed: 1})
	srv := n.Host("server", "192.0.2.1/24")
	cli := n.Host("client", "192.0.2.2/24")
	for _, h := range []*memnet.Host{srv, cli} {
		if err := h.Err(); err != nil {
			return nil, err
		}
	}
	return &netOps{
		name:         "memnet",
		server:       "192.0.2.1",
		heap:         true,
		listen:       srv.Listen,
		listenPacket: srv.ListenPacket,
		clientPacket: cli.ListenPacket,
		dial:         cli.Dial,
		close:        func() {},
	}, nil
}

// million1 opens n concurrent connections from one host to another (16
// listening ports on the server, the client's whole port range) and
// reports the Go memory they hold and the time it took.
func million1(n int) Cell {
	const ports = 16
	mn := memnet.New(memnet.Options{OS: "linux", Seed: 1})
	srv := mn.Host("server", "192.0.2.1/24")
	cli := mn.Host("client", "192.0.2.2/24")
	if err := cli.Sysctl("net.ipv4.ip_local_port_range", "1024 65535"); err != nil {
		return na("error: " + err.Error())
	}
	if n > ports*(65535-1024) {
		return na(fmt.Sprintf("at most %d connections", ports*(65535-1024)))
	}
	var ls []net.Listener
	for p := range ports {
		l, err := srv.Listen("tcp4", fmt.Sprintf("192.0.2.1:%d", 8000+p))
		if err != nil {
			return na("error: " + err.Error())
		}
		ls = append(ls, l)
	}
	before := goMemory()
	start := time.Now()
	conns := make([]net.Conn, 0, 2*n)
	ctx := context.Background()
	for i := range n {
		l := ls[i%ports]
		c, err := cli.DialContext(ctx, "tcp4", l.Addr().String())
		if err != nil {
			return na(fmt.Sprintf("error after %d connections: %v", i, err))
		}
		s, err := l.Accept()
		if err != nil {
			return na(fmt.Sprintf("accept after %d connections: %v", i, err))
		}
		conns = append(conns, c, s)
	}
	took := time.Since(start)
	after := goMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	per := float64(after-before) / float64(n)
	note := fmt.Sprintf("%d connections open at once: %.0f B each (both ends), %.2f GB in all, Sys %.2f GB, opened in %.1f s",
		n, per, float64(after-before)/1e9, float64(ms.Sys)/1e9, took.Seconds())
	for _, c := range conns {
		c.Close()
	}
	for _, l := range ls {
		l.Close()
	}
	return Cell{V: per, Note: note}
}
