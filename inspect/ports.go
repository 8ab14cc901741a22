package inspect

import (
	"net/netip"

	"github.com/socktab/socktab/engine"
)

// PortUse is the ephemeral-port use toward one destination.
type PortUse struct {
	Proto    string
	Src, Dst netip.Addr
	DstPort  uint16
	InUse    int // connections other than TIME_WAIT
	TimeWait int
	Capacity int // ports the range allows toward it
	Percent  float64
}

// Usable is the number of ports connect() may pick: the range minus
// reserved ports.
func (t *Table) Usable() int {
	n := 0
	for p := t.Host.Sysctl.PortLow; p <= t.Host.Sysctl.PortHigh; p++ {
		if !t.Host.Sysctl.Reserved.Has(uint16(p)) {
			n++
		}
	}
	return n
}

// Ports groups connections whose local port lies in the ephemeral range
// by (protocol, source, destination, destination port): each group can use
// at most Usable() ports, because a connection needs a unique 4-tuple.
// Fullest first.
func (t *Table) Ports() []PortUse {
	var c PoolCounter
	for _, s := range t.Sockets() {
		if s.Family() == engine.Unix {
			continue
		}
		c.Add(s.Proto().String(), s.Local(), s.Remote(), s.State() == engine.TimeWait)
	}
	return c.Pools(t.Host.Sysctl.PortLow, t.Host.Sysctl.PortHigh, t.Usable())
}
