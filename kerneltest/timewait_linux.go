//go:build linux

package kerneltest

import (
	"os/exec"
	"strings"
	"time"
)

// timeWaitLen is how long Linux keeps a TIME_WAIT socket, and by default
// an orphaned FIN_WAIT2 one (tcp_fin_timeout).
const timeWaitLen = 60 * time.Second

// The kernel's clock cannot be advanced, so "advance" runs a clock of its
// own: every TIME-WAIT and FIN-WAIT-2 socket is dated when a close step
// makes it appear (or change state), and one whose 60 s have passed on
// that clock is destroyed (sock_diag SOCK_DESTROY, through ss -K), as the
// timer would have removed it.

// waiting lists the TIME-WAIT and FIN-WAIT-2 sockets of the namespace as
// "STATE LOCAL PEER".
func (r *replayer) waiting() map[string]bool {
	out := map[string]bool{}
	// ss runs on this thread, so in this namespace.
	b, err := exec.Command("ss", "-tanH").Output()
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && (f[0] == "TIME-WAIT" || f[0] == "FIN-WAIT-2") {
			out[f[0]+" "+f[3]+" "+f[4]] = true
		}
	}
	return out
}

// dateWaiting records when each waiting socket appeared on the clock.
func (r *replayer) dateWaiting() {
	r.asRoot(func() error {
		now := r.waiting()
		for k := range r.born {
			if !now[k] {
				delete(r.born, k)
			}
		}
		for k := range now {
			if _, ok := r.born[k]; !ok {
				r.born[k] = r.clock
			}
		}
		return nil
	})
}

// advance moves the clock and destroys the waiting sockets whose time is
// up. It also sleeps a little, for timers that read real time
// (tcp_tw_reuse_delay, 1 s by default).
func (r *replayer) advance(d time.Duration) {
	time.Sleep(min(d, 1200*time.Millisecond))
	r.clock += d
	r.asRoot(func() error {
		for k, born := range r.born {
			if r.clock-born < timeWaitLen {
				continue
			}
			f := strings.Fields(k)
			exec.Command("ss", "-K", "-tnH", "state", strings.ToLower(f[0]), "src", f[1], "dst", f[2]).Run()
			delete(r.born, k)
		}
		return nil
	})
}
