//go:build linux

package kerneltest

import (
	"fmt"
	"os"
	"path/filepath"
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
		t.Skipf("KERNEL REPLAY SKIPPED: no network namespace can be made here: %v", err)
	}
}

// group tallies one group of replays and logs the agreement figure.
type group struct {
	name string
	mu   sync.Mutex
	t    Tally
}

func (g *group) log(t *testing.T) {
	t.Logf("kernel replay (%s): %s", g.name, g.t)
}

// replay runs text through the engine and the kernel and reports each
// disagreement; it returns the scenario's tally.
func (g *group) replay(t *testing.T, file, text string, seed uint64) {
	t.Helper()
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
	g.mu.Lock()
	g.t.Add(tally)
	g.mu.Unlock()
	if len(ms) == 0 {
		return
	}
	path := saveFailing(t, text)
	for _, m := range ms {
		t.Errorf("kernel and engine disagree (seed %d, scenario saved to %s):\n%s", seed, path, Report(sc, eng, kern, m))
	}
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

// randomRuns is how many generated scenarios TestReplayRandom replays.
const randomRuns = 500

func TestReplayRandom(t *testing.T) {
	needNetns(t)
	g := &group{name: "random"}
	t.Cleanup(func() { g.log(t) })
	t.Run("seeds", func(t *testing.T) {
		for seed := uint64(1); seed <= randomRuns; seed++ {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				g.replay(t, fmt.Sprintf("random-%d.scenario", seed), Generate(seed), seed)
			})
		}
	})
}
