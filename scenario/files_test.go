package scenario

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScenarioFiles runs every scenario file of the repository (examples/
// and testdata/, recursively) through the engine and checks each "=>"
// expectation, so a plain `go test ./...`, without root, holds the engine
// to every result recorded from the kernel or from a profile's sources.
func TestScenarioFiles(t *testing.T) {
	var files []string
	for _, dir := range []string{"../examples", "../testdata"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".scenario") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 40 {
		t.Fatalf("found only %d scenario files under examples/ and testdata/", len(files))
	}
	checked := 0
	for _, f := range files {
		t.Run(filepath.ToSlash(strings.TrimPrefix(f, "../")), func(t *testing.T) {
			r, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			sc, err := Parse(f, r)
			if err != nil {
				t.Fatal(err)
			}
			outs, err := Run(sc, Options{Seed: 1}) // the seed of `socktab sim`
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, o := range outs {
				if !o.Checked() {
					continue
				}
				n++
				if !o.Pass {
					t.Errorf("%s:%d: %s: expected %s, got %s (%s)", o.Step.File, o.Step.Line, o.Step.Text,
						o.Step.Expect.Result, o.Result, o.Reason)
				}
			}
			if n == 0 {
				t.Errorf("%s has no expectation", f)
			}
			checked += n
		})
	}
	t.Logf("%d files, %d expectations checked", len(files), checked)
}
