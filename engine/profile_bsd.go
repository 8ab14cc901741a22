package engine

import "time"

// The FreeBSD and macOS profiles. Both kernels keep 4.4BSD's in_pcbbind:
// the rules below are read from their source, cited per rule:
//
//   - FreeBSD: sys/netinet/in_pcb.c in_pcbbind_setup (14.x; in_pcbbind_avail
//     in later sources), sys/netinet6/in6_pcb.c in6_pcbbind_avail,
//     in_pcb_lport_dest, in_pcblookup_local; github.com/freebsd/freebsd-src.
//   - macOS: XNU bsd/netinet/in_pcb.c in_pcbbind and
//     bsd/netinet6/in6_pcb.c in6_pcbbind; github.com/apple-oss-distributions/xnu.
//
// The shared shape (both kernels):
//
//  1. A socket with neither SO_REUSEADDR nor SO_REUSEPORT looks the port up
//     with INPLOOKUP_WILDCARD: any holder whose address overlaps, connected
//     and TIME_WAIT ones included, is found and refuses the bind.
//  2. With either option the lookup is exact: only an unconnected holder
//     (no foreign address) of the identical local address is found. So
//     SO_REUSEADDR alone lets a specific bind sit next to a wildcard one, and
//     lets a restarted server bind over its own TIME_WAIT connections — the
//     TIME_WAIT socket's options do not matter, unlike Linux.
//  3. A holder found conflicts unless both sockets have SO_REUSEPORT
//     ("(reuseport & t->inp_socket->so_options) == 0" → EADDRINUSE):
//     SO_REUSEPORT on both allows completely duplicate bindings (FreeBSD
//     getsockopt(2)); SO_REUSEADDR on both does not.
//  4. A dual-stack [::] bind meets IPv4 holders too, but an AF_INET socket
//     on 0.0.0.0 does not refuse it; the reverse, 0.0.0.0 after a dual-stack
//     [::], is refused. (FreeBSD: "!in_nullhost(t->inp_laddr) ||
//     (t->inp_vflag & INP_IPV6PROTO)"; XNU: "t->inp_laddr.s_addr !=
//     INADDR_ANY || SOCK_DOM(so) == SOCK_DOM(t->inp_socket)".)
//  5. Before that, a non-root binder meets a test against holders of other
//     users (below); the two kernels differ there.
//
// The kernels test only the best match of a wildcard lookup (fewest
// wildcards); socktab tests every overlapping class of holder. The two
// differ only when several holders of different kinds share a port, e.g. a
// dual-stack [::] bind on a port held by both an AF_INET 0.0.0.0 socket
// (exempt by rule 4, and the kernel's best match) and an AF_INET specific
// one (refused here, passed by the kernel).
//
// Neither kernel checks again at listen(): in_pcbbind runs at bind only
// (tcp_usr_listen calls it only for an unbound socket).

// FreeBSD is FreeBSD 14/15's rules.
var FreeBSD = register(&Profile{
	Name: "freebsd",
	// sys/netinet6/in6_proto.c: "VNET_DEFINE(int, ip6_v6only) = 1;", the
	// default of net.inet6.ip6.v6only (inet6(4) "Defaults to on"; the man
	// page wording is quoted from the issue, the source value was checked).
	V6OnlyDefault: true,
	// sys/netinet/in.h IPPORT_EPHEMERALFIRST 10000, IPPORT_EPHEMERALLAST
	// 65535, the defaults of net.inet.ip.portrange.first/last
	// (sys/netinet/in_pcb.c ipport_firstauto/ipport_lastauto).
	PortLow: 10000, PortHigh: 65535,
	// in_pcbbind_setup: ports from net.inet.ip.portrange.reservedlow (0) to
	// reservedhigh (IPPORT_RESERVED - 1 = 1023) need PRIV_NETINET_RESERVEDPORT.
	PrivilegedBelow: 1024,
	// in_pcb_lport_dest: a random start (net.inet.ip.portrange.randomized=1)
	// then every port in turn; no parity.
	ParityPorts:   false,
	ListenRecheck: false,
	// SO_REUSEPORT_LB and IP_BINDANY exist but are not modelled.
	Options: []Option{SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY},
	Sources: []string{
		"FreeBSD sys/netinet/in_pcb.c in_pcbbind_setup, in_pcb_lport_dest, in_pcblookup_local",
		"FreeBSD sys/netinet6/in6_pcb.c in6_pcbbind_avail, in6_pcblookup_local",
		"FreeBSD sys/netinet/in.h IPPORT_EPHEMERALFIRST/LAST; ip(4) net.inet.ip.portrange.*",
		"FreeBSD inet6(4) net.inet6.ip6.v6only (default on); getsockopt(2) SO_REUSEPORT",
	},
	tcpRule: bsdRule(false, TCP), udpRule: bsdRule(false, UDP),
	conflictWhy: bsdWhy,
	// sys/netinet/tcp_timer.h TCPTV_MSL (30 s, net.inet.tcp.msl); TIME_WAIT
	// lasts 2*MSL (tcp_timer_2msl / tcp_twstart).
	TimeWait: 60 * time.Second,
	// sys/netinet/in_pcb.c in_pcblookup_hash_locked / _wild_locked.
	Lookup:      LookupBSD,
	connectPort: connectPortShared,
	connectNote: "FreeBSD in_pcb_lport_dest: random start, then each port in turn, shared across destinations",
})

