//go:build linux

package conformance

// The kernel network: two network namespaces made for one behaviour, each
// with lo up, joined by a veth pair named eth0 on both sides. Every call
// that creates a socket runs on a goroutine locked to an OS thread that
// entered the host's namespace; the goroutine never unlocks, so the thread
// dies with it instead of going back to Go's scheduler in the wrong
// namespace. Descriptors work from any thread once made, so Accept, Read
// and Write run anywhere.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func init() {
	networks = append(networks, network{name: "kernel", make: newKernelNet})
}

type kernelNet struct {
	hosts map[string]*kernelHost
}

type kernelHost struct {
	ns  string // name under /run/netns
	dir string // where unix socket files go
}

func (n *kernelNet) Host(name string) Host { return n.hosts[name] }

// Partition takes a's end of the veth down (b's stays up with no carrier, so
// b's packets toward a are lost), or brings it back up. IPv4 addresses and
// b's routes survive; a's IPv6 addresses would not, so partitions are
// tested over IPv4.
func (n *kernelNet) Partition(cut bool) error {
	state := "up"
	if cut {
		state = "down"
	}
	return ipBatch(n.hosts["a"].ns, "link set eth0 "+state)
}

func newKernelNet(t *testing.T) (Net, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("not root (euid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("no ip(8): %v", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	nsA, nsB := "socktab-conf-"+id+"-a", "socktab-conf-"+id+"-b"
	for _, ns := range []string{nsA, nsB} {
		if err := ipBatch("", "netns add "+ns); err != nil {
			return nil, err
		}
		t.Cleanup(func() { ipBatch("", "netns del "+ns) })
	}
	if err := ipBatch(nsA, "link set lo up",
		"link add eth0 type veth peer name eth0 netns "+nsB,
		"link set eth0 up",
		"addr add 192.0.2.1/24 dev eth0",
		"addr add 2001:db8::1/64 dev eth0 nodad"); err != nil {
		return nil, err
	}
	if err := ipBatch(nsB, "link set lo up",
		"link set eth0 up",
		"addr add 192.0.2.2/24 dev eth0",
		"addr add 2001:db8::2/64 dev eth0 nodad"); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "conf") // short: unix paths have 108 bytes
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &kernelNet{hosts: map[string]*kernelHost{
		"a": {ns: nsA, dir: filepath.Join(dir, "a")},
		"b": {ns: nsB, dir: filepath.Join(dir, "b")},
	}}
	for _, h := range n.hosts {
		if err := os.Mkdir(h.dir, 0o755); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ipBatch runs ip(8) commands, in namespace ns unless it is empty.
func ipBatch(ns string, cmds ...string) error {
	args := []string{"-b", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// in runs f on a fresh OS thread inside the host's namespace.
func (h *kernelHost) in(f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		fd, err := unix.Open("/run/netns/"+h.ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			ch <- fmt.Errorf("setns %s: %w", h.ns, err)
			return
		}
		ch <- f()
	}()
	return <-ch
}

// control sets the options on a socket before bind, after Go's defaults.
func control(o Opts) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			set := func(level, opt int, v bool) {
				if serr == nil {
					val := 0
					if v {
						val = 1
					}
					serr = unix.SetsockoptInt(int(fd), level, opt, val)
				}
			}
			if strings.HasPrefix(network, "unix") {
				return
			}
			if o.ReuseAddr != nil {
				set(unix.SOL_SOCKET, unix.SO_REUSEADDR, *o.ReuseAddr)
			}
			if o.ReusePort {
				set(unix.SOL_SOCKET, unix.SO_REUSEPORT, true)
			}
			if o.V6Only != nil && strings.HasSuffix(network, "6") {
				set(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, *o.V6Only)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

func (h *kernelHost) Listen(o Opts, network, address string) (l net.Listener, err error) {
	lc := net.ListenConfig{Control: control(o)}
	err = h.in(func() (err error) {
		l, err = lc.Listen(context.Background(), network, address)
		return err
	})
	return l, err
}

func (h *kernelHost) ListenPacket(o Opts, network, address string) (p net.PacketConn, err error) {
	lc := net.ListenConfig{Control: control(o)}
	err = h.in(func() (err error) {
		p, err = lc.ListenPacket(context.Background(), network, address)
		return err
	})
	return p, err
}

func (h *kernelHost) Dial(ctx context.Context, o Opts, network, address string) (c net.Conn, err error) {
	d := net.Dialer{Control: control(o), LocalAddr: o.LocalAddr}
	err = h.in(func() (err error) {
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// SetPortRange writes the sysctl from inside the namespace: /proc/sys/net
// shows the network namespace of the thread that opens it.
func (h *kernelHost) SetPortRange(lo, hi int) error {
	return h.in(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", fmt.Appendf(nil, "%d %d\n", lo, hi), 0)
	})
}

func (h *kernelHost) Path(name string) string { return filepath.Join(h.dir, name) }

func (h *kernelHost) Remove(path string) error { return os.Remove(path) }
