package engine

import "net/netip"

// cat is the shape of a bound address as the bind-conflict rules see it.
// Linux compares sockets by their IPv4 view and their IPv6 address
// (inet_rcv_saddr_equal, net/ipv4/inet_connection_sock.c): 0.0.0.0 and
// ::ffff:0.0.0.0 are the same wildcard, ::ffff:a.b.c.d is a.b.c.d, and a
// specific IPv6 address is implicitly IPV6_V6ONLY (__inet6_bind).
type cat uint8

const (
	catV4Any     cat = iota // 0.0.0.0, ::ffff:0.0.0.0
	catV4                   // a.b.c.d, ::ffff:a.b.c.d
	catV6AnyDual            // :: without IPV6_V6ONLY
	catV6AnyOnly            // :: with IPV6_V6ONLY
	catV6                   // a specific IPv6 address bound by bind() (always v6-only)
	catV6Dual               // a specific IPv6 source connect() gave a dual-stack socket: its IPv4 view is a never-matching placeholder, yet it is not v6-only, so IPv4 wildcards overlap it
	numCats
)

func (c cat) wildcard() bool { return c == catV4Any || c == catV6AnyDual || c == catV6AnyOnly }

// overlaps[s][e] says whether a socket of category s and one of category e
// on the same port claim a common address (given equal specific addresses
// where both are specific): inet_bind_conflict's address test
// (inet_rcv_saddr_equal / ipv6_rcv_saddr_equal with the v6only and
// v4-mapped cases), the matrix the kernel's bind_wildcard selftest exercises.
var overlaps = [numCats][numCats]bool{
	catV4Any:     {catV4Any: true, catV4: true, catV6AnyDual: true, catV6Dual: true},
	catV4:        {catV4Any: true, catV4: true, catV6AnyDual: true},
	catV6AnyDual: {true, true, true, true, true, true},
	catV6AnyOnly: {catV6AnyDual: true, catV6AnyOnly: true, catV6: true, catV6Dual: true},
	catV6:        {catV6AnyDual: true, catV6AnyOnly: true, catV6: true, catV6Dual: true},
	catV6Dual:    {catV4Any: true, catV6AnyDual: true, catV6AnyOnly: true, catV6: true, catV6Dual: true},
}

// addrKey is the identity of a specific bound address: its 16-byte form,
// where IPv4 and v4-mapped IPv6 coincide, as they share one bhash2 bucket
// in Linux.
type addrKey [16]byte

func keyOf(a netip.Addr) addrKey { return a.As16() }

var v4mappedPrefix = [12]byte{10: 0xff, 11: 0xff}

// category classifies a socket's local address, from its bytes (the hot
// path of every bind).
func (e endpoint) category(v6only bool) cat {
	if e.v4 || [12]byte(e.a[:12]) == v4mappedPrefix {
		if e.a[12]|e.a[13]|e.a[14]|e.a[15] == 0 {
			return catV4Any
		}
		return catV4
	}
	if e.a == ([16]byte{}) {
		if v6only {
			return catV6AnyOnly
		}
		return catV6AnyDual
	}
	if !v6only {
		return catV6Dual
	}
	return catV6
}

// isLoopback reports whether a is in 127/8, ::1 or ::ffff:127.0.0.0/104.
func isLoopback(a netip.Addr) bool { return a.Unmap().IsLoopback() }
