package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/socktab/socktab/internal/sockaddr"
	"github.com/socktab/socktab/live"
	"golang.org/x/sys/unix"
)

// TestMain makes the test binary also be the socktab command (and the
// helper socktab-holder) for the scripts in testdata/script.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"socktab":        func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
		"socktab-holder": holderMain,
	})
}

// TestScripts runs the CLI suite: one .txtar file per behaviour. Scripts
// with [live] need root and network namespaces; in CI they must run.
func TestScripts(t *testing.T) {
	if os.Getenv("CI") != "" && !liveOK() {
		t.Fatal("CI: the live CLI scripts need root and network namespaces")
	}
	testscript.Run(t, scriptParams(t, "testdata/script"))
}

// scriptParams are the suite's parameters for the scripts in dir.
func scriptParams(t *testing.T, dir string) testscript.Params {
	return testscript.Params{
		Dir: dir,
		Setup: func(e *testscript.Env) error {
			e.Setenv("REPO", repoRoot(t))
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "live":
				return liveOK(), nil
			case "root":
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"netns":    cmdNetns,
			"plant":    cmdPlant,
			"waitfile": cmdWaitfile,
			"nsmount":  cmdNsmount,
		},
	}
}

func repoRoot(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(wd, "/cmd/socktab")
}

var liveOnce = sync.OnceValue(func() bool {
	if os.Geteuid() != 0 {
		return false
	}
	name := fmt.Sprintf("socktab-probe-%d", rand.IntN(1<<30))
	if exec.Command("ip", "netns", "add", name).Run() != nil {
		return false
	}
	exec.Command("ip", "netns", "del", name).Run()
	return true
})

func liveOK() bool { return liveOnce() }

// netns VAR: make a fresh namespace with lo up, its name in $VAR; deleted
// when the script ends.
func cmdNetns(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: netns VAR")
	}
	name := fmt.Sprintf("socktab-ts-%d", rand.IntN(1<<30))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		ts.Fatalf("ip netns add: %v %s", err, out)
	}
	ts.Defer(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		ts.Fatalf("lo up: %v %s", err, out)
	}
	ts.Setenv(args[0], name)
}

// nsmount NS DIR: bind-mount namespace NS at DIR/NAME (as Docker keeps
// its namespaces under /var/run/docker/netns); unmounted at the end.
func cmdNsmount(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: nsmount NS DIR NAME")
	}
	dir := ts.MkAbs(args[1])
	ts.Check(os.MkdirAll(dir, 0o755))
	target := dir + "/" + args[2]
	f, err := os.Create(target)
	ts.Check(err)
	f.Close()
	ts.Check(unix.Mount("/run/netns/"+args[0], target, "", unix.MS_BIND, ""))
	ts.Defer(func() { unix.Unmount(target, unix.MNT_DETACH) })
}

// inNetns runs fn on a thread inside namespace ns (the thread is
// discarded afterwards).
func inNetns(ns string, fn func() error) error {
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// parseInet reads a script's ADDR:PORT as the socket address of the family
// it is written in, and that family (a zone is not read).
func parseInet(s string) (int, unix.Sockaddr, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return 0, nil, err
	}
	fam := sockaddr.Family(ap.Addr())
	return fam, sockaddr.Inet(fam, ap, 0), nil
}

