//go:build linux

package live_test

import (
	"fmt"

	"github.com/socktab/socktab/live"
)

// Listeners of every network namespace, with the processes holding them.
func ExampleReadNetns() {
	snaps, err := live.ReadNetns(live.NetnsTarget{All: true},
		live.Options{TCP: true, UDP: true, States: live.StatesListening, Processes: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, sn := range snaps {
		for _, s := range sn.Sockets {
			v6only := "?"
			if s.V6Only != nil {
				v6only = fmt.Sprint(*s.V6Only)
			}
			fmt.Printf("%q %s %s %s v6only=%s %v\n", sn.Netns, s.Proto, s.State, s.Local, v6only, s.Processes)
		}
		for _, m := range sn.Missing {
			fmt.Printf("%q: missing: %s\n", sn.Netns, m)
		}
	}
}
