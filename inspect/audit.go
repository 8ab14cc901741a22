package inspect

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/socktab/socktab/engine"
)

// Severity ranks a finding.
type Severity int

const (
	Info Severity = iota
	Low
	Medium
	High
)

var sevNames = []string{"info", "low", "medium", "high"}

func (s Severity) String() string { return sevNames[s] }

// ParseSeverity reads info|low|medium|high, in any case.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range sevNames {
		if strings.EqualFold(n, s) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want info, low, medium or high)", s)
}

// specialRanges are the special-purpose ranges (RFC 6890 and the IANA
// registries) a listener's address may fall in, each with its class. An
// address in none of them, and not loopback, link-local or private, is
// "public". First match wins.
var specialRanges = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("100.64.0.0/10"), "cgnat"},            // RFC 6598 shared address space
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},     // RFC 5737 TEST-NET-1
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},  // RFC 5737 TEST-NET-2
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},   // RFC 5737 TEST-NET-3
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},    // RFC 3849
	{netip.MustParsePrefix("3fff::/20"), "documentation"},        // RFC 9637
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},     // RFC 2544
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking"},       // RFC 5180
	{netip.MustParsePrefix("fc00::/7"), "ula"},                   // RFC 4193
	{netip.MustParsePrefix("192.0.0.0/24"), "special-purpose"},   // RFC 6890 IETF protocol assignments
	{netip.MustParsePrefix("192.88.99.0/24"), "special-purpose"}, // RFC 7526 deprecated 6to4 relay anycast
	{netip.MustParsePrefix("0.0.0.0/8"), "special-purpose"},      // RFC 1122 "this network"
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},           // RFC 1112 reserved for future use
	{netip.MustParsePrefix("100::/64"), "special-purpose"},       // RFC 6666 discard-only
	{netip.MustParsePrefix("2001::/23"), "special-purpose"},      // RFC 2928 IETF protocol assignments
	{netip.MustParsePrefix("64:ff9b:1::/48"), "special-purpose"}, // RFC 8215 local-use NAT64
}

// Class is the reach of an address: loopback, link-local, private,
// cgnat, ula, documentation, benchmarking, special-purpose, reserved,
// multicast or public.
func Class(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	case a.IsPrivate() && a.Is4():
		return "private"
	}
	for _, r := range specialRanges {
		if r.prefix.Contains(a) {
			return r.class
		}
	}
	return "public"
}

// Documentation, benchmarking and other special-purpose addresses are not
// routed on the Internet, so they rank with private ones: whoever routes
// them to this host reaches the listener.
var classSeverity = map[string]Severity{"loopback": Info, "link-local": Low, "private": Medium, "cgnat": Medium,
	"ula": Medium, "documentation": Medium, "benchmarking": Medium, "special-purpose": Medium, "reserved": Medium,
	"multicast": Medium, "public": High}

// Exposure is one listener and the concrete addresses it accepts on.
type Exposure struct {
	Socket *engine.Socket
	// Group is every member when Socket leads a SO_REUSEPORT group (one
	// finding for the group), else nil.
	Group    []*engine.Socket
	Accepts  []netip.Addr
	Classes  []string
	Severity Severity
	Finding  string
	Fix      string
}

// Audit lists every TCP listener and bound UDP socket with the addresses
// it actually receives on: each address of this host is looked up through
// the engine, so wildcards expand over the interfaces, dual-stack [::]
// takes IPv4 too, and addresses a more specific listener holds are not
// counted. Most severe first.
func (t *Table) Audit() []Exposure {
	type local struct {
		a  netip.Addr
		in []int // the interfaces a packet to a can arrive on (ingresses)
	}
	bound := t.boundDevices()
	var addrs []local
	for _, i := range t.Host.Ifaces {
		for _, p := range i.Addrs {
			addrs = append(addrs, local{p.Addr(), t.ingresses(p.Addr(), i, bound)})
		}
	}
	var out []Exposure
	grouped := map[*engine.Socket]bool{}
	for _, s := range t.Sockets() {
		if grouped[s] {
			continue // reported with its SO_REUSEPORT group
		}
		isListener := (s.Proto() == engine.TCP && s.State() == engine.Listen) ||
			(s.Proto() == engine.UDP && s.State() == engine.Closed && s.Local().Port() != 0)
		if !isListener {
			continue
		}
		e := Exposure{Socket: s}
		seen := map[string]bool{}
		if la := s.Local().Addr().Unmap(); s.Proto() == engine.UDP && t.Host.IsGroupcast(la) {
			// Bound to a broadcast address or a multicast group: it takes
			// the datagrams sent there (no unicast address is its).
			e.Accepts, e.Classes, e.Severity = []netip.Addr{la}, []string{Class(la)}, classSeverity[Class(la)]
			e.Finding, e.Fix = describe(s, e)
			out = append(out, e)
			continue
		}
		for _, l := range addrs {
			a := l.a
			dst := netip.AddrPortFrom(a, s.Local().Port())
			var d engine.Delivery
			for _, dev := range l.in {
				d = t.Host.Lookup(engine.Packet{Proto: s.Proto(), Src: DefaultSource(a), Dst: dst, Flags: engine.FlagSYN, Dev: dev})
				if d.Socket == s || contains(d.Group, s) {
					break
				}
			}
			if d.Socket != s && !contains(d.Group, s) {
				continue
			}
			if len(d.Group) > 1 && e.Group == nil {
				e.Group = d.Group
				for _, g := range d.Group {
					grouped[g] = true
				}
			}
			e.Accepts = append(e.Accepts, a)
			c := Class(a)
			if !seen[c] {
				seen[c] = true
				e.Classes = append(e.Classes, c)
			}
			if classSeverity[c] > e.Severity {
				e.Severity = classSeverity[c]
			}
		}
		e.Finding, e.Fix = describe(s, e)
		if dv := s.Device(); dv != 0 && len(e.Accepts) > 0 {
			e.Finding += fmt.Sprintf(" (bound to %s: only packets arriving there)", t.ifaceName(dv))
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Severity > out[j].Severity })
	return out
}

