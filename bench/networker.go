package main

// Each column of the network table runs in a process of its own: this
// binary again, started with SOCKTAB_NETBENCH_WORKER naming the column and
// fed one request at a time on its standard input. The columns still take
// turns batch by batch (measureTogether), so load from elsewhere falls on
// all of them alike; but no column's goroutines, timers or garbage run
// inside another column's batches, and a column's CPU time is its own
// process's. In one process, gVisor's background goroutines and its heap
// (marked by every collection that memnet's allocations started) were
// counted in memnet's figures.
//
// The protocol, one line each way:
//
//	(start)          → "up" | "na QUOTED-REASON"
//	prep ROW TINY    → "ready" | "fixed VALUE QUOTED-NOTE"
//	batch N          → "done NANOSECONDS"
//	done             → "cpu NS-PER-OP" (NaN when nothing ran); the cell is closed
//	million N        → "fixed VALUE QUOTED-NOTE" (the memnet column only)

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

const (
	workerEnv  = "SOCKTAB_NETBENCH_WORKER"  // the column a worker process measures
	profileEnv = "SOCKTAB_NETBENCH_PROFILE" // a worker writes its CPU profile to this path + "." + column
)

// columnMakers are the columns a worker can measure.
var columnMakers = map[string]func() (*netOps, error){
	"memnet":   newMemnetOps,
	"loopback": newLoopbackOps,
	"gvisor":   newGVisorOps,
}

// netWorkload is row's workload (the order of netWorkloads).
func netWorkload(row int, sz NetSizes) func(o *netOps) prepared {
	switch row {
	case 0:
		return dialAcceptClose
	case 1:
		return func(o *netOps) prepared { return stream(o, sz.Chunk) }
	case 2:
		return pingPong
	case 3:
		return func(o *netOps) prepared { return udpPair(o, 64) }
	case 4:
		return func(o *netOps) prepared {
			if o.name == "gvisor" {
				return idleConns(o, sz.IdleGV)
			}
			return idleConns(o, sz.Idle)
		}
	}
	return nil
}

// column is the parent's end of one worker process.
type column struct {
	name string
	why  string // the n/a reason when the column cannot run
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
}

// startColumn starts the worker of column name (a key of columnMakers).
// A column that cannot run (no root for the loopback namespace, ...) has
// why set and is skipped.
func startColumn(name, profile string) *column {
	c := &column{name: name}
	exe, err := os.Executable()
	if err != nil {
		c.why = "n/a (" + err.Error() + ")"
		return c
	}
	c.cmd = exec.Command(exe)
	c.cmd.Env = append(os.Environ(), workerEnv+"="+name)
	if profile != "" {
		c.cmd.Env = append(c.cmd.Env, profileEnv+"="+profile)
	}
	c.cmd.Stderr = os.Stderr
	if c.in, err = c.cmd.StdinPipe(); err == nil {
		var out io.ReadCloser
		if out, err = c.cmd.StdoutPipe(); err == nil {
			c.out = bufio.NewReader(out)
			err = c.cmd.Start()
		}
	}
	if err != nil {
		c.why = "n/a (" + err.Error() + ")"
		c.cmd = nil
		return c
	}
	if line := c.read(); line != "up" {
		c.why = unquoteRest(line, "na ")
		c.stop()
	}
	return c
}

// read is the worker's next line; a worker that stopped ends the run with
// its name, since every figure after it would be missing or wrong.
func (c *column) read() string {
	line, err := c.out.ReadString('\n')
	if err != nil {
		c.fail("stopped: %v", err)
	}
	return strings.TrimSuffix(line, "\n")
}

func (c *column) call(format string, a ...any) string {
	if _, err := fmt.Fprintf(c.in, format+"\n", a...); err != nil {
		c.fail("%v", err)
	}
	return c.read()
}

// number is the number after prefix in the worker's answer line; any
// other answer ends the run (a figure read from it would be made up).
func (c *column) number(line, prefix string) float64 {
	v, err := strconv.ParseFloat(strings.TrimPrefix(line, prefix), 64)
	if err != nil || !strings.HasPrefix(line, prefix) {
		c.fail("answered %q, want %q and a number", line, prefix)
	}
	return v
}

