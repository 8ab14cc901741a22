package scenario

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/socktab/socktab/engine"
)

// Options change how a scenario runs.
type Options struct {
	OS   string // overrides the file's "os" statement when set
	Seed uint64 // fixes the engine's random choices
}

// Outcome is the result of one step.
type Outcome struct {
	Step   *Step
	Host   string
	Result string // "ok", an errno name, or a packet verdict / socket names
	Reason string // the rule that decided, in words
	Tuple  string // the 5-tuple a connect produced, or the packet's
	Pass   bool   // the expectation held (meaningless without one)
}

// Checked reports whether the step had an expectation.
func (o *Outcome) Checked() bool { return o.Step.Expect != nil }

type runner struct {
	opt   Options
	net   *engine.Network
	host  *engine.Host
	uid   uint32
	socks map[string]*bound
	// dead names a socket whose socket() or accept() failed: like a file
	// descriptor that was never returned, using it is EBADF.
	dead    map[string]bool
	anon    int
	created int // sockets made, against MaxSockets
}

type bound struct {
	s *engine.Socket
	h *engine.Host
}

// Run executes the steps on a fresh network. A step that cannot run (a
// route through a missing interface, an "os" after the first host) is an
// *Error; every syscall result, errno or not, is an Outcome.
func Run(sc *Scenario, opt Options) ([]Outcome, error) {
	r := &runner{opt: opt, socks: map[string]*bound{}, dead: map[string]bool{}}
	out := make([]Outcome, 0, len(sc.Steps))
	for i := range sc.Steps {
		st := &sc.Steps[i]
		o, err := r.step(st)
		if err != nil {
			col := st.Col
			if st.ArgCol > 0 {
				col = st.ArgCol
			}
			return out, &Error{File: st.File, Line: st.Line, Col: max(col, 1), Msg: err.Error()}
		}
		o.Step = st
		if r.host != nil {
			o.Host = r.host.Name
		}
		if st.Expect != nil {
			o.Pass = matches(st, st.Expect.Result, o.Result)
		}
		out = append(out, o)
	}
	return out, nil
}

func matches(st *Step, want, got string) bool {
	if st.Op == OpPacket && strings.Contains(want+got, "|") {
		return sameSet(want, got, "|")
	}
	if st.Op == OpPacket && strings.Contains(want+got, "+") {
		return sameSet(want, got, "+")
	}
	return want == got
}

func sameSet(a, b, sep string) bool {
	x, y := strings.Split(a, sep), strings.Split(b, sep)
	sort.Strings(x)
	sort.Strings(y)
	return strings.Join(x, "|") == strings.Join(y, "|")
}

func (r *runner) network() *engine.Network {
	if r.net == nil {
		p := engine.Linux
		if r.opt.OS != "" {
			p, _ = engine.ProfileByName(r.opt.OS)
		}
		r.net = engine.NewNetwork(p, r.opt.Seed)
	}
	return r.net
}

func (r *runner) cur() *engine.Host {
	if r.host == nil {
		r.host = r.network().AddHost("local")
	}
	return r.host
}

func (r *runner) sock(name string) (*bound, error) {
	b := r.socks[name]
	if b == nil {
		return nil, fmt.Errorf("unknown socket %q", name)
	}
	return b, nil
}

func res(x engine.Result) string { return x.Err.String() }

