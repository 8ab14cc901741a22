package kerneltest

import (
	"net/netip"

	"github.com/socktab/socktab/scenario"
)

// The classes of issue 7, found by the wide replay and reproduced by hand,
// whose engine rules are being written (7.1, the bind bucket's fast paths,
// is modelled now and no longer tolerated). A wide group counts a
// scenario whose first disagreement falls in one of them as "known"
// instead of failing; every other disagreement fails. Remove a class here
// once the engine models it, so the replay proves the fix.
const (
	knownDeviceOut   = "issue 7.2: a device-bound client connecting to another host"
	knownLoopbackOut = "issue 7.3: a loopback source leaving the host"
	knownTimeWait    = "issue 7.4: TIME_WAIT and its neighbours"
	knownMappedAny   = "issue 7.5: addresses after a failed connect, ::ffff:0.0.0.0"
)

// ctxSock is what the scenario did to one socket before a step.
type ctxSock struct {
	host      string
	tcp       bool
	bound     netip.AddrPort // the address of its first accepted bind
	everDev   bool           // SO_BINDTODEVICE set at some point
	sharing   bool           // SO_REUSEADDR or SO_REUSEPORT set at some point
	closed    bool
	connected bool
	loopSrc   bool // UDP connected to a loopback address: its source stays there
}

// KnownClass names the issue-7 class that the disagreement m falls in, or
// "". It looks only at what the scenario did before m.
func KnownClass(sc *scenario.Scenario, kern []Result, m Mismatch) string {
	socks := map[string]*ctxSock{}
	hostAddrs := map[string][]netip.Addr{}
	host := "local"
	for i := 0; i < m.Index; i++ {
		st := &sc.Steps[i]
		okk := i < len(kern) && kern[i].Result == "ok"
		switch st.Op {
		case scenario.OpHost:
			host = st.Str
		case scenario.OpIface:
			for _, p := range st.Prefixes {
				hostAddrs[host] = append(hostAddrs[host], p.Addr())
			}
		case scenario.OpSocket:
			socks[st.Assign] = &ctxSock{host: host, tcp: st.Proto.String() == "tcp"}
		case scenario.OpAccept:
			if st.Assign != "" && okk && socks[st.Sock] != nil {
				p := socks[st.Sock]
				socks[st.Assign] = &ctxSock{host: p.host, tcp: true, bound: p.bound, connected: true}
			}
		case scenario.OpSetsockopt:
			if s := socks[st.Sock]; s != nil {
				switch st.Option.String() {
				case "SO_BINDTODEVICE":
					s.everDev = s.everDev || st.Str != ""
				case "SO_REUSEADDR", "SO_REUSEPORT":
					s.sharing = s.sharing || st.Int == 1
				}
			}
		case scenario.OpBind:
			if s := socks[st.Sock]; s != nil && okk && !s.bound.IsValid() {
				s.bound = st.Addr
			}
		case scenario.OpConnect:
			if s := socks[st.Sock]; s != nil && okk {
				s.connected = true
				s.loopSrc = s.loopSrc || (!s.tcp && st.Addr.Addr().Unmap().IsLoopback())
			}
		case scenario.OpClose:
			if s := socks[st.Sock]; s != nil {
				s.closed = true
			}
		}
	}
	st := m.Step
	s := socks[st.Sock]
	other := func(a netip.Addr) bool {
		a = a.Unmap()
		for h, as := range hostAddrs {
			for _, x := range as {
				if x == a && s != nil && h != s.host {
					return true
				}
			}
		}
		return false
	}
	// The port the step is about, on the step's socket's host.
	var port uint16
	if s != nil {
		port = s.bound.Port()
	}
	if st.Op == scenario.OpBind {
		port = st.Addr.Port()
	}
	samePort := func(f func(o *ctxSock) bool) bool {
		for _, o := range socks {
			if o != s && s != nil && o.host == s.host && o.tcp == s.tcp && o.bound.IsValid() && o.bound.Port() == port && f(o) {
				return true
			}
		}
		return false
	}
	mappedAny := netip.AddrFrom16(netip.IPv4Unspecified().As16())
	switch {
	case s == nil:
		return ""
	case st.Op == scenario.OpConnect && (s.bound.Addr().Unmap().IsLoopback() || s.loopSrc) && !st.Addr.Addr().Unmap().IsLoopback():
		return knownLoopbackOut
	case st.Op == scenario.OpConnect && s.everDev && other(st.Addr.Addr()):
		return knownDeviceOut
	case s.bound.Addr() == mappedAny || (st.Op == scenario.OpBind && st.Addr.Addr() == mappedAny) ||
		samePort(func(o *ctxSock) bool { return o.bound.Addr() == mappedAny }):
		return knownMappedAny
	case (st.Op == scenario.OpConnect || st.Op == scenario.OpBind || st.Op == scenario.OpListen) && s.tcp &&
		samePort(func(o *ctxSock) bool { return o.closed && o.connected }):
		return knownTimeWait
	}
	return ""
}
