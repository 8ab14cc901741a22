package kerneltest

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/socktab/socktab/scenario"
)

// Generate writes a random scenario for seed: TCP and UDP, IPv4, IPv6 and
// v4-mapped addresses, SO_REUSEADDR / SO_REUSEPORT / IPV6_V6ONLY, port 0,
// privileged and fixed ports, tiny port ranges, connect, accept, close in
// any order (TIME_WAIT), uid switches and packet queries. It is text so a
// failing case can be saved and replayed by the simulator.
//
// Every destination is on this host, or off it with no route (ENETUNREACH
// at once): the engine assumes an unknown peer answers, the kernel would
// wait.
// Fixed ports (80, 5000, 5001) lie outside every ephemeral range used, so
// no result depends on which port the kernel picked at random; packet
// sources use ports 61000-65535, above the default range.
//
// A name that accept() assigns only exists when the accept succeeds; a
// draft whose engine run stops on such a name is drawn again (the next
// stream of the same seed).
func Generate(seed uint64) string {
	var text string
	for try := uint64(0); try < 20; try++ {
		g := &gen{rng: rand.New(rand.NewPCG(seed, 0x736f636b746162+try)), seed: seed}
		text = g.scenario()
		sc, err := scenario.Parse("gen", strings.NewReader(text))
		if err != nil {
			panic(fmt.Sprintf("kerneltest.Generate(%d): %v\n%s", seed, err, text))
		}
		if _, err := scenario.Run(sc, scenario.Options{Seed: seed}); err == nil {
			break
		}
	}
	return text
}

type gsock struct {
	name      string
	v6, udp   bool
	unix      bool // AF_UNIX: udp means SOCK_DGRAM
	reuseport bool
	bound     string // "addr:port" as written, "" when not bound
	listening bool
	closed    bool
	pending   int // connects aimed at this listener, not yet accepted
}

type gen struct {
	rng   *rand.Rand
	seed  uint64
	b     strings.Builder
	n     int // statements written
	socks []*gsock
	eth   bool // iface eth0 192.0.2.1/24 2001:db8::1/64
	uid   int
	pport int // next packet source port
	// rpPorts counts SO_REUSEPORT sockets bound per "proto port": accept
	// on such a group is avoided, the kernel's member choice is random.
	rpPorts map[string]int
}

func (g *gen) line(f string, a ...any) {
	fmt.Fprintf(&g.b, f+"\n", a...)
	g.n++
}

func (g *gen) pct(p int) bool { return g.rng.IntN(100) < p }

func pick[T any](g *gen, xs ...T) T { return xs[g.rng.IntN(len(xs))] }

func (g *gen) scenario() string {
	fmt.Fprintf(&g.b, "# kerneltest.Generate(%d)\n", g.seed)
	g.pport = 61000 + g.rng.IntN(4000)
	g.rpPorts = map[string]int{}
	if g.pct(20) {
		g.eth = true
		g.line("iface eth0 192.0.2.1/24 2001:db8::1/64")
	}
	if g.pct(25) {
		lo := 40000 + 2*g.rng.IntN(100)
		hi := lo + g.rng.IntN(4)
		g.line("sysctl net.ipv4.ip_local_port_range %d %d", lo, hi)
		if g.pct(25) {
			g.line("sysctl net.ipv4.ip_local_reserved_ports %d-%d", lo, lo+g.rng.IntN(hi-lo+1))
		}
	}
	if g.pct(5) {
		g.line("sysctl net.ipv6.ip_nonlocal_bind 1")
	}
	if g.pct(5) {
		g.line("sysctl net.ipv4.tcp_tw_reuse %d", pick(g, 0, 1, 3))
	}
	if g.pct(10) {
		g.line("sysctl net.ipv6.bindv6only 1")
	}
	if g.pct(10) {
		g.line("sysctl net.ipv4.ip_unprivileged_port_start %d", pick(g, 0, 80, 81, 1024, 65535))
	}
	if g.pct(8) {
		g.line("sysctl net.ipv4.ip_autobind_reuse 1")
	}
	if g.pct(5) {
		g.line("sysctl net.ipv4.ip_nonlocal_bind 1")
	}
	want := 5 + g.rng.IntN(21)
	for g.n < want {
		g.action()
	}
	return g.b.String()
}