func (r *runner) step(st *Step) (Outcome, error) {
	var o Outcome
	if st.Sock != "" && r.socks[st.Sock] == nil && r.dead[st.Sock] {
		o.Result = engine.EBADF.String()
		o.Reason = st.Sock + " was never created (its socket or accept failed), so it is not a descriptor"
		return o, nil
	}
	if st.Assign != "" && (st.Op == OpSocket || st.Op == OpAccept) {
		if r.created++; r.created > MaxSockets {
			return o, fmt.Errorf("more than %d sockets in one file (the limit)", MaxSockets)
		}
		// A failed call leaves the name without a socket: later uses are
		// EBADF. A successful one replaces whatever the name held.
		delete(r.socks, st.Assign)
		r.dead[st.Assign] = true
	}
	switch st.Op {
	case OpOS:
		if r.net != nil {
			return o, fmt.Errorf("os must come before the first host or socket")
		}
		if r.opt.OS == "" {
			p, err := engine.ProfileByName(st.Str)
			if err != nil {
				return o, err
			}
			r.net = engine.NewNetwork(p, r.opt.Seed)
		}
		p := r.network().Profile
		o.Result, o.Reason = "ok", "profile "+p.Name+", rules from: "+strings.Join(p.Sources, "; ")
	case OpHost:
		n := r.network()
		h := n.Host(st.Str)
		o.Reason = "selected host " + st.Str
		if h == nil {
			h = n.AddHost(st.Str)
			o.Reason = "created host " + st.Str + " (lo 127.0.0.1/8 ::1/128)"
		}
		r.host = h
		o.Result = "ok"
	case OpIface:
		i := r.cur().AddIface(st.Str, st.Prefixes...)
		o.Result, o.Reason = "ok", fmt.Sprintf("%s has %v", i.Name, i.Addrs)
	case OpRoute:
		for _, p := range st.Prefixes {
			if err := r.cur().AddRoute(p, st.Str); err != nil {
				return o, err
			}
		}
		o.Result, o.Reason = "ok", "route added"
	case OpSysctl:
		e, err := r.cur().Sysctl.Set(st.Str, st.Values)
		if err != nil {
			return o, err
		}
		o.Result, o.Reason = e.String(), st.Str+" = "+strings.Join(st.Values, " ")
		if e != engine.OK {
			o.Reason = "the kernel refuses this value"
		}
	case OpUID:
		r.uid = uint32(st.Int)
		o.Result, o.Reason = "ok", fmt.Sprintf("later calls run as uid %d", st.Int)
	case OpAdvance:
		if now := r.network().Now(); st.Duration > MaxClock-now {
			return o, fmt.Errorf("advance %s would take the clock past %s (the limit; it is at %s)", st.Duration, MaxClock, now)
		}
		r.network().Advance(st.Duration)
		o.Result, o.Reason = "ok", fmt.Sprintf("clock at %s", r.net.Now())
	case OpSocket:
		h := r.cur()
		s, x := h.NewSocket(st.Family, st.Proto, r.uid)
		o.Result, o.Reason = res(x), string(x.Rule)
		if s != nil {
			s.SetName(st.Assign)
			r.socks[st.Assign] = &bound{s, h}
			if st.Family == engine.Inet6 {
				o.Reason += fmt.Sprintf("; IPV6_V6ONLY=%d by default", b2i(s.V6Only()))
			}
		}
	case OpSetsockopt:
		b, err := r.sock(st.Sock)
		if err != nil {
			return o, err
		}
		x := setOption(b.h, b.s, st, r.uid)
		o.Result, o.Reason = res(x), string(x.Rule)
	case OpBind:
		b, err := r.sock(st.Sock)
		if err != nil {
			return o, err
		}
		var x engine.Result
		if st.Path != "" {
			x = b.h.BindUnix(b.s, st.Path)
		} else {
			x = b.h.BindAs(b.s, st.Addr, r.uid)
		}
		o.Result, o.Reason = res(x), r.reason(b.h, x)
		if x.Err == engine.OK && st.Path == "" && x.Local.Port() != st.Addr.Port() {
			o.Reason += " " + fmtAP(x.Local)
		}
	case OpListen:
		b, err := r.sock(st.Sock)
		if err != nil {
			return o, err
		}
		x := b.h.Listen(b.s)
		o.Result, o.Reason = res(x), r.reason(b.h, x)
		if x.Err == engine.OK && x.Local.IsValid() {
			o.Reason += " on " + fmtAP(x.Local)
		}
	case OpConnect:
		b, err := r.sock(st.Sock)
		if err != nil {
			return o, err
		}
		var x engine.Result
		if st.Path != "" {
			x = b.h.ConnectUnix(b.s, st.Path)
		} else {
			x = b.h.Connect(b.s, st.Addr)
		}
		o.Result, o.Reason = res(x), r.reason(b.h, x)
		if x.Err == engine.OK && x.Local.IsValid() {
			o.Tuple = fmt.Sprintf("%s %s -> %s", b.s.Proto(), fmtAP(x.Local), fmtAP(x.Remote))
			if x.Other != nil {
				o.Reason += ", queued on " + r.name(x.Other)
			}
		}
	case OpAccept:
		b, err := r.sock(st.Sock)
		if err != nil {
			return o, err
		}
		c, x := b.h.Accept(b.s)
		o.Result, o.Reason = res(x), string(x.Rule)
		if c != nil {
			name := st.Assign
			if name == "" {
				r.anon++
				name = fmt.Sprintf("%s.child%d", st.Sock, r.anon)
			}
			c.SetName(name)
			r.socks[name] = &bound{c, b.h}
			if x.Local.IsValid() {
				o.Tuple = fmt.Sprintf("%s %s -> %s", c.Proto(), fmtAP(x.Local), fmtAP(x.Remote))
			}
		}
	case OpClose:
		b, err := r.sock(st.Sock)
		if err != nil {
			return o, err
		}
		x := b.h.Close(b.s)
		o.Result, o.Reason = res(x), string(x.Rule)
		if x.Err == engine.OK && (b.s.State() == engine.FinWait2 || b.s.State() == engine.TimeWait) {
			o.Reason += fmt.Sprintf("; %s keeps %s until %s", b.s.State(), fmtAP(b.s.Local()), b.s.Expires())
		}
	case OpUnlink:
		x := r.cur().Unlink(st.Path)
		o.Result, o.Reason = res(x), string(x.Rule)
	case OpPacket:
		return r.packet(st)
	case OpJoin:
		b, err := r.sock(st.Sock)
		if err != nil {
			return o, err
		}
		if !b.h.Profile().Multicast {
			return o, fmt.Errorf("join: the %s profile does not model multicast", b.h.Profile().Name)
		}
		x := b.h.Join(b.s, st.Group, st.Dev)
		o.Result, o.Reason = res(x), string(x.Rule)
	default:
		return o, fmt.Errorf("unknown statement %q", st.Op)
	}
	return o, nil
}

