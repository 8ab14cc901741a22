package serve

import (
	"log/slog"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/socktab/socktab/inspect"
)

// MetricsOptions bound the exporter's cardinality.
type MetricsOptions struct {
	// TopPools is how many of the fullest ephemeral-port pools get their own
	// series per namespace; the rest are only in the aggregates.
	TopPools int
	// MaxListeners is how many listeners get a socktab_listener series per
	// namespace, most severe first; all are counted in
	// socktab_audit_findings.
	MaxListeners int
	// SockOpts is how listeners' options are read (live.OptsNone: inferred).
	SockOpts string
}

// DefaultMetricsOptions are the flags' defaults.
var DefaultMetricsOptions = MetricsOptions{TopPools: 10, MaxListeners: 1000}

const ns = "socktab"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, labels, nil)
}

var (
	descSockets = desc("sockets", "Sockets by protocol (tcp, udp, unix), family (inet, inet6, unix) and state (ss names: LISTEN, ESTAB, TIME-WAIT, UNCONN, ...).",
		"netns", "proto", "family", "state")
	descListener = desc("listener", "One series per TCP listener or bound UDP socket (value 1): the local address, the address classes it really accepts on as socktab audit names them (loopback, link-local, private, cgnat, ula, documentation, ..., public), joined by '+', 'none' when more specific sockets take every address, and the audit severity.",
		"netns", "proto", "local", "classes", "severity")
	descListenerAddrs = desc("listener_accepting_addresses", "Addresses of this host a listener accepts on (wildcards expanded, minus addresses more specific listeners take).",
		"netns", "proto", "local")
	descFindings = desc("audit_findings", "Listeners per audit severity (info: loopback only, low: link-local, medium: private, CGNAT, ULA, documentation and other ranges not routed on the Internet, high: public).",
		"netns", "severity")
	descListenersOmitted = desc("listeners_omitted", "Listeners without a socktab_listener series because of --max-listeners.", "netns")
	descPoolUsed         = desc("ephemeral_ports_used", "Ephemeral ports in use (TIME-WAIT included) toward one destination, for the fullest pools (--top-pools).",
		"netns", "proto", "src", "dst")
	descPoolTimeWait = desc("ephemeral_ports_time_wait", "Of socktab_ephemeral_ports_used, the ports held by TIME-WAIT.",
		"netns", "proto", "src", "dst")
	descPoolAvail = desc("ephemeral_ports_available", "Ephemeral ports still free toward one destination (what the range allows minus used), for the fullest pools.",
		"netns", "proto", "src", "dst")
	descUsable    = desc("ephemeral_ports_usable", "Ports the ephemeral range allows per destination (ip_local_port_range minus reserved ports).", "netns")
	descPools     = desc("ephemeral_pools", "Ephemeral-port pools (protocol, source, destination, destination port) with at least one port in use.", "netns")
	descPoolsUsed = desc("ephemeral_ports_used_all_pools", "Ephemeral ports in use summed over every pool.", "netns")
	descPoolMax   = desc("ephemeral_pool_max_use_ratio", "Use of the fullest pool, 0 to 1.", "netns")
	descNear      = desc("ephemeral_pools_near_exhaustion", "Pools at 80% of their capacity or more.", "netns")
	descOptions   = desc("socket_options", "Listeners per bind option (v6only, reuseaddr, reuseport) and how its value is known: kernel (read from the kernel's socket), socket (read through a duplicate of an owner's descriptor), inferred (from sockets sharing an address), unknown.",
		"netns", "option", "source")
	descIncomplete = desc("read_notes", "Notes on what could not be read in a namespace (e.g. a table read from /proc/net); see the CLI's stderr for the text.", "netns")
	descDuration   = desc("read_duration_seconds", "How long the scrape's read of the socket tables, interfaces and sysctls took, loading and audit included.")
	descSuccess    = desc("read_success", "1 if the scrape's read succeeded, 0 if it failed.")
	descErrors     = desc("read_errors_total", "Reads that failed since the exporter started.")
)

