package kerneltest

import (
	"fmt"
	"strings"

	"github.com/socktab/socktab/engine"
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
		if IsRaw(st) && WireAnswer(st, eng[i]) == kern[i].Result || !IsRaw(st) && Agrees(st, eng[i].Result, kern[i].Result) {
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
			if IsRaw(&sc.Steps[i]) {
				e += " (wire " + WireAnswer(&sc.Steps[i], eng[i]) + ")"
			}
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

// IsRaw reports whether st is a TCP segment other than a plain SYN: the
// kernel replay writes it as a raw frame and sees only the answer on the
// wire.
func IsRaw(st *scenario.Step) bool {
	return st.Op == scenario.OpPacket && st.Proto == engine.TCP && st.Flags != engine.FlagSYN
}

// WireAnswer is what the wire shows of the engine's verdict o on a raw
// segment (IsRaw): "rst", "ack" or "drop". Linux answers (its sequence
// number is out of every window):
//   - a connection: an ACK (tcp_validate_incoming's duplicate or challenge
//     ACK), nothing for a RST or a bare FIN (no ACK, RST or SYN); a
//     connect in progress (SYN-SENT) resets an ACK and ignores the rest;
//   - a TIME_WAIT socket: an ACK (TCP_TW_ACK), nothing for a RST; an
//     orphaned FIN_WAIT2 one answers even a RST out of its window;
//   - a listener: a RST for a segment with ACK (tcp_rcv_state_process),
//     nothing for a RST or a bare FIN;
//   - no socket: a RST, nothing for a RST.
func WireAnswer(st *scenario.Step, o scenario.Outcome) string {
	if o.Result == "rst" || o.Result == "drop" {
		return o.Result
	}
	rst, ack, syn := st.Flags&engine.FlagRST != 0, st.Flags&engine.FlagACK != 0, st.Flags&engine.FlagSYN != 0
	switch stageOf(o.Reason) {
	case engine.StageEstablished:
		if strings.Contains(o.Reason, engine.SynSent.String()) {
			// tcp_rcv_synsent_state_process: an unacceptable ACK is
			// reset, anything else without one discarded.
			if ack && !rst {
				return "rst"
			}
			return "drop"
		}
		if rst || !ack && !syn {
			return "drop" // tcp_rcv_established drops a segment without ACK, RST or SYN
		}
		return "ack"
	case engine.StageTimeWait:
		if rst && !strings.Contains(o.Reason, engine.FinWait2.String()) {
			return "drop"
		}
		return "ack"
	case engine.StageListenerExact, engine.StageListenerWildcard:
		if ack && !rst {
			return "rst"
		}
		return "drop"
	}
	return o.Result
}

// stageOf reads the lookup stage a packet outcome's reason starts with.
func stageOf(reason string) engine.Stage {
	best, n := engine.Stage(255), 0
	for s := engine.StageEstablished; s <= engine.StageRSTToNobody; s++ {
		if t := s.String(); strings.HasPrefix(reason, t) && len(t) > n {
			best, n = s, len(t)
		}
	}
	return best
}
