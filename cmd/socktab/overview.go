package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/report"
)

// runOverview is `socktab` with no arguments: listeners with their
// exposure and connection counts, then ephemeral port use.
func runOverview(w, stderr io.Writer, f liveFlags) error {
	// The kernel's options where the BPF reader runs (its exposure lines
	// are audit's); no descriptor walk over every socket.
	tabs, err := f.read(live.Options{TCP: true, UDP: true, Processes: true, SockOpts: live.OptsKernel}, stderr)
	if err != nil {
		return err
	}
	if f.output == "json" {
		outs := []report.Overview{}
		for _, t := range tabs {
			conns := connectionsPerListener(t)
			o := report.Overview{Netns: t.Snap.Netns, Listeners: []report.Listener{}, Ports: portsOf(t)}
			for _, e := range t.Audit() {
				if ls := t.Live(e.Socket); ls != nil {
					o.Listeners = append(o.Listeners, report.Listener{Socket: report.FromLive(ls, true),
						Classes: append([]string{}, e.Classes...), Severity: e.Severity.String(), Connections: conns[e.Socket]})
				}
			}
			outs = append(outs, o)
		}
		return writeJSON(w, outs)
	}
	for _, t := range tabs {
		conns := connectionsPerListener(t)
		fmt.Fprintf(w, "%sListeners\n", nsPrefix(t.Snap.Netns))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  Proto\tLocal\tExposure\tConns\tHeld by")
		for _, e := range t.Audit() {
			ls := t.Live(e.Socket)
			if ls == nil {
				continue
			}
			exp := strings.Join(e.Classes, "+")
			if exp == "" {
				exp = "none"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s (%s)\t%d\t%s\n", ls.Proto, localText(ls), exp, e.Severity, conns[e.Socket], inspect.Owners(ls))
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	return runPorts(w, "text", tabs, 5)
}

// connectionsPerListener attributes each accepted connection to the
// listener the engine's lookup would hand its SYN to.
func connectionsPerListener(t *inspect.Table) map[*engine.Socket]int {
	out := map[*engine.Socket]int{}
	for _, s := range t.Sockets() {
		if s.Proto() != engine.TCP || s.State() == engine.Listen || !s.Remote().IsValid() {
			continue
		}
		dst := netip.AddrPortFrom(s.Local().Addr().Unmap(), s.Local().Port())
		src := netip.AddrPortFrom(s.Remote().Addr().Unmap(), s.Remote().Port())
		l := t.Host.Lookup(engine.Packet{Proto: engine.TCP, Src: src, Dst: dst, Flags: engine.FlagSYN})
		if l.Verdict == engine.Deliver && l.Socket.State() == engine.Listen {
			out[l.Socket]++
			continue
		}
		// The SYN would hit the connection itself; look up the listener
		// for a source no connection uses.
		l = t.Host.Lookup(engine.Packet{Proto: engine.TCP, Src: inspect.DefaultSource(dst.Addr()), Dst: dst, Flags: engine.FlagSYN})
		if l.Verdict == engine.Deliver && l.Socket.State() == engine.Listen {
			out[l.Socket]++
		}
	}
	return out
}
