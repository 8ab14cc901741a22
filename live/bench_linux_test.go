//go:build linux

package live

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkReadTCP reads a namespace holding SOCKTAB_BENCH_SOCKETS TCP
// sockets (default 10000): established pairs (up to 8000 sockets, they
// need fds) and TIME-WAIT sockets for the rest. It reports, as ss-ns/op,
// how long `ss -tan` takes to print the same table.
func BenchmarkReadTCP(b *testing.B) {
	n := 10000
	if v := os.Getenv("SOCKTAB_BENCH_SOCKETS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 || n > 120000 {
			b.Fatalf("SOCKTAB_BENCH_SOCKETS=%q: want 2..120000", v)
		}
	}
	ns := newTestNS(b)
	// A wide port range and no TIME-WAIT reuse, so every connection adds a
	// socket; TIME-WAIT sockets last 60 s, longer than this benchmark.
	ns.sh(b, "echo '1024 65535' > /proc/sys/net/ipv4/ip_local_port_range; echo 0 > /proc/sys/net/ipv4/tcp_tw_reuse")
	var fds []int
	b.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	pairs := min(n/2, 4000)
	tws := n - 2*pairs
	start := time.Now()
	ns.do(b, func() error {
		var ls []int
		for i := range 4 {
			l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			fds = append(fds, l)
			ls = append(ls, l)
			if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 9000 + i}); err != nil {
				return err
			}
			if err := unix.Listen(l, 128); err != nil {
				return err
			}
		}
		connect := func(i int) (c, s int, err error) {
			c, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return -1, -1, err
			}
			if err = unix.Connect(c, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 9000 + i%4}); err != nil {
				unix.Close(c)
				return -1, -1, fmt.Errorf("connect #%d: %w", i, err)
			}
			s, _, err = unix.Accept4(ls[i%4], unix.SOCK_CLOEXEC)
			if err != nil {
				unix.Close(c)
				return -1, -1, err
			}
			return c, s, nil
		}
		for i := range pairs {
			c, s, err := connect(i)
			if err != nil {
				return err
			}
			fds = append(fds, c, s)
		}
		for i := range tws {
			c, s, err := connect(i)
			if err != nil {
				return err
			}
			unix.Close(c) // active close: the client side goes TIME-WAIT
			unix.Close(s)
		}
		return nil
	})
	setup := time.Since(start)
	// Let the closing handshakes settle.
	var total int
	for range 100 {
		sn := one(b, mustReadNetns(b, NetnsTarget{Name: ns.name}, Options{TCP: true}))
		total = len(sn.Sockets)
		if total >= n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Logf("%d TCP sockets in %s (%d established pairs, %d TIME-WAIT; setup %v)", total, ns.name, pairs, tws, setup.Round(time.Millisecond))

	ssStart := time.Now()
	ss := exec.Command("ip", "netns", "exec", ns.name, "ss", "-tan")
	out, err := ss.Output()
	ssDur := time.Since(ssStart)
	if err != nil {
		b.Logf("ss -tan: %v", err)
	}

	for _, c := range []struct {
		name string
		opts Options
	}{
		{"netlink", Options{TCP: true}},
		{"netlink-listen", Options{TCP: true, States: StatesListen}},
		{"proc", Options{TCP: true, ForceProc: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var got int
			for b.Loop() {
				sn := one(b, mustReadNetns(b, NetnsTarget{Name: ns.name}, c.opts))
				got = len(sn.Sockets)
			}
			b.ReportMetric(float64(got), "sockets")
			if err == nil {
				b.ReportMetric(float64(ssDur.Nanoseconds()), "ss-ns/op")
				b.ReportMetric(float64(len(out)), "ss-bytes")
			}
		})
	}
}

func mustReadNetns(tb testing.TB, target NetnsTarget, opts Options) []*Snapshot {
	tb.Helper()
	snaps, err := ReadNetns(target, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return snaps
}
