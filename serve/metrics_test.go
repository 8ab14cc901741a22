package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/socktab/socktab/live"
)

func TestReadCountsStreamedSockets(t *testing.T) {
	fakeRead(t, fakeHost(""))
	r, err := Read(Target{}, live.OptsNone)
	if err != nil {
		t.Fatal(err)
	}
	n := r.Namespaces[0]
	if got := n.Sockets[SocketKey{"tcp", "inet", "ESTAB"}]; got != 10 {
		t.Errorf("ESTAB tcp/inet = %d, want 10 (the rewound false start must not count)", got)
	}
	if got := n.Sockets[SocketKey{"tcp", "inet", "LISTEN"}]; got != 3 {
		t.Errorf("LISTEN tcp/inet = %d, want 3", got)
	}
	if len(n.Audit) != 5 {
		t.Fatalf("audit has %d listeners, want 5", len(n.Audit))
	}
	if n.Usable != 10 || len(n.Pools) != 2 || n.Pools[0].InUse+n.Pools[0].TimeWait != 9 {
		t.Fatalf("pools %+v usable %d: want the fullest 9 of 10", n.Pools, n.Usable)
	}
}

func TestReadWithOptions(t *testing.T) {
	fakeRead(t, fakeHost(""))
	r, err := Read(Target{}, live.OptsAuto)
	if err != nil {
		t.Fatal(err)
	}
	n := r.Namespaces[0]
	if got := n.Sockets[SocketKey{"tcp", "inet", "ESTAB"}]; got != 10 {
		t.Errorf("ESTAB tcp/inet = %d, want 10: the streamed read still counts", got)
	}
	if len(n.Audit) != 5 || len(n.Pools) != 2 {
		t.Errorf("audit %d listeners, %d pools: want 5 and 2", len(n.Audit), len(n.Pools))
	}
	want := map[OptionKey]int{{"reuseaddr", "kernel"}: 5, {"reuseport", "kernel"}: 5, {"v6only", "kernel"}: 1}
	for k, v := range want {
		if n.Options[k] != v {
			t.Errorf("options %v = %d, want %d (all %v)", k, n.Options[k], v, n.Options)
		}
	}
	if n.Options[OptionKey{"reuseport", "inferred"}] != 0 {
		t.Errorf("options read from the kernel must not be counted as inferred: %v", n.Options)
	}
}

