package kerneltest

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/socktab/socktab/scenario"
)

// GenerateWide writes a random scenario of the wide generator, on one host
// or on two hosts ("a" and "b", whose eth0 share a link): several sockets
// on one port with every mix and order of SO_REUSEADDR, SO_REUSEPORT,
// IPV6_V6ONLY and SO_BINDTODEVICE; binds and listens interleaved, options
// changed between bind and listen; connects across hosts, from
// device-bound sockets, from loopback and link-local sources; whole
// connections closed in any order on both sides, with new connects from
// the same port over their TIME_WAIT; connected and unconnected UDP;
// uids 0, 1000 and 1001; tiny port ranges; crowds of more than ten UDP
// sockets on one port; packet queries with SYN, ACK, RST and FIN to
// connections, listeners and nothing, from this host, the other host and
// elsewhere.
//
// Like Generate, fixed ports (80, 5000-5003) lie outside every ephemeral
// range used, and packet sources use ports 61000-65535.
func GenerateWide(seed uint64, hosts int) string {
	var text string
	for try := uint64(0); try < 20; try++ {
		g := &wgen{gen: gen{rng: rand.New(rand.NewPCG(seed, 0x77696465+try)), seed: seed}, nhosts: hosts}
		text = g.scenario()
		sc, err := scenario.Parse("gen", strings.NewReader(text))
		if err != nil {
			panic(fmt.Sprintf("kerneltest.GenerateWide(%d, %d): %v\n%s", seed, hosts, err, text))
		}
		if _, err := scenario.Run(sc, scenario.Options{Seed: seed}); err == nil {
			break
		}
	}
	return text
}

// whost is a host of a wide scenario and its addresses.
type whost struct {
	name   string
	v4, v6 string // eth0's addresses
	ll4    string // an IPv4 link-local address on eth0
	hasEth bool
}

type wsock struct {
	gsock
	host  int
	dev   string // SO_BINDTODEVICE
	port  string // the fixed port bound, "" if none
	group bool   // bound for broadcast/multicast: no connect destination
}

type wgen struct {
	gen
	nhosts int
	hosts  []*whost
	cur    int
	ws     []*wsock
	tuples []string // "src -> dst" of connections the scenario made from a fixed port
}

func (g *wgen) scenario() string {
	fmt.Fprintf(&g.b, "# kerneltest.GenerateWide(%d, %d)\n", g.seed, g.nhosts)
	g.pport = 61000 + g.rng.IntN(4000)
	g.rpPorts = map[string]int{}
	for i := 0; i < g.nhosts; i++ {
		h := &whost{name: string(rune('a' + i)), v4: fmt.Sprintf("192.0.2.%d", i+1),
			v6: fmt.Sprintf("2001:db8::%d", i+1), ll4: fmt.Sprintf("169.254.7.%d", i+1)}
		g.hosts = append(g.hosts, h)
		if g.nhosts > 1 {
			g.line("host %s", h.name)
		}
		if g.nhosts > 1 || g.pct(60) {
			h.hasEth = true
			if g.pct(30) {
				g.line("iface eth0 %s/24 %s/64 %s/16", h.v4, h.v6, h.ll4)
			} else {
				g.line("iface eth0 %s/24 %s/64", h.v4, h.v6)
				h.ll4 = ""
			}
		}
		g.sysctls()
		g.cur = i
	}
	want := 8 + g.rng.IntN(25)
	for g.n < want {
		g.wideAction()
	}
	return g.b.String()
}

func (g *wgen) sysctls() {
	if g.pct(20) {
		lo := 40000 + 2*g.rng.IntN(100)
		g.line("sysctl net.ipv4.ip_local_port_range %d %d", lo, lo+g.rng.IntN(3))
	}
	if g.pct(8) {
		g.line("sysctl net.ipv4.tcp_tw_reuse %d", pick(g.g(), 0, 1, 2))
	}
	if g.pct(8) {
		g.line("sysctl net.ipv6.bindv6only 1")
	}
	if g.pct(8) {
		g.line("sysctl net.ipv4.ip_autobind_reuse 1")
	}
}

