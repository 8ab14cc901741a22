package main

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/report"
)

// ssStates maps every state name ls accepts (ss's filter names, the names
// ss prints, and TIME_WAIT-style spellings; case and '-'/'_' do not matter)
// to the printed states it selects.
var ssStates = func() map[string][]string {
	all := []string{"ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSE", "UNCONN",
		"CLOSE-WAIT", "LAST-ACK", "LISTEN", "CLOSING"}
	without := func(drop ...string) []string {
		var out []string
		for _, s := range all {
			keep := true
			for _, d := range drop {
				keep = keep && s != d
			}
			if keep {
				out = append(out, s)
			}
		}
		return out
	}
	m := map[string][]string{
		"established": {"ESTAB"}, "estab": {"ESTAB"},
		"syn-sent": {"SYN-SENT"}, "syn-recv": {"SYN-RECV"},
		"fin-wait-1": {"FIN-WAIT-1"}, "fin-wait-2": {"FIN-WAIT-2"},
		"time-wait": {"TIME-WAIT"}, "closed": {"CLOSE", "UNCONN"}, "close": {"CLOSE", "UNCONN"},
		"unconn": {"CLOSE", "UNCONN"}, "close-wait": {"CLOSE-WAIT"}, "last-ack": {"LAST-ACK"},
		"listening": {"LISTEN"}, "listen": {"LISTEN"}, "closing": {"CLOSING"},
		"all":          all,
		"connected":    without("LISTEN", "CLOSE", "UNCONN"),
		"synchronized": without("LISTEN", "CLOSE", "UNCONN", "SYN-SENT"),
		"bucket":       {"SYN-RECV", "TIME-WAIT"},
		"big":          without("SYN-RECV", "TIME-WAIT"),
	}
	return m
}()

// stateBits are the kernel states behind each printed state, so a state
// filter is applied in the kernel too.
var stateBits = map[string]uint32{
	"ESTAB": 1 << live.TCPEstablished, "SYN-SENT": 1 << live.TCPSynSent,
	"SYN-RECV": 1<<live.TCPSynRecv | 1<<live.TCPNewSynRecv, "FIN-WAIT-1": 1 << live.TCPFinWait1,
	"FIN-WAIT-2": 1 << live.TCPFinWait2, "TIME-WAIT": 1 << live.TCPTimeWait,
	"CLOSE": 1<<live.TCPClose | 1<<live.TCPBoundInactive, "UNCONN": 1 << live.TCPClose,
	"CLOSE-WAIT": 1 << live.TCPCloseWait, "LAST-ACK": 1 << live.TCPLastAck,
	"LISTEN": 1 << live.TCPListen, "CLOSING": 1 << live.TCPClosing,
}

// parseStates reads --state values (each may be a comma list) into the
// set of printed states and the kernel mask.
func parseStates(vals []string) (map[string]bool, uint32, error) {
	set := map[string]bool{}
	var mask uint32
	for _, v := range vals {
		for _, name := range strings.Split(v, ",") {
			key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "_", "-")
			states, ok := ssStates[key]
			if !ok {
				return nil, 0, fmt.Errorf("--state %q: unknown state (want an ss state: established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing, or all, connected, synchronized, bucket, big; LISTEN, ESTAB, TIME-WAIT, TIME_WAIT and UNCONN also work)", name)
			}
			for _, s := range states {
				set[s] = true
				mask |= stateBits[s]
			}
		}
	}
	return set, mask, nil
}

// portRange is an inclusive range of ports.
type portRange struct{ lo, hi uint16 }

// parsePorts reads --port values: numbers, LO-HI ranges and service names
// (from /etc/services), each value possibly a comma list.
func parsePorts(vals []string) ([]portRange, error) {
	var out []portRange
	one := func(v, s string) (uint16, error) {
		if n, err := strconv.Atoi(s); err == nil {
			if n < 0 || n > 65535 {
				return 0, fmt.Errorf("--port %q: %d is not a port (0..65535)", v, n)
			}
			return uint16(n), nil
		}
		n, err := net.LookupPort("tcp", s)
		if err != nil {
			if n, err = net.LookupPort("udp", s); err != nil {
				return 0, fmt.Errorf("--port %q: %q is neither a number nor a known service name", v, s)
			}
		}
		return uint16(n), nil
	}
	for _, v := range vals {
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				return nil, fmt.Errorf("--port %q: empty item", v)
			}
			lo, hi, isRange := strings.Cut(item, "-")
			if isRange && lo != "" && hi != "" {
				a, err := one(v, lo)
				if err != nil {
					return nil, err
				}
				b, err := one(v, hi)
				if err != nil {
					return nil, err
				}
				if a > b {
					return nil, fmt.Errorf("--port %q: range %d-%d is backwards", v, a, b)
				}
				out = append(out, portRange{a, b})
				continue
			}
			p, err := one(v, item) // service names may contain '-'
			if err != nil {
				return nil, err
			}
			out = append(out, portRange{p, p})
		}
	}
	return out, nil
}

// addrMatch is --addr: an address or a prefix. The unspecified address
// matches sockets bound to the wildcard of its family, never an absent
// peer.
type addrMatch struct {
	prefix netip.Prefix
}

func parseAddrMatch(s string) (addrMatch, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return addrMatch{netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr())).Masked()}, nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return addrMatch{}, fmt.Errorf("--addr %q: want an IP address or a prefix (192.0.2.1, ::1, 192.0.2.0/24)", s)
	}
	a = a.WithZone("")
	if a.Is4In6() && !a.IsUnspecified() {
		a = a.Unmap()
	}
	return addrMatch{netip.PrefixFrom(a, a.BitLen())}, nil
}

func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

func (m addrMatch) match(s *live.Socket) bool {
	if s.Family == "unix" {
		return false
	}
	want := m.prefix.Addr()
	if want.IsUnspecified() && m.prefix.IsSingleIP() {
		// 0.0.0.0 names IPv4 wildcard sockets, :: IPv6 ones.
		l := s.Local.Addr()
		return l.IsUnspecified() && l.Is4() == want.Is4()
	}
	if m.prefix.Contains(s.Local.Addr().WithZone("").Unmap()) {
		return true
	}
	return !report.NoPeer(s.Remote) && m.prefix.Contains(s.Remote.Addr().WithZone("").Unmap())
}

// procMatch is --pid and --command: a holder with one of the pids or a
// command matching one of the names (shell patterns allowed).
type procMatch struct {
	pids     map[int]bool
	commands []string
}

func (m procMatch) active() bool { return len(m.pids) > 0 || len(m.commands) > 0 }

func (m procMatch) match(s *live.Socket) bool {
	for _, p := range s.Processes {
		if m.pids[p.PID] {
			return true
		}
		for _, c := range m.commands {
			if ok, _ := path.Match(c, p.Command); ok || c == p.Command {
				return true
			}
		}
	}
	return false
}

func parseProcMatch(pids []string, commands []string) (procMatch, error) {
	m := procMatch{pids: map[int]bool{}}
	for _, v := range pids {
		for _, item := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(item))
			if err != nil || n <= 0 {
				return m, fmt.Errorf("--pid %q: want process ids (1234 or 1234,5678)", v)
			}
			m.pids[n] = true
		}
	}
	for _, c := range commands {
		if _, err := path.Match(c, ""); err != nil {
			return m, fmt.Errorf("--command %q: bad pattern", c)
		}
		m.commands = append(m.commands, c)
	}
	return m, nil
}
