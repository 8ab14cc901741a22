package engine

import (
	"fmt"
	"net/netip"
)

// BindBucket is the cache Linux keeps on a TCP port's bind bucket
// (struct inet_bind_bucket, include/net/inet_hashtables.h). inet_csk_get_port
// lets a bind or listen skip the whole conflict check when the cache says
// the newcomer matches, and inet_csk_update_fastreuse maintains it from the
// sockets that joined, never from those that left or changed their options
// since. So it can be stale, and the kernel's answers follow it: the engine
// keeps the same cache from the bind history, and the live loader can set
// what the running kernel's bucket really holds (SetBindBucket).
type BindBucket struct {
	// FastReuse is tb->fastreuse: 1 while every socket that joined had
	// SO_REUSEADDR and was not listening, 0 once one did not, -1 for a port
	// taken by connect() (which a bind never fast-paths).
	FastReuse int8
	// FastReuseport is tb->fastreuseport: 0, FastReuseportAny (every socket
	// so far had SO_REUSEPORT and the same owner; older kernels, or read
	// live) or FastReuseportStrict (reset by a SO_REUSEPORT socket, on
	// Linux 6.18 the first one too: a newcomer must also match
	// FastRcvSaddr).
	FastReuseport uint8
	FastUID       uint32     // tb->fastuid: the owner a SO_REUSEPORT newcomer must have
	FastIPv6Only  bool       // tb->fast_ipv6_only
	FastFamily    Family     // tb->fast_sk_family
	FastRcvSaddr  netip.Addr // tb->fast_rcv_saddr / fast_v6_rcv_saddr, as the socket was bound

	known bool // built from this engine's bind history or set by SetBindBucket
}

// BindBucketKnown reports whether the engine knows port's bind-bucket
// cache: it saw every holder bind, or SetBindBucket gave the kernel's. A
// port whose holders were only Insert()ed (a live table) has an unknown
// cache, and there a bind that the full check refuses may still pass in
// the kernel, by the fast path (SO_REUSEADDR or SO_REUSEPORT newcomers).
func (h *Host) BindBucketKnown(p Proto, port uint16) bool {
	if p != TCP {
		return true // UDP has no such cache
	}
	b := h.tcp.ports.get(port)
	return b == nil || b.owners == 0 || b.fast.known
}

// The values of BindBucket.FastReuseport (FASTREUSEPORT_ANY / _STRICT).
const (
	FastReuseportAny    uint8 = 1
	FastReuseportStrict uint8 = 2
)

// BindBucket returns port's bind-bucket cache in protocol p's table, and
// whether any socket holds the port. Only TCP has the cache.
func (h *Host) BindBucket(p Proto, port uint16) (BindBucket, bool) {
	if p != TCP {
		return BindBucket{}, false
	}
	b := h.tcp.ports.get(port)
	if b == nil || b.owners == 0 {
		return BindBucket{}, false
	}
	return b.fast, true
}

// SetBindBucket replaces port's bind-bucket cache with b, as read from the
// running kernel (icsk_bind_hash). The port must be held by a socket of the
// host; the cache lives as long as the port has holders.
func (h *Host) SetBindBucket(p Proto, port uint16, b BindBucket) error {
	if p != TCP {
		return fmt.Errorf("set bind bucket %s/%d: only TCP ports have a bind-bucket cache", p, port)
	}
	if b.FastReuse < -1 || b.FastReuse > 1 {
		return fmt.Errorf("set bind bucket tcp/%d: FastReuse %d is not -1, 0 or 1", port, b.FastReuse)
	}
	if b.FastReuseport > FastReuseportStrict {
		return fmt.Errorf("set bind bucket tcp/%d: FastReuseport %d is not 0, 1 (any) or 2 (strict)", port, b.FastReuseport)
	}
	if b.FastReuseport != 0 && b.FastFamily != Inet && b.FastFamily != Inet6 {
		return fmt.Errorf("set bind bucket tcp/%d: FastFamily %s is not inet or inet6", port, b.FastFamily)
	}
	if b.FastReuseport != 0 && !b.FastRcvSaddr.IsValid() {
		return fmt.Errorf("set bind bucket tcp/%d: FastRcvSaddr is missing", port)
	}
	pb := h.tcp.ports.get(port)
	if pb == nil || pb.owners == 0 {
		return fmt.Errorf("set bind bucket tcp/%d: no socket holds the port", port)
	}
	b.known = true
	pb.fast = b
	return nil
}

// SetUDPSlotOthers says that n sockets the host's table does not hold
// share UDP port's hash slot (sockets of ports congruent to it modulo
// net.ipv4.udp_hash_entries, or of other namespaces that hash there): with
// the port's own holders more than ten, a bind to a specific address is
// checked on the hash2 chains (udp_lib_get_port). The live inspector uses
// it to try both sides of that count; n = 0 forgets it.
func (h *Host) SetUDPSlotOthers(port uint16, n int) error {
	if n < 0 {
		return fmt.Errorf("set udp slot others %d: %d is negative", port, n)
	}
	t := h.udp
	if n == 0 {
		delete(t.slotOthers, port)
		return nil
	}
	if t.slotOthers == nil {
		t.slotOthers = map[uint16]int{}
	}
	t.slotOthers[port] = n
	return nil
}

