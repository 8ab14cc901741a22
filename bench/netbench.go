package main

// The network table: memnet (package memnet) carrying bytes side by side
// with real loopback TCP/UDP (in a namespace made for the run) and gVisor's
// netstack (gonet on two stacks joined by a pipe link), plus the physical
// bound of a byte stream: two memory copies per byte (writer → buffer →
// reader), measured in the same run. Each column drives package net's
// interfaces (net.Listener, net.Conn, net.PacketConn) the same way.

import (
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"strings"
	"time"
)

// netOps is one column: how it listens and dials, and where its
// socket-making calls must run (the kernel's namespace thread).
type netOps struct {
	name         string
	server       string // the listening host's address, as host (no port)
	listen       func(network, address string) (net.Listener, error)
	listenPacket func(network, address string) (net.PacketConn, error)
	dial         func(network, address string) (net.Conn, error)
	// dialPacket makes the UDP sender; nil: listenPacket on the client side
	clientPacket func(network, address string) (net.PacketConn, error)
	run          func(func()) // runs f where sockets are made; nil: here
	heap         bool         // its connections live in the Go heap
	close        func()
}

func (o *netOps) in(f func()) {
	if o.run == nil {
		f()
		return
	}
	o.run(f)
}

// NetRow is one workload across the columns.
type NetRow struct {
	Workload string
	Unit     string    // "ns/op", "B/conn"
	Bytes    int       // bytes per op, for a throughput figure
	Cells    []Cell    // memnet, loopback, gVisor, bound: wall time per op
	CPU      []float64 // the process's CPU time per op (ns), NaN when not measured
}

// cpuMeter adds up the process CPU time and the ops of a cell's batches.
type cpuMeter struct {
	cpu time.Duration
	ops int
}

func (m *cpuMeter) wrap(p prepared) prepared {
	if p.batch == nil {
		return p
	}
	b := p.batch
	p.batch = func(n int) time.Duration {
		c := procCPU()
		el := b(n)
		m.cpu += procCPU() - c
		m.ops += n
		return el
	}
	return p
}

func (m *cpuMeter) perOp() float64 {
	if m.ops == 0 || m.cpu == 0 {
		return math.NaN()
	}
	return float64(m.cpu.Nanoseconds()) / float64(m.ops)
}

var netColumns = []string{"memnet", "loopback (kernel)", "gVisor netstack", "two copies (bound)"}

// NetSizes are the workload sizes.
type NetSizes struct {
	Chunk   int // bytes per write in the stream row
	Idle    int // idle connections in the memory row
	IdleGV  int // idle connections for gVisor (slower to set up)
	Million int // connections in the scale row; 0 leaves it out
}

func netSizesFor(tiny bool, million int) NetSizes {
	if tiny {
		return NetSizes{Chunk: 64 << 10, Idle: 200, IdleGV: 50, Million: min(million, 2000)}
	}
	return NetSizes{Chunk: 64 << 10, Idle: 20000, IdleGV: 2000, Million: million}
}

func netWorkloads(sz NetSizes) []string {
	out := []string{
		"Dial + Accept + Close (TCP)",
		fmt.Sprintf("one stream, %d KiB writes", sz.Chunk>>10),
		"1-byte ping-pong round trip (TCP)",
		"UDP 64-byte datagram, send + receive",
		"memory per idle established connection (both ends)",
	}
	if sz.Million > 0 {
		out = append(out, fmt.Sprintf("%d concurrent connections between two hosts", sz.Million))
	}
	return out
}

