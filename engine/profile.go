package engine

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// LookupRule is how a profile picks the receiver of an arriving segment
// or datagram among the sockets bound to one address.
type LookupRule uint8

const (
	// LookupLinux: compute_score (AF_INET and a bound device score
	// higher), the first SO_REUSEPORT socket reached hands over to its
	// group, which picks a member by a 4-tuple hash.
	LookupLinux LookupRule = iota
	// LookupBSD: in_pcblookup_hash (FreeBSD, XNU): a socket on the exact
	// local address first, the most recently bound of them; then a
	// wildcard one, AF_INET before a v4-mapped AF_INET6 socket for IPv4.
	// SO_REUSEPORT forms no group: the newest socket takes unicast.
	LookupBSD
	// LookupWinsock: one socket on an address receives; between
	// SO_REUSEADDR sharers Microsoft documents the choice as
	// indeterminate, and socktab answers so.
	LookupWinsock
)

// Profile is one operating system's rules. Every OS difference lives here;
// each rule names its source.
type Profile struct {
	Name string
	// V6OnlyDefault is IPV6_V6ONLY on a new AF_INET6 socket. Linux reads
	// net.ipv6.bindv6only instead (V6OnlyFromSysctl).
	V6OnlyDefault    bool
	V6OnlyFromSysctl bool
	PortLow          int // default ephemeral range
	PortHigh         int
	PrivilegedBelow  int  // ports below this need root; 0: none
	ParityPorts      bool // bind(0) prefers odd, connect() even (Linux ≥ 4.6)
	ListenRecheck    bool // listen() re-runs the bind-conflict check (Linux inet_csk_listen_start)
	// BindBucketCache: TCP bind and listen take inet_csk_get_port's fast
	// paths through the port's cached fastreuse / fastreuseport state
	// (bucket.go).
	BindBucketCache bool
	// TimeWait is how long a connection that closed first holds its
	// 4-tuple and port (Linux TCP_TIMEWAIT_LEN, the BSDs' 2*MSL, Windows'
	// TcpTimedWaitDelay). An orphaned FIN_WAIT2 is held as long.
	TimeWait time.Duration
	// Lookup is the rule that picks a receiver among the listeners (TCP)
	// or unconnected sockets (UDP) of one address bucket.
	Lookup LookupRule
	// connectPort picks connect()'s ephemeral port; nil is Linux's
	// (__inet_hash_connect, connect.go).
	connectPort func(t *table, s *Socket, src netip.Addr, dst netip.AddrPort) (uint16, bool)
	// connectNote is said in the trace of a connect whose port the
	// profile chose, for what it does not model there.
	connectNote string
	// UDPFirstOwner: an explicit UDP bind is decided by the newest
	// overlapping holder alone (udp_lib_lport_inuse).
	UDPFirstOwner    bool
	Options          []Option
	Sources          []string // where the rules come from; the trace of an "os" step shows them
	tcpRule, udpRule conflictRule
	errName          func(Errno) string

	conflictWhy func(e Errno, s, holder *Socket) Rule // the trace's reason for a bind conflict; nil: Linux's

	// PrivilegedSpecificOnly: below PrivilegedBelow only a bind to a
	// specific address needs root, a wildcard bind does not (XNU in_pcbbind).
	PrivilegedSpecificOnly bool

	// Multicast: the profile models broadcast and multicast delivery and
	// group membership (Join). Profiles without it refuse both rather than
	// borrow Linux's rules.
	Multicast bool
}

// conflictRule decides whether a new socket with attributes s may share a
// port with holder e whose address overlaps; exact says the two addresses
// are identical (both wildcards, or the same specific address). The
// attributes are passed by value: a pointer to the caller's copy would
// escape through the function value and cost an allocation per bind.
type conflictRule func(s, e attrs, exact bool, m mode) Errno

func (p *Profile) conflictRule(proto Proto) conflictRule {
	if proto == UDP {
		return p.udpRule
	}
	return p.tcpRule
}

// Supports reports whether the profile knows option o.
func (p *Profile) Supports(o Option) bool {
	for _, x := range p.Options {
		if x == o {
			return true
		}
	}
	return false
}

