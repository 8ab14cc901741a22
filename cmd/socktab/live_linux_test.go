package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/socktab/socktab/report"
	"golang.org/x/sys/unix"
)

// netnsFixture makes a private namespace with planted sockets. Sockets are
// created on a thread that entered the namespace, so they live there.
type netnsFixture struct {
	t    *testing.T
	name string
	fds  []int
}

func newNetns(t *testing.T) *netnsFixture {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("live command tests need root in CI")
		}
		t.Skip("SKIPPED LOUDLY: live command tests need root to make a network namespace")
	}
	name := fmt.Sprintf("socktab-cli-%d", rand.IntN(1<<30))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ip netns add: %v %s", err, out)
		}
		t.Skipf("SKIPPED LOUDLY: cannot make a network namespace: %v %s", err, out)
	}
	f := &netnsFixture{t: t, name: name}
	t.Cleanup(func() {
		for _, fd := range f.fds {
			unix.Close(fd)
		}
		exec.Command("ip", "netns", "del", name).Run()
	})
	f.ip("link", "set", "lo", "up")
	f.ip("addr", "add", "203.0.113.5/32", "dev", "lo")
	f.ip("addr", "add", "192.168.77.5/32", "dev", "lo")
	return f
}

func (f *netnsFixture) ip(args ...string) {
	f.t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", f.name}, args...)...).CombinedOutput(); err != nil {
		f.t.Fatalf("ip %v: %v %s", args, err, out)
	}
}

// in runs fn on a thread inside the namespace.
func (f *netnsFixture) in(fn func()) {
	f.t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // the thread is discarded afterwards: never unlocked
		ns, err := os.Open("/run/netns/" + f.name)
		if err != nil {
			done <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		f.t.Fatal(err)
	}
}

// listen creates a socket bound to addr (and listening for TCP).
func (f *netnsFixture) listen(fam, typ int, addr unix.Sockaddr, v6only int) int {
	f.t.Helper()
	fd, err := unix.Socket(fam, typ, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	if fam == unix.AF_INET6 && v6only >= 0 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
	}
	if err := unix.Bind(fd, addr); err != nil {
		f.t.Fatalf("bind %v: %v", addr, err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, 16); err != nil {
			f.t.Fatal(err)
		}
	}
	f.fds = append(f.fds, fd)
	return fd
}

func v4(a [4]byte, port int) unix.Sockaddr { return &unix.SockaddrInet4{Addr: a, Port: port} }
func v6(port int) unix.Sockaddr            { return &unix.SockaddrInet6{Port: port} }

func (f *netnsFixture) plant() {
	f.in(func() {
		f.listen(unix.AF_INET, unix.SOCK_STREAM, v4([4]byte{0, 0, 0, 0}, 8080), -1)
		f.listen(unix.AF_INET, unix.SOCK_STREAM, v4([4]byte{127, 0, 0, 1}, 9090), -1)
		f.listen(unix.AF_INET6, unix.SOCK_STREAM, v6(7070), 0)
		f.listen(unix.AF_INET6, unix.SOCK_STREAM, v6(7071), 1)
		f.listen(unix.AF_INET, unix.SOCK_DGRAM, v4([4]byte{192, 168, 77, 5}, 5353), -1)
	})
}

// kernelBind asks the kernel itself whether a bind succeeds in the namespace.
func (f *netnsFixture) kernelBind(fam int, addr unix.Sockaddr) error {
	var err error
	f.in(func() {
		fd, e := unix.Socket(fam, unix.SOCK_STREAM, 0)
		if e != nil {
			err = e
			return
		}
		defer unix.Close(fd)
		err = unix.Bind(fd, addr)
	})
	return err
}

func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	if code == 2 {
		t.Fatalf("socktab %v: exit 2 (stderr %s)", args, errb.String())
	}
	return out.String(), code
}