func (g *gen) open() []*gsock {
	var out []*gsock
	for _, s := range g.socks {
		if !s.closed {
			out = append(out, s)
		}
	}
	return out
}

func (g *gen) action() {
	open := g.open()
	switch r := g.rng.IntN(100); {
	case r < 22 || len(open) == 0:
		g.newSocket()
	case r < 40:
		g.bind(pick(g, open...))
	case r < 50:
		g.listen(pick(g, open...))
	case r < 62:
		g.connect(pick(g, open...))
	case r < 70:
		g.accept(pick(g, open...))
	case r < 80:
		g.close(pick(g, open...))
	case r < 84 && g.n+10 < 30:
		g.connection()
	case r < 88:
		if g.uid == 0 {
			g.uid = 1000
		} else {
			g.uid = 0
		}
		g.line("uid %d", g.uid)
	default:
		g.packet()
	}
}

func (g *gen) newSocket() {
	s := &gsock{name: fmt.Sprintf("s%d", len(g.socks)+1), v6: g.pct(40), udp: g.pct(35)}
	if g.pct(8) {
		g.unixSocket(s)
		return
	}
	g.socks = append(g.socks, s)
	g.line("%s = socket %s %s", s.name, map[bool]string{false: "inet", true: "inet6"}[s.v6], map[bool]string{false: "tcp", true: "udp"}[s.udp])
	if g.pct(30) {
		g.line("setsockopt %s SO_REUSEADDR 1", s.name)
	}
	if g.pct(25) {
		s.reuseport = true
		g.line("setsockopt %s SO_REUSEPORT 1", s.name)
	}
	if s.v6 && g.pct(25) {
		g.line("setsockopt %s IPV6_V6ONLY %d", s.name, pick(g, 0, 1))
	}
	if g.pct(5) {
		g.line("setsockopt %s IP_FREEBIND 1", s.name)
	}
	if g.pct(8) {
		lo := 40000 + 2*g.rng.IntN(100)
		g.line("setsockopt %s IP_LOCAL_PORT_RANGE %d %d", s.name, lo, lo+g.rng.IntN(3))
	}
	if !s.udp && g.pct(5) {
		g.line("setsockopt %s IP_BIND_ADDRESS_NO_PORT 1", s.name)
	}
	if g.pct(3) {
		dev := "lo"
		if g.eth && g.pct(50) {
			dev = "eth0"
		}
		g.line("setsockopt %s SO_BINDTODEVICE %s", s.name, dev)
	}
	if g.pct(60) {
		g.bind(s)
	}
}

// addr picks a bind address for a socket: mostly of its own family.
func (g *gen) addr(v6 bool) string {
	if g.pct(5) {
		v6 = !v6
	}
	if !v6 {
		as := []string{"0.0.0.0", "127.0.0.1", "127.0.0.2", "198.51.100.7"}
		if g.eth {
			as = append(as, "192.0.2.1", "192.0.2.1")
		}
		return pick(g, as...)
	}
	as := []string{"[::]", "[::1]", "[::ffff:0.0.0.0]", "[::ffff:127.0.0.1]", "[2001:db8:1::7]"}
	if g.eth {
		as = append(as, "[2001:db8::1]", "[::ffff:192.0.2.1]")
	}
	return pick(g, as...)
}

func (g *gen) port() int {
	switch r := g.rng.IntN(100); {
	case r < 25:
		return 0
	case r < 35:
		return 80
	case r < 70:
		return 5000
	}
	return 5001
}

func (g *gen) proto(s *gsock) string { return map[bool]string{false: "tcp", true: "udp"}[s.udp] }

