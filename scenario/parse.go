package scenario

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/socktab/socktab/engine"
)

// Limits on a scenario, which is untrusted input: a breach is an *Error
// at the line and column that crossed it, never unbounded work or memory.
const (
	// MaxLineBytes bounds one line (1 MiB).
	MaxLineBytes = 1 << 20
	// MaxSteps bounds the steps of one file, repeats expanded.
	MaxSteps = 100_000
	// MaxSockets bounds the sockets one file creates (socket and accept).
	MaxSockets = 50_000
	// MaxClock bounds the simulated clock (advance).
	MaxClock = 100 * 365 * 24 * time.Hour
)

// maxRepeat bounds "repeat N"; MaxSteps bounds the total.
const maxRepeat = MaxSteps

type token struct {
	s   string
	col int
}

// tokenize splits a line; a token's col counts characters, not bytes.
func tokenize(line string) []token {
	var out []token
	i := 0
	runes, last := 0, 0 // characters before byte offset last
	for i < len(line) {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
			i++
		}
		if i >= len(line) || line[i] == '#' {
			break
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '\r' && line[j] != '#' {
			j++
		}
		runes += utf8.RuneCountInString(line[last:i])
		last = i
		out = append(out, token{line[i:j], runes + 1})
		i = j
	}
	return out
}

