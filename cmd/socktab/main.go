// Command socktab is the socket-table simulator and live inspector.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/socktab/socktab/docs"
	"github.com/socktab/socktab/report"
	"github.com/spf13/cobra"
)

// exitError carries an exit code out of a command. The codes: 0 success
// (bind would succeed, who finds a receiver), 1 the negative answer (bind
// fails, nothing receives, audit --fail-on hit, sim --check mismatches), 2
// usage, input, read or write errors, 3 the answer depends on facts nobody
// could read.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// usageError is a bad command line: printed with the command's usage line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErr(err error) error { return usageError{err} }

// errWriter remembers the first write error, so a command whose output
// could not be written (a full disk, a closed pipe) never exits 0.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

func main() {
	// A run is short and what it reads (every socket) lives to the end, so
	// garbage collection only costs time: collect only near a memory bound.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(1 << 30)
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	out := &errWriter{w: stdout}
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(out)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	code := 0
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "socktab: %v\nUsage: %s\nRun '%s --help' for more.\n", err, cmd.UseLine(), cmd.CommandPath())
		code = 2
	default:
		fmt.Fprintln(stderr, "socktab:", err)
		code = 2
	}
	if out.err != nil && code == 0 {
		fmt.Fprintf(stderr, "socktab: writing the output: %v\n", out.err)
		code = 2
	}
	return code
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "socktab",
		Short: "socktab: the socket table, simulated and live",
		Long: `socktab models how an operating system binds sockets, picks ephemeral ports and
hands each packet to a socket, with the kernel's rules, and puts that model to work on
this machine's real sockets and on scenario files.

Without a command it prints an overview of this machine: the listeners, what each is
exposed to and how many connections it has, and the ephemeral port use.

Exit codes: 0 success (bind would succeed, who finds a receiver); 1 the negative answer
(bind would fail, nothing would receive, audit --fail-on or sim --check found something);
2 a usage, input, read or write error; 3 the answer depends on facts nobody could read.`,
		Example: `  socktab
  socktab -o json --all-netns
  socktab bind tcp 0.0.0.0:8080`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("socktab {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	var f liveFlags
	f.add(root)
	root.Args = noArgs
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		return runOverview(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
	}
	root.AddCommand(newSimCmd(), newLsCmd(), newWhoCmd(), newBindCmd(), newAuditCmd(), newPortsCmd(), newServeCmd(),
		newVersionCmd(), &cobra.Command{
			Use:   "scenario",
			Short: "The scenario language reference (socktab help scenario)",
			Long:  docs.Scenario,
		})
	// --cpuprofile FILE: for measuring socktab itself (scripts/bench-live).
	var prof string
	root.PersistentFlags().StringVar(&prof, "cpuprofile", "", "write a CPU profile to FILE")
	root.PersistentFlags().MarkHidden("cpuprofile")
	var pf *os.File
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if prof == "" {
			return nil
		}
		var err error
		if pf, err = os.Create(prof); err != nil {
			return err
		}
		return pprof.StartCPUProfile(pf)
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if pf != nil {
			pprof.StopCPUProfile()
			pf.Close()
		}
	}
	return root
}

// noArgs and exactArgs are cobra's validators with usage errors.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 && cmd.HasSubCommands() {
		return usageErr(fmt.Errorf("unknown command %q (socktab --help lists them)", args[0]))
	}
	if len(args) > 0 {
		return usageErr(fmt.Errorf("unexpected argument %q", args[0]))
	}
	return nil
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErr(fmt.Errorf("want %d arguments (%s), got %d", n, names, len(args)))
		}
		return nil
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print socktab's version, commit and Go version",
		Long:    "Print the module version, the VCS commit it was built from (when known) and the Go version, read from the binary's build information.",
		Example: "  socktab version\n  socktab --version",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "socktab %s\n", versionString())
			return err
		},
	}
}

// versionString is "VERSION (commit C[, modified], GO)" from the build
// information the Go toolchain embeds.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var extra []string
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		c := "commit " + rev
		if settings["vcs.modified"] == "true" {
			c += ", modified"
		}
		extra = append(extra, c)
	} else {
		extra = append(extra, "commit unknown")
	}
	extra = append(extra, bi.GoVersion)
	return v + " (" + strings.Join(extra, ", ") + ")"
}

// escape is report.Escape, for text output of untrusted strings.
func escape(s string) string { return report.Escape(s) }
