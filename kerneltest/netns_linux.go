//go:build linux

package kerneltest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// netns is a named network namespace made with "ip netns add".
type netns struct {
	name string
}

func newName() string {
	b := make([]byte, 5)
	rand.Read(b)
	return "socktab-kt-" + hex.EncodeToString(b)
}

// addNetns creates a namespace with lo up.
func addNetns() (*netns, error) {
	n := &netns{name: newName()}
	if err := ipCmd("netns", "add", n.name); err != nil {
		return nil, err
	}
	if err := n.ip("link", "set", "lo", "up"); err != nil {
		n.del()
		return nil, err
	}
	return n, nil
}

func (n *netns) del() { ipCmd("netns", "del", n.name) }

// ip runs "ip -n NAME args...".
func (n *netns) ip(args ...string) error {
	return ipCmd(append([]string{"-n", n.name}, args...)...)
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// enter moves the calling OS thread into the namespace. The caller must
// hold runtime.LockOSThread and never unlock it, so the thread dies with
// its goroutine instead of going back to the scheduler.
func (n *netns) enter() error {
	fd, err := unix.Open("/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", n.name, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", n.name, err)
	}
	return nil
}

// Available reports whether this process can make network namespaces, and
// if not, why.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root (euid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("no ip(8): %v", err)
	}
	n, err := addNetns()
	if err != nil {
		return err
	}
	n.del()
	return nil
}

// seteuid changes the effective uid of the calling thread only (the raw
// system call; syscall.Setresuid would change every thread). The real and
// saved uids stay 0, so the thread can always switch back.
func seteuid(uid int) error {
	_, _, e := unix.RawSyscall(unix.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0))
	if e != 0 {
		return e
	}
	return nil
}

// closeFD closes a socket so that it is gone when closeFD returns. A child
// that another goroutine is forking holds a copy of every descriptor until
// it execs, and a socket closed meanwhile would keep its port a moment
// longer (a flaky EADDRINUSE); fork holds syscall.ForkLock until the exec.
func closeFD(fd int) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	return unix.Close(fd)
}

// inodeListed reports whether a socket with inode ino appears in one of
// the calling thread's namespace's /proc/net tables (proc: "tcp", "tcp6",
// "udp", "udp6", "unix"). Reading them forks nothing.
func inodeListed(ino uint64, tables ...string) bool {
	want := strconv.FormatUint(ino, 10)
	for _, t := range tables {
		b, err := os.ReadFile("/proc/thread-self/net/" + t)
		if err != nil {
			continue
		}
		col := 9 // tcp and udp: sl local rem st queues tr retrnsmt uid timeout inode
		if t == "unix" {
			col = 6 // Num RefCount Protocol Flags Type St Inode Path
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(l); len(f) > col && f[col] == want {
				return true
			}
		}
	}
	return false
}
