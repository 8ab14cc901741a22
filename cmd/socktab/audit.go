package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/report"
	"github.com/spf13/cobra"
)

func newAuditCmd() *cobra.Command {
	var f liveFlags
	var failOn string
	c := &cobra.Command{
		Use:   "audit [--fail-on info|low|medium|high]",
		Short: "Every listener, the addresses it really accepts on, and exposure findings",
		Long: `Every TCP listener and bound UDP socket with the concrete addresses it accepts on
(wildcards expanded over this host's interfaces, dual-stack [::] included, minus addresses
a more specific listener takes), each classified loopback, link-local, private, cgnat, ula,
documentation (RFC 5737, RFC 3849, RFC 9637), benchmarking (RFC 2544), special-purpose,
reserved, multicast or public, ranked by severity with a one-line fix. A SO_REUSEPORT
group is one finding. --fail-on SEVERITY (any case) exits 1 when a finding is at least
that severe, for CI.`,
		Example: `  socktab audit
  socktab audit --fail-on high
  socktab audit --all-netns -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			threshold := inspect.Severity(-1)
			if failOn != "" {
				s, err := inspect.ParseSeverity(failOn)
				if err != nil {
					return usageErr(fmt.Errorf("--fail-on: %v", err))
				}
				threshold = s
			}
			// Who receives on an address turns on SO_REUSEPORT and
			// SO_REUSEADDR (a reuseport group, or the newest UDP sharer):
			// read them, as bind and who do.
			opts := live.Options{TCP: true, UDP: true, States: live.StatesListening, Processes: true}
			var err error
			if opts.SockOpts, err = f.optionsMode(); err != nil {
				return err
			}
			tabs, err := f.read(opts, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runAudit(cmd.OutOrStdout(), f.output, tabs, threshold)
		},
	}
	f.add(c)
	c.Flags().StringVar(&failOn, "fail-on", "", "exit 1 if a finding is at least this severe (info, low, medium, high)")
	c.RegisterFlagCompletionFunc("fail-on", cobra.FixedCompletions([]string{"info", "low", "medium", "high"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// findings converts one namespace's audit to the JSON schema.
func findings(t *inspect.Table) []report.Finding {
	out := []report.Finding{}
	for _, e := range t.Audit() {
		ls := t.Live(e.Socket)
		if ls == nil {
			continue
		}
		f := report.Finding{Netns: t.Snap.Netns, Socket: report.FromLive(ls, true), Group: []report.Socket{},
			Accepts: []string{}, Classes: []string{}, Severity: e.Severity.String(), Finding: e.Finding}
		for _, g := range e.Group {
			if gl := t.Live(g); gl != nil {
				f.Group = append(f.Group, report.FromLive(gl, true))
			}
		}
		for _, a := range e.Accepts {
			f.Accepts = append(f.Accepts, a.String())
		}
		f.Classes = append(f.Classes, e.Classes...)
		if e.Fix != "" {
			fix := e.Fix
			f.Fix = &fix
		}
		out = append(out, f)
	}
	return out
}

func runAudit(w io.Writer, output string, tabs []*inspect.Table, threshold inspect.Severity) error {
	fail := false
	outs := []report.Finding{}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// A Netns column when another namespace than the caller's is shown.
	nsCol := len(tabs) > 1 || (len(tabs) == 1 && tabs[0].Snap.Netns != "")
	if output == "text" {
		if nsCol {
			fmt.Fprint(tw, "Netns\t")
		}
		fmt.Fprintln(tw, "Severity\tProto\tLocal\tAccepts on\tHeld by")
	}
	var notes []string
	for _, t := range tabs {
		for _, e := range t.Audit() {
			ls := t.Live(e.Socket)
			if ls == nil {
				continue
			}
			if threshold >= 0 && e.Severity >= threshold {
				fail = true
			}
			if output != "text" {
				continue
			}
			held := inspect.Owners(ls)
			for _, g := range e.Group {
				if g != e.Socket {
					held += "; " + inspect.Owners(t.Live(g))
				}
			}
			if nsCol {
				fmt.Fprintf(tw, "%s\t", nsColumn(t.Snap.Netns))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Severity, ls.Proto, localText(ls), joinAddrs(e.Accepts), held)
			if e.Severity > inspect.Info && e.Fix != "" {
				notes = append(notes, fmt.Sprintf("[%s] %s%s\n       fix: %s", e.Severity, nsPrefix(t.Snap.Netns), e.Finding, e.Fix))
			}
		}
		if output == "json" {
			outs = append(outs, findings(t)...)
		}
	}
	if output == "json" {
		if err := writeJSON(w, outs); err != nil {
			return err
		}
	} else {
		tw.Flush()
		if len(notes) > 0 {
			fmt.Fprintln(w, "\nFindings:")
			for _, f := range notes {
				fmt.Fprintln(w, "  "+f)
			}
		}
	}
	if fail {
		return exitError{1}
	}
	return nil
}

// nsColumn is a namespace label as a column: "-" for the caller's own.
func nsColumn(ns string) string {
	if ns == "" {
		return "-"
	}
	return escape(ns)
}
