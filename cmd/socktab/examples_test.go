package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spf13/cobra"
)

// exampleFixture is the namespace every example runs in (as its own, so
// the examples do not depend on the host's interfaces): an eth0 (a veth)
// with a documentation address, a dual-stack listener on [::]:8080 (the
// README's demo), a listener and a UDP socket on loopback.
const exampleFixture = `netns NS
exec ip -n $NS link add eth0 type veth peer name eth0p
exec ip -n $NS addr add 192.0.2.10/24 dev eth0
exec ip -n $NS link set eth0 up
exec ip -n $NS link set eth0p up
plant $NS listen [::]:8080 v6only=0
plant $NS listen 127.0.0.1:9090
plant $NS udp 127.0.0.1:5353
env EXAMPLE_NS=$NS
`

// helpExamples collects the example lines of every command's --help.
func helpExamples(t *testing.T) map[string][]string {
	out := map[string][]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, l := range strings.Split(c.Example, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out[c.CommandPath()] = append(out[c.CommandPath()], l)
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRoot())
	return out
}

// TestEveryHelpHasExamples: every command has a description and two or
// three examples (cobra's own help and completion commands aside).
func TestEveryHelpHasExamples(t *testing.T) {
	ex := helpExamples(t)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			walk(s)
		}
		if !c.IsAvailableCommand() && c != c.Root() || c.Name() == "help" || c.Name() == "scenario" ||
			(c.Parent() != nil && c.Parent().Name() == "completion") || c.Name() == "completion" {
			return
		}
		if len(c.Long) < 80 {
			t.Errorf("%s: --help needs a real description (Long)", c.CommandPath())
		}
		if n := len(ex[c.CommandPath()]); n < 2 || n > 3 {
			t.Errorf("%s: %d examples, want 2 or 3", c.CommandPath(), n)
		}
	}
	walk(newRoot())
}

// TestExamples runs every example of --help and of the README as a
// testscript against a namespace with planted sockets, so they cannot go
// stale: each must run without a usage or read error (exit 0, 1 or 3),
// and the README's shown output must match (process names and pids
// aside).
func TestExamples(t *testing.T) {
	if !liveOK() {
		if os.Getenv("CI") != "" {
			t.Fatal("CI: the examples need root and network namespaces")
		}
		t.Skip("SKIPPED LOUDLY: the examples need root and network namespaces")
	}
	var b strings.Builder
	b.WriteString(exampleFixture + "cd $REPO\n")
	run := func(line string, inside bool) {
		line = strings.ReplaceAll(line, "--netns demo", "--netns $EXAMPLE_NS")
		if strings.Contains(line, "socktab serve") {
			return // a server: exercised by the serve tests
		}
		prefix := "" // the README's use --netns: they run from outside
		if inside {
			prefix = "ip netns exec $EXAMPLE_NS "
		}
		fmt.Fprintf(&b, "exec %ssh -c '%s; rc=$?; test $rc -ne 2 || { echo exit $rc >&2; exit 1; }'\n", prefix, strings.ReplaceAll(line, "'", `'"'"'`))
	}
	ex := helpExamples(t)
	for _, cmd := range sortedKeys(ex) {
		fmt.Fprintf(&b, "\n# %s --help\n", cmd)
		for _, l := range ex[cmd] {
			run(l, true)
		}
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n# README\n")
	held := regexp.MustCompile(`held by \S+ \\\(pid \d+\\\)`)
	inOutput := false // the indented lines after "$ socktab ..." are its output
	for _, l := range strings.Split(string(readme), "\n") {
		switch {
		case strings.HasPrefix(l, "    $ socktab "):
			run(strings.TrimPrefix(l, "    $ "), false)
			inOutput = true
		case inOutput && strings.HasPrefix(l, "    "):
			want := strings.TrimPrefix(l, "    ")
			want = strings.ReplaceAll(want, "[demo]", "[NSNAME]")
			re := regexp.QuoteMeta(want)
			re = held.ReplaceAllString(re, `held by \S+ \(pid \d+\)`)
			// testscript expands $EXAMPLE_NS outside quotes only.
			re = strings.ReplaceAll(strings.ReplaceAll(re, "'", `''`), "NSNAME", "'$EXAMPLE_NS'")
			fmt.Fprintf(&b, "stdout '^%s$'\n", re)
		default:
			inOutput = false
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "examples.txtar"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated script:\n%s", b.String())
	testscript.Run(t, scriptParams(t, dir))
}

func sortedKeys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
