// Command bench measures socktab's engine side by side with gVisor's
// netstack (its port manager and transport demuxer) and the Linux kernel
// (syscalls in a fresh network namespace) and prints a Markdown table.
//
//	cd bench && go run .            # full sizes, about 2-3 minutes
//	cd bench && go run . -tiny      # every workload at smoke sizes
//	cd bench && go run . -net       # memnet carrying bytes vs loopback vs gVisor
//	cd bench && go run . -net -conns 1000000   # plus a million memnet connections
//
// It is a separate module so that the main module never depends on gVisor.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

func main() {
	if col := os.Getenv(workerEnv); col != "" {
		serveColumn(col, os.Stdin, os.Stdout) // one column of -net, for the parent
		return
	}
	seed := flag.Uint64("seed", 1, "seed of every random choice (ports taken, probe order, sources)")
	tiny := flag.Bool("tiny", false, "tiny sizes (the smoke run)")
	kernel := flag.Bool("kernel", true, "measure the kernel column (needs root and ip netns)")
	per := flag.Duration("measure", 300*time.Millisecond, "time spent measuring one cell")
	total := flag.Duration("total", 3*time.Minute+30*time.Second, "time budget: workloads not started by then are skipped (the longest takes under a minute, so the run ends within 5 minutes)")
	quiet := flag.Bool("q", false, "no progress on stderr")
	only := flag.String("run", "", "measure only the workloads whose name matches this regexp")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file (with -net: each column's process to FILE.memnet, FILE.loopback, FILE.gvisor)")
	netTable := flag.Bool("net", false, "measure the network table instead: memnet vs loopback vs gVisor's netstack carrying bytes")
	million := flag.Int("conns", 0, "with -net: also open this many concurrent memnet connections between two hosts and report their memory (e.g. 1000000)")
	flag.Parse()
	cfg := Config{Seed: *seed, Tiny: *tiny, Kernel: *kernel, Measure: *per, Total: *total}
	if *netTable && *cpuprofile != "" {
		// The columns run in processes of their own, each profiled apart.
		cfg.Profile, *cpuprofile = *cpuprofile, ""
	}
	if *only != "" {
		cfg.Only = regexp.MustCompile(*only)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if !*quiet {
		cfg.Log = os.Stderr
	}
	start := time.Now()
	if *netTable {
		WriteNetTable(os.Stdout, RunNet(cfg, *million))
		fmt.Printf("\n%s, %.0f s\n", machine(), time.Since(start).Seconds())
		return
	}
	rows := Run(cfg)
	WriteTable(os.Stdout, rows)
	fmt.Printf("\n%s, seed %d, %.0f s\n", machine(), *seed, time.Since(start).Seconds())
}

// machine describes where the run happened: CPU model, CPUs, kernel, Go.
func machine() string {
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v) + ", "
				break
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = " " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s%d CPUs, %s/%s%s, %s", cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, kernel, runtime.Version())
}