func (g *wgen) g() *gen { return &g.gen }

func (g *wgen) switchHost(i int) {
	if g.nhosts > 1 && i != g.cur {
		g.line("host %s", g.hosts[i].name)
	}
	g.cur = i
}

func (g *wgen) openSocks() []*wsock {
	var out []*wsock
	for _, s := range g.ws {
		if !s.closed {
			out = append(out, s)
		}
	}
	return out
}

func (g *wgen) wideAction() {
	if g.nhosts > 1 && g.pct(15) {
		g.switchHost(g.rng.IntN(g.nhosts))
	}
	open := g.openSocks()
	switch r := g.rng.IntN(100); {
	case r < 20 || len(open) == 0:
		g.wsocket()
	case r < 32:
		g.portMix()
	case r < 42:
		g.wbind(pick(g.g(), open...))
	case r < 50:
		g.wlisten(pick(g.g(), open...))
	case r < 55:
		g.optChange(pick(g.g(), open...))
	case r < 64:
		g.wconnect(pick(g.g(), open...))
	case r < 69:
		g.waccept(pick(g.g(), open...))
	case r < 75:
		s := pick(g.g(), open...)
		g.line("close %s", s.name)
		s.closed = true
	case r < 80 && g.n < 30:
		g.wconnection()
	case r < 84:
		g.line("uid %d", pick(g.g(), 0, 0, 1000, 1001))
	case r < 86 && g.n < 30:
		g.line("advance %s", pick(g.g(), "2s", "61s"))
	case r < 90 && g.hosts[g.cur].hasEth:
		g.groupcast()
	case r == 90 && g.n < 30:
		g.udpCrowd()
	default:
		g.wpacket()
	}
}

func (g *wgen) newWS(v6, udp bool) *wsock {
	s := &wsock{gsock: gsock{name: fmt.Sprintf("s%d", len(g.ws)+1), v6: v6, udp: udp}, host: g.cur}
	g.ws = append(g.ws, s)
	fam := "inet"
	if v6 {
		fam = "inet6"
	}
	g.line("%s = socket %s %s", s.name, fam, map[bool]string{false: "tcp", true: "udp"}[udp])
	return s
}

// opts sets a random subset of the sharing options, in random order.
func (g *wgen) opts(s *wsock) {
	type opt struct {
		p    int
		line func()
	}
	os := []opt{
		{35, func() { g.line("setsockopt %s SO_REUSEADDR %d", s.name, pick(g.g(), 1, 1, 0)) }},
		{35, func() { s.reuseport = true; g.line("setsockopt %s SO_REUSEPORT 1", s.name) }},
		{30, func() {
			if s.v6 {
				g.line("setsockopt %s IPV6_V6ONLY %d", s.name, pick(g.g(), 0, 1))
			}
		}},
		{12, func() { s.dev = g.device(); g.line("setsockopt %s SO_BINDTODEVICE %s", s.name, s.dev) }},
	}
	g.rng.Shuffle(len(os), func(i, j int) { os[i], os[j] = os[j], os[i] })
	for _, o := range os {
		if g.pct(o.p) {
			o.line()
		}
	}
}

func (g *wgen) device() string {
	if g.hosts[g.cur].hasEth && g.pct(70) {
		return "eth0"
	}
	return "lo"
}

func (g *wgen) wsocket() {
	s := g.newWS(g.pct(45), g.pct(35))
	g.opts(s)
	if g.pct(60) {
		g.wbind(s)
	}
}

