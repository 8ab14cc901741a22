// Package scenario is socktab's scenario language: a line-based script of
// syscalls and packet queries with expected results, parsed into steps and
// run against the engine. docs/scenario.md is its reference.
package scenario

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/socktab/socktab/engine"
)

// Op is a statement kind.
type Op string

const (
	OpOS         Op = "os"
	OpHost       Op = "host"
	OpIface      Op = "iface"
	OpRoute      Op = "route"
	OpSysctl     Op = "sysctl"
	OpUID        Op = "uid"
	OpAdvance    Op = "advance"
	OpSocket     Op = "socket"
	OpSetsockopt Op = "setsockopt"
	OpBind       Op = "bind"
	OpListen     Op = "listen"
	OpConnect    Op = "connect"
	OpAccept     Op = "accept"
	OpClose      Op = "close"
	OpUnlink     Op = "unlink"
	OpPacket     Op = "packet"
	OpJoin       Op = "join"
)

// Step is one statement (one iteration of a repeat).
type Step struct {
	File string
	Line int
	Text string // the statement as written, without expectation and comment
	Op   Op
	// Col is the statement's column (characters); ArgCol, when set, the
	// column of the argument a run-time error is about (route's interface,
	// a dev, advance's duration).
	Col, ArgCol int

	Assign string // the name assigned by "NAME = socket|accept ..."
	Sock   string // the socket operated on

	Family engine.Family // socket
	Proto  engine.Proto  // socket, packet

	Option engine.Option // setsockopt
	Int    int           // setsockopt value; uid; IP_LOCAL_PORT_RANGE packs lo | hi<<16
	Str    string        // setsockopt SO_BINDTODEVICE; host, os, iface and sysctl names

	Addr     netip.AddrPort // bind, connect; packet destination
	Src      netip.AddrPort // packet source
	Path     string         // unix bind, connect, unlink
	Prefixes []netip.Prefix // iface; route destination
	Values   []string       // sysctl values
	Duration time.Duration  // advance
	Flags    uint8          // packet TCP flags
	Dev      string         // packet ingress interface, join interface (optional)
	Group    netip.Addr     // join

	Expect *Expect // nil when the step has no expectation
}

// Expect is the "=> RESULT" of a step: "ok", an errno name, or for a
// packet a socket name, "a|b" (any one of a reuseport group), "a+b" (each
// of them: broadcast and multicast), "rst", "icmp-port-unreachable" or
// "drop".
type Expect struct {
	Result string
	Col    int
}

// Error is a malformed statement: file, line and column.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg) }

// Scenario is a parsed file.
type Scenario struct {
	File  string
	Steps []Step
}