func scrape(t *testing.T, c Config, accept string) string {
	t.Helper()
	srv := httptest.NewServer(Handler(c))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

func TestMetrics(t *testing.T) {
	fakeRead(t, fakeHost(""), fakeHost("blue"))
	c := Config{Target: Target{AllNetns: true}, Metrics: MetricsOptions{TopPools: 1, MaxListeners: 3}}
	out := scrape(t, c, "")
	for _, want := range []string{
		`socktab_sockets{family="inet",netns="blue",proto="tcp",state="ESTAB"} 10`,
		`socktab_sockets{family="unix",netns="",proto="unix",state="LISTEN"} 1`,
		// The wildcard reaches the documentation address (RFC 5737, ranked
		// like private); 10.1.2.3 belongs to the specific listener.
		`socktab_listener{classes="loopback+documentation",local="0.0.0.0:80",netns="",proto="tcp",severity="medium"} 1`,
		`socktab_listener{classes="loopback+documentation+private+link-local",local="[::]:443",netns="blue",proto="tcp",severity="medium"} 1`,
		`socktab_listener_accepting_addresses{local="0.0.0.0:80",netns="",proto="tcp"} 2`,
		`socktab_listeners_omitted{netns=""} 2`,
		`socktab_audit_findings{netns="",severity="medium"} 4`,
		`socktab_audit_findings{netns="",severity="info"} 1`,
		`socktab_ephemeral_ports_used{dst="198.51.100.9:443",netns="",proto="tcp",src="203.0.113.5"} 9`,
		`socktab_ephemeral_ports_time_wait{dst="198.51.100.9:443",netns="",proto="tcp",src="203.0.113.5"} 1`,
		`socktab_ephemeral_ports_available{dst="198.51.100.9:443",netns="",proto="tcp",src="203.0.113.5"} 1`,
		`socktab_ephemeral_ports_usable{netns=""} 10`,
		`socktab_ephemeral_pools{netns=""} 2`,
		`socktab_ephemeral_ports_used_all_pools{netns=""} 10`,
		`socktab_ephemeral_pool_max_use_ratio{netns=""} 0.9`,
		`socktab_ephemeral_pools_near_exhaustion{netns=""} 1`,
		`socktab_socket_options{netns="",option="v6only",source="kernel"} 1`,
		`socktab_socket_options{netns="",option="reuseport",source="inferred"} 5`,
		`socktab_read_success 1`,
		`socktab_read_errors_total 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, `dst="198.51.100.10:443"`) {
		t.Errorf("--top-pools 1 must leave the second pool to the aggregates")
	}
	if strings.Contains(out, `local="127.0.0.1:9000"`) {
		t.Errorf("--max-listeners 3 keeps the 3 most severe; the loopback listener is the least")
	}
	om := scrape(t, c, "application/openmetrics-text; version=1.0.0")
	if !strings.HasSuffix(om, "# EOF\n") || !strings.Contains(om, "socktab_read_errors_total 0") {
		t.Errorf("OpenMetrics output malformed:\n%.500s", om)
	}
	promtoolCheck(t, out)
}

func TestMetricsReadError(t *testing.T) {
	old := readFunc
	readFunc = func(Target, live.Options) ([]*live.Snapshot, error) { return nil, errors.New("boom") }
	t.Cleanup(func() { readFunc = old })
	col := NewCollector(Target{}, DefaultMetricsOptions, nil)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	for i := 0; i < 2; i++ {
		if _, err := reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP socktab_read_errors_total Reads that failed since the exporter started.
# TYPE socktab_read_errors_total counter
socktab_read_errors_total 3
# HELP socktab_read_success 1 if the scrape's read succeeded, 0 if it failed.
# TYPE socktab_read_success gauge
socktab_read_success 0
`), "socktab_read_errors_total", "socktab_read_success"); err != nil {
		t.Error(err)
	}
}

func TestCollectorIsPedanticallyValid(t *testing.T) {
	fakeRead(t, fakeHost(""))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(Target{}, DefaultMetricsOptions, nil))
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// promtoolCheck runs `promtool check metrics` (Debian's prometheus
// package; .ci/run installs it, so CI never skips).
func promtoolCheck(t *testing.T, metrics string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool missing in CI")
		}
		t.Skip("promtool not installed")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestAlertRules runs deploy/prometheus/rules_test.yml through `promtool
// test rules`: each alert fires when it should and not before.
func TestAlertRules(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool missing in CI")
		}
		t.Skip("promtool not installed")
	}
	cmd := exec.Command(path, "test", "rules", "rules_test.yml")
	cmd.Dir = "../deploy/prometheus"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

// TestGrafanaQueriesParse hands every query of deploy/grafana/socktab.json
// to promtool as a recording rule, so a PromQL syntax error fails here
// (deploy/check checks the dashboard's shape and metric names).
func TestGrafanaQueriesParse(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool missing in CI")
		}
		t.Skip("promtool not installed")
	}
	b, err := os.ReadFile("../deploy/grafana/socktab.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: grafana\n    rules:\n")
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			expr := strings.NewReplacer("$instance", ".*", "$netns", ".*").Replace(tg.Expr)
			q, _ := json.Marshal(expr) // a JSON string is a YAML string
			fmt.Fprintf(&rules, "      - record: grafana:panel_%d\n        expr: %s\n", n, q)
			n++
		}
	}
	if n == 0 {
		t.Fatal("no queries found")
	}
	f := filepath.Join(t.TempDir(), "grafana-rules.yml")
	os.WriteFile(f, []byte(rules.String()), 0o644)
	if out, err := exec.Command(path, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's %d queries: %v\n%s", n, err, out)
	}
}
