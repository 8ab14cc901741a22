//go:build linux

package main

// The kernel column: the same workloads as real syscalls in a fresh
// network namespace per workload (ip netns add; the work runs on a locked
// OS thread after setns, and the thread is never handed back, so it dies
// with its goroutine; the namespace is deleted after). Packet lookup and
// memory are not measurable through syscalls and are left n/a.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

type kernelImpl struct {
	cfg Config
	n   int
}

func newKernel(cfg Config) (impl, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("no ip(8)")
	}
	k := &kernelImpl{cfg: cfg}
	name := k.nsName()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add: %s", strings.TrimSpace(string(out)))
	}
	exec.Command("ip", "netns", "delete", name).Run()
	return k, nil
}

func (k *kernelImpl) nsName() string {
	k.n++
	return fmt.Sprintf("socktab-bench-%d-%d", os.Getpid(), k.n)
}

// nsWorker is a goroutine on an OS thread moved into a namespace: every
// syscall of a workload runs there. The thread is never handed back, so it
// exits with the goroutine.
type nsWorker struct {
	req  chan func()
	done chan struct{}
}

// do runs f on the namespace thread and returns its panic as an error.
func (w *nsWorker) do(f func()) (err error) {
	ch := make(chan struct{})
	w.req <- func() {
		defer close(ch)
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		f()
	}
	<-ch
	return err
}

// prep makes a fresh namespace with lo up, runs the shell commands setup
// there, then setup on the namespace thread; setup returns the operation
// to measure (nil for a fixed cell), what to release, and a note.
func (k *kernelImpl) prep(script string, setup func() (op func(), release func(), c Cell)) prepared {
	name := k.nsName()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fixed(na("ip netns add: " + strings.TrimSpace(string(out))))
	}
	del := func() { exec.Command("ip", "netns", "delete", name).Run() }
	sh := "ip link set lo up"
	if script != "" {
		sh += " && " + script
	}
	if out, err := exec.Command("ip", "netns", "exec", name, "sh", "-c", sh).CombinedOutput(); err != nil {
		del()
		return fixed(na("setup: " + strings.TrimSpace(string(out))))
	}
	nsfd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		del()
		return fixed(na("open netns: " + err.Error()))
	}
	defer unix.Close(nsfd)
	w := &nsWorker{req: make(chan func()), done: make(chan struct{})}
	setnsErr := make(chan error, 1)
	go func() {
		defer close(w.done)
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			setnsErr <- err
			return
		}
		setnsErr <- nil
		for f := range w.req {
			f()
		}
	}()
	if err := <-setnsErr; err != nil {
		del()
		return fixed(na("setns: " + err.Error()))
	}
	var op, release func()
	var c Cell
	stop := func() {
		if release != nil {
			w.do(release)
		}
		close(w.req)
		<-w.done
		del()
	}
	if err := w.do(func() { op, release, c = setup() }); err != nil {
		stop()
		return fixed(na("error: " + err.Error()))
	}
	if op == nil {
		stop()
		return fixed(c)
	}
	return prepared{note: c.Note, close: stop, batch: func(n int) (el time.Duration) {
		if err := w.do(func() {
			t := time.Now()
			for range n {
				op()
			}
			el = time.Since(t)
		}); err != nil {
			panic("kernel: " + err.Error())
		}
		return el
	}}
}

// fds collects descriptors to close when a workload ends.
type fds []int

func (f *fds) closeAll() {
	for _, fd := range *f {
		unix.Close(fd)
	}
	*f = nil
}

func sock() int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		panic(fmt.Sprint("socket: ", err))
	}
	return fd
}

func sa4(a [4]byte, port int) *unix.SockaddrInet4 { return &unix.SockaddrInet4{Addr: a, Port: port} }

var lo4 = [4]byte{127, 0, 0, 1}

func check(err error, what string) {
	if err != nil {
		panic(fmt.Sprintf("%s: %v", what, err))
	}
}

func (k *kernelImpl) bindSpecific() prepared {
	return k.prep("", func() (func(), func(), Cell) {
		return func() {
			fd := sock()
			check(unix.Bind(fd, sa4(lo4, bindPort)), "bind")
			unix.Close(fd)
		}, nil, Cell{}
	})
}

func (k *kernelImpl) wildcardBind(n int) prepared {
	return k.prep("", func() (func(), func(), Cell) {
		var held fds
		for i := range n {
			fd := sock()
			held = append(held, fd)
			check(unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1), "SO_REUSEADDR")
			check(unix.Bind(fd, sa4(loopN(i), bindPort)), "specific bind")
		}
		return func() {
			fd := sock()
			check(unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1), "SO_REUSEADDR")
			check(unix.Bind(fd, sa4([4]byte{}, bindPort)), "wildcard bind")
			unix.Close(fd)
		}, held.closeAll, Cell{}
	})
}