func (r *runner) packet(st *Step) (Outcome, error) {
	var o Outcome
	h := r.cur()
	p := engine.Packet{Proto: st.Proto, Src: st.Src, Dst: st.Addr, Flags: st.Flags}
	if st.Dev != "" {
		i := h.Iface(st.Dev)
		if i == nil {
			return o, fmt.Errorf("no interface %q on host %s", st.Dev, h.Name)
		}
		p.Dev = i.Index
	}
	if h.IsGroupcast(st.Addr.Addr()) && !h.Profile().Multicast {
		return o, fmt.Errorf("packet: the %s profile does not model broadcast or multicast delivery", h.Profile().Name)
	}
	d := h.Lookup(p)
	o.Tuple = fmt.Sprintf("%s %s -> %s", st.Proto, fmtAP(st.Src), fmtAP(st.Addr))
	switch d.Verdict {
	case engine.Deliver:
		if len(d.All) > 0 {
			names := make([]string, len(d.All))
			for i, s := range d.All {
				names[i] = r.name(s)
			}
			sort.Strings(names)
			o.Result = strings.Join(names, "+")
			o.Reason = fmt.Sprintf("%s: %d receivers", d.Stage, len(d.All))
		} else if d.Indeterminate {
			names := make([]string, len(d.Group))
			for i, g := range d.Group {
				names[i] = r.name(g)
			}
			o.Result = strings.Join(names, "|")
			o.Reason = fmt.Sprintf("%s: indeterminate: %d sockets share the address and %s documents no choice "+
				"among them (\"the behavior for all sockets bound to that port is indeterminate\")",
				d.Stage, len(d.Group), h.Profile().Name)
		} else if len(d.Group) > 1 {
			names := make([]string, len(d.Group))
			for i, g := range d.Group {
				names[i] = r.name(g)
			}
			o.Result = strings.Join(names, "|")
			o.Reason = fmt.Sprintf("%s: SO_REUSEPORT group of %d; the 4-tuple hash (seed %d) picks %s", d.Stage, len(d.Group), r.network().Seed(), r.name(d.Socket))
		} else {
			o.Result = r.name(d.Socket)
			o.Reason = fmt.Sprintf("%s: %s", d.Stage, r.describe(d.Socket))
		}
	case engine.RST:
		o.Result, o.Reason = "rst", d.Stage.String()+": TCP answers RST"
	case engine.PortUnreachable:
		o.Result, o.Reason = "icmp-port-unreachable", d.Stage.String()+": UDP answers ICMP port unreachable"
	default:
		o.Result, o.Reason = "drop", d.Stage.String()
	}
	if p := h.Profile(); p.Lookup != engine.LookupLinux && (d.Stage == engine.StageTimeWait || d.Stage == engine.StageTimeWaitSYN) {
		o.Reason += "; not modelled for " + p.Name + ": how TIME_WAIT answers a new segment (this is Linux's tcp_timewait_state_process)"
	}
	return o, nil
}

