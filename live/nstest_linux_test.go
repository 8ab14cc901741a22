//go:build linux

package live

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// testNS is a network namespace created for a test with `ip netns add`.
type testNS struct {
	name string
	f    *os.File // /run/netns/name
}

// newTestNS creates socktab-live-XXXX with lo up and documentation-range
// addresses on lo, and deletes it at cleanup. It skips (loudly) when not
// root or when `ip netns add` fails.
func newTestNS(tb testing.TB) *testNS {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("SKIPPED: live namespace tests need root (to create a network namespace with `ip netns add`)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skipf("SKIPPED: live namespace tests need iproute2's `ip`: %v", err)
	}
	var r [4]byte
	rand.Read(r[:])
	name := "socktab-live-" + hex.EncodeToString(r[:])
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Skipf("SKIPPED: `ip netns add %s` failed: %v: %s", name, err, out)
	}
	ns := &testNS{name: name}
	tb.Cleanup(func() {
		if ns.f != nil {
			ns.f.Close()
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ns.ip(tb, "link", "set", "lo", "up")
	ns.ip(tb, "addr", "add", "192.0.2.1/24", "dev", "lo")
	ns.ip(tb, "addr", "add", "2001:db8::1/128", "dev", "lo", "nodad")
	f, err := os.Open(filepath.Join(NetnsDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	ns.f = f
	return ns
}

func (ns *testNS) ip(tb testing.TB, args ...string) {
	tb.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns.name}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("ip -n %s %s: %v: %s", ns.name, strings.Join(args, " "), err, out)
	}
}

// sh runs a shell command inside the namespace with `ip netns exec`.
func (ns *testNS) sh(tb testing.TB, cmd string) string {
	tb.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns.name, "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		tb.Fatalf("ip netns exec %s sh -c %q: %v: %s", ns.name, cmd, err, out)
	}
	return string(out)
}

// do runs fn on a locked OS thread inside the namespace. Sockets created
// there stay in the namespace.
func (ns *testNS) do(tb testing.TB, fn func() error) {
	tb.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(ns.f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("restore netns: %w", err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
}

func inodeOf(tb testing.TB, fd int) uint64 {
	tb.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		tb.Fatal(err)
	}
	return st.Ino
}