// MacOS is XNU's rules (apple-oss-distributions/xnu, 2021+ sources).
var MacOS = register(&Profile{
	Name: "macos",
	// Contrary to common belief (and to the article this project grew from,
	// which says macOS sockets are IPv6-only by default), XNU's
	// bsd/netinet6/in6_proto.c has "int ip6_v6only = 0;": an AF_INET6 socket
	// on macOS is dual-stack unless IPV6_V6ONLY is set. socktab follows the
	// source; net.inet6.ip6.v6only reads 0 on a stock macOS.
	V6OnlyDefault: false,
	// bsd/netinet/in_pcb.c: ipport_firstauto = IPPORT_HIFIRSTAUTO (49152),
	// ipport_lastauto = IPPORT_HILASTAUTO (65535).
	PortLow: 49152, PortHigh: 65535,
	// in_pcbbind (#if XNU_TARGET_OS_OSX): a port below IPPORT_RESERVED
	// needs PRIV_NETINET_RESERVEDPORT only when "SIN(nam)->sin_addr.s_addr
	// != 0"; in6_pcbbind likewise only for a specific address
	// ("!IN6_IS_ADDR_UNSPECIFIED"). Binding 0.0.0.0:80 or [::]:80 needs no
	// root (the macOS 10.14 change); 127.0.0.1:80 still does.
	PrivilegedBelow: 1024, PrivilegedSpecificOnly: true,
	// in_pcbbind: a random start (net.inet.ip.portrange randomisation,
	// tcp_use_randomport/udp_use_randomport) then every port; no parity.
	ParityPorts:   false,
	ListenRecheck: false,
	Options:       []Option{SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY},
	Sources: []string{
		"XNU bsd/netinet/in_pcb.c in_pcbbind, ipport_firstauto/lastauto",
		"XNU bsd/netinet6/in6_pcb.c in6_pcbbind",
		"XNU bsd/netinet6/in6_proto.c ip6_v6only = 0 (dual-stack by default)",
	},
	tcpRule: bsdRule(true, TCP), udpRule: bsdRule(true, UDP),
	conflictWhy: bsdWhy,
	// bsd/netinet/tcp_timer.h TCPTV_MSL is 15 s (net.inet.tcp.msl);
	// tcp_input enters TIME_WAIT with 2 * tcp_msl.
	TimeWait: 30 * time.Second,
	// bsd/netinet/in_pcb.c in_pcblookup_hash.
	Lookup:      LookupBSD,
	connectPort: connectPortUnused,
	connectNote: "XNU in_pcbbind (implicit bind): random start, then upwards; a port nobody holds",
})

const (
	ruleBSDConflict Rule = "in_pcbbind: without SO_REUSEADDR/SO_REUSEPORT any overlapping socket refuses the bind; " +
		"with them an unconnected socket on the same address does, unless both set SO_REUSEPORT"
	ruleBSDConnection Rule = "in_pcbbind: a connection or TIME_WAIT socket holds the port; " +
		"SO_REUSEADDR or SO_REUSEPORT on the new socket looks past connections"
	ruleBSDOtherUser Rule = "in_pcbbind: another user's socket holds the port; SO_REUSE* shares only among one user's sockets"
)

