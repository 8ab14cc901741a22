package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/scenario"
	"github.com/spf13/cobra"
)

type simFlags struct {
	check  bool
	output string
	os     string
	seed   uint64
}

func newSimCmd() *cobra.Command {
	var f simFlags
	c := &cobra.Command{
		Use:   "sim [--check] [-o text|json|json-array] [--os OS] [--seed N] FILE|DIR|-...",
		Short: "Run scenario files and explain each result",
		Long: `Run scenario files and print each step with its result and the rule that decided it.
A directory means every *.scenario file under it, in lexical order (symbolic links to
directories are followed once; files that are not regular, such as FIFOs, are skipped
with a note); "-" reads one scenario from standard input. The language is described by
'socktab help scenario'.

With --check, only mismatches with the "=> RESULT" expectations are printed, then
"N passed, M failed"; exit 1 if any failed or if nothing was checked at all. Malformed
input is reported as FILE:LINE:COL (columns count characters) and exits 2, as do
unreadable files (each reported and counted; the other files still run) and breaches of
the limits: lines of at most 1 MiB, 100,000 steps and 50,000 sockets per file (repeats
included), a clock of at most 100 years.

-o json writes NDJSON: one JSON object per step and line, {file, line, host, statement,
result, reason, tuple, expected, pass}, as each step runs; -o json-array writes the
same objects as one JSON array.`,
		Example: `  socktab sim examples/dual-stack-linux.scenario
  socktab sim --check examples/ testdata/
  echo 'repeat 3 s{i} = socket inet tcp' | socktab sim -o json -`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr(errors.New("want at least one FILE, DIR or - (standard input)"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSim(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args, f)
		},
	}
	c.Flags().BoolVar(&f.check, "check", false, "compare results with expectations; exit 1 on any mismatch or if nothing was checked")
	c.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text, json (NDJSON: one object per step) or json-array")
	c.Flags().StringVar(&f.os, "os", "", "override every file's os profile (linux, windows, macos, freebsd)")
	c.Flags().Uint64Var(&f.seed, "seed", 1, "seed for the engine's random choices (ephemeral ports, reuseport hash)")
	c.RegisterFlagCompletionFunc("os", cobra.FixedCompletions([]string{"linux", "windows", "macos", "freebsd"}, cobra.ShellCompDirectiveNoFileComp))
	c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json", "json-array"}, cobra.ShellCompDirectiveNoFileComp))
	c.ValidArgsFunction = func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"scenario"}, cobra.ShellCompDirectiveFilterFileExt
	}
	return c
}

// stdinName labels the scenario read from standard input.
const stdinName = "<stdin>"

// discovery is what the arguments expand to.
type discovery struct {
	files      []string
	notes      []string // skipped entries, said on stderr
	unreadable []string // errors, counted
}

// expand turns the arguments into scenario files: a directory is walked
// for *.scenario files in lexical order, following symbolic links to
// directories (each directory once, so a link loop ends); "-" is standard
// input. Files that are not regular are skipped with a note, since opening
// a FIFO would block; what cannot be read is reported and counted.
func expand(args []string) discovery {
	var d discovery
	for _, a := range args {
		if a == "-" {
			d.files = append(d.files, "-")
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			d.unreadable = append(d.unreadable, fmt.Sprintf("%s: %v", a, pathErr(err)))
			continue
		}
		switch {
		case st.IsDir():
			var found []string
			walk(a, map[fileKey]bool{}, &found, &d)
			sort.Strings(found)
			if len(found) == 0 {
				d.notes = append(d.notes, fmt.Sprintf("%s: no *.scenario files", a))
			}
			d.files = append(d.files, found...)
		case st.Mode().IsRegular():
			d.files = append(d.files, a)
		default:
			d.notes = append(d.notes, fmt.Sprintf("%s: skipped, not a regular file (%s)", a, kind(st.Mode())))
		}
	}
	return d
}

type fileKey struct{ dev, ino uint64 }

func keyOf(st fs.FileInfo) fileKey {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return fileKey{uint64(s.Dev), s.Ino}
	}
	return fileKey{}
}

