//go:build linux

package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// plantedNS is a private network namespace with planted sockets:
//   - publicAddr (203.0.113.5) on lo: the host's outside address. Tests may
//     plant only documentation addresses, which socktab classes
//     "documentation" (medium), so it stands in for a public one;
//   - a wildcard listener 0.0.0.0:8080, which reaches publicAddr;
//   - a specific listener 203.0.113.5:7000 and 9 connections to it from a
//     10-port ephemeral range (40000-40009): a pool 90% used;
//   - a wildcard 0.0.0.0:9000 that a specific 127.0.0.1:9000 shadows
//     (both with SO_REUSEPORT, which lets them share the port).
type plantedNS struct {
	name string
	keep []any // the planted sockets, open until cleanup
}

const (
	publicAddr   = "203.0.113.5"
	wildListen   = "0.0.0.0:8080"
	poolServer   = "203.0.113.5:7000"
	poolClients  = 9
	poolRangeLow = 40000
	poolRangeHi  = 40009
)

// needRoot skips outside CI when the test cannot make namespaces; in CI
// (CI=true) it fails instead, so these tests never silently skip there.
func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	miss := func(format string, a ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, a...)
		}
		t.Skipf("SKIPPED: "+format, a...)
	}
	if os.Geteuid() != 0 {
		miss("needs root (network namespaces)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			miss("needs %s: %v", tool, err)
		}
	}
}

func newPlantedNS(t *testing.T) *plantedNS {
	t.Helper()
	var r [4]byte
	rand.Read(r[:])
	ns := &plantedNS{name: "socktab-serve-" + hex.EncodeToString(r[:])}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		for _, k := range ns.keep {
			if c, ok := k.(interface{ Close() error }); ok {
				c.Close()
			}
		}
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns.name, err, out)
		}
	})
	ns.run(t, "ip", "link", "set", "lo", "up")
	ns.run(t, "ip", "addr", "add", publicAddr+"/32", "dev", "lo")
	ns.run(t, "sysctl", "-qw", fmt.Sprintf("net.ipv4.ip_local_port_range=%d %d", poolRangeLow, poolRangeHi))

	ns.do(t, func() error {
		wl, err := net.Listen("tcp4", wildListen)
		if err != nil {
			return err
		}
		ns.keep = append(ns.keep, wl)
		srv, err := net.Listen("tcp4", poolServer)
		if err != nil {
			return err
		}
		ns.keep = append(ns.keep, srv)
		// Linux lets a specific listener share a port with a wildcard one
		// only with SO_REUSEPORT on both.
		reusePort := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}}
		for _, a := range []string{"0.0.0.0:9000", "127.0.0.1:9000"} {
			l, err := reusePort.Listen(context.Background(), "tcp4", a)
			if err != nil {
				return err
			}
			ns.keep = append(ns.keep, l)
		}
		for i := 0; i < poolClients; i++ {
			c, err := net.Dial("tcp4", poolServer)
			if err != nil {
				return err
			}
			ns.keep = append(ns.keep, c)
		}
		return nil
	})
	return ns
}

// run runs a command inside the namespace.
func (ns *plantedNS) run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// start starts a long-running command inside the namespace, ended at cleanup.
func (ns *plantedNS) start(t *testing.T, logName string, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...)
	log, err := os.Create(filepath.Join(t.TempDir(), logName))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("%s log:\n%s", logName, tail(string(b), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// do runs fn on an OS thread inside the namespace; sockets fn creates stay
// in it.
func (ns *plantedNS) do(t *testing.T, fn func() error) {
	t.Helper()
	if err := inNetns(ns.name, fn); err != nil {
		t.Fatal(err)
	}
}

func inNetns(name string, fn func() error) error {
	f, err := os.Open(filepath.Join("/run/netns", name))
	if err != nil {
		return err
	}
	defer f.Close()
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
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("restoring netns: %w", err) // the thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// client is an HTTP client whose connections are made inside the namespace.
func (ns *plantedNS) client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNetns(ns.name, func() error {
				var err error
				var d net.Dialer
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

// waitFor polls cond until it holds or the deadline passes: a wait on a
// state, generous enough for a loaded 2-core machine.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for {
		ok, info := cond()
		if ok {
			return
		}
		if info != "" {
			last = info
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", limit, what, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// buildSocktab builds the CLI once per test binary.
func buildSocktab(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "socktab")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/socktab")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}
