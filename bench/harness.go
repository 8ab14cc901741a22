package main

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Config is one run of the harness.
type Config struct {
	Seed    uint64
	Tiny    bool           // smoke sizes: every workload, tiny tables
	Kernel  bool           // measure the kernel column (root, ip netns)
	Measure time.Duration  // time spent measuring one cell
	Total   time.Duration  // the whole run; later cells are skipped past it
	Log     io.Writer      // progress, or nil
	Only    *regexp.Regexp // measure only the workloads it matches, or all when nil
}

// Sizes are the table sizes of the workloads.
type Sizes struct {
	Specific []int // specific bindings sharing the port of a wildcard bind
	Accepted int   // accepted connections before the bind
	Lookup   []int // established flows in the lookup table
	Group    int   // reuseport group size
	Spread   int   // flows hashed to the group to judge the spread
	MemFlows int   // established flows for the memory row
	PortLo   int   // ephemeral range for the occupancy rows
	PortHi   int
	Occ      []int // occupancy percentages
}

func sizesFor(tiny bool) Sizes {
	if tiny {
		return Sizes{Specific: []int{4, 16}, Accepted: 16, Lookup: []int{10, 100}, Group: 8, Spread: 8 * 16,
			MemFlows: 1000, PortLo: 40000, PortHi: 40255, Occ: []int{50, 99}}
	}
	return Sizes{Specific: []int{10, 1000, 10000}, Accepted: 10000, Lookup: []int{10, 10000, 1000000}, Group: 128,
		Spread: 128 * 50, MemFlows: 1000000, PortLo: 32768, PortHi: 60999, Occ: []int{50, 90, 99}}
}

// Cell is one measurement: a time per operation (ns) or a size (bytes), or
// a reason it is missing.
type Cell struct {
	V    float64 // ns/op or bytes/flow; NaN when absent
	Note string  // n/a reason, the outcome, or the spread
}

func na(why string) Cell { return Cell{V: math.NaN(), Note: why} }

func (c Cell) ok() bool { return !math.IsNaN(c.V) }

// Row is one workload across the three implementations.
type Row struct {
	Workload string
	Unit     string // "ns/op" or "B/flow"
	Socktab  Cell
	GVisor   Cell
	Kernel   Cell
}

// measure runs op in batches for about d and returns the median time per
// op over the batches. op must leave the table as it found it.
func measure(d time.Duration, op func()) float64 {
	op() // warm
	n := 1
	for {
		t := time.Now()
		for range n {
			op()
		}
		if el := time.Since(t); el > d/20 || n >= 1<<24 {
			break
		}
		n *= 2
	}
	var per []float64
	deadline := time.Now().Add(d)
	for len(per) < 5 || (time.Now().Before(deadline) && len(per) < 25) {
		t := time.Now()
		for range n {
			op()
		}
		per = append(per, float64(time.Since(t).Nanoseconds())/float64(n))
	}
	slices.Sort(per)
	return per[len(per)/2]
}

// heapAlloc is the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// spread describes how evenly counts are spread: the largest and smallest
// share relative to the mean, and the coefficient of variation.
func spread(counts []int) string {
	if len(counts) == 0 {
		return ""
	}
	sum, lo, hi := 0, counts[0], counts[0]
	for _, c := range counts {
		sum += c
		lo, hi = min(lo, c), max(hi, c)
	}
	mean := float64(sum) / float64(len(counts))
	var ss float64
	for _, c := range counts {
		ss += (float64(c) - mean) * (float64(c) - mean)
	}
	cv := math.Sqrt(ss/float64(len(counts))) / mean
	return fmt.Sprintf("spread min/mean %.2f, max/mean %.2f, CV %.2f", float64(lo)/mean, float64(hi)/mean, cv)
}

func fmtCell(c Cell, unit string) string {
	if !c.ok() {
		return c.Note
	}
	var s string
	switch {
	case unit == "B/flow":
		s = fmt.Sprintf("%.0f B/flow", c.V)
	case c.V >= 1e6:
		s = fmt.Sprintf("%.2f ms", c.V/1e6)
	case c.V >= 1e4:
		s = fmt.Sprintf("%.1f µs", c.V/1e3)
	case c.V >= 1e3:
		s = fmt.Sprintf("%.2f µs", c.V/1e3)
	default:
		s = fmt.Sprintf("%.0f ns", c.V)
	}
	if c.Note != "" {
		s += " (" + c.Note + ")"
	}
	return s
}

func ratio(a, b Cell) string {
	if !a.ok() || !b.ok() || b.V == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f×", a.V/b.V)
}

// Goal is the verdict on "socktab at least 5× faster than gVisor".
func (r Row) Goal() string {
	if !r.Socktab.ok() || !r.GVisor.ok() || r.Unit != "ns/op" {
		return "–"
	}
	if r.GVisor.V >= 5*r.Socktab.V {
		return "met"
	}
	return "MISSED"
}

// WriteTable prints rows as a Markdown table.
func WriteTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| workload | socktab | gVisor netstack | Linux kernel | gVisor / socktab | kernel / socktab | ≥5× gVisor |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.Workload,
			esc(fmtCell(r.Socktab, r.Unit)), esc(fmtCell(r.GVisor, r.Unit)), esc(fmtCell(r.Kernel, r.Unit)),
			ratio(r.GVisor, r.Socktab), ratio(r.Kernel, r.Socktab), r.Goal())
	}
}