// plant NS KIND ADDR [OPT...]: create a socket in namespace NS, held by the
// test until the script ends. KIND: listen (TCP listener), udp (bound UDP),
// unix (unix stream listener at path ADDR), unixpair (a connected unix
// pair; ADDR is ignored), conn (an established TCP pair
// to the listener at ADDR), timewait (a connection to the listener at ADDR
// closed by the client first, leaving TIME-WAIT). OPT: v6only=0|1,
// reuseport, reuseaddr.
func cmdPlant(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: plant NS KIND ADDR [OPT...]")
	}
	ns, kind, addr := args[0], args[1], args[2]
	var fds []int
	err := inNetns(ns, func() error {
		mk := func(fam, typ int) (int, error) {
			fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return -1, err
			}
			fds = append(fds, fd)
			for _, o := range args[3:] {
				switch o {
				case "reuseport":
					unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
				case "reuseaddr":
					unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
				case "v6only=0", "v6only=1":
					unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, int(o[7]-'0'))
				default:
					return -1, fmt.Errorf("unknown option %q", o)
				}
			}
			return fd, nil
		}
		if kind == "unixpair" {
			pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			fds = append(fds, pair[:]...)
			return err
		}
		if kind == "unix" {
			fd, err := mk(unix.AF_UNIX, unix.SOCK_STREAM)
			if err != nil {
				return err
			}
			path, err := strconv.Unquote(`"` + addr + `"`) // \n, \x1b, ... in the path
			if err != nil {
				return err
			}
			if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
				return err
			}
			return unix.Listen(fd, 8)
		}
		fam, sa, err := parseInet(addr)
		if err != nil {
			return err
		}
		switch kind {
		case "listen", "udp":
			typ := unix.SOCK_STREAM
			if kind == "udp" {
				typ = unix.SOCK_DGRAM
			}
			fd, err := mk(fam, typ)
			if err != nil {
				return err
			}
			if err := unix.Bind(fd, sa); err != nil {
				return err
			}
			if kind == "listen" {
				return unix.Listen(fd, 64)
			}
			return nil
		case "conn":
			c, err := mk(fam, unix.SOCK_STREAM)
			if err != nil {
				return err
			}
			return unix.Connect(c, sa) // the server side waits in the accept queue
		case "timewait":
			// A listener (SO_REUSEADDR, kept) and one connection to it that
			// the client closes first, then the server: the client's side
			// stays in TIME-WAIT.
			l, err := mk(fam, unix.SOCK_STREAM)
			if err != nil {
				return err
			}
			unix.SetsockoptInt(l, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if err := unix.Bind(l, sa); err != nil {
				return err
			}
			if err := unix.Listen(l, 8); err != nil {
				return err
			}
			c, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			if err := unix.Connect(c, sa); err != nil {
				return err
			}
			a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
			if err != nil {
				return err
			}
			unix.Close(c)
			var buf [1]byte
			unix.Read(a, buf[:]) // returns 0 once the client's FIN is in
			unix.Close(a)
			return waitTimeWait(ns)
		}
		return fmt.Errorf("unknown kind %q", kind)
	})
	if err != nil {
		ts.Fatalf("plant %s: %v", strings.Join(args, " "), err)
	}
	ts.Defer(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
}

// waitfile PATH: wait until PATH exists (a background helper is ready).
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	p := ts.MkAbs(args[0])
	for i := 0; i < 3000; i++ {
		if _, err := os.Stat(p); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	ts.Fatalf("%s did not appear in 30 s", p)
}

// holderMain is socktab-holder NAME NS KIND ADDR READY: a process named
// NAME (Go escapes like \x1b allowed) holding, in namespace NS, a unix
// listener at path ADDR (KIND unix) or a TCP listener on ADDR (KIND tcp);
// it creates the file READY when it holds it and then waits to be killed.
func holderMain() {
	a := os.Args[1:]
	if len(a) != 5 {
		fmt.Fprintln(os.Stderr, "usage: socktab-holder NAME NS unix|tcp ADDR READY")
		os.Exit(2)
	}
	name, err := strconv.Unquote(`"` + a[0] + `"`)
	if err == nil {
		err = os.WriteFile("/proc/self/comm", []byte(name), 0)
	}
	if err == nil {
		err = inNetns(a[1], func() error {
			var fd int
			var sa unix.Sockaddr
			if a[2] == "unix" {
				path, err := strconv.Unquote(`"` + a[3] + `"`)
				if err != nil {
					return err
				}
				sa = &unix.SockaddrUnix{Name: path}
				if fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0); err != nil {
					return err
				}
			} else {
				fam, tsa, err := parseInet(a[3])
				if err != nil {
					return err
				}
				sa = tsa
				if fd, err = unix.Socket(fam, unix.SOCK_STREAM, 0); err != nil {
					return err
				}
			}
			if err := unix.Bind(fd, sa); err != nil {
				return err
			}
			return unix.Listen(fd, 8)
		})
	}
	if err == nil {
		err = os.WriteFile(a[4], nil, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "socktab-holder:", err)
		os.Exit(1)
	}
	select {}
}

// waitTimeWait waits until the namespace shows a TIME-WAIT socket (the
// last ACK of a close is asynchronous).
func waitTimeWait(ns string) error {
	for i := 0; i < 500; i++ {
		snaps, err := live.ReadNetns(live.NetnsTarget{Name: ns}, live.Options{TCP: true, States: 1 << live.TCPTimeWait, SocketsOnly: true})
		if err != nil {
			return err
		}
		if len(snaps) == 1 && len(snaps[0].Sockets) > 0 {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no TIME-WAIT socket appeared in 5 s")
}