// portMix puts two to four sockets of one protocol on one port, each with
// its own options, binds and listens interleaved.
func (g *wgen) portMix() {
	udp := g.pct(30)
	port := pick(g.g(), "5000", "5000", "5001")
	n := 2 + g.rng.IntN(3)
	var made []*wsock
	for i := 0; i < n; i++ {
		s := g.newWS(g.pct(50), udp)
		g.opts(s)
		made = append(made, s)
		g.bindAt(s, g.bindAddr(s)+":"+port)
		if !udp && g.pct(50) {
			g.wlisten(s)
		}
		if g.pct(15) {
			g.line("uid %d", pick(g.g(), 0, 1000))
		}
	}
	for _, s := range made {
		if !udp && !s.listening && g.pct(40) {
			if g.pct(30) {
				g.optChange(s)
			}
			g.wlisten(s)
		}
	}
}

// udpCrowd puts 9 to 12 UDP sockets on one port, most with SO_REUSEADDR so
// that they get in: past ten in the port's hash slot, the kernel checks a
// bind to a specific address on the address's own chain, then the
// wildcards' (udp_lib_get_port, udp_lib_lport_inuse2).
func (g *wgen) udpCrowd() {
	port := pick(g.g(), "5000", "5001")
	for range 9 + g.rng.IntN(4) {
		s := g.newWS(g.pct(30), true)
		if g.pct(85) {
			g.line("setsockopt %s SO_REUSEADDR 1", s.name)
		}
		if g.pct(40) {
			s.reuseport = true
			g.line("setsockopt %s SO_REUSEPORT 1", s.name)
		}
		g.bindAt(s, g.bindAddr(s)+":"+port)
	}
}

// bindAddr is a local address for s on its host, in its family.
func (g *wgen) bindAddr(s *wsock) string {
	h := g.hosts[s.host]
	v4 := []string{"0.0.0.0", "0.0.0.0", "127.0.0.1", "127.0.0.2"}
	v6 := []string{"[::]", "[::]", "[::1]", "[::ffff:0.0.0.0]", "[::ffff:127.0.0.1]"}
	if h.hasEth {
		v4 = append(v4, h.v4, h.v4)
		v6 = append(v6, "["+h.v6+"]", "["+h.v6+"]", "[::ffff:"+h.v4+"]")
		if h.ll4 != "" {
			v4 = append(v4, h.ll4)
		}
	}
	if s.v6 && g.pct(95) {
		return pick(g.g(), v6...)
	}
	return pick(g.g(), v4...)
}

func (g *wgen) bindAt(s *wsock, ap string) {
	g.line("bind %s %s", s.name, ap)
	if s.bound == "" {
		s.bound = ap
		if p := portOf(ap); p != "0" {
			s.port = p
		}
		if s.reuseport {
			g.rpPorts[g.proto(&s.gsock)+" "+portOf(ap)]++
		}
	}
}

func (g *wgen) wbind(s *wsock) {
	if g.pct(25) {
		for _, o := range g.ws {
			if o != s && o.host == s.host && o.port != "" && o.udp == s.udp {
				g.bindAt(s, o.bound)
				return
			}
		}
	}
	g.bindAt(s, g.bindAddr(s)+":"+pick(g.g(), "0", "5000", "5000", "5001", "80"))
}

func (g *wgen) wlisten(s *wsock) {
	g.line("listen %s", s.name)
	s.listening = !s.udp
}

// optChange changes an option after bind (before listen or connect).
func (g *wgen) optChange(s *wsock) {
	switch g.rng.IntN(4) {
	case 0:
		g.line("setsockopt %s SO_REUSEADDR %d", s.name, pick(g.g(), 0, 1))
	case 1:
		g.line("setsockopt %s SO_REUSEPORT %d", s.name, pick(g.g(), 0, 1))
	case 2:
		if s.dev != "" {
			g.line(`setsockopt %s SO_BINDTODEVICE ""`, s.name)
			s.dev = ""
		} else {
			s.dev = g.device()
			g.line("setsockopt %s SO_BINDTODEVICE %s", s.name, s.dev)
		}
	default:
		if s.v6 {
			g.line("setsockopt %s IPV6_V6ONLY %d", s.name, pick(g.g(), 0, 1))
		} else {
			g.line("setsockopt %s SO_REUSEADDR 1", s.name)
		}
	}
}

