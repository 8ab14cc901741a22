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

// ParseSeverity reads info|low|medium|high.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range sevNames {
		if n == s {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want info, low, medium or high)", s)
}

// Class is the reach of an address.
func Class(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.Is4() && netip.MustParsePrefix("100.64.0.0/10").Contains(a):
		return "cgnat"
	case a.Is6() && netip.MustParsePrefix("fc00::/7").Contains(a):
		return "ula"
	case a.IsPrivate():
		return "private"
	}
	return "public"
}

var classSeverity = map[string]Severity{"loopback": Info, "link-local": Low, "private": Medium, "cgnat": Medium, "ula": Medium, "public": High}

// Exposure is one listener and the concrete addresses it accepts on.
type Exposure struct {
	Socket   *engine.Socket
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
	var addrs []netip.Addr
	for _, i := range t.Host.Ifaces {
		for _, p := range i.Addrs {
			addrs = append(addrs, p.Addr())
		}
	}
	var out []Exposure
	for _, s := range t.Host.Sockets() {
		isListener := (s.Proto() == engine.TCP && s.State() == engine.Listen) ||
			(s.Proto() == engine.UDP && s.State() == engine.Closed && s.Local().Port() != 0)
		if !isListener {
			continue
		}
		e := Exposure{Socket: s}
		seen := map[string]bool{}
		for _, a := range addrs {
			dst := netip.AddrPortFrom(a, s.Local().Port())
			d := t.Host.Lookup(engine.Packet{Proto: s.Proto(), Src: DefaultSource(a), Dst: dst, Flags: engine.FlagSYN})
			if d.Socket != s && !contains(d.Group, s) {
				continue
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
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Severity > out[j].Severity })
	return out
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
		fix := "bind 127.0.0.1 (or ::1) if only local clients need it"
		if wild {
			fix = "bind a specific address instead of the wildcard, e.g. 127.0.0.1 or the private address clients use"
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