func (c *column) fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: the %s column's process: %s\n", c.name, fmt.Sprintf(format, a...))
	os.Exit(1)
}

// prep sets up row's workload in the worker; the prepared cell's batches
// run there.
func (c *column) prep(row int, tiny bool) prepared {
	t := 0
	if tiny {
		t = 1
	}
	line := c.call("prep %d %d", row, t)
	if line == "ready" {
		return prepared{batch: func(n int) time.Duration {
			return time.Duration(c.number(c.call("batch %d", n), "done "))
		}}
	}
	return fixed(parseFixed(line))
}

// done closes the worker's current cell and returns its CPU time per op.
func (c *column) done() float64 {
	return c.number(c.call("done"), "cpu ") // "NaN" when nothing ran
}

// stop ends the worker: closing its input ends its loop.
func (c *column) stop() {
	if c.cmd == nil {
		return
	}
	c.in.Close()
	c.cmd.Wait()
	c.cmd = nil
}

func formatFixed(cell Cell) string {
	return fmt.Sprintf("fixed %s %q", strconv.FormatFloat(cell.V, 'g', -1, 64), cell.Note)
}

func parseFixed(line string) Cell {
	f := strings.SplitN(line, " ", 3)
	if len(f) != 3 || f[0] != "fixed" {
		return na("error: the worker answered " + strconv.Quote(line))
	}
	v, err := strconv.ParseFloat(f[1], 64)
	note, err2 := strconv.Unquote(f[2])
	if err != nil || err2 != nil {
		return na("error: the worker answered " + strconv.Quote(line))
	}
	return Cell{V: v, Note: note}
}

func unquoteRest(line, prefix string) string {
	if s, err := strconv.Unquote(strings.TrimPrefix(line, prefix)); err == nil && strings.HasPrefix(line, prefix) {
		return s
	}
	return "n/a (the worker answered " + strconv.Quote(line) + ")"
}

// serveColumn is a worker's life: make the column's network, then answer
// the parent's requests until its input closes.
func serveColumn(name string, in io.Reader, out io.Writer) {
	w := bufio.NewWriter(out)
	reply := func(s string) {
		w.WriteString(s + "\n")
		w.Flush()
	}
	mk := columnMakers[name]
	if mk == nil {
		reply("na " + strconv.Quote("n/a (no column "+name+")"))
		return
	}
	o, err := mk()
	if err != nil {
		reply("na " + strconv.Quote("n/a ("+err.Error()+")"))
		return
	}
	defer o.close()
	if path := os.Getenv(profileEnv); path != "" {
		if f, err := os.Create(path + "." + name); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	reply("up")
	var p prepared
	var m cpuMeter
	r := bufio.NewScanner(in)
	for r.Scan() {
		f := strings.Fields(r.Text())
		arg := func(i int) int {
			if i >= len(f) {
				return 0
			}
			v, _ := strconv.Atoi(f[i])
			return v
		}
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "prep":
			w := netWorkload(arg(1), netSizesFor(arg(2) == 1, 0))
			if w == nil {
				p = fixed(na(fmt.Sprintf("error: no row %d", arg(1))))
			} else {
				p = safePrep(func() prepared { return w(o) })
			}
			m = cpuMeter{}
			p = m.wrap(p)
			if p.batch == nil {
				reply(formatFixed(p.fixed))
			} else {
				reply("ready")
			}
		case "batch":
			if p.batch == nil {
				reply("done 0")
				continue
			}
			reply(fmt.Sprintf("done %d", p.batch(arg(1)).Nanoseconds()))
		case "done":
			cpu := m.perOp()
			if p.close != nil {
				p.close()
			}
			p = prepared{}
			runtime.GC()
			reply("cpu " + strconv.FormatFloat(cpu, 'g', -1, 64))
		case "million":
			reply(formatFixed(million1(arg(1))))
		default:
			reply("error " + strconv.Quote(r.Text()))
		}
	}
}
