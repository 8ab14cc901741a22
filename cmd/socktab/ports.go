package main

import (
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"

	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/report"
	"github.com/spf13/cobra"
)

func newPortsCmd() *cobra.Command {
	var f liveFlags
	c := &cobra.Command{
		Use:   "ports",
		Short: "Ephemeral port use per destination against what the range allows",
		Long: `The ephemeral port range and reserved ports, and per (protocol, source,
destination, port) the ports in use, TIME-WAIT apart, against what the range allows.
A destination at 80% or more is flagged: the next connect() to it may fail with
EADDRNOTAVAIL.`,
		Example: `  socktab ports
  socktab ports --netns demo -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tabs, err := f.read(live.Options{TCP: true, UDP: true}, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runPorts(cmd.OutOrStdout(), f.output, tabs, 0)
		},
	}
	f.add(c)
	return c
}

// portsOf converts one namespace's port use to the JSON schema.
func portsOf(t *inspect.Table) report.Ports {
	o := report.Ports{Netns: t.Snap.Netns, PortLow: t.Host.Sysctl.PortLow, PortHigh: t.Host.Sysctl.PortHigh,
		Reserved: t.Snap.Sysctls.ReservedPorts, Usable: t.Usable(), Destinations: []report.Destination{}}
	for _, u := range t.Ports() {
		o.Destinations = append(o.Destinations, report.Destination{Proto: u.Proto, Src: u.Src.String(),
			Dst: netip.AddrPortFrom(u.Dst, u.DstPort).String(), InUse: u.InUse, TimeWait: u.TimeWait,
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
		fmt.Fprintln(tw, "  Proto\tSource\tDestination\tIn use\tTIME-WAIT\tOf\tUse")
		for i, d := range o.Destinations {
			if limit > 0 && i == limit {
				fmt.Fprintf(tw, "  ... %d more destinations\n", len(o.Destinations)-limit)
				break
			}
			warn := ""
			if d.Warning {
				warn = "  WARNING: near exhaustion"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\t%.1f%%%s\n", d.Proto, d.Src, d.Dst, d.InUse, d.TimeWait, d.Capacity, d.Percent, warn)
		}
		tw.Flush()
	}
	if output == "json" {
		return writeJSON(w, outs)
	}
	return nil
}
