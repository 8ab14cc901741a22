package scenario

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

func parseErr(t *testing.T, src string) string {
	t.Helper()
	_, err := Parse("f", strings.NewReader(src))
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("%q: want an *Error, got %v", src, err)
	}
	return err.Error()
}

func runErr(t *testing.T, src string) (string, []Outcome) {
	t.Helper()
	sc, err := Parse("f", strings.NewReader(src))
	if err != nil {
		t.Fatalf("%q: %v", src, err)
	}
	outs, err := Run(sc, Options{Seed: 1})
	if err == nil {
		return "", outs
	}
	return err.Error(), outs
}

func TestLimits(t *testing.T) {
	// A 112-byte file of four huge repeats once took 20 s and 1.9 GB.
	bomb := strings.Repeat("repeat 1048576 c{i} = socket inet tcp\n", 4)
	if got := parseErr(t, bomb); !strings.HasPrefix(got, "f:1:8: repeat count") {
		t.Errorf("repeat bomb: %s", got)
	}
	two := "repeat 60000 a{i} = socket inet udp\nrepeat 60000 b{i} = socket inet udp\n"
	if got := parseErr(t, two); !strings.HasPrefix(got, "f:2:8: repeat 60000 would pass the limit of 100000 steps") {
		t.Errorf("global step cap: %s", got)
	}
	if got := parseErr(t, "repeat 2 repeat 3 x = socket inet tcp\n"); !strings.HasPrefix(got, "f:1:10: repeat cannot be nested") {
		t.Errorf("nested repeat: %s", got)
	}
	long := "# " + strings.Repeat("x", MaxLineBytes) + "\n"
	if got := parseErr(t, "s = socket inet tcp\n"+long); !strings.HasPrefix(got, "f:2:1: line longer than") {
		t.Errorf("long line: %s", got)
	}
	if got := parseErr(t, "s = socket inet tcp\nbind s \xff\n"); !strings.HasPrefix(got, "f:2:8: not UTF-8") {
		t.Errorf("bad UTF-8: %s", got)
	}
	// Sockets: under the step cap, over the socket cap.
	many := "repeat 50001 s = socket unix dgram\n"
	if got, _ := runErr(t, many); !strings.HasPrefix(got, "f:1:14: more than 50000 sockets") {
		t.Errorf("socket cap: %s", got)
	}
	if got, outs := runErr(t, "advance 500000h\nadvance 500000h\n"); !strings.HasPrefix(got, "f:2:9: advance") || len(outs) != 1 {
		t.Errorf("advance overflow: %s after %d steps", got, len(outs))
	}
}

func TestTextForms(t *testing.T) {
	// BOM, CRLF, and columns counted in characters.
	src := "\ufeffs = socket inet tcp\r\nbind s 127.0.0.1:80 => ok\r\n"
	sc, err := Parse("f", strings.NewReader(src))
	if err != nil || len(sc.Steps) != 2 || sc.Steps[0].Text != "s = socket inet tcp" {
		t.Fatalf("BOM/CRLF: %v %+v", err, sc)
	}
	if got := parseErr(t, "# é\nbind ü 1.2.3.4:5\n"); !strings.HasPrefix(got, "f:2:6:") {
		t.Errorf("column after a 2-byte character: %s", got)
	}
	if got := parseErr(t, "\"日本\" = socket inet tcp\n"); !strings.HasPrefix(got, "f:1:1:") {
		t.Errorf("%s", got)
	}
	if got := parseErr(t, "s = socket inet tcp\nbind s 日本語 => ok\n"); !strings.HasPrefix(got, "f:2:8:") {
		t.Errorf("%s", got)
	}
	if got := parseErr(t, "s = socket inet tcp # 日本語\nbind s 1.2.3.4:80 => 日本\n"); !strings.HasPrefix(got, "f:2:22:") {
		t.Errorf("%s", got)
	}
}

func TestFailedAcceptThenClose(t *testing.T) {
	src := "l = socket inet tcp\nbind l 127.0.0.1:80\nlisten l\nx = accept l => EAGAIN\nclose x => EBADF\n"
	got, outs := runErr(t, src)
	if got != "" || len(outs) != 5 || outs[3].Result != "EAGAIN" || outs[4].Result != "EBADF" {
		t.Fatalf("%s %+v", got, outs)
	}
}

func TestUnixPathLength(t *testing.T) {
	p108 := "/" + strings.Repeat("a", 107)
	src := "u = socket unix stream\nbind u " + p108 + " => ok\nv = socket unix stream\nbind v " + p108 + "b => EINVAL\n" +
		"w = socket unix stream\nbind w @" + strings.Repeat("b", 107) + " => ok\nz = socket unix stream\nbind z @" + strings.Repeat("c", 108) + " => EINVAL\n" +
		"connect v " + p108 + "b => EINVAL\n"
	got, outs := runErr(t, src)
	if got != "" {
		t.Fatal(got)
	}
	for _, o := range outs {
		if o.Checked() && !o.Pass {
			t.Errorf("%s: got %s (%s)", o.Step.Text[:20], o.Result, o.Reason)
		}
	}
}

// TestWorstInputMemory measures the peak heap of the worst inputs within
// the limits: the most steps, the most sockets, the longest line. It must
// stay bounded (here: under 512 MiB) instead of growing with the counts
// written in the file.
func TestWorstInputMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("measures memory of large inputs")
	}
	worst := map[string]string{
		"steps":   "repeat 100000 packet udp 192.0.2.1:1 -> 127.0.0.1:{i} => icmp-port-unreachable\n",
		"sockets": "repeat 50000 s{i} = socket inet udp\n",
		"bomb":    strings.Repeat("repeat 1048576 c{i} = socket inet tcp\n", 4),
		"line":    "# " + strings.Repeat("x", MaxLineBytes-3) + "\n" + strings.Repeat("y", 3*MaxLineBytes),
	}
	for name, src := range worst {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		sc, err := Parse("f", strings.NewReader(src))
		if err == nil {
			Run(sc, Options{Seed: 1})
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %.1f MiB allocated in total (an upper bound of the peak)", name, float64(alloc)/(1<<20))
		if alloc > 512<<20 {
			t.Errorf("%s: %d MiB allocated", name, alloc>>20)
		}
		sc = nil
	}
}