func (g *gen) bind(s *gsock) {
	if s.unix {
		g.line("bind %s %s", s.name, pick(g, unixPaths...))
		return
	}
	var ap string
	if g.pct(20) {
		// The same address as an earlier (maybe closed) socket: port
		// sharing, TIME_WAIT.
		for _, o := range g.socks {
			if o != s && !o.unix && o.bound != "" && !strings.HasSuffix(o.bound, ":0") && o.udp == s.udp {
				ap = o.bound
			}
		}
	}
	if ap == "" {
		ap = fmt.Sprintf("%s:%d", g.addr(s.v6), g.port())
	}
	g.line("bind %s %s", s.name, ap)
	if s.bound == "" {
		s.bound = ap
		if s.reuseport {
			g.rpPorts[g.proto(s)+" "+portOf(ap)]++
		}
	}
}

func portOf(ap string) string { return ap[strings.LastIndex(ap, ":")+1:] }

func (g *gen) listen(s *gsock) {
	g.line("listen %s", s.name)
	s.listening = !s.udp
}

// unixPaths are the AF_UNIX addresses random scenarios use: two files (in
// a directory of the replay's own) and an abstract name.
var unixPaths = []string{"/run/a.sock", "/run/b.sock", "@socktab"}

// unixSocket opens an AF_UNIX socket, usually bound (and listening, for a
// stream socket); some scenarios unlink a path later.
func (g *gen) unixSocket(s *gsock) {
	s.unix = true
	g.socks = append(g.socks, s)
	g.line("%s = socket unix %s", s.name, map[bool]string{false: "stream", true: "dgram"}[s.udp])
	if g.pct(5) {
		g.line("setsockopt %s SO_REUSEADDR 1", s.name)
	}
	if g.pct(70) {
		s.bound = pick(g, unixPaths...)
		g.line("bind %s %s", s.name, s.bound)
		if !s.udp && g.pct(70) {
			g.listen(s)
		}
	}
	if g.pct(15) {
		g.line("unlink %s", pick(g, unixPaths[:2]...))
	}
}

// target is a connect destination on this host, at a fixed port.
func (g *gen) target(s *gsock) string {
	var cands []*gsock
	for _, o := range g.socks {
		if o.listening && !o.closed && !o.unix && o.bound != "" && !strings.HasSuffix(o.bound, ":0") && o.udp == s.udp {
			cands = append(cands, o)
		}
	}
	port := pick(g, "5000", "5001", "80")
	if len(cands) > 0 && g.pct(70) {
		l := pick(g, cands...)
		l.pending++
		ap := l.bound
		host, p := ap[:strings.LastIndex(ap, ":")], portOf(ap)
		switch host {
		case "0.0.0.0":
			host = pick(g, "127.0.0.1", "127.0.0.3")
		case "[::]":
			host = pick(g, "[::1]", "127.0.0.1")
		case "[::ffff:0.0.0.0]":
			host = "127.0.0.1"
		}
		if strings.HasPrefix(host, "[::ffff:") {
			host = strings.TrimSuffix(strings.TrimPrefix(host, "[::ffff:"), "]")
		}
		port = p
		return g.form(s, host) + ":" + port
	}
	host := pick(g, "127.0.0.1", "127.0.0.2", "[::1]", "198.51.100.9", "0.0.0.0")
	if g.eth {
		host = pick(g, host, "192.0.2.1", "[2001:db8::1]")
	}
	return g.form(s, host) + ":" + port
}

// form writes an IPv4 address as v4-mapped for most IPv6 sockets.
func (g *gen) form(s *gsock, host string) string {
	if s.v6 && !strings.HasPrefix(host, "[") && g.pct(85) {
		return "[::ffff:" + host + "]"
	}
	if !s.v6 && strings.HasPrefix(host, "[") && g.pct(85) {
		return "127.0.0.1"
	}
	return host
}

func (g *gen) connect(s *gsock) {
	if s.unix {
		p := pick(g, unixPaths...)
		for _, o := range g.socks {
			if o.unix && o.listening && !o.closed && o.bound == p {
				o.pending++
			}
		}
		g.line("connect %s %s", s.name, p)
		return
	}
	g.line("connect %s %s", s.name, g.target(s))
}

