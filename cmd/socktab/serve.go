package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/serve"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	c := serve.Config{Metrics: serve.DefaultMetricsOptions}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a Prometheus exporter (/metrics) and a local dashboard",
		Long: `Serve /metrics (Prometheus text and OpenMetrics) and, unless --metrics-only, a
dashboard with its JSON API, on ` + serve.DefaultListen + ` by default. Every scrape and page
reads the machine afresh. Any --listen address other than loopback needs TLS or basic
auth configured in --web.config.file (the Prometheus exporter-toolkit format), or an
explicit --insecure-listen. No endpoint changes anything on the host.`,
		Example: `  socktab serve
  socktab serve --metrics-only --all-netns
  socktab serve --listen 192.0.2.10:9810 --web.config.file web.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c.Metrics.TopPools < 0 || c.Metrics.MaxListeners < 0 {
				return fmt.Errorf("--top-pools and --max-listeners must be 0 or more")
			}
			switch c.Metrics.SockOpts {
			case "none":
				c.Metrics.SockOpts = live.OptsNone
			case live.OptsAuto, live.OptsBPF, live.OptsFD:
			default:
				return fmt.Errorf("--options %q: want none, auto, bpf or fd", c.Metrics.SockOpts)
			}
			// main turns the collector off for short runs; a server lives long.
			debug.SetGCPercent(100)
			c.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			c.CLI = runInProcess
			if err := c.CheckListen(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return serve.Serve(ctx, c, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Listen, "listen", serve.DefaultListen, "HOST:PORT to serve on")
	f.StringVar(&c.WebConfig, "web.config.file", "", "exporter-toolkit web config (TLS, basic auth)")
	f.BoolVar(&c.InsecureListen, "insecure-listen", false, "allow a non-loopback --listen without TLS or basic auth")
	f.BoolVar(&c.MetricsOnly, "metrics-only", false, "serve /metrics only (a plain exporter, no dashboard)")
	f.StringVar(&c.Target.Netns, "netns", "", "read the network namespace NAME (under /run/netns)")
	f.IntVar(&c.Target.NetnsPID, "netns-pid", 0, "read the network namespace of process PID")
	f.BoolVar(&c.Target.AllNetns, "all-netns", false, "read every network namespace in use, each labelled")
	f.IntVar(&c.Metrics.TopPools, "top-pools", c.Metrics.TopPools, "ephemeral-port pools with their own series, fullest first, per namespace")
	f.StringVar(&c.Metrics.SockOpts, "options", "none", "read listeners' socket options: none (infer them), auto, bpf or fd (costs a walk of /proc/*/fd per scrape)")
	f.IntVar(&c.Metrics.MaxListeners, "max-listeners", c.Metrics.MaxListeners, "listeners with their own series, most severe first, per namespace")
	return cmd
}

// runInProcess runs one socktab command line in-process for the dashboard, so
// that its answers are the CLI's own output.
func runInProcess(args []string) (stdout, stderr []byte, code int, err error) {
	var out, errOut bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	if e := root.Execute(); e != nil {
		var ee exitError
		if errors.As(e, &ee) {
			return out.Bytes(), errOut.Bytes(), ee.code, nil
		}
		fmt.Fprintln(&errOut, "socktab:", e)
		return out.Bytes(), errOut.Bytes(), 2, nil
	}
	return out.Bytes(), errOut.Bytes(), 0, nil
}
