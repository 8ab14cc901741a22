package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
)

// DefaultListen is where socktab serve listens unless told otherwise:
// loopback only, so nothing is exposed by default.
const DefaultListen = "127.0.0.1:9810"

// Config is `socktab serve`'s flags.
type Config struct {
	Listen string
	// WebConfig is an exporter-toolkit web configuration file (TLS, basic
	// auth); required for a non-loopback Listen unless InsecureListen.
	WebConfig      string
	InsecureListen bool
	MetricsOnly    bool
	Target         Target
	Metrics        MetricsOptions
	// CLI answers the dashboard's who, bind, audit and ports questions with
	// the CLI itself (see CLIRunner).
	CLI CLIRunner
	Log *slog.Logger
}

// CheckListen refuses to expose the server beyond loopback without
// protection: a non-loopback address needs a web config file that turns on
// TLS or basic auth, or an explicit InsecureListen.
func (c Config) CheckListen() error {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT (%v)", c.Listen, err)
	}
	if c.WebConfig != "" {
		if err := web.Validate(c.WebConfig); err != nil {
			return fmt.Errorf("--web.config.file %s: %v", c.WebConfig, err)
		}
	}
	if isLoopback(host) || c.InsecureListen {
		return nil
	}
	if c.WebConfig == "" {
		return fmt.Errorf("--listen %s is not a loopback address: configure TLS or basic auth with --web.config.file, or pass --insecure-listen to serve it unprotected", c.Listen)
	}
	protected, err := webConfigProtects(c.WebConfig)
	if err != nil {
		return fmt.Errorf("--web.config.file %s: %v", c.WebConfig, err)
	}
	if !protected {
		return fmt.Errorf("--web.config.file %s enables neither TLS (tls_server_config) nor basic auth (basic_auth_users), so --listen %s would be unprotected; pass --insecure-listen if that is meant", c.WebConfig, c.Listen)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// webConfigProtects says whether the file turns on TLS or basic auth.
func webConfigProtects(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var c web.Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return false, err
	}
	return c.TLSConfig.IsEnabled() || len(c.Users) > 0, nil
}

// Handler is every endpoint: /metrics, and unless MetricsOnly the
// dashboard and its read-only JSON API. Only GET and HEAD are accepted:
// nothing changes anything on the host.
func Handler(c Config) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(c.Target, c.Metrics, c.Log),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorLog: slogAdapter{c.Log}}))
	if !c.MetricsOnly {
		addDashboard(mux, c)
	} else {
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprintln(w, "socktab exporter: metrics at /metrics")
		})
	}
	return readOnly(mux)
}

func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "socktab serve is read-only: only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Println(v ...any) {
	if a.l != nil {
		a.l.Error(fmt.Sprint(v...))
	}
}

// Serve listens and serves until ctx ends. ready, if not nil, receives the
// address actually bound (useful with port 0).
func Serve(ctx context.Context, c Config, ready func(net.Addr)) error {
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := c.CheckListen(); err != nil {
		return err
	}
	l, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: Handler(c), ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(l.Addr())
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	wc := c.WebConfig
	err = web.Serve(l, srv, &web.FlagConfig{WebListenAddresses: &[]string{c.Listen}, WebConfigFile: &wc}, c.Log)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
