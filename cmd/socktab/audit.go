package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/live"
	"github.com/spf13/cobra"
)

func newAuditCmd() *cobra.Command {
	var f liveFlags
	var failOn string
	c := &cobra.Command{
		Use:   "audit",
		Short: "Every listener, the addresses it really accepts on, and exposure findings",
		Long: `Every TCP listener and bound UDP socket with the concrete addresses it accepts on
(wildcards expanded over this host's interfaces, dual-stack [::] included, minus addresses
a more specific listener takes), each classified loopback, link-local, private, CGNAT, ULA
or public, ranked by severity with a one-line fix. --fail-on SEVERITY exits 1 when a
finding is at least that severe.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			threshold := inspect.Severity(-1)
			if failOn != "" {
				s, err := inspect.ParseSeverity(failOn)
				if err != nil {
					return fmt.Errorf("--fail-on: %v", err)
				}
				threshold = s
			}
			tabs, err := f.read(live.Options{TCP: true, UDP: true, States: live.StatesListening, Processes: true}, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runAudit(cmd.OutOrStdout(), f.output, tabs, threshold)
		},
	}
	f.add(c)
	c.Flags().StringVar(&failOn, "fail-on", "", "exit 1 if a finding is at least this severe (info, low, medium, high)")
	return c
}

type auditJSON struct {
	Netns    string     `json:"netns"`
	Socket   jsonSocket `json:"socket"`
	Accepts  []string   `json:"accepts"`
	Classes  []string   `json:"classes"`
	Severity string     `json:"severity"`
	Finding  string     `json:"finding"`
	Fix      string     `json:"fix"`
}

func runAudit(w io.Writer, output string, tabs []*inspect.Table, threshold inspect.Severity) error {
	fail := false
	var outs []auditJSON
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if output == "text" {
		fmt.Fprintln(tw, "Severity\tProto\tLocal\tAccepts on\tHeld by")
	}
	var findings []string
	for _, t := range tabs {
		for _, e := range t.Audit() {
			ls := t.Live(e.Socket)
			if ls == nil {
				continue
			}
			if threshold >= 0 && e.Severity >= threshold {
				fail = true
			}
			acc := make([]string, len(e.Accepts))
			for i, a := range e.Accepts {
				acc[i] = a.String()
			}
			outs = append(outs, auditJSON{Netns: t.Snap.Netns, Socket: toJSON(ls), Accepts: acc, Classes: e.Classes,
				Severity: e.Severity.String(), Finding: e.Finding, Fix: e.Fix})
			if output == "text" {
				fmt.Fprintf(tw, "%s\t%s\t%s%s\t%s\t%s\n", e.Severity, ls.Proto, nsPrefix(t.Snap.Netns), localText(ls), joinAddrs(e.Accepts), inspect.Owners(ls))
				if e.Severity > inspect.Info && e.Fix != "" {
					findings = append(findings, fmt.Sprintf("[%s] %s\n       fix: %s", e.Severity, e.Finding, e.Fix))
				}
			}
		}
	}
	if output == "json" {
		if outs == nil {
			outs = []auditJSON{}
		}
		if err := writeJSON(w, outs); err != nil {
			return err
		}
	} else {
		tw.Flush()
		if len(findings) > 0 {
			fmt.Fprintln(w, "\nFindings:")
			for _, f := range findings {
				fmt.Fprintln(w, "  "+f)
			}
		}
	}
	if fail {
		return exitError{1}
	}
	return nil
}