// dest is a destination for a socket of family v6 on host from: a
// listener of either host, an address of the other host, or of this one.
func (g *wgen) dest(from *wsock) string {
	var cands []*wsock
	for _, o := range g.ws {
		if !o.closed && o.port != "" && o.udp == from.udp && (o.listening || o.udp) && !o.group {
			cands = append(cands, o)
		}
	}
	port := pick(g.g(), "5000", "5001", "80")
	var host string
	if len(cands) > 0 && g.pct(70) {
		o := pick(g.g(), cands...)
		port = o.port
		host = g.addrOn(o.host, o.bound, from)
	} else {
		host = g.addrOn(g.rng.IntN(g.nhosts), "", from)
	}
	return host + ":" + port
}

// addrOn is an address of host i that reaches a socket bound to bound
// ("" for any), written for the family of from.
func (g *wgen) addrOn(i int, bound string, from *wsock) string {
	h := g.hosts[i]
	a := ""
	if bound != "" {
		a = strings.Trim(bound[:strings.LastIndex(bound, ":")], "[]")
		a = strings.TrimPrefix(a, "::ffff:")
	}
	remote := i != from.host
	switch a {
	case "", "0.0.0.0", "::":
		var as []string
		if h.hasEth {
			as = append(as, h.v4, "["+h.v6+"]")
			if h.ll4 != "" {
				as = append(as, h.ll4)
			}
		}
		if !remote || g.pct(10) {
			as = append(as, "127.0.0.1", "[::1]")
		}
		if len(as) == 0 {
			as = []string{"127.0.0.1"}
		}
		a = pick(g.g(), as...)
	}
	if !strings.HasPrefix(a, "[") && strings.Contains(a, ":") {
		a = "[" + a + "]"
	}
	return g.form(&from.gsock, a)
}

func (g *wgen) wconnect(s *wsock) {
	d := g.dest(s)
	g.line("connect %s %s", s.name, d)
	for _, o := range g.ws {
		if o.listening && !o.closed && o.port == portOf(d) {
			o.pending++
		}
	}
	a := s.bound
	if s.port != "" && !s.udp && !strings.HasPrefix(a, "0.0.0.0") && !strings.HasPrefix(a, "[::]") &&
		!strings.HasPrefix(a, "[::ffff:") && !strings.HasPrefix(d, "[::ffff:") {
		g.tuples = append(g.tuples, fmt.Sprintf("%d %s -> %s", s.host, a, d))
	}
}

func (g *wgen) waccept(s *wsock) {
	if s.reuseport && g.rpPorts[g.proto(&s.gsock)+" "+s.port] > 1 {
		return // the kernel picks a group member at random
	}
	if s.pending == 0 {
		g.line("accept %s", s.name)
		return
	}
	s.pending--
	c := &wsock{gsock: gsock{name: fmt.Sprintf("s%d", len(g.ws)+1), v6: s.v6}, host: s.host}
	g.ws = append(g.ws, c)
	g.line("%s = accept %s", c.name, s.name)
}

