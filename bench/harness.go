package main

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"runtime"
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
	Profile string         // -net: each column's process writes its CPU profile to Profile + "." + column
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

// prepared is one column's cell of a row, set up and ready: batch runs the
// operation n times and returns the time taken; when batch is nil the cell
// is fixed (a size, or a reason it is missing). The operation must leave the
// table as it found it.
type prepared struct {
	batch func(n int) time.Duration
	fixed Cell
	note  string
	close func()
}

func fixed(c Cell) prepared { return prepared{fixed: c} }

// loop makes a batch of op.
func loop(op func()) func(n int) time.Duration {
	return func(n int) time.Duration {
		t := time.Now()
		for range n {
			op()
		}
		return time.Since(t)
	}
}

// measureTogether measures the columns of one row side by side: after a
// calibration it runs one batch of each column in turn, round after
// round, for about d per column (at least 5 rounds), so that load from
// elsewhere falls on every column alike. A cell is the mean time per op over
// all rounds, as go test's ns/op is: some operations cost very different
// amounts from one call to the next (gVisor's ephemeral search starts at a
// random port, inside or outside a block of taken ports), and the mean is
// their expected cost where a median of batches would pick one mode.
func measureTogether(d time.Duration, ps []prepared) []Cell {
	out := make([]Cell, len(ps))
	ns := make([]int, len(ps))
	per := make([][]float64, len(ps))
	var active []int
	for i, p := range ps {
		if p.batch == nil {
			out[i] = p.fixed
			continue
		}
		active = append(active, i)
		n := 1
		for {
			if el := p.batch(n); el > d/20 || n >= 1<<24 {
				break
			}
			n *= 2
		}
		ns[i] = n
	}
	deadline := time.Now().Add(d * time.Duration(len(active)))
	for r := 0; r < 5 || (time.Now().Before(deadline) && r < 25); r++ {
		for _, i := range active {
			per[i] = append(per[i], float64(ps[i].batch(ns[i]).Nanoseconds())/float64(ns[i]))
		}
	}
	for _, i := range active {
		var sum float64
		for _, v := range per[i] {
			sum += v
		}
		out[i] = Cell{V: sum / float64(len(per[i])), Note: ps[i].note}
	}
	return out
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

// impl is one column. Each method sets up a workload and returns it
// prepared; lookup returns one per lookupKinds.
type impl interface {
	bindSpecific() prepared
	wildcardBind(n int) prepared
	acceptedBind(n int) prepared
	ephemeral(lo, hi, occ int, contiguous bool) prepared
	lookup(n int) []prepared
	reuseport(n, flows int) prepared
	memory(n int) prepared
}

// task is a group of rows set up together.
type task struct {
	rows int
	prep func(impl) []prepared
}

func one(f func(impl) prepared) task {
	return task{rows: 1, prep: func(im impl) []prepared { return []prepared{f(im)} }}
}

func tasks(sz Sizes) []task {
	var ts []task
	ts = append(ts, one(func(im impl) prepared { return im.bindSpecific() }))
	for _, n := range sz.Specific {
		ts = append(ts, one(func(im impl) prepared { return im.wildcardBind(n) }))
	}
	ts = append(ts, one(func(im impl) prepared { return im.acceptedBind(sz.Accepted) }))
	for _, contiguous := range []bool{false, true} {
		for _, o := range sz.Occ {
			ts = append(ts, one(func(im impl) prepared { return im.ephemeral(sz.PortLo, sz.PortHi, o, contiguous) }))
		}
	}
	for _, n := range sz.Lookup {
		ts = append(ts, task{rows: len(lookupKinds), prep: func(im impl) []prepared { return im.lookup(n) }})
	}
	ts = append(ts, one(func(im impl) prepared { return im.reuseport(sz.Group, sz.Spread) }))
	ts = append(ts, one(func(im impl) prepared { return im.memory(sz.MemFlows) }))
	return ts
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
	var kern impl
	kernWhy := "n/a (kernel column off)"
	if cfg.Kernel {
		if k, err := newKernel(cfg); err != nil {
			kernWhy = "n/a (" + err.Error() + ")"
		} else {
			kern = k
		}
	}
	cols := []impl{&socktabImpl{cfg: cfg}, &gvisorImpl{cfg: cfg}, kern}
	i := 0
	for _, tk := range tasks(sz) {
		group := rows[i : i+tk.rows]
		i += tk.rows
		skip := ""
		switch {
		case !cfg.wants(names[i-tk.rows : i]):
			skip = "not run"
		case time.Since(start) > cfg.Total:
			skip = "skipped: time budget"
		}
		t := time.Now()
		preps := make([][]prepared, len(cols)) // [column][row]
		for c, im := range cols {
			preps[c] = make([]prepared, tk.rows)
			for j := range preps[c] {
				switch {
				case skip != "":
					preps[c][j] = fixed(na(skip))
				case im == nil:
					preps[c][j] = fixed(na(kernWhy))
				}
			}
			if skip == "" && im != nil {
				copy(preps[c], tk.prep(im))
			}
		}
		for j := range group {
			ps := make([]prepared, len(cols))
			for c := range cols {
				ps[c] = preps[c][j]
			}
			cells := measureTogether(cfg.Measure, ps)
			group[j].Socktab, group[j].GVisor, group[j].Kernel = cells[0], cells[1], cells[2]
			if cfg.Log != nil && skip == "" {
				fmt.Fprintf(cfg.Log, "%-58s %-14s %-14s %-14s (%.1fs)\n", group[j].Workload, short(cells[0], group[j].Unit),
					short(cells[1], group[j].Unit), short(cells[2], group[j].Unit), time.Since(t).Seconds())
			}
		}
		for c := range preps {
			for _, p := range preps[c] {
				if p.close != nil {
					p.close()
				}
			}
		}
		runtime.GC()
	}
	return rows
}

func short(c Cell, unit string) string {
	if !c.ok() {
		return "n/a"
	}
	return strings.SplitN(fmtCell(Cell{V: c.V}, unit), " (", 2)[0]
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
