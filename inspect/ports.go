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
	InUse    int // connections other than TIME_WAIT (UDP: ports held)
	TimeWait int
	Blocked  int // TCP: ports of the range held by listeners and bound sockets, which connect() skips
	Capacity int // ports the range allows toward it, blocked ones off
	Percent  float64
}

// SrcText is the pool's source address, "*" for the UDP pool (any).
func (u PortUse) SrcText() string {
	if !u.Src.IsValid() {
		return "*"
	}
	return u.Src.String()
}

// DstText is the pool's destination ip:port, "*" for the UDP pool (any).
func (u PortUse) DstText() string {
	if !u.Dst.IsValid() {
		return "*"
	}
	return netip.AddrPortFrom(u.Dst, u.DstPort).String()
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

// Ports is the use of each ephemeral-port pool (see PoolCounter): TCP per
// (source, destination, destination port) minus the ports listeners and
// bound sockets hold, UDP one pool. Fullest first.
func (t *Table) Ports() []PortUse {
	var c PoolCounter
	for _, s := range t.Sockets() {
		if s.Family() == engine.Unix {
			continue
		}
		if s.Remote().IsValid() {
			c.Add(s.Proto().String(), s.Local(), s.Remote(), s.State() == engine.TimeWait)
			if s.Proto() == engine.TCP && !s.ConnectBind() {
				// A connection on a port it bound first holds the port
				// for every destination (__inet_hash_connect skips a
				// bucket with an explicit holder).
				c.AddHolder("tcp", s.Local(), false)
			}
		} else {
			c.AddHolder(s.Proto().String(), s.Local(), s.State() == engine.Listen)
		}
	}
	return c.Pools(t.Host.Sysctl.PortLow, t.Host.Sysctl.PortHigh, t.Usable(), t.Host.Sysctl.Reserved.Has)
}
