package kerneltest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/socktab/socktab/scenario"
)

// TestGenerateParses checks that every generated scenario is valid text
// the engine runs to the end, and that a seed always gives the same text.
func TestGenerateParses(t *testing.T) {
	for seed := uint64(1); seed <= 2000; seed++ {
		text := Generate(seed)
		if text != Generate(seed) {
			t.Fatalf("seed %d: not deterministic", seed)
		}
		sc, err := scenario.Parse(fmt.Sprintf("random-%d", seed), strings.NewReader(text))
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, text)
		}
		if n := len(sc.Steps); n < 5 || n > 40 {
			t.Errorf("seed %d: %d steps", seed, n)
		}
		if _, err := scenario.Run(sc, scenario.Options{Seed: seed}); err != nil {
			t.Fatalf("seed %d: engine: %v\n%s", seed, err, text)
		}
	}
	t.Logf("seed 1:\n%s", Generate(1))
}

// TestGenerateWideParses is TestGenerateParses for the wide generator, on
// one host and on two.
func TestGenerateWideParses(t *testing.T) {
	for _, hosts := range []int{1, 2} {
		for seed := uint64(1); seed <= 1000; seed++ {
			text := GenerateWide(seed, hosts)
			if text != GenerateWide(seed, hosts) {
				t.Fatalf("seed %d: not deterministic", seed)
			}
			sc, err := scenario.Parse(fmt.Sprintf("wide-%d", seed), strings.NewReader(text))
			if err != nil {
				t.Fatalf("seed %d: %v\n%s", seed, err, text)
			}
			if _, err := scenario.Run(sc, scenario.Options{Seed: seed}); err != nil {
				t.Fatalf("seed %d hosts %d: engine: %v\n%s", seed, hosts, err, text)
			}
		}
	}
	t.Logf("two hosts, seed 1:\n%s", GenerateWide(1, 2))
}
