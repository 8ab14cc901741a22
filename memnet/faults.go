package memnet

import (
	"sync"
	"time"
)

// link is what joins two hosts: its latency, whether it is cut, and the
// share of UDP datagrams it loses. Connections between the two hosts read
// it on every transfer.
type link struct {
	mu      sync.Mutex
	latency time.Duration
	down    bool
	healed  chan struct{} // closed when a partition heals
	loss    float64
}

// linkOf returns the link between a and b (either order), creating it.
func (n *Network) linkOf(a, b *Host) *link {
	k := [2]*Host{a, b}
	if l := n.links[k]; l != nil {
		return l
	}
	if l := n.links[[2]*Host{b, a}]; l != nil {
		return l
	}
	l := &link{}
	n.links[k] = l
	return l
}

func (l *link) isDown() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.down
}

// healCh is closed when the partition heals; nil when the link is up.
func (l *link) healCh() chan struct{} {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.down {
		return nil
	}
	return l.healed
}

// unobstructed reports whether the link neither is cut nor delays: a connect
// across it needs no wait (no link at all is clear).
func (l *link) unobstructed() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.down && l.latency == 0
}

func (l *link) delay() time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.latency
}

// SetLatency delays everything between hosts a and b by d each way: a
// TCP connect takes a round trip, written bytes become readable d later,
// a datagram arrives d later.
func (n *Network) SetLatency(a, b *Host, d time.Duration) {
	n.mu.Lock()
	l := n.linkOf(a, b)
	n.mu.Unlock()
	l.mu.Lock()
	l.latency = d
	l.mu.Unlock()
}

// Partition cuts the link between a and b: a TCP connect waits (and times
// out as the OS's would, ETIMEDOUT), bytes already written wait in the
// buffers, UDP datagrams are dropped. Heal joins them again.
func (n *Network) Partition(a, b *Host) {
	n.mu.Lock()
	l := n.linkOf(a, b)
	n.mu.Unlock()
	l.mu.Lock()
	if !l.down {
		l.down = true
		l.healed = make(chan struct{})
	}
	l.mu.Unlock()
}

// Heal ends a partition between a and b; waiting connects and reads go on.
func (n *Network) Heal(a, b *Host) {
	n.mu.Lock()
	l := n.linkOf(a, b)
	n.mu.Unlock()
	l.mu.Lock()
	if l.down {
		l.down = false
		close(l.healed)
	}
	l.mu.Unlock()
}

// SetLoss makes the link between a and b drop that share (0 to 1) of UDP
// datagrams, chosen by the network's seed.
func (n *Network) SetLoss(a, b *Host, share float64) {
	n.mu.Lock()
	l := n.linkOf(a, b)
	n.mu.Unlock()
	l.mu.Lock()
	l.loss = share
	l.mu.Unlock()
}

// chance draws a number in [0, 1) from the network's seeded generator
// (n.mu held).
func (n *Network) chance() float64 {
	n.rng += 0x9e3779b97f4a7c15
	z := n.rng
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}