// RunNet measures the network table.
func RunNet(cfg Config, million int) []NetRow {
	sz := netSizesFor(cfg.Tiny, million)
	if cfg.Measure == 0 {
		cfg.Measure = 300 * time.Millisecond
	}
	names := netWorkloads(sz)
	rows := make([]NetRow, len(names))
	for i, n := range names {
		rows[i] = NetRow{Workload: n, Unit: "ns/op", Cells: make([]Cell, len(netColumns)), CPU: make([]float64, len(netColumns))}
		for c := range rows[i].CPU {
			rows[i].CPU[c] = math.NaN()
		}
	}
	rows[1].Bytes = sz.Chunk
	rows[4].Unit = "B/conn"
	const perRowCount = 5 // the rows netWorkload measures; the million row is apart
	var cols []*column
	for _, name := range []string{"memnet", "loopback", "gvisor"} {
		c := startColumn(name, cfg.Profile)
		defer c.stop()
		cols = append(cols, c)
	}
	for i := range perRowCount {
		t := time.Now()
		if !cfg.wants([]string{names[i]}) {
			for c := range rows[i].Cells {
				rows[i].Cells[c] = na("not run")
			}
			continue
		}
		ps := make([]prepared, len(netColumns))
		for c, col := range cols {
			if col.why != "" {
				ps[c] = fixed(na(col.why))
				continue
			}
			ps[c] = col.prep(i, cfg.Tiny)
		}
		// The bound is measured here, in the parent, between the workers'
		// batches.
		var bound cpuMeter
		ps[3] = fixed(na("–"))
		if i == 1 {
			ps[3] = bound.wrap(twoCopies(sz.Chunk))
		}
		rows[i].Cells = measureTogether(cfg.Measure, ps)
		for c, col := range cols {
			if col.why == "" {
				rows[i].CPU[c] = col.done()
			}
		}
		rows[i].CPU[3] = bound.perOp()
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "%-52s %s (%.1fs)\n", names[i], strings.Join(shortCells(rows[i]), " "), time.Since(t).Seconds())
		}
	}
	if sz.Million > 0 {
		r := &rows[len(rows)-1]
		r.Unit = "B/conn"
		for c := range r.Cells {
			r.Cells[c] = na("–")
		}
		// A fresh memnet process: nothing but the million connections in its heap.
		c := startColumn("memnet", "")
		if c.why != "" {
			r.Cells[0] = na(c.why)
		} else {
			r.Cells[0] = parseFixed(c.call("million %d", sz.Million))
		}
		c.stop()
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "%-52s %s\n", r.Workload, r.Cells[0].Note)
		}
	}
	return rows
}

func shortCells(r NetRow) []string {
	var out []string
	for _, c := range r.Cells {
		unit := r.Unit
		if unit == "B/conn" {
			unit = "B/flow"
		}
		out = append(out, fmt.Sprintf("%-12s", short(c, unit)))
	}
	return out
}

// safePrep turns a panic while setting up into an n/a cell.
func safePrep(f func() prepared) (p prepared) {
	defer func() {
		if r := recover(); r != nil {
			p = fixed(na(fmt.Sprint("error: ", r)))
		}
	}()
	return f()
}

func orPanic[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// acceptLoop hands accepted connections to a channel until l closes.
func acceptLoop(l net.Listener) chan net.Conn {
	ch := make(chan net.Conn, 16)
	go func() {
		defer close(ch)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	return ch
}

// pair makes one established connection.
func pair(o *netOps) (client, server net.Conn, l net.Listener) {
	o.in(func() {
		l = orPanic(o.listen("tcp4", o.server+":0"))
		ch := acceptLoop(l)
		client = orPanic(o.dial("tcp4", l.Addr().String()))
		server = <-ch
	})
	return client, server, l
}

// batchIn times n runs of op where o makes its sockets.
func batchIn(o *netOps, op func()) func(n int) time.Duration {
	return func(n int) (el time.Duration) {
		o.in(func() {
			t := time.Now()
			for range n {
				op()
			}
			el = time.Since(t)
		})
		return el
	}
}

// dialAcceptClose: one op is a Dial, the Accept of that connection (in
// the same goroutine: Dial returns once the connection is queued, so no
// scheduler hand-off is measured) and the Close of both ends.
//
// Each batch gets a fresh listening port: every connection leaves its
// client port in TIME_WAIT toward (server, port) for 60 s, so at memnet's
// speed one port's 4-tuples run out within a batch or two (EADDRNOTAVAIL).
func dialAcceptClose(o *netOps) prepared {
	var l net.Listener
	var addr string
	relisten := func() {
		if l != nil {
			l.Close()
		}
		l = orPanic(o.listen("tcp4", o.server+":0"))
		addr = l.Addr().String()
	}
	run := batchIn(o, func() {
		c := orPanic(o.dial("tcp4", addr))
		s := orPanic(l.Accept())
		c.Close()
		s.Close()
	})
	o.in(relisten)
	return prepared{close: func() { l.Close() }, batch: func(n int) time.Duration {
		o.in(relisten)
		return run(n)
	}}
}

// stream: a writer goroutine writes chunk-sized writes without pause; one
// op is reading one chunk's worth on the other end.
func stream(o *netOps, chunk int) prepared {
	client, server, l := pair(o)
	go func() {
		buf := make([]byte, chunk)
		for {
			if _, err := client.Write(buf); err != nil {
				return
			}
		}
	}()
	rbuf := make([]byte, chunk)
	return prepared{close: func() { client.Close(); server.Close(); l.Close() }, batch: loop(func() {
		if _, err := io.ReadFull(server, rbuf); err != nil {
			panic(err)
		}
	})}
}

// pingPong: one op is one byte there and one byte back.
func pingPong(o *netOps) prepared {
	client, server, l := pair(o)
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := server.Read(b); err != nil {
				return
			}
			if _, err := server.Write(b); err != nil {
				return
			}
		}
	}()
	b := make([]byte, 1)
	return prepared{close: func() { client.Close(); server.Close(); l.Close() }, batch: loop(func() {
		if _, err := client.Write(b); err != nil {
			panic(err)
		}
		if _, err := client.Read(b); err != nil {
			panic(err)
		}
	})}
}

