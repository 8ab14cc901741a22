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

func newPortsCmd() *cobra.Command {
	var f liveFlags
	var failOn float64
	c := &cobra.Command{
		Use:   "ports [--fail-on PERCENT]",
		Short: "Ephemeral port use per pool against what the range allows",
		Long: `The ephemeral port range and reserved ports, and the use of each pool of
ports that connect() draws from, as the kernel keeps them:

  TCP: one pool per (source, destination, destination port), since a
  connection needs a unique 4-tuple; ports of the range held by listeners
  and bound sockets are never picked by connect(), for any destination, so
  they come off every pool ("blocked"). Connections accepted on a listening
  port are not this host's connects and count nowhere.
  UDP: one pool: connect() or sendto() on an unbound socket takes a port no
  other UDP socket has, whatever the destination.

A pool at 80% or more is flagged: the next TCP connect() to it may fail with
EADDRNOTAVAIL, a UDP one with EAGAIN. --fail-on PERCENT exits 1 when a pool
is above PERCENT, for CI and monitoring.`,
		Example: `  socktab ports
  socktab ports --netns demo -o json
  socktab ports --fail-on 90`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if failOn < 0 || failOn > 100 {
				return usageErr(fmt.Errorf("--fail-on %g: want a percentage from 0 to 100", failOn))
			}
			// The BPF reader, where it runs, says which connections' ports
			// connect() chose; a connection on a port bound first holds it
			// against every destination.
			tabs, err := f.read(live.Options{TCP: true, UDP: true, SockOpts: live.OptsKernel}, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if err := runPorts(cmd.OutOrStdout(), f.output, tabs, 0); err != nil {
				return err
			}
			if cmd.Flags().Changed("fail-on") && overPercent(tabs, failOn) {
				return exitError{1}
			}
			return nil
		},
	}
	f.add(c)
	c.Flags().Float64Var(&failOn, "fail-on", 0, "exit 1 when a pool's use is above PERCENT")
	return c
}

// overPercent reports whether some pool's use is above limit percent.
func overPercent(tabs []*inspect.Table, limit float64) bool {
	for _, t := range tabs {
		for _, u := range t.Ports() {
			if u.Percent > limit {
				return true
			}
		}
	}
	return false
}

// portsOf converts one namespace's port use to the JSON schema.
func portsOf(t *inspect.Table) report.Ports {
	o := report.Ports{Netns: t.Snap.Netns, PortLow: t.Host.Sysctl.PortLow, PortHigh: t.Host.Sysctl.PortHigh,
		Reserved: t.Snap.Sysctls.ReservedPorts, Usable: t.Usable(), Destinations: []report.Destination{}}
	for _, u := range t.Ports() {
		o.Destinations = append(o.Destinations, report.Destination{Proto: u.Proto, Src: u.SrcText(),
			Dst: u.DstText(), InUse: u.InUse, TimeWait: u.TimeWait, Blocked: u.Blocked,
			Capacity: u.Capacity, Percent: u.Percent, Warning: u.Percent >= 80})
	}
	if o.Reserved == nil {
		o.Reserved = []uint16{}
	}
	return o
}

// runPorts prints the ephemeral range and per-destination use; limit > 0
// shows only the busiest destinations (the overview).
func runPorts(w io.Writer, output string, tabs []*inspect.Table, limit int) error {
	outs := []report.Ports{}
	for _, t := range tabs {
		o := portsOf(t)
		outs = append(outs, o)
		if output == "json" {
			continue
		}
		fmt.Fprintf(w, "%sephemeral range %d-%d, %d reserved, %d usable per destination\n", nsPrefix(t.Snap.Netns),
			o.PortLow, o.PortHigh, len(o.Reserved), o.Usable)
		if len(o.Destinations) == 0 {
			fmt.Fprintln(w, "  no connections from ephemeral ports")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  Proto\tSource\tDestination\tIn use\tTIME-WAIT\tBlocked\tOf\tUse")
		for i, d := range o.Destinations {
			if limit > 0 && i == limit {
				fmt.Fprintf(tw, "  ... %d more destinations\n", len(o.Destinations)-limit)
				break
			}
			warn := ""
			if d.Warning {
				warn = "  WARNING: near exhaustion"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\t%d\t%.1f%%%s\n", d.Proto, d.Src, d.Dst, d.InUse, d.TimeWait, d.Blocked, d.Capacity, d.Percent, warn)
		}
		tw.Flush()
	}
	if output == "json" {
		return writeJSON(w, outs)
	}
	return nil
}