// ingresses are the interfaces a packet to a, an address of interface i,
// can arrive on from where audit looks from: a loopback address only on
// a loopback interface (from this host: nothing outside may send one); a
// link-local address only on its own link; any other address on every
// interface but loopback ones (Linux accepts any local address on any
// interface, so an address configured on lo is reached from outside
// through the others, and a socket bound to one device takes what arrives
// there for every address).
//
// Interfaces that no socket is bound to (bound) give the same lookup, so
// only the first of them is listed: audit's cost does not grow with a
// host's many unaddressed interfaces (container veths).
func (t *Table) ingresses(a netip.Addr, i *engine.Iface, bound map[int]bool) []int {
	switch {
	case a.Unmap().IsLoopback():
		return []int{i.Index}
	case a.IsLinkLocalUnicast():
		return []int{i.Index}
	}
	var in []int
	plain := false
	for _, j := range t.Host.Ifaces {
		if j.Loopback || !bound[j.Index] && plain {
			continue
		}
		plain = plain || !bound[j.Index]
		in = append(in, j.Index)
	}
	if len(in) == 0 {
		return []int{i.Index} // a host of loopback only: what reaches it comes from itself
	}
	return in
}

// boundDevices are the interfaces some socket is bound to
// (SO_BINDTODEVICE): only these tell one ingress from another in a lookup,
// so of the others the first stands for all.
func (t *Table) boundDevices() map[int]bool {
	bound := map[int]bool{}
	for _, s := range t.Sockets() {
		if d := s.Device(); d != 0 {
			bound[d] = true
		}
	}
	return bound
}

func contains(g []*engine.Socket, s *engine.Socket) bool {
	for _, x := range g {
		if x == s {
			return true
		}
	}
	return false
}

func describe(s *engine.Socket, e Exposure) (string, string) {
	local := fmtAP(s.Local())
	if len(e.Accepts) == 0 {
		return local + " receives nothing: every address it covers is taken by a more specific socket", ""
	}
	dual := s.Family() == engine.Inet6 && s.Local().Addr().IsUnspecified() && !s.V6Only()
	wild := s.Local().Addr().Unmap().IsUnspecified()
	switch e.Severity {
	case High, Medium:
		parts := make([]string, len(e.Accepts))
		for i, a := range e.Accepts {
			parts[i] = a.String() + " (" + Class(a) + ")"
		}
		what := fmt.Sprintf("%s %s accepts on %s", s.Proto(), local, strings.Join(parts, ", "))
		if len(e.Group) > 1 {
			what = fmt.Sprintf("%s (a SO_REUSEPORT group of %d sockets)", what, len(e.Group))
		}
		loop := "127.0.0.1"
		switch {
		case dual:
			loop = "127.0.0.1 or [::1]"
		case s.Family() == engine.Inet6:
			loop = "[::1]"
		}
		fix := "bind " + loop + " if only local clients need it"
		if wild {
			fix = "bind a specific address instead of the wildcard, e.g. " + loop + " or the private address clients use"
		}
		if dual {
			what += "; [::] is dual-stack, so IPv4 clients reach it too"
			fix += "; set IPV6_V6ONLY=1 if IPv4 is not meant"
		}
		return what, fix
	case Low:
		return fmt.Sprintf("%s %s accepts on link-local addresses only", s.Proto(), local), "bind loopback if the link need not reach it"
	}
	return fmt.Sprintf("%s %s is reachable from this host only", s.Proto(), local), ""
}

// ifaceName names the interface with kernel index idx ("if7" when none
// has it, as ss writes it).
func (t *Table) ifaceName(idx int) string {
	for _, i := range t.Host.Ifaces {
		if i.Index == idx {
			return i.Name
		}
	}
	return fmt.Sprintf("if%d", idx)
}
