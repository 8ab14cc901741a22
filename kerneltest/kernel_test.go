//go:build linux

package kerneltest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/socktab/socktab/scenario"
)

// needNetns skips, loudly, where no namespace can be made, except in CI
// (CI=true), where the replay must run.
func needNetns(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kernel replay cannot run in CI: %v", err)
		}
		msg := fmt.Sprintf("KERNEL REPLAY SKIPPED: no network namespace can be made here: %v", err)
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
}

// group tallies one group of replays and logs the agreement figure.
type group struct {
	name string
	mu   sync.Mutex
	t    Tally
	why  map[string]int // why steps were not comparable
	// kinds counts first disagreements by statement and both results,
	// with the first case seen.
	kinds map[string]*kind
	// knownOK: a scenario whose first disagreement is of a class issue 7
	// names (KnownClass) is counted in known instead of failing.
	knownOK bool
	known   map[string]*kind
}

type kind struct {
	n       int
	example string
}

func (g *group) log(t *testing.T) {
	t.Logf("kernel replay: %s (%s)", g.t, g.name)
	var whys []string
	for w, n := range g.why {
		whys = append(whys, fmt.Sprintf("%5d  %s", n, w))
	}
	sort.Strings(whys)
	for _, w := range whys {
		t.Logf("  not comparable: %s", w)
	}
	var ks []string
	for k, v := range g.kinds {
		ks = append(ks, fmt.Sprintf("%5d  %s  (e.g. %s)", v.n, k, v.example))
	}
	sort.Strings(ks)
	for _, k := range ks {
		t.Logf("  first disagreement of a scenario: %s", k)
	}
	ks = nil
	for k, v := range g.known {
		ks = append(ks, fmt.Sprintf("%5d  %s  (e.g. %s)", v.n, k, v.example))
	}
	sort.Strings(ks)
	for _, k := range ks {
		t.Logf("  known class, first disagreement of a scenario: %s", k)
	}
}

// kindOf names a disagreement by statement kind and both results.
func kindOf(m Mismatch) string {
	op := string(m.Step.Op)
	if m.Step.Op == scenario.OpPacket {
		op += " " + m.Step.Proto.String()
	}
	return fmt.Sprintf("%s: engine %s, kernel %s", op, m.Engine.Result, m.Kernel.Result)
}

// replay runs text through the engine and the kernel and reports each
// disagreement; it returns the scenario's tally.
func (g *group) replay(t *testing.T, file, text string, seed uint64) {
	t.Helper()
	if os := NonLinux(text); os != "" {
		g.mu.Lock()
		g.t.NotComparable += Statements(text)
		if g.why == nil {
			g.why = map[string]int{}
		}
		g.why["os "+os] += Statements(text)
		g.mu.Unlock()
		t.Skipf("os %s: the engine's %s profile has no kernel here", os, os)
	}
	sc, err := scenario.Parse(file, strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	eng, engErr := scenario.Run(sc, scenario.Options{Seed: seed})
	if engErr != nil {
		t.Logf("engine stopped: %v (later steps are not comparable)", engErr)
	}
	kern, err := Replay(sc)
	if err != nil {
		t.Fatalf("kernel replay: %v", err)
	}
	tally, ms := Compare(sc, eng, kern)
	if len(ms) > 0 {
		// A disagreement must be the kernel's steady answer: replay once
		// more, and set aside a step whose kernel result changed (a race
		// in the kernel, or a probe that was late).
		again, err := Replay(sc)
		if err != nil {
			t.Fatalf("kernel replay: %v", err)
		}
		for _, m := range ms {
			if m.Index < len(again) && again[m.Index] != kern[m.Index] {
				t.Logf("not steady: %s:%d: %s: kernel %s, then %s (engine %s)", m.Step.File, m.Step.Line,
					m.Step.Text, kern[m.Index].Result, again[m.Index].Result, m.Engine.Result)
			}
		}
		kern, ms, tally = steady(kern, again, ms, tally)
	}
	g.mu.Lock()
	g.t.Add(tally)
	if g.why == nil {
		g.why = map[string]int{}
	}
	for i, k := range kern {
		if k.Skip != "" {
			g.why[k.Skip]++
		} else if i >= len(eng) {
			g.why["the engine stopped before this step"]++
		}
	}
	g.mu.Unlock()
	if len(ms) == 0 {
		return
	}
	path := saveFailing(t, text)
	if c := KnownClass(sc, kern, ms[0]); c != "" && g.knownOK {
		g.mu.Lock()
		if g.known == nil {
			g.known = map[string]*kind{}
		}
		k := g.known[c]
		if k == nil {
			k = &kind{example: fmt.Sprintf("%s:%d %s (%s)", file, ms[0].Step.Line, ms[0].Step.Text, path)}
			g.known[c] = k
		}
		k.n++
		g.mu.Unlock()
		t.Logf("known class (%s), seed %d, saved to %s:\n%s", c, seed, path, Report(sc, eng, kern, ms[0]))
		return
	}
	g.mu.Lock()
	if g.kinds == nil {
		g.kinds = map[string]*kind{}
	}
	k := g.kinds[kindOf(ms[0])]
	if k == nil {
		k = &kind{example: fmt.Sprintf("%s:%d %s", file, ms[0].Step.Line, ms[0].Step.Text)}
		g.kinds[kindOf(ms[0])] = k
	}
	k.n++
	g.mu.Unlock()
	t.Errorf("kernel and engine disagree, class %q (seed %d, scenario saved to %s):\n%s", kindOf(ms[0]), seed, path, Report(sc, eng, kern, ms[0]))
	for _, m := range ms[1:] {
		t.Errorf("and later (maybe a consequence): %s:%d: %s: engine %s (%s), kernel %s",
			m.Step.File, m.Step.Line, m.Step.Text, m.Engine.Result, m.Engine.Reason, m.Kernel.Result)
	}
}

// steady keeps the mismatches whose kernel result is the same in a second
// replay; the others are not comparable, with the reason set in kern.
func steady(kern, again []Result, ms []Mismatch, t Tally) ([]Result, []Mismatch, Tally) {
	var keep []Mismatch
	for _, m := range ms {
		if m.Index < len(again) && again[m.Index] == kern[m.Index] {
			keep = append(keep, m)
			continue
		}
		t.Steps--
		t.NotComparable++
		kern[m.Index].Skip = "the kernel answered differently in a second replay"
	}
	return kern, keep, t
}

// saveFailing writes a failing scenario where it can be replayed by hand.
func saveFailing(t *testing.T, text string) string {
	f, err := os.CreateTemp("", "socktab-kt-fail-*.scenario")
	if err != nil {
		return "(not saved: " + err.Error() + ")"
	}
	defer f.Close()
	f.WriteString(text)
	return f.Name()
}

func TestReplayBindWildcard(t *testing.T) {
	needNetns(t)
	cases, err := BindWildcardCases("../testdata/bind-wildcard-cases.md")
	if err != nil {
		t.Fatal(err)
	}
	g := &group{name: "bind-wildcard"}
	t.Cleanup(func() { g.log(t) })
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				g.replay(t, c.Name+".scenario", c.Text, 1)
			})
		}
	})
}

