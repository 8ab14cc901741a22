// Command gopsutil times gopsutil's net.Connections over the current
// network namespace, the peer socktab ls is compared with. It lives in its
// own module so socktab never depends on gopsutil.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/shirou/gopsutil/v4/net"
)

func main() {
	kind := "tcp"
	if len(os.Args) > 1 {
		kind = os.Args[1]
	}
	start := time.Now()
	cs, err := net.Connections(kind)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gopsutil:", err)
		os.Exit(1)
	}
	fmt.Printf("%d connections in %.3f s\n", len(cs), time.Since(start).Seconds())
}
