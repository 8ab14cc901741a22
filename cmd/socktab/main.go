// Command socktab is the socket-table simulator and live inspector.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// exitError carries an exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	// A run is short and what it reads (every socket) lives to the end, so
	// garbage collection only costs time: collect only near a memory bound.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(1 << 30)
	root := newRoot()
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "socktab:", err)
		os.Exit(2)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "socktab",
		Short:         "socktab: the socket table, simulated and live",
		Long:          "socktab models how an operating system binds sockets, picks ephemeral ports and hands each packet to a socket.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var f liveFlags
	f.add(root)
	root.Args = cobra.NoArgs
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		return runOverview(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
	}
	root.AddCommand(newSimCmd(), newLsCmd(), newWhoCmd(), newBindCmd(), newAuditCmd(), newPortsCmd(), newServeCmd())
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
