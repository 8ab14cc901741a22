//go:build unix

package main

import (
	"syscall"
	"time"
)

// procCPU is the CPU time (user + system) the whole process has used: on
// a machine shared with other work it counts what an operation costs,
// where wall time also counts the waits for a CPU.
func procCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