func (r *runner) reason(h *engine.Host, x engine.Result) string {
	s := string(x.Rule)
	if x.Err != engine.OK {
		if n := h.Profile().ErrnoName(x.Err); n != x.Err.String() {
			s = n + ": " + s
		}
	}
	if x.Other != nil && x.Err != engine.OK {
		s += ": " + r.describe(x.Other)
	}
	return s
}

func (r *runner) name(s *engine.Socket) string {
	if s == nil {
		return "?"
	}
	if n := s.Name(); n != "" {
		return n
	}
	if p := s.Parent(); p != nil {
		return "(unaccepted child of " + r.name(p) + ")"
	}
	return "(unnamed)"
}

// describe shows a socket the way the trace names a conflict.
func (r *runner) describe(s *engine.Socket) string {
	var b strings.Builder
	b.WriteString(r.name(s))
	b.WriteString(" (")
	b.WriteString(s.Family().String() + " " + s.Proto().String() + " ")
	if p := s.Path(); p != "" {
		b.WriteString(p)
	} else {
		b.WriteString(fmtAP(s.Local()))
		if s.Remote().IsValid() {
			b.WriteString(" -> " + fmtAP(s.Remote()))
		}
	}
	b.WriteString(" " + s.State().String())
	if s.Family() == engine.Inet6 && s.Local().Addr().IsUnspecified() {
		if s.V6Only() {
			b.WriteString(", v6only")
		} else {
			b.WriteString(", dual-stack")
		}
	}
	if s.ReuseAddr() {
		b.WriteString(", SO_REUSEADDR")
	}
	if s.ReusePort() {
		b.WriteString(", SO_REUSEPORT")
	}
	fmt.Fprintf(&b, ", uid %d)", s.UID())
	return b.String()
}

func fmtAP(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "*"
	}
	return ap.String()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setOption calls the engine's typed setter for a setsockopt statement
// made by uid.
func setOption(h *engine.Host, s *engine.Socket, st *Step, uid uint32) engine.Result {
	on := st.Int != 0
	switch st.Option {
	case engine.SO_REUSEADDR:
		return h.SetReuseAddr(s, on)
	case engine.SO_REUSEPORT:
		return h.SetReusePort(s, on)
	case engine.IPV6_V6ONLY:
		return h.SetV6Only(s, on)
	case engine.IP_FREEBIND:
		return h.SetFreeBind(s, on)
	case engine.IP_BIND_ADDRESS_NO_PORT:
		return h.SetBindAddressNoPort(s, on)
	case engine.SO_EXCLUSIVEADDRUSE:
		return h.SetExclusiveAddrUse(s, on)
	case engine.SO_BINDTODEVICE:
		return h.BindToDeviceAs(s, st.Str, uid)
	case engine.IP_LOCAL_PORT_RANGE:
		return h.SetLocalPortRange(s, uint16(st.Int), uint16(st.Int>>16))
	case engine.IP_MULTICAST_ALL:
		return h.SetMulticastAll(s, on)
	case engine.IPV6_MULTICAST_ALL:
		return h.SetMulticastAll6(s, on)
	}
	panic(fmt.Sprintf("scenario: the parser accepted option %v that has no setter", st.Option))
}
