package inspect

import (
	"net/netip"
	"sort"
)

// PoolCounter groups sockets into the ephemeral-port pools connect() draws
// from. It counts from engine sockets (Table.Ports) or straight from a
// streamed live read (the exporter), which is why it takes plain values.
//
// TCP (__inet_hash_connect): a connection needs a unique 4-tuple, so there
// is one pool per (source, destination, destination port), and a port held
// by a listener or a bound socket is never chosen (its bind bucket was made
// by an explicit bind), whatever the destination: such ports in the range
// come off every TCP pool. Connections accepted on a listening port are
// not the host's own connects and belong to no pool.
//
// UDP (udp_lib_get_port): an unbound socket that connects or sends gets a
// port no other UDP socket has, whatever the destination: one pool, every
// UDP socket's port in the range counted once.
type PoolCounter struct {
	m         map[poolKey]*poolPorts
	held      map[string]map[uint16]bool // per protocol: ports of listeners and bound sockets
	listening map[uint16]bool            // TCP listeners' ports
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
// Sockets without a peer are holders (AddHolder), not counted here.
func (c *PoolCounter) Add(proto string, local, remote netip.AddrPort, timeWait bool) {
	if !remote.IsValid() || (remote.Port() == 0 && remote.Addr().IsUnspecified()) {
		return
	}
	if c.m == nil {
		c.m = map[poolKey]*poolPorts{}
	}
	k := poolKey{proto, local.Addr().Unmap(), remote.Addr().Unmap(), remote.Port()}
	if proto == "udp" {
		k = poolKey{proto: proto} // one pool
	}
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

// AddHolder counts a socket with a port and no peer: a TCP listener
// (listening) or bound socket, or an unconnected UDP socket.
func (c *PoolCounter) AddHolder(proto string, local netip.AddrPort, listening bool) {
	if local.Port() == 0 {
		return
	}
	if c.held == nil {
		c.held, c.listening = map[string]map[uint16]bool{}, map[uint16]bool{}
	}
	if c.held[proto] == nil {
		c.held[proto] = map[uint16]bool{}
	}
	c.held[proto][local.Port()] = true
	if listening && proto == "tcp" {
		c.listening[local.Port()] = true
	}
	if proto == "udp" {
		c.Add(proto, local, netip.AddrPortFrom(netip.IPv4Unspecified(), 1), false) // a placeholder peer: it is in the pool
	}
}

// Pools counts, per pool, the local ports inside [lo, hi]; usable is the
// number of ports the range allows (Usable) and reserved says which ports
// are not among them. Fullest first, ties in a fixed order.
func (c *PoolCounter) Pools(lo, hi, usable int, reserved func(uint16) bool) []PortUse {
	inRange := func(p uint16) bool { return int(p) >= lo && int(p) <= hi && !reserved(p) }
	blocked := 0
	for p := range c.held["tcp"] {
		if inRange(p) {
			blocked++
		}
	}
	count := func(ps []uint16, distinct bool) (int, map[uint16]bool) {
		n, seen := 0, map[uint16]bool{}
		for _, p := range ps {
			if !inRange(p) || c.listening[p] && !distinct || distinct && seen[p] {
				continue
			}
			seen[p] = true
			n++
		}
		return n, seen
	}
	out := make([]PortUse, 0, len(c.m))
	for k, p := range c.m {
		u := PortUse{Proto: k.proto, Src: k.src, Dst: k.dst, DstPort: k.dport, Capacity: usable}
		if k.proto == "udp" {
			u.InUse, _ = count(p.inUse, true)
		} else {
			var a, b map[uint16]bool
			u.InUse, a = count(p.inUse, false)
			u.TimeWait, b = count(p.timeWait, false)
			// Ports held by listeners and bound sockets are off the pool,
			// unless the pool's own connections hold them.
			own := 0
			for q := range c.held["tcp"] {
				if inRange(q) && (a[q] || b[q]) {
					own++
				}
			}
			u.Blocked = blocked - own
			u.Capacity = usable - u.Blocked
		}
		if u.InUse+u.TimeWait == 0 {
			continue
		}
		if u.Capacity > 0 {
			u.Percent = 100 * float64(u.InUse+u.TimeWait) / float64(u.Capacity)
		} else {
			u.Percent = 100
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