// acceptedBind keeps the n accepted sockets open; the clients are closed
// after each accept to stay under the open-file limit (the accepted ends
// then sit in CLOSE_WAIT, still holding the port).
func (k *kernelImpl) acceptedBind(n int) prepared {
	return k.prep("", func() (func(), func(), Cell) {
		var held fds
		l := sock()
		held = append(held, l)
		check(unix.Bind(l, sa4(lo4, acceptPt)), "listener bind")
		check(unix.Listen(l, 4096), "listen")
		for range n {
			c := sock()
			check(unix.Connect(c, sa4(lo4, acceptPt)), "connect")
			a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
			check(err, "accept")
			held = append(held, a)
			unix.Close(c)
		}
		return func() {
			fd := sock()
			if err := unix.Bind(fd, sa4(lo4, acceptPt)); err != unix.EADDRINUSE {
				panic(fmt.Sprint("bind on the listener's address: ", err))
			}
			unix.Close(fd)
		}, held.closeAll, Cell{Note: "EADDRINUSE"}
	})
}

// ephemeral fills the occupied ports with TIME_WAIT connections toward
// 127.0.0.1:443 (each port forced by IP_LOCAL_PORT_RANGE, tcp_tw_reuse off
// so they block the tuple), closes the listener, then measures socket +
// connect (refused: the port goes back) + close. TIME_WAIT lasts 60 s,
// far longer than the measurement.
func (k *kernelImpl) ephemeral(lo, hi, occ int, contiguous bool) prepared {
	script := fmt.Sprintf("echo '%d %d' > /proc/sys/net/ipv4/ip_local_port_range && echo 0 > /proc/sys/net/ipv4/tcp_tw_reuse && echo 262144 > /proc/sys/net/ipv4/tcp_max_tw_buckets", lo, hi)
	return k.prep(script, func() (func(), func(), Cell) {
		l := sock()
		check(unix.Bind(l, sa4(lo4, httpsPort)), "listener bind")
		check(unix.Listen(l, 4096), "listen")
		wrong := 0
		for _, p := range takenPorts(k.cfg.Seed, lo, hi, occ, contiguous) {
			c := sock()
			check(unix.SetsockoptInt(c, unix.IPPROTO_IP, unix.IP_LOCAL_PORT_RANGE, p|p<<16), "IP_LOCAL_PORT_RANGE")
			check(unix.Connect(c, sa4(lo4, httpsPort)), "fill connect")
			if sa, err := unix.Getsockname(c); err != nil || sa.(*unix.SockaddrInet4).Port != p {
				wrong++
			}
			a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
			check(err, "accept")
			unix.Close(c) // the client closes first: it ends in TIME_WAIT
			unix.Close(a)
		}
		unix.Close(l)
		if wrong > 0 {
			return nil, nil, na(fmt.Sprintf("fill: %d connects missed their port", wrong))
		}
		return func() {
			fd := sock()
			if err := unix.Connect(fd, sa4(lo4, httpsPort)); err != unix.ECONNREFUSED {
				panic(fmt.Sprint("connect: ", err))
			}
			unix.Close(fd)
		}, nil, Cell{}
	})
}

func (k *kernelImpl) lookup(n int) []prepared {
	out := make([]prepared, len(lookupKinds))
	for i := range out {
		out[i] = fixed(na("n/a (no syscall)"))
	}
	return out
}

// reuseport: n listeners with SO_REUSEPORT on 127.0.0.1:8443, flows
// connections, then each listener's accept queue is counted. The time of
// the kernel's lookup is not measurable by syscalls.
func (k *kernelImpl) reuseport(n, flows int) prepared {
	return k.prep("", func() (func(), func(), Cell) {
		var ls fds
		defer ls.closeAll()
		for range n {
			l := sock()
			ls = append(ls, l)
			check(unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1), "SO_REUSEPORT")
			check(unix.Bind(l, sa4(lo4, groupPort)), "bind")
			check(unix.Listen(l, 4096), "listen")
			check(unix.SetNonblock(l, true), "nonblock")
		}
		for range flows {
			c := sock()
			check(unix.Connect(c, sa4(lo4, groupPort)), "connect")
			unix.Close(c)
		}
		counts := make([]int, n)
		for i, l := range ls {
			for {
				a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
				if err != nil {
					break
				}
				unix.Close(a)
				counts[i]++
			}
		}
		return nil, nil, na("time n/a; " + spread(counts))
	})
}

func (k *kernelImpl) memory(n int) prepared { return fixed(na("n/a (no syscall)")) }
