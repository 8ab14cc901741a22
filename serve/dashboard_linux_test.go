//go:build linux

package serve

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "also write the dashboard screenshots to docs/screenshots")

// screenshotDir is where TestDashboardInChromium leaves its screenshots:
// $SOCKTAB_ARTIFACTS/dashboard when set (CI keeps it), else a fixed
// directory under the system temp dir. The test logs the path.
func screenshotDir(t *testing.T) string {
	base := os.Getenv("SOCKTAB_ARTIFACTS")
	if base == "" {
		base = filepath.Join(os.TempDir(), "socktab-artifacts")
	}
	dir := filepath.Join(base, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDashboardInChromium drives the dashboard in headless Chromium
// (Debian's package) against socktab serve reading a namespace with
// planted sockets: the sockets appear in the table, the exposure map shows
// the wildcard listener reaching the public address and the shadowing
// listener, the pool bar is red, who names the wildcard listener, and the
// bind form gives the kernel's answer for a planted conflict.
func TestDashboardInChromium(t *testing.T) {
	needRoot(t, "chromium", "go")
	chrome, _ := exec.LookPath("chromium")
	ns := newPlantedNS(t)
	bin := buildSocktab(t)

	// The kernel's answer for the conflict: bind 203.0.113.5:8080 beside
	// the wildcard 0.0.0.0:8080.
	kernel := "ok"
	ns.do(t, func() error {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		err = syscall.Bind(fd, &syscall.SockaddrInet4{Port: 8080, Addr: [4]byte{203, 0, 113, 5}})
		var en syscall.Errno
		if errors.As(err, &en) && en == syscall.EADDRINUSE {
			kernel = "EADDRINUSE"
		} else if err != nil {
			kernel = err.Error()
		}
		return nil
	})
	if kernel != "EADDRINUSE" {
		t.Fatalf("planted conflict: the kernel said %s, want EADDRINUSE", kernel)
	}

	// socktab serve on the host's loopback, reading the planted namespace.
	logPath := filepath.Join(t.TempDir(), "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--netns", ns.name)
	srv.Stdout, srv.Stderr = logf, logf
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() })
	var base string
	addrRE := regexp.MustCompile(`msg="Listening on" address=(127\.0\.0\.1:\d+)`)
	waitFor(t, "socktab serve to listen", time.Minute, func() (bool, string) {
		b, _ := os.ReadFile(logPath)
		m := addrRE.FindSubmatch(b)
		if m == nil {
			return false, string(b)
		}
		c, err := net.Dial("tcp", string(m[1]))
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		base = "http://" + string(m[1])
		return true, ""
	})

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancel()
	// The first Run starts the browser for the life of ctx (no timeout on
	// it); each step below gets its own generous limit, because a loaded
	// 2-core machine is slow, and waits for a state in the page, not for time.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	const stepLimit = 2 * time.Minute

	dir := screenshotDir(t)
	t.Logf("screenshots in %s", dir)
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
				return err
			}
			if *updateScreenshots {
				return os.WriteFile(filepath.Join("..", "docs", "screenshots", name+".png"), png, 0o644)
			}
			return nil
		})
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, c := context.WithTimeout(ctx, stepLimit)
		defer c()
		if err := chromedp.Do(sctx, steps...); err != nil {
			// Say what the server answered, to tell a page bug from a data one.
			for _, api := range []string{"/api/exposure", "/api/ports"} {
				if resp, err := http.Get(base + api); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Logf("%s: %s", api, tail(string(b), 3000))
				}
			}
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, c := context.WithTimeout(ctx, stepLimit)
		defer c()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// The socket table: the planted listener and connections, filtered.
	run("socket table",
		chromedp.Navigate(base+"/#sockets"),
		chromedp.WaitVisible(css(`#sockets-table tr[data-local="0.0.0.0:8080"]`)),
		chromedp.WaitVisible(css(`#sockets-table tr[data-local="127.0.0.1:9000"]`)),
		chromedp.SendKeys(css(`#filter`), "7000"),
		chromedp.WaitNotPresent(css(`#sockets-table tr[data-local="0.0.0.0:8080"]`)),
	)
	// 1 listener + 9 accepted + 9 clients toward 203.0.113.5:7000
	if count := text(`#sockets-count`); !strings.HasPrefix(count, fmt.Sprintf("%d of ", 1+2*poolClients)) {
		t.Errorf("filter 7000: %q, want %d matches", count, 1+2*poolClients)
	}
	run("sort", chromedp.Click(css(`th[data-sort="local"]`)),
		chromedp.WaitVisible(css(`th.sorted[data-sort="local"]`)), shot("sockets"))

	// The exposure map: the wildcard reaches the host's outside address
	// (a documentation address stands in for a public one: tests may plant
	// no other, and socktab classes it "documentation", severity medium);
	// the wildcard on 9000 is shadowed on 127.0.0.1 by the specific listener.
	run("exposure map",
		chromedp.Navigate(base+"/#exposure"),
		chromedp.WaitVisible(css(`.listener.sev-medium[data-local="0.0.0.0:8080"] .chip.documentation[data-addr="`+publicAddr+`"]`)),
		chromedp.WaitVisible(css(`.listener[data-local="0.0.0.0:8080"] .chip.loopback[data-addr="127.0.0.1"]`)),
		chromedp.WaitVisible(css(`.listener[data-local="0.0.0.0:9000"] .chip.shadowed.loopback`)),
		shot("exposure"))
	if s := text(`.listener[data-local="0.0.0.0:9000"] .shadow`); !strings.Contains(s, "127.0.0.1:9000") {
		t.Errorf("the wildcard 0.0.0.0:9000 must show 127.0.0.1:9000 taking 127.0.0.1: %q", s)
	}
	// The holder is named, as in socktab audit: this test process.
	if s := text(`.listener[data-local="0.0.0.0:8080"] .who`); !strings.Contains(s, fmt.Sprintf("(%d)", os.Getpid())) {
		t.Errorf("the exposure map must name the holder (pid %d): %q", os.Getpid(), s)
	}

	// Ephemeral ports: the 90% pool is a red bar with its history.
	run("ports", chromedp.Navigate(base+"/#ports"),
		chromedp.WaitVisible(css(`.pool[data-dst="`+poolServer+`"] .fill.hot`)),
		chromedp.WaitVisible(css(`.pool[data-dst="`+poolServer+`"] .spark i`)), shot("ports"))

	// Who receives a SYN to the public address on 8080: the wildcard, with
	// the CLI's steps, word for word.
	run("who", chromedp.Navigate(base+"/#who"),
		chromedp.WaitVisible(css(`#who-form`)),
		chromedp.SendKeys(css(`#who-form input[name=dst]`), publicAddr+":8080"),
		chromedp.Click(css(`#who-form button`)),
		chromedp.WaitVisible(css(`#who-answer [data-verdict="deliver"]`)), shot("who"))
	whoText := text(`#who-answer pre.text`)
	if !strings.Contains(whoText, "3. wildcard listener: match") || !strings.Contains(whoText, "0.0.0.0:8080") {
		t.Errorf("who text is not the CLI's steps:\n%s", whoText)
	}
	cliWho, err := exec.Command(bin, "who", "tcp", publicAddr+":8080", "--netns", ns.name).Output()
	if err != nil {
		t.Fatalf("socktab who: %v", err)
	}
	if strings.TrimSpace(whoText) != strings.TrimSpace(string(cliWho)) {
		t.Errorf("the page's who differs from the CLI's:\npage:\n%s\ncli:\n%s", whoText, cliWho)
	}

	// Why would this bind fail: the kernel's answer for the planted conflict.
	run("bind", chromedp.Navigate(base+"/#bind"),
		chromedp.WaitVisible(css(`#bind-form`)),
		chromedp.SendKeys(css(`#bind-form input[name=addr]`), publicAddr+":8080"),
		chromedp.Click(css(`#bind-form button`)),
		chromedp.WaitVisible(css(`#bind-answer [data-result]`)), shot("bind"))
	sctx, c := context.WithTimeout(ctx, stepLimit)
	res, err := chromedp.Run(sctx, chromedp.AttributeValue(css(`#bind-answer [data-result]`), "data-result"))
	c()
	if err != nil {
		t.Fatal(err)
	}
	if res.Value != kernel {
		t.Errorf("bind form says %q, the kernel %q", res.Value, kernel)
	}
	if s := text(`#bind-answer pre.text`); !strings.Contains(s, "0.0.0.0:8080") {
		t.Errorf("the bind answer must name the blocking wildcard listener:\n%s", s)
	}

	// Audit findings with their fix.
	run("audit", chromedp.Navigate(base+"/#audit"),
		chromedp.WaitVisible(css(`.finding.sev-medium[data-local="0.0.0.0:8080"] .fix`)), shot("audit"))
}