// Collector reads the live table at every scrape.
type Collector struct {
	target Target
	opts   MetricsOptions
	log    *slog.Logger
	mu     sync.Mutex // one read at a time: concurrent scrapes queue
	errors float64
}

// NewCollector returns a collector for the target namespaces.
func NewCollector(t Target, o MetricsOptions, log *slog.Logger) *Collector {
	return &Collector{target: t, opts: o, log: log}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSockets, descListener, descListenerAddrs, descFindings, descListenersOmitted,
		descPoolUsed, descPoolTimeWait, descPoolAvail, descUsable, descPools, descPoolsUsed, descPoolMax, descNear,
		descOptions, descIncomplete, descDuration, descSuccess, descErrors} {
		ch <- d
	}
}

// Collect reads the machine and sends the metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := Read(c.target, c.opts.SockOpts)
	success := 1.0
	if err != nil {
		c.errors++
		success = 0
		if c.log != nil {
			c.log.Error("read failed", "err", err)
		}
	} else {
		for _, n := range r.Namespaces {
			c.collectNS(ch, n)
		}
		ch <- prometheus.MustNewConstMetric(descDuration, prometheus.GaugeValue, r.Duration.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(descSuccess, prometheus.GaugeValue, success)
	ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, c.errors)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (c *Collector) collectNS(ch chan<- prometheus.Metric, n *NSReading) {
	for k, v := range n.Sockets {
		gauge(ch, descSockets, float64(v), n.Netns, k.Proto, k.Family, k.State)
	}
	perSev := make([]int, len(severities))
	for i, e := range n.Audit {
		perSev[e.Severity]++
		if i >= c.opts.MaxListeners {
			continue
		}
		ls := n.Table.Live(e.Socket)
		if ls == nil {
			continue
		}
		classes := strings.Join(e.Classes, "+")
		if classes == "" {
			classes = "none"
		}
		local := ls.Local.String()
		gauge(ch, descListener, 1, n.Netns, ls.Proto, local, classes, e.Severity.String())
		gauge(ch, descListenerAddrs, float64(len(e.Accepts)), n.Netns, ls.Proto, local)
	}
	for i, s := range severities {
		gauge(ch, descFindings, float64(perSev[i]), n.Netns, s.String())
	}
	gauge(ch, descListenersOmitted, float64(max(0, len(n.Audit)-c.opts.MaxListeners)), n.Netns)

	gauge(ch, descUsable, float64(n.Usable), n.Netns)
	gauge(ch, descPools, float64(len(n.Pools)), n.Netns)
	used, near, maxRatio := 0, 0, 0.0
	for i, u := range n.Pools {
		inUse := u.InUse + u.TimeWait
		used += inUse
		if u.Percent >= 80 {
			near++
		}
		if i == 0 {
			maxRatio = u.Percent / 100
		}
		if i < c.opts.TopPools {
			src, dst := u.SrcText(), u.DstText()
			gauge(ch, descPoolUsed, float64(inUse), n.Netns, u.Proto, src, dst)
			gauge(ch, descPoolTimeWait, float64(u.TimeWait), n.Netns, u.Proto, src, dst)
			gauge(ch, descPoolAvail, float64(max(0, u.Capacity-inUse)), n.Netns, u.Proto, src, dst)
		}
	}
	gauge(ch, descPoolsUsed, float64(used), n.Netns)
	gauge(ch, descPoolMax, maxRatio, n.Netns)
	gauge(ch, descNear, float64(near), n.Netns)
	for k, v := range n.Options {
		gauge(ch, descOptions, float64(v), n.Netns, k.Option, k.Source)
	}
	gauge(ch, descIncomplete, float64(len(n.Missing)), n.Netns)
}

var severities = []inspect.Severity{inspect.Info, inspect.Low, inspect.Medium, inspect.High}