// udpPair: one goroutine sends a burst of datagrams and then reads them
// back on the receiving socket; one op is one datagram sent and received.
// Bursts of 16 stay far below every column's receive buffer, so none is
// dropped.
func udpPair(o *netOps, size int) prepared {
	var rx, tx net.PacketConn
	o.in(func() {
		rx = orPanic(o.listenPacket("udp4", o.server+":0"))
		mk := o.listenPacket
		if o.clientPacket != nil {
			mk = o.clientPacket
		}
		tx = orPanic(mk("udp4", "0.0.0.0:0"))
	})
	to := rx.LocalAddr()
	msg, rbuf := make([]byte, size), make([]byte, 2048)
	const burst = 16
	return prepared{close: func() { rx.Close(); tx.Close() }, batch: func(n int) time.Duration {
		t := time.Now()
		for done := 0; done < n; {
			k := min(burst, n-done)
			for range k {
				if _, err := tx.WriteTo(msg, to); err != nil {
					panic(err)
				}
			}
			for range k {
				if m, _, err := rx.ReadFrom(rbuf); err != nil || m != size {
					panic(fmt.Sprint("udp read: ", m, err))
				}
			}
			done += k
		}
		return time.Since(t)
	}}
}

// idleConns opens n established connections and reports the Go memory
// (heap and goroutine stacks) they hold, per connection with both ends.
func idleConns(o *netOps, n int) prepared {
	if !o.heap {
		return fixed(na("n/a (kernel memory)"))
	}
	var conns []net.Conn
	var l net.Listener
	before := goMemory()
	o.in(func() {
		l = orPanic(o.listen("tcp4", o.server+":0"))
		ch := acceptLoop(l)
		for range n {
			conns = append(conns, orPanic(o.dial("tcp4", l.Addr().String())), <-ch)
		}
	})
	after := goMemory()
	for _, c := range conns {
		c.Close()
	}
	l.Close()
	return fixed(Cell{V: float64(after-before) / float64(n), Note: fmt.Sprintf("%d connections", n)})
}

// goMemory is the live heap plus goroutine stacks after a full collection.
func goMemory() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}

// twoCopies is the bound of a stream: each byte copied into a buffer by
// the writer and out of it by the reader.
func twoCopies(chunk int) prepared {
	src, mid, dst := make([]byte, chunk), make([]byte, chunk), make([]byte, chunk)
	return prepared{batch: loop(func() {
		copy(mid, src)
		copy(dst, mid)
	})}
}

// WriteNetTable prints the network table: each time cell is the wall
// time per op and, in brackets, the process's CPU time per op; ratios are
// given for both (wall / CPU).
func WriteNetTable(w io.Writer, rows []NetRow) {
	fmt.Fprintln(w, "| workload | memnet | loopback (kernel) | gVisor netstack | two copies (bound) | loopback / memnet | gVisor / memnet | memnet / bound |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		cells := make([]string, len(r.Cells))
		for i, c := range r.Cells {
			cells[i] = esc(fmtNetCell(c, r))
			if c.ok() && r.Unit == "ns/op" && !math.IsNaN(r.CPU[i]) {
				cells[i] += fmt.Sprintf(" [cpu %s]", short(Cell{V: r.CPU[i]}, "ns/op"))
			}
		}
		both := func(a, b int) string {
			s := ratio(r.Cells[a], r.Cells[b])
			if r.Unit == "ns/op" && !math.IsNaN(r.CPU[a]) && !math.IsNaN(r.CPU[b]) {
				s += fmt.Sprintf(" / %.1f×", r.CPU[a]/r.CPU[b])
			}
			return s
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Workload, cells[0], cells[1], cells[2], cells[3],
			both(1, 0), both(2, 0), both(0, 3))
	}
}

func fmtNetCell(c Cell, r NetRow) string {
	if !c.ok() {
		return c.Note
	}
	switch r.Unit {
	case "B/conn":
		s := fmt.Sprintf("%.0f B/conn", c.V)
		if c.Note != "" {
			s += " (" + c.Note + ")"
		}
		return s
	}
	s := fmtCell(Cell{V: c.V}, r.Unit)
	switch {
	case r.Bytes > 0:
		s += fmt.Sprintf(" = %.2f GB/s", float64(r.Bytes)/c.V)
	case strings.HasPrefix(r.Workload, "UDP"):
		s += fmt.Sprintf(" = %.2f M/s", 1e3/c.V)
	}
	if c.Note != "" {
		s += " (" + c.Note + ")"
	}
	return s
}
