package inspect

import (
	"net/netip"
	"sort"
)

// PoolCounter groups connections into ephemeral-port pools, one per
// (protocol, source, destination, destination port): a connection needs a
// unique 4-tuple, so each pool can use at most Usable() ports. It counts
// from engine sockets (Table.Ports) or straight from a streamed live read
// (the exporter), which is why it takes plain values.
type PoolCounter struct {
	m map[poolKey]*poolPorts
}

type poolKey struct {
	proto    string
	src, dst netip.Addr
	dport    uint16
}

// poolPorts keeps the local ports, because whether a port is ephemeral is
// known only once the range is (a streamed read gives the sysctls last).
type poolPorts struct{ inUse, timeWait []uint16 }

// Add counts one connection; local is its bound address, remote its peer.
// Sockets without a peer are not counted.
func (c *PoolCounter) Add(proto string, local, remote netip.AddrPort, timeWait bool) {
	if !remote.IsValid() || (remote.Port() == 0 && remote.Addr().IsUnspecified()) {
		return
	}
	if c.m == nil {
		c.m = map[poolKey]*poolPorts{}
	}
	k := poolKey{proto, local.Addr().Unmap(), remote.Addr().Unmap(), remote.Port()}
	p := c.m[k]
	if p == nil {
		p = &poolPorts{}
		c.m[k] = p
	}
	if timeWait {
		p.timeWait = append(p.timeWait, local.Port())
	} else {
		p.inUse = append(p.inUse, local.Port())
	}
}

// Pools counts, per pool, the local ports inside [lo, hi]; capacity is
// what the range allows (Usable). Fullest first.
func (c *PoolCounter) Pools(lo, hi, capacity int) []PortUse {
	in := func(ps []uint16) int {
		n := 0
		for _, p := range ps {
			if int(p) >= lo && int(p) <= hi {
				n++
			}
		}
		return n
	}
	out := make([]PortUse, 0, len(c.m))
	for k, p := range c.m {
		u := PortUse{Proto: k.proto, Src: k.src, Dst: k.dst, DstPort: k.dport, InUse: in(p.inUse), TimeWait: in(p.timeWait), Capacity: capacity}
		if u.InUse+u.TimeWait == 0 {
			continue
		}
		if capacity > 0 {
			u.Percent = 100 * float64(u.InUse+u.TimeWait) / float64(capacity)
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Percent != out[j].Percent {
			return out[i].Percent > out[j].Percent
		}
		return out[i].less(out[j])
	})
	return out
}

// less orders pools of equal use, so that output is stable.
func (u PortUse) less(v PortUse) bool {
	if u.Proto != v.Proto {
		return u.Proto < v.Proto
	}
	if c := u.Src.Compare(v.Src); c != 0 {
		return c < 0
	}
	if c := u.Dst.Compare(v.Dst); c != 0 {
		return c < 0
	}
	return u.DstPort < v.DstPort
}
