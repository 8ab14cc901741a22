package memnet

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/socktab/socktab/engine"
)

// Options configure a Network. The zero value is a Linux network.
type Options struct {
	// OS names the engine profile every host follows: "linux" (default),
	// "windows", "macos" or "freebsd".
	OS string
	// Seed fixes the random choices of the OS (ephemeral ports, the
	// SO_REUSEPORT hash, UDP loss). Equal seeds give equal runs.
	Seed uint64
}

// Network is a set of hosts joined by links. Every bind, connect and
// delivery goes through one socktab engine; bytes move between
// connections' buffers without it. A Network is safe for concurrent use.
type Network struct {
	mu    sync.Mutex // guards the engine and the maps below; held briefly
	eng   *engine.Network
	err   error // a configuration error every operation reports
	start time.Time
	hosts []*Host
	byEng map[*engine.Host]*Host // hosts by their engine host (hostOf)
	named map[string][]*Host     // hosts by lower-case name, in the order made (Host, resolve)

	listeners map[*engine.Socket]*Listener
	packets   map[*engine.Socket]*PacketConn
	conns     *Conn // the open stream ends, a list through Conn.next, for the listing's queues
	links     map[[2]*Host]*link
	rng       uint64
	topo      uint64 // bumped when a host, address or route is added: cached routes are stale
}

// New returns an empty network. An unknown OS is reported by every
// operation of the network's hosts (and by Err).
func New(o Options) *Network {
	n := &Network{start: time.Now(), listeners: map[*engine.Socket]*Listener{},
		packets: map[*engine.Socket]*PacketConn{}, links: map[[2]*Host]*link{}, rng: o.Seed*0x9e3779b97f4a7c15 + 1}
	name := o.OS
	if name == "" {
		name = "linux"
	}
	p, err := engine.ProfileByName(name)
	if err != nil {
		n.err = fmt.Errorf("memnet: Options.OS: %w", err)
		p = engine.Linux
	}
	n.eng = engine.NewNetwork(p, o.Seed)
	return n
}

// addConn and dropConn keep the list of open stream ends (n.mu held): a
// list, not a map, because every connection enters and leaves it and only
// the listing reads it.
func (n *Network) addConn(c *Conn) {
	c.prev, c.next, c.listed = nil, n.conns, true
	if n.conns != nil {
		n.conns.prev = c
	}
	n.conns = c
}

func (n *Network) dropConn(c *Conn) {
	if !c.listed {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		n.conns = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next, c.listed = nil, nil, false
}

// Err is the network's configuration error, or nil.
func (n *Network) Err() error { return n.err }

// OS is the name of the profile the hosts follow.
func (n *Network) OS() string { return n.eng.Profile.Name }

// lock takes the engine lock and brings the engine's clock to the time
// elapsed since New (virtual time inside a testing/synctest bubble), so
// that TIME_WAIT expires as the program's clock says.
func (n *Network) lock() {
	n.mu.Lock()
	if d := time.Since(n.start) - n.eng.Now(); d > 0 {
		n.eng.Advance(d)
	}
}

func (n *Network) unlock() { n.mu.Unlock() }

// Host is one machine: its own socket tables, loopback, files for unix
// sockets and sysctls. Its methods are safe for concurrent use.
type Host struct {
	n    *Network
	name string
	eng  *engine.Host
	err  error
	uid  uint32
}

// Host creates a host with lo (127.0.0.1/8, ::1) and the given addresses,
// each "address/prefix-length", on eth0. Hosts whose eth0 subnets meet
// reach each other; AddRoute adds more. Host returns the existing host of
// that name (adding the addresses). A bad address is reported by every
// operation of the host (and by Err).
func (n *Network) Host(name string, addrs ...string) *Host {
	n.lock()
	defer n.unlock()
	var h *Host
	for _, x := range n.named[strings.ToLower(name)] {
		if x.name == name {
			h = x
		}
	}
	if h == nil {
		h = &Host{n: n, name: name, eng: n.eng.AddHost(name), uid: 1000, err: n.err}
		n.hosts = append(n.hosts, h)
		if n.byEng == nil {
			n.byEng, n.named = map[*engine.Host]*Host{}, map[string][]*Host{}
		}
		n.byEng[h.eng] = h
		k := strings.ToLower(name)
		n.named[k] = append(n.named[k], h)
	}
	n.topo++
	var ps []netip.Prefix
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			if ad, err2 := netip.ParseAddr(a); err2 == nil {
				p, err = netip.PrefixFrom(ad, ad.BitLen()), nil
			}
		}
		if err != nil {
			if h.err == nil {
				h.err = fmt.Errorf("memnet: host %s: address %q: want ADDRESS/PREFIX-LENGTH such as 192.0.2.10/24", name, a)
			}
			continue
		}
		if p.Addr().Zone() != "" {
			p = netip.PrefixFrom(p.Addr().WithZone(""), p.Bits())
		}
		ps = append(ps, p)
	}
	if len(ps) > 0 {
		h.eng.AddIface("eth0", ps...)
	}
	return h
}

