package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/report"
)

// smallMachine has a port range of 5 and 4 connections from it to one
// destination: 80% of what the range allows.
func smallMachine(t *testing.T) *inspect.Table {
	ap := netip.MustParseAddrPort
	snap := &live.Snapshot{
		Interfaces: []live.Interface{{Name: "eth0", Index: 2, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}},
		Sysctls:    live.Sysctls{PortLow: 40000, PortHigh: 40004, UnprivilegedPortStart: 1024, TCPTWReuse: 2},
		Sockets: []live.Socket{
			{Proto: "tcp", Family: "inet", State: "LISTEN", Local: ap("0.0.0.0:8080")},
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:8080"), Remote: ap("198.51.100.1:50000")},
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:8080"), Remote: ap("198.51.100.2:50000")},
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:40000"), Remote: ap("203.0.113.9:443")},
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:40001"), Remote: ap("203.0.113.9:443")},
			{Proto: "tcp", Family: "inet", State: "TIME-WAIT", Local: ap("192.0.2.1:40002"), Remote: ap("203.0.113.9:443")},
			{Proto: "tcp", Family: "inet", State: "ESTAB", Local: ap("192.0.2.1:40003"), Remote: ap("203.0.113.9:443")},
		},
	}
	tab, err := inspect.Load(snap)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestPortsWarnsFromEightyPercent(t *testing.T) {
	var out bytes.Buffer
	if err := runPorts(&out, "json", []*inspect.Table{smallMachine(t)}, 0); err != nil {
		t.Fatal(err)
	}
	var got []report.Ports
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Usable != 5 || len(got[0].Destinations) != 1 {
		t.Fatalf("%s", out.String())
	}
	d := got[0].Destinations[0]
	if d.InUse != 3 || d.TimeWait != 1 || d.Percent != 80 || !d.Warning || d.Dst != "203.0.113.9:443" {
		t.Errorf("want 3 in use + 1 TIME-WAIT of 5 = 80%% with a warning toward 203.0.113.9:443: %+v", d)
	}
}

func TestOverviewCountsConnectionsPerListener(t *testing.T) {
	conns := connectionsPerListener(smallMachine(t))
	for s, n := range conns {
		if s.Local().Port() != 8080 || n != 2 {
			t.Errorf("listener %v: %d connections", s.Local(), n)
		}
	}
	if len(conns) != 1 {
		t.Errorf("want the two accepted connections on the 8080 listener, got %d listeners", len(conns))
	}
	var out bytes.Buffer
	if err := runPorts(&out, "text", []*inspect.Table{smallMachine(t)}, 0); err != nil || !strings.Contains(out.String(), "WARNING") {
		t.Errorf("text output lacks the warning: %v\n%s", err, out.String())
	}
}
