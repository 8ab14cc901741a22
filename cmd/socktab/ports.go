package main

import (
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"

	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/live"
	"github.com/spf13/cobra"
)

func newPortsCmd() *cobra.Command {
	var f liveFlags
	c := &cobra.Command{
		Use:   "ports",
		Short: "Ephemeral port use per destination against what the range allows",
		Args:  cobra.NoArgs,
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

type portsJSON struct {
	Netns    string     `json:"netns"`
	PortLow  int        `json:"port_low"`
	PortHigh int        `json:"port_high"`
	Reserved []uint16   `json:"reserved_ports"`
	Usable   int        `json:"usable"`
	Dests    []destJSON `json:"destinations"`
}

type destJSON struct {
	Proto    string  `json:"proto"`
	Src      string  `json:"src"`
	Dst      string  `json:"dst"`
	InUse    int     `json:"in_use"`
	TimeWait int     `json:"time_wait"`
	Capacity int     `json:"capacity"`
	Percent  float64 `json:"percent"`
	Warning  bool    `json:"warning"`
}

// runPorts prints the ephemeral range and per-destination use; limit > 0
// shows only the busiest destinations (the overview).
func runPorts(w io.Writer, output string, tabs []*inspect.Table, limit int) error {
	var outs []portsJSON
	for _, t := range tabs {
		o := portsJSON{Netns: t.Snap.Netns, PortLow: t.Host.Sysctl.PortLow, PortHigh: t.Host.Sysctl.PortHigh,
			Reserved: t.Snap.Sysctls.ReservedPorts, Usable: t.Usable(), Dests: []destJSON{}}
		for _, u := range t.Ports() {
			o.Dests = append(o.Dests, destJSON{Proto: u.Proto, Src: u.Src.String(),
				Dst: netip.AddrPortFrom(u.Dst, u.DstPort).String(), InUse: u.InUse, TimeWait: u.TimeWait,
				Capacity: u.Capacity, Percent: u.Percent, Warning: u.Percent >= 80})
		}
		if o.Reserved == nil {
			o.Reserved = []uint16{}
		}
		outs = append(outs, o)
		if output == "json" {
			continue
		}
		fmt.Fprintf(w, "%sephemeral range %d-%d, %d reserved, %d usable per destination\n", nsPrefix(t.Snap.Netns),
			o.PortLow, o.PortHigh, len(o.Reserved), o.Usable)
		if len(o.Dests) == 0 {
			fmt.Fprintln(w, "  no connections from ephemeral ports")
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  Proto\tSource\tDestination\tIn use\tTIME-WAIT\tOf\tUse")
		for i, d := range o.Dests {
			if limit > 0 && i == limit {
				fmt.Fprintf(tw, "  ... %d more destinations\n", len(o.Dests)-limit)
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
