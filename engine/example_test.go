package engine_test

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/socktab/socktab/engine"
)

// A dual-stack listener on [::]:8080 takes IPv4 too: a later 0.0.0.0:8080
// bind fails, and an IPv4 SYN reaches the IPv6 listener.
func Example() {
	n := engine.NewNetwork(engine.Linux, 1)
	web := n.AddHost("web")
	web.AddIface("eth0", netip.MustParsePrefix("192.0.2.10/24"))

	s, _ := web.NewSocket(engine.Inet6, engine.TCP, 1000)
	web.SetReuseAddr(s, true)
	if err := web.Bind(s, netip.MustParseAddrPort("[::]:8080")).AsError(); err != nil {
		panic(err)
	}
	web.Listen(s)

	v4, _ := web.NewSocket(engine.Inet, engine.TCP, 1000)
	web.SetReuseAddr(v4, true)
	err := web.Bind(v4, netip.MustParseAddrPort("0.0.0.0:8080")).AsError()
	fmt.Println(errors.Is(err, syscall.EADDRINUSE))
	fmt.Println(err)

	d := web.Lookup(engine.Packet{Proto: engine.TCP, Flags: engine.FlagSYN,
		Src: netip.MustParseAddrPort("192.0.2.20:40000"),
		Dst: netip.MustParseAddrPort("192.0.2.10:8080")})
	fmt.Println(d.Verdict == engine.Deliver, d.Socket == s, d.Stage)
	// Output:
	// true
	// EADDRINUSE: a listener holds an overlapping address; SO_REUSEADDR never shares with a listener on Linux (tcp dual-stack [::]:8080 LISTEN)
	// true true wildcard listener
}
