//go:build linux

package serve

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestPrometheusScrapesPlantedNamespace starts `socktab serve` and a real
// Prometheus server (Debian's package) in a namespace with planted sockets,
// and asks Prometheus's HTTP API for the planted listener's exposure and
// the nearly exhausted ephemeral pool.
func TestPrometheusScrapesPlantedNamespace(t *testing.T) {
	needRoot(t, "prometheus", "go")
	ns := newPlantedNS(t)
	bin := buildSocktab(t)
	ns.start(t, "socktab.log", bin, "serve", "--metrics-only", "--listen", "127.0.0.1:9810", "--options", "auto")

	dir := t.TempDir()
	rules, err := filepath.Abs("../deploy/prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: socktab
    static_configs:
      - targets: ["127.0.0.1:9810"]
`, rules)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ns.start(t, "prometheus.log", "prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address=127.0.0.1:9090")

	hc := ns.client()
	query := func(q string) ([]promSample, string) {
		resp, err := hc.Get("http://127.0.0.1:9090/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Result []promSample `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Status != "success" {
			return nil, fmt.Sprintf("%s: %s", q, b)
		}
		return r.Data.Result, string(b)
	}
	// The scrape is up and the read succeeded.
	waitFor(t, "a successful scrape", 3*time.Minute, func() (bool, string) {
		r, info := query(`socktab_read_success{job="socktab"} == 1 and on(instance) up == 1`)
		return len(r) == 1, info
	})
	// The wildcard listener reaches the public address.
	var listener []promSample
	waitFor(t, "the planted listener's exposure series", time.Minute, func() (bool, string) {
		var info string
		listener, info = query(`socktab_listener{local="` + wildListen + `"}`)
		return len(listener) == 1, info
	})
	if l := listener[0].Metric; l["classes"] != "loopback+documentation" || l["severity"] != "medium" || l["proto"] != "tcp" {
		t.Errorf("planted listener %s: want classes loopback+documentation (RFC 5737), severity medium: %v", wildListen, l)
	}
	r, info := query(`socktab_listener_accepting_addresses{local="` + wildListen + `"}`)
	if len(r) != 1 || r[0].value() != 2 {
		t.Errorf("%s accepts on 127.0.0.1 and %s: %s", wildListen, publicAddr, info)
	}
	// The pool toward the planted server: 9 of 10 ports.
	r, info = query(`socktab_ephemeral_ports_used{dst="` + poolServer + `"} / (socktab_ephemeral_ports_used + socktab_ephemeral_ports_available)`)
	if len(r) != 1 || r[0].value() != 0.9 {
		t.Fatalf("pool toward %s should be 0.9 used: %s", poolServer, info)
	}
	// --options auto: the listeners' options are read (BPF iterator, else
	// the owners' descriptors), none inferred.
	r, info = query(`sum(socktab_socket_options{option="reuseport", source=~"kernel|socket"}) == count(socktab_listener)`)
	if len(r) != 1 || r[0].value() < 6 {
		t.Errorf("every listener's SO_REUSEPORT must be read (4 planted, socktab's and Prometheus's): %s", info)
	}
	r, info = query(`sum(socktab_socket_options{source="inferred"}) or vector(0)`)
	if len(r) != 1 || r[0].value() != 0 {
		t.Errorf("nothing inferred when options are read: %s", info)
	}
	r, info = query(`socktab_ephemeral_pools_near_exhaustion`)
	if len(r) != 1 || r[0].value() != 1 {
		t.Errorf("one pool near exhaustion: %s", info)
	}
	// The shipped rules load, and the near-exhaustion alert is pending
	// (it fires after 5 minutes, longer than a test waits).
	waitFor(t, "the pool alert to be pending", time.Minute, func() (bool, string) {
		r, info := query(`ALERTS{alertname="SocktabEphemeralPoolNearExhaustion",dst="` + poolServer + `"}`)
		return len(r) == 1 && r[0].Metric["alertstate"] == "pending", info
	})
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

func (s promSample) value() float64 {
	if len(s.Value) != 2 {
		return -1
	}
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return -1
	}
	return v
}
