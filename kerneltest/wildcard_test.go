package kerneltest

import (
	"strings"
	"testing"

	"github.com/socktab/socktab/scenario"
)

// TestBindWildcardSimulated runs the kernel selftest's 132 bind cases
// through the simulator alone (no root needed): every expectation from the
// selftest's table must hold. TestReplayBindWildcard then holds the kernel
// to the same steps.
func TestBindWildcardSimulated(t *testing.T) {
	cases, err := BindWildcardCases("../testdata/bind-wildcard-cases.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 132 {
		t.Fatalf("%d cases, want 44 rows x 3", len(cases))
	}
	for _, c := range cases {
		sc, err := scenario.Parse(c.Name, strings.NewReader(c.Text))
		if err != nil {
			t.Fatal(err)
		}
		outs, err := scenario.Run(sc, scenario.Options{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, o := range outs {
			if !o.Checked() {
				continue
			}
			checked++
			if !o.Pass {
				t.Errorf("%s line %d: %s: expected %s, got %s (%s)", c.Name, o.Step.Line, o.Step.Text, o.Step.Expect.Result, o.Result, o.Reason)
			}
		}
		if checked < 8 {
			t.Errorf("%s: only %d expectations", c.Name, checked)
		}
	}
}
