package inspect

import (
	"net/netip"
	"sort"

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
func (t *Table) Ports() []PortUse {
	type key struct {
		proto    string
		src, dst netip.Addr
		dport    uint16
	}
	lo, hi := t.Host.Sysctl.PortLow, t.Host.Sysctl.PortHigh
	m := map[key]*PortUse{}
	for _, s := range t.Host.Sockets() {
		if !s.Remote().IsValid() || s.Family() == engine.Unix {
			continue
		}
		p := int(s.Local().Port())
		if p < lo || p > hi {
			continue
		}
		k := key{s.Proto().String(), s.Local().Addr().Unmap(), s.Remote().Addr().Unmap(), s.Remote().Port()}
		u := m[k]
		if u == nil {
			u = &PortUse{Proto: k.proto, Src: k.src, Dst: k.dst, DstPort: k.dport}
			m[k] = u
		}
		if s.State() == engine.TimeWait {
			u.TimeWait++
		} else {
			u.InUse++
		}
	}
	capacity := t.Usable()
	out := make([]PortUse, 0, len(m))
	for _, u := range m {
		u.Capacity = capacity
		if capacity > 0 {
			u.Percent = 100 * float64(u.InUse+u.TimeWait) / float64(capacity)
		}
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Percent > out[j].Percent })
	return out
}
