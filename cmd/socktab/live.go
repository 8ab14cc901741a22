package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/live"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
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
	c.Flags().BoolVar(&f.allNetns, "all-netns", false, "read every network namespace in use (named, Docker's, containerd's, every process's)")
	c.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	c.Flags().StringVar(&f.optsSource, "options-source", "", "how socket options are read: auto, bpf, fd or none (default $SOCKTAB_OPTIONS, else auto)")
	c.Flags().MarkHidden("options-source")
	c.RegisterFlagCompletionFunc("netns", completeNetns)
	c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	c.RegisterFlagCompletionFunc("netns-pid", cobra.NoFileCompletions)
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

// completeNetns offers the names under /run/netns.
func completeNetns(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	ents, _ := os.ReadDir(live.NetnsDir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// netnsMode tells whether namespaces were chosen explicitly.
func (f *liveFlags) netnsMode() bool { return f.netns != "" || f.netnsPID != 0 || f.allNetns }

// check validates the shared flags before anything is read.
func (f *liveFlags) check() error {
	if f.output != "text" && f.output != "json" {
		return usageErr(fmt.Errorf("--output %q: want text or json", f.output))
	}
	var set []string
	if f.netns != "" {
		set = append(set, "--netns")
	}
	if f.netnsPID != 0 {
		set = append(set, "--netns-pid")
	}
	if f.allNetns {
		set = append(set, "--all-netns")
	}
	if len(set) > 1 {
		return usageErr(fmt.Errorf("%s cannot be combined: choose one namespace, a process's namespace, or all", strings.Join(set, " and ")))
	}
	if f.netnsPID < 0 {
		return usageErr(fmt.Errorf("--netns-pid %d: want a process id", f.netnsPID))
	}
	return nil
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
	if err := f.check(); err != nil {
		return nil, err
	}
	var snaps []*live.Snapshot
	var err error
	if f.netnsMode() {
		snaps, err = live.ReadNetns(live.NetnsTarget{Name: f.netns, PID: f.netnsPID, All: f.allNetns}, opts)
	} else {
		var s *live.Snapshot
		s, err = live.Read(opts)
		snaps = []*live.Snapshot{s}
	}
	if err != nil {
		return nil, f.explain(err)
	}
	printNotes(stderr, snaps)
	return snaps, nil
}

// printNotes says what could not be read, each note once: a note every
// namespace shares is printed without a label. Nothing is said when nothing
// was missing.
func printNotes(stderr io.Writer, snaps []*live.Snapshot) {
	count := map[string]int{}
	for _, s := range snaps {
		seen := map[string]bool{}
		for _, m := range s.Missing {
			if !seen[m] {
				seen[m] = true
				count[m]++
			}
		}
	}
	printed := map[string]bool{}
	for _, s := range snaps {
		for _, m := range s.Missing {
			switch {
			case count[m] == len(snaps) && len(snaps) > 1:
				if !printed[m] {
					fmt.Fprintf(stderr, "socktab: %s\n", m)
				}
				printed[m] = true
			case !printed[s.Netns+"\x00"+m]:
				printed[s.Netns+"\x00"+m] = true
				fmt.Fprintf(stderr, "socktab: %s%s\n", nsPrefix(s.Netns), m)
			}
		}
	}
}

// explain turns a failure to reach a namespace into a message naming the
// flag, the file and what is needed.
func (f *liveFlags) explain(err error) error {
	what := "reading sockets"
	switch {
	case f.netns != "":
		what = fmt.Sprintf("--netns %s (%s/%s)", f.netns, live.NetnsDir, f.netns)
	case f.netnsPID != 0:
		what = fmt.Sprintf("--netns-pid %d (/proc/%d/ns/net)", f.netnsPID, f.netnsPID)
	case f.allNetns:
		what = "--all-netns"
	}
	msg := strings.TrimPrefix(err.Error(), "live: ")
	switch {
	case errors.Is(err, fs.ErrNotExist) && f.netns != "":
		return fmt.Errorf("%s: no such namespace (ip netns list shows the names)", what)
	case errors.Is(err, fs.ErrNotExist) && f.netnsPID != 0:
		return fmt.Errorf("%s: no such process", what)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%s: permission denied: entering another network namespace needs root (CAP_SYS_ADMIN): %s", what, msg)
	case errors.Is(err, unix.EINVAL) && f.netns != "":
		return fmt.Errorf("%s: not a network namespace file", what)
	}
	return fmt.Errorf("%s: %s", what, msg)
}

func nsPrefix(ns string) string {
	if ns == "" {
		return ""
	}
	return "[" + escape(ns) + "] "
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
