// Command socktab is the socket-table simulator and live inspector.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries an exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
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
	root.AddCommand(newSimCmd(), newLsCmd(), newWhoCmd(), newBindCmd(), newAuditCmd(), newPortsCmd())
	return root
}
