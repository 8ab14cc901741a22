package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/listing"
	"github.com/socktab/socktab/live"
	"github.com/spf13/cobra"
)

// liveFlags are shared by every command that reads the machine.
type liveFlags struct {
	netns      string
	netnsPID   int
	allNetns   bool
	output     string
	optsSource string
}

func (f *liveFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.netns, "netns", "", "read the network namespace NAME (under /run/netns)")
	c.Flags().IntVar(&f.netnsPID, "netns-pid", 0, "read the network namespace of process PID")
	c.Flags().BoolVar(&f.allNetns, "all-netns", false, "read every network namespace in use")
	c.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	c.Flags().StringVar(&f.optsSource, "options-source", "", "how socket options are read: auto, bpf, fd or none (default $SOCKTAB_OPTIONS, else auto)")
	c.Flags().MarkHidden("options-source")
}

// optionsMode is how bind, who and --options read socket options: the
// hidden --options-source flag, else $SOCKTAB_OPTIONS, else auto (the BPF
// iterator where it can run, the owners' descriptors elsewhere).
func (f *liveFlags) optionsMode() (string, error) {
	m := f.optsSource
	if m == "" {
		m = os.Getenv("SOCKTAB_OPTIONS")
	}
	switch m {
	case "", "auto":
		return live.OptsAuto, nil
	case "bpf", "fd":
		return m, nil
	case "none":
		return live.OptsNone, nil
	}
	return "", fmt.Errorf("options source %q (--options-source or SOCKTAB_OPTIONS): want auto, bpf, fd or none", m)
}

// read takes snapshots of the chosen namespaces and loads each into the
// engine. Notes on what could not be read go to stderr.
func (f *liveFlags) read(opts live.Options, stderr io.Writer) ([]*inspect.Table, error) {
	snaps, err := f.snapshots(opts, stderr)
	if err != nil {
		return nil, err
	}
	var tabs []*inspect.Table
	for _, s := range snaps {
		t, err := inspect.Load(s)
		if err != nil {
			return nil, err
		}
		tabs = append(tabs, t)
	}
	return tabs, nil
}

// snapshots reads the chosen namespaces without loading them (ls needs no
// rules, only the list).
func (f *liveFlags) snapshots(opts live.Options, stderr io.Writer) ([]*live.Snapshot, error) {
	if f.output != "text" && f.output != "json" {
		return nil, fmt.Errorf("--output %q: want text or json", f.output)
	}
	var snaps []*live.Snapshot
	var err error
	if f.netns != "" || f.netnsPID != 0 || f.allNetns {
		snaps, err = live.ReadNetns(live.NetnsTarget{Name: f.netns, PID: f.netnsPID, All: f.allNetns}, opts)
	} else {
		var s *live.Snapshot
		s, err = live.Read(opts)
		snaps = []*live.Snapshot{s}
	}
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "socktab: not root: other users' process owners and other namespaces may be missing")
	}
	for _, s := range snaps {
		for _, m := range s.Missing {
			fmt.Fprintf(stderr, "socktab: %s%s\n", nsPrefix(s.Netns), m)
		}
	}
	return snaps, nil
}

func nsPrefix(ns string) string {
	if ns == "" {
		return ""
	}
	return "[" + ns + "] "
}

// jsonSocket is the stable -o json schema of a socket (package listing,
// shared with memnet and the exporter).
type jsonSocket = listing.Socket

func toJSON(s *live.Socket) jsonSocket { return listing.FromLive(s) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