// wconnection is a whole TCP connection, on one host or from one host to
// the other: a listener, a client on a fixed port (maybe device-bound),
// the accepted child, two or three of them closed in any order, then a new
// client from the same port to the same place, or a new bind there.
func (g *wgen) wconnection() {
	srv, cli := g.rng.IntN(g.nhosts), g.rng.IntN(g.nhosts)
	v6 := g.pct(35)
	hs, hc := g.hosts[srv], g.hosts[cli]
	dst, src := "127.0.0.1", "127.0.0.1"
	if v6 {
		dst, src = "[::1]", "[::1]"
	}
	if srv != cli || (hs.hasEth && g.pct(40)) {
		if !hs.hasEth || !hc.hasEth {
			return
		}
		dst, src = hs.v4, hc.v4
		if v6 {
			dst, src = "["+hs.v6+"]", "["+hc.v6+"]"
		}
	}
	lport, cport := pick(g.g(), "5000", "5001"), pick(g.g(), "5002", "5003")
	g.switchHost(srv)
	l := g.newWS(v6, false)
	if g.pct(50) {
		g.line("setsockopt %s SO_REUSEADDR 1", l.name)
	}
	g.bindAt(l, pick(g.g(), dst, map[bool]string{false: "0.0.0.0", true: "[::]"}[v6])+":"+lport)
	g.wlisten(l)
	g.switchHost(cli)
	c := g.newWS(v6, false)
	if g.pct(30) {
		g.line("setsockopt %s SO_REUSEADDR 1", c.name)
	}
	if g.pct(15) && hc.hasEth {
		c.dev = "eth0"
		g.line("setsockopt %s SO_BINDTODEVICE eth0", c.name)
	}
	bound := g.pct(70)
	if bound {
		g.bindAt(c, src+":"+cport)
	}
	g.line("connect %s %s:%s", c.name, dst, lport)
	if bound {
		g.tuples = append(g.tuples, fmt.Sprintf("%d %s:%s -> %s:%s", cli, src, cport, dst, lport))
	}
	g.switchHost(srv)
	a := &wsock{gsock: gsock{name: fmt.Sprintf("s%d", len(g.ws)+1), v6: v6}, host: srv}
	g.ws = append(g.ws, a)
	g.line("%s = accept %s", a.name, l.name)
	order := []*wsock{l, c, a}
	g.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for _, s := range order[:2+g.rng.IntN(2)] {
		g.line("close %s", s.name)
		s.closed = true
		if g.pct(15) {
			g.wpacket()
		}
	}
	if g.pct(20) {
		g.line("advance %s", pick(g.g(), "2s", "61s"))
	}
	if bound && g.pct(60) {
		// A new client from the same port to the same listener address:
		// over the TIME_WAIT of either side.
		g.switchHost(cli)
		n := g.newWS(v6, false)
		if g.pct(50) {
			g.line("setsockopt %s SO_REUSEADDR 1", n.name)
		}
		g.bindAt(n, src+":"+cport)
		g.line("connect %s %s:%s", n.name, dst, lport)
		return
	}
	g.switchHost(srv)
	r := g.newWS(v6, false)
	if g.pct(50) {
		g.line("setsockopt %s SO_REUSEADDR 1", r.name)
	}
	g.bindAt(r, l.bound)
	if g.pct(50) {
		g.wlisten(r)
	}
}

// wpacket is a packet query on the current host: a SYN, ACK, RST or FIN
// segment or a datagram, to a connection the scenario made, a fixed port
// or nothing; from this host, the other host or elsewhere.
func (g *wgen) wpacket() {
	h := g.hosts[g.cur]
	flags := pick(g.g(), "", "", "ack", "ack", "rst", "fin ack", "fin", "syn ack", "rst ack")
	if len(g.tuples) > 0 && g.pct(45) {
		// The far side of a connection of the scenario, as its peer
		// would send it to the host the connection's server is on.
		t := pick(g.g(), g.tuples...)
		f := strings.Fields(t)
		src, dst := f[1], f[3]
		loop := strings.HasPrefix(src, "127.") || strings.HasPrefix(src, "[::1]")
		if !g.isLocalTo(g.cur, dst) || (loop && g.rng.IntN(2) == 0) {
			src, dst = dst, src
		}
		if g.isLocalTo(g.cur, dst) && g.sameFamily(src, dst) && (!loop || f[0] == fmt.Sprint(g.cur)) {
			g.line("packet tcp %s -> %s %s", src, dst, flags)
			return
		}
	}
	udp := g.pct(35)
	if udp {
		flags = ""
	}
	v6 := g.pct(35)
	var srcs, dsts []string
	if v6 {
		srcs, dsts = []string{"[::1]"}, []string{"[::1]"}
	} else {
		srcs, dsts = []string{"127.0.0.1", "127.0.0.5"}, []string{"127.0.0.1", "127.0.0.2"}
	}
	if h.hasEth {
		me, elsewhere := h.v4, []string{"198.51.100.20", "192.0.2.77"}
		if v6 {
			me, elsewhere = "["+h.v6+"]", []string{"[2001:db8::77]", "[2001:db8:2::20]"}
		}
		dsts = append(dsts, me, me)
		if g.pct(50) {
			srcs = elsewhere
			dsts = []string{me}
			for i, o := range g.hosts {
				if i != g.cur && o.hasEth && g.pct(60) {
					srcs = []string{map[bool]string{false: o.v4, true: "[" + o.v6 + "]"}[v6]}
				}
			}
		}
	}
	g.pport++
	proto := map[bool]string{false: "tcp", true: "udp"}[udp]
	line := fmt.Sprintf("packet %s %s:%d -> %s:%s %s", proto, pick(g.g(), srcs...), g.pport, pick(g.g(), dsts...),
		pick(g.g(), "5000", "5001", "80", "5002"), flags)
	g.line("%s", strings.TrimSpace(line))
}