// Name is the host's name, which other hosts resolve to its addresses.
func (h *Host) Name() string { return h.name }

// Err is the host's configuration error, or nil.
func (h *Host) Err() error { return h.err }

// SetUID sets the user the host's programs run as (default 1000, not
// root: ports below 1024 need uid 0 on Linux).
func (h *Host) SetUID(uid uint32) {
	h.n.lock()
	h.uid = uid
	h.n.unlock()
}

// AddRoute sends dst ("198.51.100.0/24") out of the interface dev.
func (h *Host) AddRoute(dst, dev string) error {
	p, err := netip.ParsePrefix(dst)
	if err != nil {
		return fmt.Errorf("memnet: host %s: route %q: %v", h.name, dst, err)
	}
	h.n.lock()
	defer h.n.unlock()
	h.n.topo++
	if err := h.eng.AddRoute(p, dev); err != nil {
		return fmt.Errorf("memnet: host %s: route %s: %v", h.name, dst, err)
	}
	return nil
}

// AddAddr adds addresses ("192.0.2.11/24") to interface dev, creating it.
func (h *Host) AddAddr(dev string, addrs ...string) error {
	var ps []netip.Prefix
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return fmt.Errorf("memnet: host %s: address %q: %v", h.name, a, err)
		}
		ps = append(ps, p)
	}
	h.n.lock()
	h.n.topo++
	h.eng.AddIface(dev, ps...)
	h.n.unlock()
	return nil
}

// Sysctl sets a kernel setting as `sysctl -w` would, with the kernel's
// validation: net.ipv4.ip_local_port_range "32768 60999",
// net.ipv6.bindv6only "1", net.ipv4.ip_unprivileged_port_start,
// net.ipv4.ip_local_reserved_ports, net.ipv4.tcp_tw_reuse, ...
func (h *Host) Sysctl(name string, value ...string) error {
	if len(value) == 1 {
		value = strings.Fields(value[0])
	}
	h.n.lock()
	defer h.n.unlock()
	e, err := h.eng.Sysctl.Set(name, value)
	if err != nil {
		return fmt.Errorf("memnet: host %s: sysctl: %v", h.name, err)
	}
	if e != engine.OK {
		return fmt.Errorf("memnet: host %s: sysctl %s=%s: %w", h.name, name, strings.Join(value, " "), e.Syscall())
	}
	return nil
}

// Remove removes a file (a unix socket's path) from the host's files.
func (h *Host) Remove(path string) error {
	h.n.lock()
	r := h.eng.Unlink(path)
	h.n.unlock()
	if r.Err != engine.OK {
		return &os.PathError{Op: "remove", Path: path, Err: sysErr(r)}
	}
	return nil
}

// resolve turns a host name into addresses the way a program's resolver
// would here (inetAddrs takes IP literals as they are): "localhost" to 127.0.0.1 and ::1,
// a host's name to its non-loopback addresses (IPv4 first), anything else
// a *net.DNSError that IsNotFound.
func (n *Network) resolve(host string) ([]netip.Addr, error) {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}, nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	name := strings.TrimSuffix(host, ".")
	hosts := n.named[strings.ToLower(name)]
	if len(hosts) == 0 {
		hosts = n.hosts // a name lower-casing does not fold (Unicode's special cases): every host
	}
	for _, h := range hosts {
		if !strings.EqualFold(h.name, name) {
			continue
		}
		var v4, v6 []netip.Addr
		for _, i := range h.eng.Ifaces {
			if i.Loopback {
				continue
			}
			for _, p := range i.Addrs {
				if p.Addr().Is4() {
					v4 = append(v4, p.Addr())
				} else {
					v6 = append(v6, p.Addr())
				}
			}
		}
		if len(v4)+len(v6) > 0 {
			return append(v4, v6...), nil
		}
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