func esc(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// Workload names, in table order. The smoke test checks every one is there.
func workloadNames(sz Sizes) []string {
	var out []string
	out = append(out, "bind a specific free port")
	for _, n := range sz.Specific {
		out = append(out, fmt.Sprintf("wildcard bind, port with %d specific bindings", n))
	}
	out = append(out, fmt.Sprintf("bind on the address of %d accepted connections", sz.Accepted))
	for _, layout := range []string{"scattered", "contiguous"} {
		for _, o := range sz.Occ {
			out = append(out, fmt.Sprintf("ephemeral choice, %d%% occupied, %s", o, layout))
		}
	}
	for _, n := range sz.Lookup {
		for _, k := range lookupKinds {
			out = append(out, fmt.Sprintf("lookup among %d flows: %s", n, k))
		}
	}
	out = append(out, fmt.Sprintf("reuseport group of %d: lookup", sz.Group))
	out = append(out, fmt.Sprintf("memory for %d established flows", sz.MemFlows))
	return out
}

var lookupKinds = []string{"established hit", "exact listener", "wildcard listener", "miss"}

// impl is one column: it fills in its cell of each row by name.
type impl interface {
	bindSpecific() Cell
	wildcardBind(n int) Cell
	acceptedBind(n int) Cell
	ephemeral(lo, hi, occ int, contiguous bool) Cell
	lookup(n int) []Cell // one per lookupKinds
	reuseport(n, flows int) Cell
	memory(n int) Cell
}

// Run measures every workload in every column.
func Run(cfg Config) []Row {
	sz := sizesFor(cfg.Tiny)
	if cfg.Measure == 0 {
		cfg.Measure = 300 * time.Millisecond
	}
	if cfg.Total == 0 {
		cfg.Total = 5 * time.Minute
	}
	start := time.Now()
	names := workloadNames(sz)
	rows := make([]Row, len(names))
	for i, n := range names {
		rows[i] = Row{Workload: n, Unit: "ns/op"}
	}
	rows[len(rows)-1].Unit = "B/flow"
	kern := impl(nil)
	kernWhy := "n/a (kernel column off)"
	if cfg.Kernel {
		if k, err := newKernel(cfg); err != nil {
			kernWhy = "n/a (" + err.Error() + ")"
		} else {
			kern = k
		}
	}
	cols := []struct {
		name string
		im   impl
		cell func(*Row) *Cell
	}{
		{"socktab", &socktabImpl{cfg: cfg}, func(r *Row) *Cell { return &r.Socktab }},
		{"gvisor", &gvisorImpl{cfg: cfg}, func(r *Row) *Cell { return &r.GVisor }},
		{"kernel", kern, func(r *Row) *Cell { return &r.Kernel }},
	}
	for _, col := range cols {
		set := func(i int, f func() Cell) {
			if col.im == nil {
				*col.cell(&rows[i]) = na(kernWhy)
				return
			}
			if cfg.Only != nil && !cfg.Only.MatchString(rows[i].Workload) {
				*col.cell(&rows[i]) = na("not run")
				return
			}
			if time.Since(start) > cfg.Total {
				*col.cell(&rows[i]) = na("skipped: time budget")
				return
			}
			t := time.Now()
			*col.cell(&rows[i]) = f()
			if cfg.Log != nil {
				fmt.Fprintf(cfg.Log, "%-8s %-60s %-28s (%.1fs)\n", col.name, rows[i].Workload, fmtCell(*col.cell(&rows[i]), rows[i].Unit), time.Since(t).Seconds())
			}
		}
		i := 0
		set(i, func() Cell { return col.im.bindSpecific() })
		i++
		for _, n := range sz.Specific {
			set(i, func() Cell { return col.im.wildcardBind(n) })
			i++
		}
		set(i, func() Cell { return col.im.acceptedBind(sz.Accepted) })
		i++
		for _, contiguous := range []bool{false, true} {
			for _, o := range sz.Occ {
				set(i, func() Cell { return col.im.ephemeral(sz.PortLo, sz.PortHi, o, contiguous) })
				i++
			}
		}
		for _, n := range sz.Lookup {
			var cells []Cell
			if col.im == nil || time.Since(start) > cfg.Total || !cfg.wants(names[i:i+len(lookupKinds)]) {
				for range lookupKinds {
					set(i, func() Cell { return Cell{} })
					i++
				}
				continue
			}
			t := time.Now()
			cells = col.im.lookup(n)
			for k := range lookupKinds {
				rows[i].setCol(col.name, cells[k])
				if cfg.Log != nil {
					fmt.Fprintf(cfg.Log, "%-8s %-60s %-28s (%.1fs)\n", col.name, rows[i].Workload, fmtCell(cells[k], "ns/op"), time.Since(t).Seconds())
				}
				i++
			}
		}
		set(i, func() Cell { return col.im.reuseport(sz.Group, sz.Spread) })
		i++
		set(i, func() Cell { return col.im.memory(sz.MemFlows) })
		runtime.GC()
	}
	return rows
}

// wants reports whether any of the workloads is to be measured.
func (cfg Config) wants(names []string) bool {
	if cfg.Only == nil {
		return true
	}
	for _, n := range names {
		if cfg.Only.MatchString(n) {
			return true
		}
	}
	return false
}

func (r *Row) setCol(name string, c Cell) {
	switch name {
	case "socktab":
		r.Socktab = c
	case "gvisor":
		r.GVisor = c
	default:
		r.Kernel = c
	}
}