// isLocalTo reports whether the address of "addr:port" is one of host i.
func (g *wgen) isLocalTo(i int, ap string) bool {
	a := ap[:strings.LastIndex(ap, ":")]
	h := g.hosts[i]
	return a == h.v4 || a == "["+h.v6+"]" || (h.ll4 != "" && a == h.ll4) ||
		a == "127.0.0.1" || a == "[::1]" || strings.HasPrefix(a, "127.")
}

func (g *wgen) sameFamily(a, b string) bool {
	return strings.HasPrefix(a, "[") == strings.HasPrefix(b, "[")
}

// groupcast is broadcast and multicast: UDP sockets on one port (wildcard,
// the group, or the host's address; some joined to a group on eth0, some
// with IP_MULTICAST_ALL off), then datagrams from elsewhere to a group,
// the subnet's broadcast or 255.255.255.255, arriving on eth0.
func (g *wgen) groupcast() {
	h := g.hosts[g.cur]
	v6 := g.pct(40)
	port := pick(g.g(), "5000", "5001")
	group := pick(g.g(), "239.1.2.3", "239.9.9.9")
	if v6 {
		group = pick(g.g(), "ff05::123", "ff02::1:3")
	}
	for i, n := 0, 1+g.rng.IntN(3); i < n; i++ {
		s := g.newWS(v6 || g.pct(20), true)
		s.group = true
		g.line("setsockopt %s SO_REUSEADDR 1", s.name)
		if g.pct(20) {
			opt := "IP_MULTICAST_ALL"
			if s.v6 {
				opt = "IPV6_MULTICAST_ALL"
			}
			g.line("setsockopt %s %s 0", s.name, opt)
		}
		addr := map[bool]string{false: "0.0.0.0", true: "[::]"}[s.v6]
		switch {
		case g.pct(25) && s.v6 == v6:
			addr = map[bool]string{false: group, true: "[" + group + "]"}[v6]
		case g.pct(20):
			addr = map[bool]string{false: h.v4, true: "[" + h.v6 + "]"}[s.v6]
		}
		g.bindAt(s, addr+":"+port)
		if g.pct(60) && s.v6 == v6 || g.pct(20) {
			g.line("join %s %s dev eth0", s.name, group)
		}
	}
	for i, n := 0, 1+g.rng.IntN(2); i < n; i++ {
		g.pport++
		if v6 {
			dst := pick(g.g(), "["+group+"]", "[ff02::1]", "[ff05::999]")
			g.line("packet udp [2001:db8::77]:%d -> %s:%s dev eth0", g.pport, dst, port)
			continue
		}
		dst := pick(g.g(), group, "192.0.2.255", "255.255.255.255", "239.7.7.7")
		g.line("packet udp 198.51.100.20:%d -> %s:%s dev eth0", g.pport, dst, port)
	}
}