func walk(dir string, seen map[fileKey]bool, found *[]string, d *discovery) {
	st, err := os.Stat(dir)
	if err != nil {
		d.unreadable = append(d.unreadable, fmt.Sprintf("%s: %v", dir, pathErr(err)))
		return
	}
	if k := keyOf(st); seen[k] {
		return // reached again through a link
	} else {
		seen[k] = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		d.unreadable = append(d.unreadable, fmt.Sprintf("%s: %v", dir, pathErr(err)))
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		st, err := os.Stat(p) // follows links
		if err != nil {
			if strings.HasSuffix(p, ".scenario") || e.IsDir() {
				d.unreadable = append(d.unreadable, fmt.Sprintf("%s: %v", p, pathErr(err)))
			}
			continue
		}
		switch {
		case st.IsDir():
			walk(p, seen, found, d)
		case !strings.HasSuffix(p, ".scenario"):
		case st.Mode().IsRegular():
			*found = append(*found, p)
		default:
			d.notes = append(d.notes, fmt.Sprintf("%s: skipped, not a regular file (%s)", p, kind(st.Mode())))
		}
	}
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

type jsonStep struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Host      string `json:"host"`
	Statement string `json:"statement"`
	Result    string `json:"result"`
	Reason    string `json:"reason"`
	Tuple     string `json:"tuple"`
	// Expected and Pass are null for a step without an expectation.
	Expected *string `json:"expected"`
	Pass     *bool   `json:"pass"`
}

func runSim(stdin io.Reader, stdout, stderr io.Writer, args []string, f simFlags) error {
	if f.output != "text" && f.output != "json" && f.output != "json-array" {
		return usageErr(fmt.Errorf("--output %q: want text, json (NDJSON) or json-array", f.output))
	}
	if f.os != "" {
		if _, err := engine.ProfileByName(f.os); err != nil {
			return usageErr(fmt.Errorf("--os: %v", err))
		}
	}
	d := expand(args)
	w := bufio.NewWriter(stdout)
	say := func(format string, a ...any) { // stderr, in order with stdout
		w.Flush()
		fmt.Fprintf(stderr, format+"\n", a...)
	}
	for _, n := range d.notes {
		say("socktab: %s", n)
	}
	for _, u := range d.unreadable {
		say("socktab: %s", u)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	array := []jsonStep{}
	passed, failed, broken := 0, 0, len(d.unreadable)
	for _, file := range d.files {
		outs, err := simFile(stdin, file, f)
		for i := range outs {
			o := &outs[i]
			st := o.Step
			if o.Checked() {
				if o.Pass {
					passed++
				} else {
					failed++
				}
			}
			if f.output != "text" {
				js := jsonStep{File: st.File, Line: st.Line, Host: o.Host, Statement: st.Text, Result: o.Result, Reason: o.Reason, Tuple: o.Tuple}
				if o.Checked() {
					js.Expected = &st.Expect.Result
					pass := o.Pass
					js.Pass = &pass
				}
				if f.output == "json-array" {
					array = append(array, js)
				} else {
					enc.Encode(js)
				}
				continue
			}
			if f.check {
				if o.Checked() && !o.Pass {
					fmt.Fprintf(w, "%s:%d: expected %s, got %s (%s)\n", st.File, st.Line, st.Expect.Result, o.Result, o.Reason)
				}
				continue
			}
			fmt.Fprintf(w, "%s:%-4d %-40s => %-13s # %s", st.File, st.Line, st.Text, o.Result, o.Reason)
			if o.Tuple != "" {
				fmt.Fprintf(w, " [%s]", o.Tuple)
			}
			if o.Checked() && !o.Pass {
				fmt.Fprintf(w, "  (EXPECTED %s)", st.Expect.Result)
			}
			fmt.Fprintln(w)
		}
		if err != nil {
			// After the steps that ran, so the error reads in order.
			var se *scenario.Error
			if !errors.As(err, &se) {
				err = fmt.Errorf("%s: %v", file, err)
			}
			say("%v", err)
			broken++
		}
	}
	if f.output == "json-array" {
		if err := writeJSON(w, array); err != nil {
			return err
		}
	}
	if f.check && f.output == "text" {
		fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	switch {
	case broken > 0:
		fmt.Fprintf(stderr, "socktab: %d of %d files could not be read or run\n", broken, len(d.files)+len(d.unreadable))
		return exitError{2}
	case len(d.files) == 0:
		fmt.Fprintln(stderr, "socktab: no scenario files to run")
		return exitError{2}
	case f.check && failed > 0:
		return exitError{1}
	case f.check && passed == 0:
		fmt.Fprintln(stderr, "socktab: --check checked nothing: no step has an expectation (=> RESULT)")
		return exitError{1}
	}
	return nil
}

func simFile(stdin io.Reader, file string, f simFlags) ([]scenario.Outcome, error) {
	var r io.Reader
	name := file
	if file == "-" {
		r, name = stdin, stdinName
	} else {
		fh, err := os.Open(file)
		if err != nil {
			return nil, pathErr(err)
		}
		defer fh.Close()
		r = fh
	}
	sc, err := scenario.Parse(name, r)
	if err != nil {
		return nil, err
	}
	return scenario.Run(sc, scenario.Options{OS: f.os, Seed: f.seed})
}