// ErrnoName is the platform's own spelling of e, for the trace.
func (p *Profile) ErrnoName(e Errno) string {
	if p.errName == nil {
		return e.String()
	}
	return p.errName(e)
}

func (p *Profile) v6onlyDefault(h *Host) bool {
	if p.V6OnlyFromSysctl {
		return h.Sysctl.BindV6Only
	}
	return p.V6OnlyDefault
}

// DefaultSysctls are a new host's settings under this profile.
func (p *Profile) DefaultSysctls() Sysctls {
	return Sysctls{
		PortLow: p.PortLow, PortHigh: p.PortHigh, UnprivilegedStart: p.PrivilegedBelow,
		TWReuse: 2, TWReuseDelay: time.Second,
	}
}

// Profiles lists every profile by name.
var Profiles = map[string]*Profile{}

// ProfileByName returns the profile called name.
func ProfileByName(name string) (*Profile, error) {
	p, ok := Profiles[name]
	if !ok {
		names := make([]string, 0, len(Profiles))
		for n := range Profiles {
			names = append(names, n)
		}
		return nil, fmt.Errorf("unknown os %q (known: %s)", name, strings.Join(sortStrings(names), ", "))
	}
	return p, nil
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

func register(p *Profile) *Profile { Profiles[p.Name] = p; return p }

var allOptions = []Option{SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY, IP_FREEBIND, SO_BINDTODEVICE,
	IP_LOCAL_PORT_RANGE, IP_BIND_ADDRESS_NO_PORT, IP_MULTICAST_ALL, IPV6_MULTICAST_ALL}

// Linux is the kernel's rules as of v6.18, verified against the running
// kernel by the replay tests in kerneltest/.
var Linux = register(&Profile{
	Name: "linux", V6OnlyFromSysctl: true,
	PortLow: 32768, PortHigh: 60999, // af_inet.c inet_init_net
	PrivilegedBelow: 1024, // PROT_SOCK, net.ipv4.ip_unprivileged_port_start
	ParityPorts:     true, ListenRecheck: true, Multicast: true, BindBucketCache: true, UDPFirstOwner: true,
	TimeWait: 60 * time.Second, // TCP_TIMEWAIT_LEN, include/net/tcp.h (and tcp_fin_timeout's default)
	Lookup:   LookupLinux,
	Options:  allOptions,
	Sources: []string{"Linux v6.18 net/ipv4/inet_connection_sock.c inet_bind_conflict, inet_csk_get_port",
		"net/ipv4/udp.c udp_lib_lport_inuse", "net/ipv4/inet_hashtables.c __inet_hash_connect, __inet_lookup_listener"},
	tcpRule: linuxTCPRule, udpRule: linuxUDPRule,
})

// linuxTCPRule is inet_bind_conflict (net/ipv4/inet_connection_sock.c):
// holders may share when both have SO_REUSEADDR and the holder is not
// listening, or both have SO_REUSEPORT and the same owner uid (a TIME_WAIT
// holder exempt from the uid test). The port-0 search (relax=false,
// reuseport_ok=false) never shares.
func linuxTCPRule(s, e attrs, _ bool, m mode) Errno {
	if s.dev != 0 && e.dev != 0 && s.dev != e.dev {
		return OK
	}
	relax, reuseportOK := m != modeAuto, m == modeExplicit
	conflict := false
	if s.reuse && e.reuse && e.kind != kListen {
		conflict = !relax || (!reuseportOK && s.reuseport && e.reuseport && (e.kind == kTimeWait || s.uid == e.uid))
	} else {
		conflict = !reuseportOK || !s.reuseport || !e.reuseport || (e.kind != kTimeWait && s.uid != e.uid)
	}
	if conflict {
		return EADDRINUSE
	}
	return OK
}

// linuxUDPRule is udp_lib_lport_inuse (net/ipv4/udp.c): SO_REUSEADDR on
// both shares with no uid test; SO_REUSEPORT on both needs the same uid.
func linuxUDPRule(s, e attrs, _ bool, _ mode) Errno {
	if s.reuse && e.reuse {
		return OK
	}
	if s.dev != 0 && e.dev != 0 && s.dev != e.dev {
		return OK
	}
	if s.reuseport && e.reuseport && s.uid == e.uid {
		return OK
	}
	return EADDRINUSE
}