func (g *gen) accept(s *gsock) {
	if s.reuseport && g.rpPorts[g.proto(s)+" "+portOf(s.bound)] > 1 {
		// TODO(kerneltest): which member of a SO_REUSEPORT group gets a
		// connection is a random hash in the kernel; accept there is not
		// comparable.
		return
	}
	if s.pending == 0 {
		g.line("accept %s", s.name)
		return
	}
	s.pending--
	c := &gsock{name: fmt.Sprintf("s%d", len(g.socks)+1), v6: s.v6, udp: s.udp, unix: s.unix}
	g.socks = append(g.socks, c)
	g.line("%s = accept %s", c.name, s.name)
}

func (g *gen) close(s *gsock) {
	g.line("close %s", s.name)
	s.closed = true
}

func (g *gen) packet() {
	udp := g.pct(40)
	v6 := g.pct(30)
	src, dst := pick(g, "127.0.0.1", "127.0.0.5"), pick(g, "127.0.0.1", "127.0.0.2", "127.0.0.9")
	if v6 {
		src, dst = "[::1]", "[::1]"
	}
	if g.eth && g.pct(40) {
		src, dst = "192.0.2.1", "192.0.2.1"
		if v6 {
			src, dst = "[2001:db8::1]", "[2001:db8::1]"
		}
		if g.pct(50) {
			// From another host, through the veth.
			src = pick(g, "198.51.100.20", "192.0.2.77")
			if v6 {
				src = pick(g, "[2001:db8::77]", "[2001:db8:2::20]")
			}
		}
	}
	g.pport++
	g.line("packet %s %s:%d -> %s:%s", map[bool]string{false: "tcp", true: "udp"}[udp], src, g.pport, dst, pick(g, "5000", "5001", "80"))
}

// connection is a whole TCP connection on this host: a listener, a client
// (maybe on a fixed port), the accepted child, then two or three of them
// closed in any order, and a new socket bound where one of them was: the
// side that closed first may hold the port in TIME_WAIT.
func (g *gen) connection() {
	v6 := g.pct(30)
	host := pick(g, "127.0.0.1", "127.0.0.2", "0.0.0.0")
	dst := host
	if host == "0.0.0.0" {
		dst = "127.0.0.1"
	}
	fam := "inet"
	if v6 {
		fam = "inet6"
		host, dst = pick(g, "[::1]", "[::]"), "[::1]"
	}
	port := pick(g, "5000", "5001")
	next := func() *gsock {
		s := &gsock{name: fmt.Sprintf("s%d", len(g.socks)+1), v6: v6}
		g.socks = append(g.socks, s)
		return s
	}
	l := next()
	g.line("%s = socket %s tcp", l.name, fam)
	if g.pct(50) {
		g.line("setsockopt %s SO_REUSEADDR 1", l.name)
	}
	l.bound = host + ":" + port
	g.line("bind %s %s", l.name, l.bound)
	g.line("listen %s", l.name)
	l.listening = true
	c := next()
	g.line("%s = socket %s tcp", c.name, fam)
	if g.pct(40) {
		c.bound = dst + ":" + pick(g, "5002", "5003")
		g.line("bind %s %s", c.name, c.bound)
	}
	g.line("connect %s %s:%s", c.name, dst, port)
	a := next()
	g.line("%s = accept %s", a.name, l.name)
	a.bound = dst + ":" + port
	order := []*gsock{l, c, a}
	g.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, s := range order[:2+g.rng.IntN(2)] {
		g.close(s)
	}
	r := next()
	g.line("%s = socket %s tcp", r.name, fam)
	if g.pct(50) {
		g.line("setsockopt %s SO_REUSEADDR 1", r.name)
	}
	at := pick(g, l, a, c)
	if at.bound == "" {
		at = l
	}
	r.bound = at.bound
	g.line("bind %s %s", r.name, r.bound)
}