func TestReplayFiles(t *testing.T) {
	needNetns(t)
	var files []string
	for _, pat := range []string{"../examples/*.scenario", "../testdata/*.scenario", "../testdata/replay/*.scenario"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Skip("no scenario files")
	}
	g := &group{name: "files"}
	t.Cleanup(func() { g.log(t) })
	t.Run("files", func(t *testing.T) {
		for _, f := range files {
			t.Run(filepath.Base(f), func(t *testing.T) {
				t.Parallel()
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				g.replay(t, f, string(b), 1)
			})
		}
	})
}

// randomRuns is how many generated scenarios TestReplayRandom replays, from
// seed 1; KT_RANDOM=N and KT_SEED0=S replay seeds S..S+N-1 instead.
const randomRuns = 500

func TestReplayRandom(t *testing.T) {
	needNetns(t)
	g := &group{name: "random"}
	t.Cleanup(func() { g.log(t) })
	t.Run("seeds", func(t *testing.T) {
		first, n := envUint("KT_SEED0", 1), envUint("KT_RANDOM", randomRuns)
		for seed := first; seed < first+n; seed++ {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				g.replay(t, fmt.Sprintf("random-%d.scenario", seed), Generate(seed), seed)
			})
		}
	})
}

// TestReplayShow replays the scenario file named by KT_SHOW and logs every
// step with the engine's and the kernel's result (go test -run Show -v).
func TestReplayShow(t *testing.T) {
	f := os.Getenv("KT_SHOW")
	if f == "" {
		t.Skip("set KT_SHOW=path/to/file.scenario")
	}
	needNetns(t)
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Parse(f, strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	eng, _ := scenario.Run(sc, scenario.Options{Seed: 1})
	kern, err := Replay(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", Report(sc, eng, kern, Mismatch{Index: -1, Step: &scenario.Step{File: f}}))
}

func envUint(name string, def uint64) uint64 {
	if v, err := strconv.ParseUint(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

// wideRuns is how many scenarios of the wide generator each of
// TestReplayWide (one host) and TestReplayTwoHosts replays, from seed 1;
// KT_RANDOM and KT_SEED0 change that as for TestReplayRandom.
const wideRuns = 300

func TestReplayWide(t *testing.T) { replayWide(t, "wide", 1) }

func TestReplayTwoHosts(t *testing.T) { replayWide(t, "two-hosts", 2) }

func replayWide(t *testing.T, name string, hosts int) {
	needNetns(t)
	g := &group{name: name, knownOK: true}
	t.Cleanup(func() { g.log(t) })
	t.Run("seeds", func(t *testing.T) {
		first, n := envUint("KT_SEED0", 1), envUint("KT_RANDOM", wideRuns)
		for seed := first; seed < first+n; seed++ {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				g.replay(t, fmt.Sprintf("%s-%d.scenario", name, seed), GenerateWide(seed, hosts), seed)
			})
		}
	})
}
