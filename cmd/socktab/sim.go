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
		Use:   "sim FILE|DIR...",
		Short: "Run scenario files and explain each result",
		Long: `Run scenario files (a directory means every *.scenario under it) and print each
step with its result and the rule that decided it. With --check, compare results with
the "=> RESULT" expectations and exit 1 if any differ. Malformed input exits 2.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSim(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, f)
		},
	}
	c.Flags().BoolVar(&f.check, "check", false, "compare results with expectations; exit 1 on any mismatch")
	c.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json (one object per step)")
	c.Flags().StringVar(&f.os, "os", "", "override every file's os profile (linux, windows, macos, freebsd)")
	c.Flags().Uint64Var(&f.seed, "seed", 1, "seed for the engine's random choices (ephemeral ports, reuseport hash)")
	return c
}

// expand turns the arguments into scenario files, directories walked for
// *.scenario in lexical order.
func expand(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		var found []string
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(p, ".scenario") {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	return files, nil
}

type jsonStep struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Host      string `json:"host,omitempty"`
	Statement string `json:"statement"`
	Result    string `json:"result"`
	Reason    string `json:"reason"`
	Tuple     string `json:"tuple,omitempty"`
	Expected  string `json:"expected,omitempty"`
	Pass      *bool  `json:"pass,omitempty"`
}

func runSim(stdout, stderr io.Writer, args []string, f simFlags) error {
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("--output %q: want text or json", f.output)
	}
	if f.os != "" {
		if _, err := engine.ProfileByName(f.os); err != nil {
			return fmt.Errorf("--os: %v", err)
		}
	}
	files, err := expand(args)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	passed, failed, broken := 0, 0, 0
	for _, file := range files {
		outs, err := simFile(file, f)
		if err != nil {
			var se *scenario.Error
			if !errors.As(err, &se) {
				err = fmt.Errorf("%s: %v", file, err)
			}
			w.Flush()
			fmt.Fprintln(stderr, err)
			broken++
		}
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
			if f.output == "json" {
				js := jsonStep{File: st.File, Line: st.Line, Host: o.Host, Statement: st.Text, Result: o.Result, Reason: o.Reason, Tuple: o.Tuple}
				if o.Checked() {
					js.Expected = st.Expect.Result
					pass := o.Pass
					js.Pass = &pass
				}
				enc.Encode(js)
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
	}
	if f.check && f.output == "text" {
		fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	}
	w.Flush()
	switch {
	case broken > 0:
		return exitError{2}
	case f.check && failed > 0:
		return exitError{1}
	}
	return nil
}

func simFile(file string, f simFlags) ([]scenario.Outcome, error) {
	r, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	sc, err := scenario.Parse(file, r)
	if err != nil {
		return nil, err
	}
	return scenario.Run(sc, scenario.Options{OS: f.os, Seed: f.seed})
}
