package kerneltest

import (
	"fmt"
	"strings"

	"github.com/socktab/socktab/scenario"
)

// Tally counts compared steps.
type Tally struct {
	Steps, Agree, NotComparable int
}

func (t *Tally) Add(u Tally) {
	t.Steps += u.Steps
	t.Agree += u.Agree
	t.NotComparable += u.NotComparable
}

func (t Tally) String() string {
	return fmt.Sprintf("%d steps compared, %d agree, %d not comparable", t.Steps, t.Agree, t.NotComparable)
}

// Mismatch is a step where the kernel and the engine disagree.
type Mismatch struct {
	Index  int // into the scenario's steps
	Step   *scenario.Step
	Engine scenario.Outcome
	Kernel Result
}

// Agrees reports whether the engine's result eng matches the kernel's kern
// for step st. The kernel picks a SO_REUSEPORT member at random, so a
// packet result "a|b" matches any one member. Ephemeral ports are never
// compared: results are success or an errno, not the port chosen.
func Agrees(st *scenario.Step, eng, kern string) bool {
	if eng == kern {
		return true
	}
	if st.Op == scenario.OpPacket && strings.Contains(eng, "|") {
		for _, m := range strings.Split(eng, "|") {
			if m == kern {
				return true
			}
		}
	}
	return false
}

// Compare lines up the engine's outcomes with the kernel's results. Steps
// the engine did not reach (it stopped on an error) are not comparable.
func Compare(sc *scenario.Scenario, eng []scenario.Outcome, kern []Result) (Tally, []Mismatch) {
	var t Tally
	var ms []Mismatch
	for i := range sc.Steps {
		st := &sc.Steps[i]
		if i >= len(eng) || i >= len(kern) || kern[i].Skip != "" {
			t.NotComparable++
			continue
		}
		t.Steps++
		if Agrees(st, eng[i].Result, kern[i].Result) {
			t.Agree++
			continue
		}
		ms = append(ms, Mismatch{Index: i, Step: st, Engine: eng[i], Kernel: kern[i]})
	}
	return t, ms
}

// Report shows a mismatch and every step of the scenario with both results.
func Report(sc *scenario.Scenario, eng []scenario.Outcome, kern []Result, m Mismatch) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: %s\n", m.Step.File, m.Step.Line, m.Step.Text)
	fmt.Fprintf(&b, "  engine: %s (%s)\n  kernel: %s\n", m.Engine.Result, m.Engine.Reason, m.Kernel.Result)
	b.WriteString("  steps (line, statement, engine, kernel):\n")
	for i := range sc.Steps {
		mark := "   "
		if i == m.Index {
			mark = ">>>"
		}
		e, k := "-", "-"
		if i < len(eng) {
			e = eng[i].Result
		}
		if i < len(kern) {
			k = kern[i].Result
			if kern[i].Skip != "" {
				k = "(" + kern[i].Skip + ")"
			}
		}
		fmt.Fprintf(&b, "  %s %3d  %-50s %-14s %s\n", mark, sc.Steps[i].Line, sc.Steps[i].Text, e, k)
	}
	return b.String()
}

// NonLinux returns the OS a scenario names with "os", when not linux.
func NonLinux(text string) string {
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "os" && f[1] != "linux" {
			return f[1]
		}
	}
	return ""
}

// Statements counts the statement lines of a scenario.
func Statements(text string) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	return n
}
