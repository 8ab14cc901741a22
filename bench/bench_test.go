package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as a column's process of the network
// table, as the bench binary does (RunNet starts os.Executable again).
func TestMain(m *testing.M) {
	if col := os.Getenv(workerEnv); col != "" {
		serveColumn(col, os.Stdin, os.Stdout)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs every workload at tiny sizes in every column and checks
// the table has every row, with a figure for socktab and gVisor in each
// (and for the kernel's syscall rows when run as root with ip netns). It
// checks no speed: figures come from the full run.
func TestSmoke(t *testing.T) {
	cfg := Config{Seed: 1, Tiny: true, Kernel: true, Measure: 5 * time.Millisecond, Total: 2 * time.Minute}
	rows := Run(cfg)
	var buf bytes.Buffer
	WriteTable(&buf, rows)
	t.Log("\n" + buf.String())
	kernel := os.Geteuid() == 0
	if _, err := newKernel(cfg); err != nil {
		t.Logf("kernel column not checked: %v", err)
		kernel = false
	}
	byName := map[string]Row{}
	for _, r := range rows {
		byName[r.Workload] = r
	}
	table := buf.String()
	for _, name := range workloadNames(sizesFor(true)) {
		r, ok := byName[name]
		if !ok || !strings.Contains(table, "| "+name+" |") {
			t.Errorf("row %q missing", name)
			continue
		}
		if !r.Socktab.ok() || !r.GVisor.ok() {
			t.Errorf("%s: socktab %q, gVisor %q", name, fmtCell(r.Socktab, r.Unit), fmtCell(r.GVisor, r.Unit))
		}
		syscallRow := !strings.HasPrefix(name, "lookup") && !strings.HasPrefix(name, "memory") && !strings.HasPrefix(name, "reuseport")
		if kernel && syscallRow && !r.Kernel.ok() {
			t.Errorf("%s: kernel %q", name, fmtCell(r.Kernel, r.Unit))
		}
		if kernel && strings.HasPrefix(name, "reuseport") && !strings.Contains(r.Kernel.Note, "spread") {
			t.Errorf("%s: kernel %q, want a spread", name, r.Kernel.Note)
		}
	}
	if len(rows) != len(workloadNames(sizesFor(true))) {
		t.Errorf("%d rows, want %d", len(rows), len(workloadNames(sizesFor(true))))
	}
}

// TestNetSmoke runs the network table at tiny sizes and checks every row
// has a figure in every column that can measure it. It checks no speed.
func TestNetSmoke(t *testing.T) {
	cfg := Config{Tiny: true, Measure: 5 * time.Millisecond}
	rows := RunNet(cfg, 1000)
	var buf bytes.Buffer
	WriteNetTable(&buf, rows)
	t.Log("\n" + buf.String())
	o, loopErr := newLoopbackOps()
	if loopErr == nil {
		o.close()
	}
	for _, r := range rows {
		for c, cell := range r.Cells {
			col := netColumns[c]
			switch {
			case c == 3 && r.Bytes == 0, c != 0 && strings.Contains(r.Workload, "concurrent"):
				continue // the bound is for the stream only; the scale row is memnet's
			case c == 1 && (loopErr != nil || r.Unit == "B/conn"):
				continue
			}
			if !cell.ok() {
				t.Errorf("%s, %s: %s", r.Workload, col, cell.Note)
			}
		}
	}
}