func TestLsListsExactlyThePlantedListeners(t *testing.T) {
	f := newNetns(t)
	f.plant()
	out, _ := runCLI(t, "ls", "-l", "-t", "-u", "--netns", f.name, "-o", "json")
	var got []report.Socket
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var lines []string
	for _, s := range got {
		v := "null"
		if s.V6Only != nil {
			v = fmt.Sprint(*s.V6Only)
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s v6only=%s remote=%v", s.Proto, s.Family, s.State, *s.Local, v, s.Remote != nil))
	}
	want := []string{
		"tcp inet LISTEN 0.0.0.0:8080 v6only=null remote=false",
		"tcp inet LISTEN 127.0.0.1:9090 v6only=null remote=false",
		"tcp inet6 LISTEN [::]:7070 v6only=false remote=false",
		"tcp inet6 LISTEN [::]:7071 v6only=true remote=false",
		"udp inet UNCONN 192.168.77.5:5353 v6only=null remote=false",
	}
	if strings.Join(sorted(lines), "\n") != strings.Join(sorted(want), "\n") {
		t.Fatalf("ls -o json:\n%s\nwant:\n%s", strings.Join(sorted(lines), "\n"), strings.Join(sorted(want), "\n"))
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func TestBindAgreesWithTheKernel(t *testing.T) {
	f := newNetns(t)
	f.plant()
	cases := []struct {
		addr string
		fam  int
		sa   unix.Sockaddr
	}{
		{"127.0.0.1:7070", unix.AF_INET, v4([4]byte{127, 0, 0, 1}, 7070)}, // dual-stack [::]:7070 covers it
		{"127.0.0.1:7071", unix.AF_INET, v4([4]byte{127, 0, 0, 1}, 7071)}, // v6only leaves IPv4 free
		{"203.0.113.5:8080", unix.AF_INET, v4([4]byte{203, 0, 113, 5}, 8080)},
		{"127.0.0.2:9090", unix.AF_INET, v4([4]byte{127, 0, 0, 2}, 9090)},
		{"[::]:9090", unix.AF_INET6, v6(9090)},
		{"[::]:7071", unix.AF_INET6, v6(7071)},
	}
	for _, c := range cases {
		out, code := runCLI(t, "bind", "tcp", c.addr, "--netns", f.name)
		kerr := f.kernelBind(c.fam, c.sa)
		if (code == 0) != (kerr == nil) {
			t.Errorf("bind %s: socktab exit %d (%s), kernel %v", c.addr, code, strings.TrimSpace(out), kerr)
		}
		if c.addr == "127.0.0.1:7070" && !strings.Contains(out, "dual-stack") {
			t.Errorf("bind %s: the reason should name the dual-stack holder: %s", c.addr, out)
		}
	}
}

func TestWhoAgreesWithTheKernel(t *testing.T) {
	f := newNetns(t)
	f.plant()
	out, _ := runCLI(t, "who", "tcp", "127.0.0.1:7070", "--netns", f.name, "-o", "json")
	if !strings.Contains(out, `"local": "[::]:7070"`) {
		t.Errorf("an IPv4 SYN to 7070 should reach the dual-stack listener: %s", out)
	}
	out, _ = runCLI(t, "who", "tcp", "127.0.0.1:7071", "--netns", f.name)
	if !strings.Contains(out, "RST") {
		t.Errorf("an IPv4 SYN to the v6only listener's port should get RST: %s", out)
	}
	// The kernel agrees: connecting to 127.0.0.1:7071 is refused, 7070 works.
	f.in(func() {
		for port, want := range map[int]error{7070: nil, 7071: unix.ECONNREFUSED} {
			fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			err := unix.Connect(fd, v4([4]byte{127, 0, 0, 1}, port))
			unix.Close(fd)
			if !errors.Is(err, want) && !(want == nil && err == nil) {
				t.Errorf("kernel connect :%d = %v, want %v", port, err, want)
			}
		}
	})
}

func TestAuditReportsPlantedExposure(t *testing.T) {
	f := newNetns(t)
	f.plant()
	if _, code := runCLI(t, "audit", "--netns", f.name, "--fail-on", "HIGH"); code != 0 {
		t.Errorf("--fail-on HIGH should exit 0: no listener accepts on a public address, got %d", code)
	}
	out, code := runCLI(t, "audit", "--netns", f.name, "--fail-on", "medium", "-o", "json")
	if code != 1 {
		t.Errorf("--fail-on medium should exit 1 with a listener on a documentation address, got %d", code)
	}
	var got []report.Finding
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	sev := map[string]string{}
	for _, e := range got {
		sev[*e.Socket.Local] = e.Severity + " " + strings.Join(e.Accepts, ",") + " " + strings.Join(e.Classes, ",")
	}
	if !strings.HasPrefix(sev["0.0.0.0:8080"], "medium") || !strings.Contains(sev["0.0.0.0:8080"], "203.0.113.5") ||
		!strings.Contains(sev["0.0.0.0:8080"], "documentation") {
		t.Errorf("0.0.0.0:8080 should be medium on 203.0.113.5 (documentation): %q", sev["0.0.0.0:8080"])
	}
	if sev["127.0.0.1:9090"] != "info 127.0.0.1 loopback" {
		t.Errorf("127.0.0.1:9090 should be loopback-only info: %q", sev["127.0.0.1:9090"])
	}
	if !strings.HasPrefix(sev["192.168.77.5:5353"], "medium") {
		t.Errorf("UDP on a private address should be medium: %q", sev["192.168.77.5:5353"])
	}
	if !strings.Contains(sev["[::]:7070"], "203.0.113.5") {
		t.Errorf("dual-stack [::]:7070 should accept IPv4 203.0.113.5: %q", sev["[::]:7070"])
	}
	if strings.Contains(sev["[::]:7071"], "203.0.113.5") {
		t.Errorf("v6only [::]:7071 must not accept IPv4: %q", sev["[::]:7071"])
	}
}

// TestLsMatchesSS compares ls with ss on the same namespace, where ss is
// installed: the same TCP sockets, states and addresses.
func TestLsMatchesSS(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("ss is not installed")
	}
	f := newNetns(t)
	f.plant()
	f.in(func() { // an established pair and its listener
		l := f.listen(unix.AF_INET, unix.SOCK_STREAM, v4([4]byte{127, 0, 0, 1}, 6060), -1)
		c, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err := unix.Connect(c, v4([4]byte{127, 0, 0, 1}, 6060)); err != nil {
			t.Fatal(err)
		}
		a, _, err := unix.Accept(l)
		if err != nil {
			t.Fatal(err)
		}
		f.fds = append(f.fds, c, a)
	})
	norm := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			fs := strings.Fields(l)
			if len(fs) > 0 && (strings.HasPrefix(fs[0], "socktab-") || fs[0] == "Netns") {
				fs = fs[1:] // the namespace column of ls
			}
			if len(fs) < 6 || fs[1] == "State" {
				continue
			}
			peer := fs[5]
			if strings.Contains(peer, "*") {
				peer = "*"
			}
			out = append(out, fs[1]+" "+fs[4]+" "+peer)
		}
		return sorted(out)
	}
	ssOut, err := exec.Command("ip", "netns", "exec", f.name, "ss", "-tan").Output()
	if err != nil {
		t.Fatal(err)
	}
	var ssLines []string
	for _, l := range strings.Split(string(ssOut), "\n") {
		ssLines = append(ssLines, "tcp "+l) // ss -t has no Netid column
	}
	lsOut, _ := runCLI(t, "ls", "-t", "-a", "--netns", f.name)
	got, want := norm(strings.Split(lsOut, "\n")), norm(ssLines)
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) < 7 {
		t.Fatalf("ls -t -a:\n%s\nss -tan:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