// fastPath is inet_csk_get_port's short-cut: a bind or listen on a port
// that has holders skips the conflict check when SO_REUSEADDR meets a
// bucket whose joiners all had it (tb->fastreuse > 0, the newcomer not
// listening), or sk_reuseport_match says the newcomer is one of the
// reuseport sharers the cache describes.
func (b *portBucket) fastPath(s *Socket, listening bool) bool {
	if b == nil || b.owners == 0 {
		return false
	}
	reuse := s.ReuseAddr() && !listening
	return (b.fast.FastReuse > 0 && reuse) || b.fast.reuseportMatch(s)
}

// reuseportMatch is sk_reuseport_match (net/ipv4/inet_connection_sock.c).
func (c *BindBucket) reuseportMatch(s *Socket) bool {
	if c.FastReuseport == 0 || !s.ReusePort() || c.FastUID != s.uid {
		return false
	}
	if c.FastReuseport == FastReuseportAny {
		return true
	}
	// Strict: the cached address must cover the newcomer's, wildcards
	// matching only on the cached side (match_sk1_wildcard).
	return rcvSaddrEqual(saddrOf(c.FastFamily, c.FastRcvSaddr, c.FastIPv6Only), saddrOf(s.fam, s.local.Addr(), s.V6Only()), true, false)
}

// updateFast is inet_csk_update_fastreuse, run after s joined the port
// (wasEmpty: nobody held it before).
func (b *portBucket) updateFast(s *Socket, wasEmpty, listening bool) {
	reuse := s.ReuseAddr() && !listening
	c := &b.fast
	if !wasEmpty && !c.known {
		return // a cache nobody told us about stays unknown
	}
	c.known = true
	set := func(mode uint8) {
		*c = BindBucket{FastReuse: c.FastReuse, FastReuseport: mode, FastUID: s.uid, FastIPv6Only: s.V6Only(),
			FastFamily: s.fam, FastRcvSaddr: s.local.Addr(), known: true}
	}
	if wasEmpty {
		// Linux 6.18 runs the first joiner through the same branch as the
		// later ones, on a fresh bucket (no fastreuse, no fastreuseport):
		// SO_REUSEADDR never sets tb->fastreuse, and SO_REUSEPORT resets
		// the cache to STRICT on the socket's own address, never ANY.
		// Checked against the kernel (testdata/replay/
		// tcp-bucket-cache-reuseport-cleared.scenario).
		c.FastReuse, c.FastReuseport = 0, 0
	}
	if !reuse {
		c.FastReuse = 0
	}
	switch {
	case !s.ReusePort():
		c.FastReuseport = 0
	case !c.reuseportMatch(s):
		set(FastReuseportStrict) // reset to this socket; later ones must match its address
	}
}

// saddr is a bound address as the kernel's address comparisons see it: the
// family, the IPv6 address (AF_INET6 only), the IPv4 view (sk_rcv_saddr) and
// IPV6_V6ONLY.
type saddr struct {
	v6       bool
	a6       netip.Addr
	v4       netip.Addr // 0.0.0.0 for ::, the embedded address for v4-mapped, invalid for other IPv6
	v6only   bool
	isMapped bool
}

func saddrOf(f Family, a netip.Addr, v6only bool) saddr {
	if f != Inet6 {
		return saddr{v4: a.Unmap(), isMapped: true}
	}
	s := saddr{v6: true, a6: a, v6only: v6only}
	switch {
	case a.IsUnspecified():
		s.v4 = netip.IPv4Unspecified()
	case a.Is4In6():
		s.v4, s.isMapped = a.Unmap(), true
	}
	return s
}

// rcvSaddrEqual is inet_rcv_saddr_equal with its wildcard switches:
// ipv6_rcv_saddr_equal when sk1 is AF_INET6, else ipv4_rcv_saddr_equal.
func rcvSaddrEqual(s1, s2 saddr, wild1, wild2 bool) bool {
	v4eq := func() bool {
		if s2.v6only {
			return false
		}
		if s1.v4.IsValid() && s1.v4 == s2.v4 {
			return true
		}
		return (wild1 && s1.v4 == netip.IPv4Unspecified()) || (wild2 && s2.v4 == netip.IPv4Unspecified())
	}
	if !s1.v6 {
		return v4eq()
	}
	any1, any2 := s1.a6.IsUnspecified(), s2.v6 && s2.a6.IsUnspecified()
	if s1.isMapped && s2.isMapped {
		return v4eq()
	}
	switch {
	case any1 && any2:
		return true
	case any2 && wild2 && !(s2.v6only && s1.isMapped):
		return true
	case any1 && wild1 && !(s1.v6only && s2.isMapped):
		return true
	}
	return s2.v6 && s1.a6 == s2.a6
}