// bsdWhy words a conflict for the trace: the other-user test when binder
// and holder differ and the binder is not root, else by the holder's state.
func bsdWhy(_ Errno, s, other *Socket) Rule {
	if other == nil {
		return ruleBSDConflict
	}
	if s.uid != 0 && s.uid != other.uid {
		return ruleBSDOtherUser
	}
	switch other.kind() {
	case kConnected, kTimeWait:
		return ruleBSDConnection
	}
	return ruleBSDConflict
}

// bsdRule builds in_pcbbind's test for one kernel and protocol. xnu selects
// XNU's other-user test and its always-wildcard port search.
func bsdRule(xnu bool, proto Proto) conflictRule {
	return func(s, e attrs, exact bool, m mode) Errno {
		connected := e.kind == kConnected || e.kind == kTimeWait // inp_faddr set
		wild := !s.reuse && !s.reuseport                         // INPLOOKUP_WILDCARD
		if m != modeExplicit {
			// The port-0 search takes a port only if the lookup finds
			// nobody; SO_REUSEPORT shares nothing here. FreeBSD's
			// in_pcb_lport_dest uses the socket's lookup flags; XNU's
			// in_pcbbind sets "wild = 1" for an implicit bind.
			if wild || xnu || (exact && !connected) {
				return EADDRINUSE
			}
			return OK
		}
		if s.uid != 0 && s.uid != e.uid && bsdOtherUser(xnu, proto, &s, &e, connected) {
			return EADDRINUSE
		}
		if !wild && (!exact || connected) {
			return OK // rule 2: the exact lookup does not see e
		}
		if s.reuseport && e.reuseport {
			return OK // rule 3
		}
		if exact && bsdDualExempt(&s, &e) {
			return OK // rule 4
		}
		return EADDRINUSE
	}
}

// bsdDualExempt is rule 4 for two wildcard holders: a dual-stack [::] bind
// passes an AF_INET 0.0.0.0 holder (in6_pcbbind's IPv4 lookup), and in
// in_pcbbind's own test two AF_INET6 sockets on wildcards pass each other.
func bsdDualExempt(s, e *attrs) bool {
	if s.cat == catV6AnyDual && e.cat == catV4Any && e.fam == Inet {
		return true
	}
	return s.cat == catV4Any && s.fam == Inet6 && e.fam == Inet6
}

// bsdOtherUser is the test a binder other than root meets against a
// holder e of another user (found by a wildcard lookup, so any overlapping
// holder).
//
// FreeBSD (in_pcbbind_setup, in6_pcbbind_avail, skipped with
// PRIV_NETINET_REUSEPORT, i.e. for root): refused unless the binder is TCP
// and e is a connected socket ("we can share a port with a connected socket
// which has a unique 4-tuple"). SO_REUSEPORT does not help: "SO_REUSE* can
// only be used to share a port among sockets owned by the same user". (The
// 14.x IPv4 code exempts a both-wildcard holder with SO_REUSEPORT_LB only,
// which socktab does not model.)
//
// XNU (skipped for uid 0): connected holders are not exempt. On the IPv4
// path (in_pcbbind) the test applies only when either address is specific;
// on the IPv6 path (in6_pcbbind) it applies unless both are wildcards and e
// has SO_REUSEPORT, and against IPv4 holders of a dual-stack [::] bind
// unless e has SO_REUSEPORT or is an AF_INET socket on 0.0.0.0.
func bsdOtherUser(xnu bool, proto Proto, s, e *attrs, connected bool) bool {
	if !xnu {
		return proto != TCP || !connected
	}
	eitherSpecific := !s.cat.wildcard() || !e.cat.wildcard()
	switch {
	case s.cat == catV4Any || s.cat == catV4: // in_pcbbind
		return eitherSpecific
	case s.cat == catV6AnyDual && (e.cat == catV4Any || e.cat == catV4): // in6_pcbbind, IPv4 side
		return !e.reuseport && (e.cat == catV4 || e.fam == Inet6)
	}
	return eitherSpecific || !e.reuseport // in6_pcbbind, IPv6 side
}
