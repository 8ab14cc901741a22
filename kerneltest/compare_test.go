package kerneltest

import (
	"strings"
	"testing"

	"github.com/socktab/socktab/scenario"
)

func TestCompare(t *testing.T) {
	sc, err := scenario.Parse("t", strings.NewReader(`a = socket inet udp
b = socket inet udp
packet udp 127.0.0.1:61000 -> 127.0.0.1:5000
packet udp 127.0.0.1:61001 -> 127.0.0.1:5000
bind a 127.0.0.1:5000
`))
	if err != nil {
		t.Fatal(err)
	}
	eng := []scenario.Outcome{{Result: "ok"}, {Result: "ok"}, {Result: "a|b"}, {Result: "a|b"}, {Result: "ok"}}
	kern := []Result{{Result: "ok"}, {Skip: "why"}, {Result: "b"}, {Result: "c"}, {Result: "EADDRINUSE"}}
	tally, ms := Compare(sc, eng, kern)
	if tally != (Tally{Steps: 4, Agree: 2, NotComparable: 1}) {
		t.Errorf("tally %+v", tally)
	}
	if len(ms) != 2 || ms[0].Index != 3 || ms[1].Index != 4 {
		t.Errorf("mismatches %+v", ms)
	}
	if !strings.Contains(Report(sc, eng, kern, ms[1]), ">>>") {
		t.Error("report does not mark the step")
	}
}

func TestNonLinux(t *testing.T) {
	if got := NonLinux("# x\nos windows\n"); got != "windows" {
		t.Errorf("got %q", got)
	}
	if got := NonLinux("os linux\n"); got != "" {
		t.Errorf("got %q", got)
	}
}