// Parse reads a scenario. A malformed statement is an *Error naming
// file:line:col (columns count characters); names must be assigned (socket,
// accept) before use. A UTF-8 byte order mark and CRLF line ends are
// accepted; a line over MaxLineBytes, more than MaxSteps steps or bytes
// that are not UTF-8 are errors.
func Parse(file string, r io.Reader) (*Scenario, error) {
	sc := &Scenario{File: file}
	p := &parser{file: file, names: map[string]bool{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	for n := 1; ; n++ {
		line = line[:0]
		tooLong, eof := false, false
		for {
			chunk, err := br.ReadSlice('\n')
			if !tooLong {
				if len(line)+len(chunk) > MaxLineBytes+2 { // + CRLF
					tooLong = true
				} else {
					line = append(line, chunk...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				eof = true
			} else if err != nil {
				return nil, &Error{File: file, Line: n, Col: 1, Msg: "reading: " + err.Error()}
			}
			break
		}
		if tooLong {
			return nil, &Error{File: file, Line: n, Col: 1, Msg: fmt.Sprintf("line longer than %d bytes (the limit is 1 MiB)", MaxLineBytes)}
		}
		text := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
		if n == 1 {
			text = strings.TrimPrefix(text, "\ufeff") // a UTF-8 byte order mark
		}
		if !utf8.ValidString(text) {
			bad := 0
			for i, r := range text {
				if r == utf8.RuneError {
					bad = utf8.RuneCountInString(text[:i]) + 1
					break
				}
			}
			return nil, &Error{File: file, Line: n, Col: bad, Msg: "not UTF-8 text"}
		}
		if text != "" {
			steps, err := p.line(n, text, MaxSteps-len(sc.Steps))
			if err != nil {
				return nil, err
			}
			sc.Steps = append(sc.Steps, steps...)
		}
		if eof {
			break
		}
	}
	return sc, nil
}

type parser struct {
	file  string
	names map[string]bool
}

func (p *parser) errf(line, col int, f string, a ...any) error {
	return &Error{File: p.file, Line: line, Col: col, Msg: fmt.Sprintf(f, a...)}
}

// line parses one line into its steps; room is how many more steps the
// file may have.
func (p *parser) line(n int, text string, room int) ([]Step, error) {
	toks := tokenize(text)
	if len(toks) == 0 {
		return nil, nil
	}
	var exp *Expect
	for i, t := range toks {
		if t.s == "=>" {
			if i == len(toks)-1 {
				return nil, p.errf(n, t.col, "expected a result after =>")
			}
			if i != len(toks)-2 {
				return nil, p.errf(n, toks[i+2].col, "one result after =>, got %q too", toks[i+2].s)
			}
			exp = &Expect{Result: toks[i+1].s, Col: toks[i+1].col}
			toks = toks[:i]
			break
		}
	}
	if len(toks) == 0 {
		return nil, p.errf(n, 1, "a result needs a statement before =>")
	}
	stmtText := strings.TrimSpace(text[toks[0].col-1 : toks[len(toks)-1].col-1+len(toks[len(toks)-1].s)])
	count := 1
	if toks[0].s == "repeat" {
		if len(toks) < 3 {
			return nil, p.errf(n, toks[0].col, "repeat needs a count and a statement: repeat N STATEMENT")
		}
		c, err := strconv.Atoi(toks[1].s)
		if err != nil || c < 1 || c > maxRepeat {
			return nil, p.errf(n, toks[1].col, "repeat count %q: want a number from 1 to %d", toks[1].s, maxRepeat)
		}
		if toks[2].s == "repeat" {
			return nil, p.errf(n, toks[2].col, "repeat cannot be nested: write the inner statement with {i}, or several repeat lines")
		}
		if c > room {
			return nil, p.errf(n, toks[1].col, "repeat %d would pass the limit of %d steps per file (%d left)", c, MaxSteps, room)
		}
		count = c
		toks = toks[2:]
	} else if room < 1 {
		return nil, p.errf(n, toks[0].col, "more than %d steps in one file (the limit)", MaxSteps)
	}
	var steps []Step
	for i := 1; i <= count; i++ {
		tt := toks
		if count > 1 || strings.Contains(stmtText, "{i}") {
			tt = make([]token, len(toks))
			for k, t := range toks {
				tt[k] = token{strings.ReplaceAll(t.s, "{i}", strconv.Itoa(i)), t.col}
			}
		}
		st, err := p.statement(n, tt)
		if err != nil {
			return nil, err
		}
		st.File, st.Line, st.Text, st.Col = p.file, n, stmtText, toks[0].col
		if exp != nil {
			e := *exp
			if err := p.checkExpect(n, &st, &e); err != nil {
				return nil, err
			}
			st.Expect = &e
		}
		steps = append(steps, st)
	}
	return steps, nil
}

func (p *parser) checkExpect(n int, st *Step, e *Expect) error {
	if st.Op == OpPacket {
		switch e.Result {
		case "rst", "icmp-port-unreachable", "drop":
			return nil
		}
		if strings.Contains(e.Result, "|") && strings.Contains(e.Result, "+") {
			return p.errf(n, e.Col, "packet result %q: a|b (any one) and a+b (each) do not mix", e.Result)
		}
		for _, name := range strings.FieldsFunc(e.Result, func(r rune) bool { return r == '|' || r == '+' }) {
			if !validName(name) {
				return p.errf(n, e.Col, "packet result %q: want a socket name, a|b, a+b, rst, icmp-port-unreachable or drop", e.Result)
			}
		}
		if strings.HasSuffix(e.Result, "|") || strings.HasSuffix(e.Result, "+") || strings.HasPrefix(e.Result, "|") || strings.HasPrefix(e.Result, "+") {
			return p.errf(n, e.Col, "packet result %q: a name is missing", e.Result)
		}
		return nil
	}
	if _, ok := engine.ParseErrno(e.Result); !ok {
		return p.errf(n, e.Col, "unknown result %q: want ok or an errno name (%s)", e.Result, strings.Join(engine.Errnos()[1:], ", "))
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (i > 0 && c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

var keywords = map[string]bool{"os": true, "host": true, "iface": true, "route": true, "sysctl": true, "uid": true,
	"advance": true, "socket": true, "setsockopt": true, "bind": true, "listen": true, "connect": true,
	"accept": true, "close": true, "unlink": true, "packet": true, "repeat": true, "join": true}

func (p *parser) statement(n int, toks []token) (Step, error) {
	st := Step{}
	if len(toks) >= 2 && toks[1].s == "=" {
		name := toks[0]
		if !validName(name.s) || keywords[name.s] {
			return st, p.errf(n, name.col, "%q cannot name a socket", name.s)
		}
		if len(toks) < 3 || (toks[2].s != "socket" && toks[2].s != "accept") {
			col := toks[1].col
			if len(toks) >= 3 {
				col = toks[2].col
			}
			return st, p.errf(n, col, "only socket and accept assign a name: %s = socket ... | accept SOCK", name.s)
		}
		st.Assign = name.s
		toks = toks[2:]
		defer func() { p.names[name.s] = true }()
	}
	kw := toks[0]
	args := toks[1:]
	need := func(k int, usage string) error {
		if len(args) < k {
			col := kw.col + len(kw.s)
			return p.errf(n, col, "%s: missing arguments; usage: %s", kw.s, usage)
		}
		if len(args) > k {
			return p.errf(n, args[k].col, "%s: unexpected %q; usage: %s", kw.s, args[k].s, usage)
		}
		return nil
	}
	sock := func(t token) (string, error) {
		if !p.names[t.s] {
			return "", p.errf(n, t.col, "unknown socket %q (assign it first: %s = socket ...)", t.s, t.s)
		}
		return t.s, nil
	}
	var err error
	st.Op = Op(kw.s)
	switch st.Op {
	case OpOS:
		if err = need(1, "os linux|windows|macos|freebsd"); err != nil {
			return st, err
		}
		if _, e := engine.ProfileByName(args[0].s); e != nil {
			return st, p.errf(n, args[0].col, "%v", e)
		}
		st.Str = args[0].s
	case OpHost:
		if err = need(1, "host NAME"); err != nil {
			return st, err
		}
		if !validName(args[0].s) {
			return st, p.errf(n, args[0].col, "bad host name %q", args[0].s)
		}
		st.Str = args[0].s
	case OpIface:
		if len(args) < 2 {
			return st, p.errf(n, kw.col, "usage: iface NAME ADDR/PREFIX...")
		}
		st.Str = args[0].s
		for _, a := range args[1:] {
			pf, e := netip.ParsePrefix(a.s)
			if e != nil {
				return st, p.errf(n, a.col, "bad address/prefix %q (want e.g. 192.0.2.1/24 or 2001:db8::1/64)", a.s)
			}
			st.Prefixes = append(st.Prefixes, pf)
		}
	case OpRoute:
		if err = need(2, "route default|PREFIX IFACE"); err != nil {
			return st, err
		}
		if args[0].s == "default" {
			st.Prefixes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		} else {
			pf, e := netip.ParsePrefix(args[0].s)
			if e != nil {
				return st, p.errf(n, args[0].col, "bad prefix %q", args[0].s)
			}
			st.Prefixes = []netip.Prefix{pf}
		}
		st.Str = args[1].s
		st.ArgCol = args[1].col
	case OpSysctl:
		if len(args) < 2 {
			return st, p.errf(n, kw.col, "usage: sysctl NAME VALUE...")
		}
		if !engine.KnownSysctl(args[0].s) {
			return st, p.errf(n, args[0].col, "unknown sysctl %q (known: %s)", args[0].s, strings.Join(engine.SysctlNames, ", "))
		}
		st.Str = args[0].s
		for _, a := range args[1:] {
			st.Values = append(st.Values, a.s)
		}
	case OpUID:
		if err = need(1, "uid N"); err != nil {
			return st, err
		}
		v, e := strconv.ParseUint(args[0].s, 10, 32)
		if e != nil {
			return st, p.errf(n, args[0].col, "bad uid %q", args[0].s)
		}
		st.Int = int(v)
	case OpAdvance:
		if err = need(1, "advance DURATION (e.g. 61s, 2m)"); err != nil {
			return st, err
		}
		d, e := time.ParseDuration(args[0].s)
		if e != nil || d < 0 {
			return st, p.errf(n, args[0].col, "bad duration %q (want e.g. 61s, 500ms, 2m)", args[0].s)
		}
		st.Duration = d
		st.ArgCol = args[0].col
	case OpSocket:
		if st.Assign == "" {
			return st, p.errf(n, kw.col, "socket needs a name: NAME = socket FAMILY TYPE")
		}
		if err = need(2, "NAME = socket inet|inet6 tcp|udp | unix stream|dgram"); err != nil {
			return st, err
		}
		fams := map[string]engine.Family{"inet": engine.Inet, "inet6": engine.Inet6, "unix": engine.Unix}
		f, ok := fams[args[0].s]
		if !ok {
			return st, p.errf(n, args[0].col, "unknown family %q (want inet, inet6 or unix)", args[0].s)
		}
		protos := map[string]engine.Proto{"tcp": engine.TCP, "udp": engine.UDP, "stream": engine.UnixStream, "dgram": engine.UnixDgram}
		pr, ok := protos[args[1].s]
		if !ok {
			return st, p.errf(n, args[1].col, "unknown type %q (want tcp, udp, stream or dgram)", args[1].s)
		}
		st.Family, st.Proto = f, pr
	case OpSetsockopt:
		if len(args) < 3 {
			return st, p.errf(n, kw.col, "usage: setsockopt SOCK OPTION VALUE")
		}
		if st.Sock, err = sock(args[0]); err != nil {
			return st, err
		}
		o, ok := engine.ParseOption(args[1].s)
		if !ok {
			return st, p.errf(n, args[1].col, "unknown option %q", args[1].s)
		}
		st.Option = o
		vals := args[2:]
		switch o {
		case engine.SO_BINDTODEVICE:
			if len(vals) != 1 {
				return st, p.errf(n, args[2].col, "SO_BINDTODEVICE takes one interface name (\"\" to unbind)")
			}
			st.Str = strings.Trim(vals[0].s, `"`)
		case engine.IP_LOCAL_PORT_RANGE:
			if len(vals) != 2 {
				return st, p.errf(n, args[2].col, "IP_LOCAL_PORT_RANGE takes two ports: LOW HIGH (0 = no bound)")
			}
			lo, e1 := strconv.ParseUint(vals[0].s, 10, 16)
			hi, e2 := strconv.ParseUint(vals[1].s, 10, 16)
			if e1 != nil || e2 != nil {
				return st, p.errf(n, vals[0].col, "IP_LOCAL_PORT_RANGE ports must be 0..65535")
			}
			st.Int = int(lo) | int(hi)<<16
		default:
			if len(vals) != 1 || (vals[0].s != "0" && vals[0].s != "1") {
				return st, p.errf(n, args[2].col, "%s takes 0 or 1", o)
			}
			st.Int, _ = strconv.Atoi(vals[0].s)
		}
	case OpBind, OpConnect:
		if err = need(2, string(kw.s)+" SOCK ADDR:PORT|[ADDR]:PORT|/path|@abstract"); err != nil {
			return st, err
		}
		if st.Sock, err = sock(args[0]); err != nil {
			return st, err
		}
		if err = p.endpoint(n, args[1], &st); err != nil {
			return st, err
		}
		if err = p.zone(n, args[1], st.Addr, st.Op == OpBind); err != nil {
			return st, err
		}
	case OpListen, OpClose:
		if err = need(1, kw.s+" SOCK"); err != nil {
			return st, err
		}
		if st.Sock, err = sock(args[0]); err != nil {
			return st, err
		}
	case OpAccept:
		if err = need(1, "[NAME =] accept SOCK"); err != nil {
			return st, err
		}
		if st.Sock, err = sock(args[0]); err != nil {
			return st, err
		}
	case OpUnlink:
		if err = need(1, "unlink /path"); err != nil {
			return st, err
		}
		if !strings.HasPrefix(args[0].s, "/") {
			return st, p.errf(n, args[0].col, "unlink takes an absolute path")
		}
		st.Path = args[0].s
	case OpPacket:
		if err = p.packet(n, kw, args, &st); err != nil {
			return st, err
		}
	case OpJoin:
		usage := "join SOCK GROUP [dev IFACE]"
		if len(args) != 2 && len(args) != 4 {
			return st, p.errf(n, kw.col, "usage: %s", usage)
		}
		if st.Sock, err = sock(args[0]); err != nil {
			return st, err
		}
		g, e := netip.ParseAddr(args[1].s)
		if e != nil || g.Zone() != "" {
			return st, p.errf(n, args[1].col, "bad group %q (want e.g. 239.1.2.3 or ff02::123)", args[1].s)
		}
		st.Group = g
		if len(args) == 4 {
			if args[2].s != "dev" {
				return st, p.errf(n, args[2].col, "expected dev IFACE, got %q; usage: %s", args[2].s, usage)
			}
			st.Dev = args[3].s
			st.ArgCol = args[3].col
		}
	default:
		return st, p.errf(n, kw.col, "unknown statement %q", kw.s)
	}
	return st, nil
}

func (p *parser) endpoint(n int, t token, st *Step) error {
	if strings.HasPrefix(t.s, "/") || strings.HasPrefix(t.s, "@") {
		if len(t.s) < 2 {
			return p.errf(n, t.col, "empty unix path")
		}
		st.Path = t.s
		return nil
	}
	ap, err := parseAddrPort(t.s)
	if err != nil {
		return p.errf(n, t.col, "%v", err)
	}
	st.Addr = ap
	return nil
}

// parseAddrPort reads 1.2.3.4:80, [::1]:80 or [::ffff:1.2.3.4]:80.
func parseAddrPort(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		if a, e := netip.ParseAddr(s); e == nil {
			return netip.AddrPort{}, fmt.Errorf("address %q needs a port (%s)", s, map[bool]string{true: a.String() + ":PORT", false: "[" + a.String() + "]:PORT"}[a.Is4()])
		}
		return netip.AddrPort{}, fmt.Errorf("bad address %q (want 192.0.2.1:80 or [2001:db8::1]:80)", s)
	}
	return ap, nil
}

// zone checks an IPv6 zone (%eth0): an interface name, only where the
// language models it (bind's address, a packet's destination).
func (p *parser) zone(n int, t token, ap netip.AddrPort, allowed bool) error {
	z := ap.Addr().Zone()
	if z == "" {
		return nil
	}
	if !allowed {
		return p.errf(n, t.col, "a zone (%%%s) is modelled only in bind and in a packet's destination", z)
	}
	if !validName(z) {
		return p.errf(n, t.col, "zone %q: name the interface (e.g. %%eth0); interface numbers differ between the engine and a kernel", z)
	}
	return nil
}

var flagNames = map[string]uint8{"syn": engine.FlagSYN, "ack": engine.FlagACK, "rst": engine.FlagRST, "fin": engine.FlagFIN}

func (p *parser) packet(n int, kw token, args []token, st *Step) error {
	usage := "packet tcp|udp SRC -> DST [syn|ack|rst|fin...] [dev IFACE]"
	if len(args) < 4 {
		return p.errf(n, kw.col, "usage: %s", usage)
	}
	switch args[0].s {
	case "tcp":
		st.Proto = engine.TCP
	case "udp":
		st.Proto = engine.UDP
	default:
		return p.errf(n, args[0].col, "packet protocol %q: want tcp or udp", args[0].s)
	}
	src, err := parseAddrPort(args[1].s)
	if err != nil {
		return p.errf(n, args[1].col, "%v", err)
	}
	if args[2].s != "->" {
		return p.errf(n, args[2].col, "expected -> between source and destination, got %q", args[2].s)
	}
	dst, err := parseAddrPort(args[3].s)
	if err != nil {
		return p.errf(n, args[3].col, "%v", err)
	}
	if src.Addr().Unmap().Is4() != dst.Addr().Unmap().Is4() {
		return p.errf(n, args[3].col, "source and destination must both be IPv4 or both IPv6")
	}
	if err = p.zone(n, args[1], src, false); err != nil {
		return err
	}
	if err = p.zone(n, args[3], dst, true); err != nil {
		return err
	}
	st.Src, st.Addr = src, dst
	rest := args[4:]
	for i := 0; i < len(rest); i++ {
		t := rest[i]
		if t.s == "dev" {
			if i+1 >= len(rest) {
				return p.errf(n, t.col, "dev needs an interface name")
			}
			st.Dev = rest[i+1].s
			st.ArgCol = rest[i+1].col
			i++
			continue
		}
		f, ok := flagNames[t.s]
		if !ok || st.Proto == engine.UDP {
			return p.errf(n, t.col, "unexpected %q; usage: %s (flags only for tcp)", t.s, usage)
		}
		st.Flags |= f
	}
	if st.Proto == engine.TCP && st.Flags == 0 {
		st.Flags = engine.FlagSYN
	}
	return nil
}
