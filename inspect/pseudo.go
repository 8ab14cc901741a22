package inspect

import (
	"fmt"
	"strings"

	"github.com/socktab/socktab/engine"
)

// pseudoKind is an unknown the answer may turn on that is not a set of
// sockets' options: each kind says, in one place, how many values it is
// tried with, what a value changes in the load of the port's table, which
// value the loader itself takes, and how the answer's dependence on it
// reads.
type pseudoKind interface {
	// values is how many values the unknown is tried with.
	values() int
	// apply sets value x on a load of the port's table.
	apply(x int, p *loadPlan)
	// inferred is the value the loader takes when nothing was read.
	inferred() int
	// explain says what the answer turns on, given the group's desc, the
	// values that gave the good outcome (okWith) and the question's verb.
	explain(desc string, okWith map[int]bool, verb string) string
	// unread says whether the unknown is something the reader left unread
	// on the port (an answer tried over it and found the same is then
	// marked Inferred), not a count that no read of the port shows.
	unread() bool
}

// loadPlan is what the pseudo-groups set on a load of the port's table
// besides the sockets' options.
type loadPlan struct {
	v6First bool                 // load's v6First
	after   []func(*Table) error // run on the loaded table
}

// afterIf has f run on the loaded table when on (a kind's value applies).
func (p *loadPlan) afterIf(on bool, f func(*Table) error) {
	if on {
		p.after = append(p.after, f)
	}
}

// chainOrder is the unknown of a UDP port whose IPv4 and IPv6 sockets were
// not placed on the port's chain by the BPF reader: which family was bound
// more recently (load's v6First). Value 1 puts the IPv6 sockets first; the
// loader puts IPv4 first.
type chainOrder struct{}

func (chainOrder) values() int   { return 2 }
func (chainOrder) inferred() int { return 0 }
func (chainOrder) unread() bool  { return true }

func (chainOrder) apply(x int, p *loadPlan) { p.v6First = x == 1 }

func (chainOrder) explain(desc string, okWith map[int]bool, verb string) string {
	newer := "IPv4"
	if okWith[1] && !okWith[0] {
		newer = "IPv6"
	}
	if okWith[0] == okWith[1] {
		return desc + ": the answer depends on which were bound more recently (the port's chain order, read only by the BPF reader)"
	}
	what := "the bind succeeds"
	if !strings.HasPrefix(verb, "allow ") {
		what = "the packet goes as shown"
	}
	return fmt.Sprintf("%s: %s only if the %s ones were bound more recently (udp_lib_lport_inuse meets the newest first; the order across families is read only by the BPF reader)", desc, what, newer)
}

// bindCache is the unknown of a TCP port whose bind-bucket cache nobody
// read (engine.Host.BindBucketKnown), for the bind question r: tried as
// the full check alone (0, the loader's choice: no fast path) and as a
// cache that lets r's socket through (1), see cacheLetsThrough.
type bindCache struct{ r BindRequest }

func (bindCache) values() int   { return 2 }
func (bindCache) inferred() int { return 0 }
func (bindCache) unread() bool  { return true }

func (c bindCache) apply(x int, p *loadPlan) {
	p.afterIf(x == 1, func(t *Table) error {
		return t.Host.SetBindBucket(engine.TCP, c.r.Addr.Port(), cacheLetsThrough(c.r))
	})
}

func (c bindCache) explain(desc string, _ map[int]bool, _ string) string {
	return fmt.Sprintf("%s: the bind succeeds only if the kernel's cache (tb->fastreuseport, read only by the BPF reader) was last reset by a SO_REUSEPORT socket of uid %d on %s, which lets it skip the conflict check", desc, c.r.UID, c.r.Addr.Addr())
}

// cacheLetsThrough is the bind-bucket cache under which r's socket skips
// inet_csk_get_port's conflict check on Linux 6.18 (sk_reuseport_match):
// FASTREUSEPORT_STRICT, last reset by a SO_REUSEPORT socket of r's owner
// on r's own address. The kernel holds such a cache when that socket
// joined the port after every holder that refuses r now (an earlier
// SO_REUSEADDR holder that has started listening since, say, or one that
// has left) and only matching sharers joined after it. Without SO_REUSEPORT
// nothing lets r through: on 6.18 no join sets tb->fastreuse.
func cacheLetsThrough(r BindRequest) engine.BindBucket {
	fam := engine.Inet
	if r.Addr.Addr().Is6() {
		fam = engine.Inet6
	}
	return engine.BindBucket{FastReuseport: engine.FastReuseportStrict, FastUID: r.UID,
		FastIPv6Only: r.V6Only, FastFamily: fam, FastRcvSaddr: r.Addr.Addr()}
}

// udpSlot is the unknown of a UDP port that has ten sockets or fewer: how
// many others share its hash slot. The slot also holds the sockets of
// ports net.ipv4.udp_hash_entries apart in the namespace and those of
// other namespaces that hash there, which the snapshot does not count;
// with more than ten in all, udp_lib_get_port checks a bind to a specific
// address on the address's own hash2 chain, then the wildcards'
// (udp_lib_lport_inuse2), which a SO_REUSEPORT sharer does not end. Value
// 1 fills the slot to eleven; the loader counts the port's own sockets
// alone.
type udpSlot struct {
	port uint16
	own  int // the port's sockets in the snapshot
}

func (udpSlot) values() int   { return 2 }
func (udpSlot) inferred() int { return 0 }
func (udpSlot) unread() bool  { return false } // a count no read of one namespace shows

func (u udpSlot) apply(x int, p *loadPlan) {
	p.afterIf(x == 1, func(t *Table) error {
		return t.Host.SetUDPSlotOthers(u.port, udpSlotCrowded-u.own)
	})
}

func (u udpSlot) explain(desc string, okWith map[int]bool, _ string) string {
	if okWith[0] && !okWith[1] {
		return fmt.Sprintf("%s: the bind succeeds only while the slot holds ten sockets or fewer: it holds this port's %d and those of other ports and namespaces that hash there, a count read only by the BPF reader (with more, the kernel checks the address's own chain, then the wildcards', udp_lib_lport_inuse2)", desc, u.own)
	}
	return fmt.Sprintf("%s: the answer depends on how many sockets of other ports and namespaces share the slot, a count read only by the BPF reader (this port has %d; more than ten in all change the kernel's check)", desc, u.own)
}

// udpSlotCrowded is the smallest slot count that takes a specific bind to
// the hash2 chains (udp_lib_get_port: hslot->count > 10).
const udpSlotCrowded = 11
