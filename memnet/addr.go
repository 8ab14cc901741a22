package memnet

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/socktab/socktab/engine"
)

// netSpec is a parsed network name: "tcp", "tcp4", "udp6", "unix", ...
type netSpec struct {
	name         string
	id           network
	proto        engine.Proto
	only4, only6 bool
}

func (s netSpec) unix() bool { return s.proto == engine.UnixStream || s.proto == engine.UnixDgram }

func parseNetwork(network string) (netSpec, error) {
	s := netSpec{name: network}
	switch network {
	case "tcp", "tcp4", "tcp6":
		s.proto = engine.TCP
	case "udp", "udp4", "udp6":
		s.proto = engine.UDP
	case "unix":
		s.proto = engine.UnixStream
	case "unixgram":
		s.proto = engine.UnixDgram
	default:
		return s, net.UnknownNetworkError(network)
	}
	s.id = networkOf(network)
	s.only4 = strings.HasSuffix(network, "4")
	s.only6 = strings.HasSuffix(network, "6")
	return s, nil
}

// network is a network name package net accepts, in one byte: a
// connection end keeps it for its errors.
type network uint8

var networkNames = [...]string{"tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "unix", "unixgram"}

// networkOf is name's network; parseNetwork accepted name, so it is listed.
func networkOf(name string) network {
	for i, n := range networkNames {
		if n == name {
			return network(i)
		}
	}
	return 0
}

func (n network) String() string { return networkNames[n] }

// tcpEnd is a TCP end's address and port without netip's zone pointer:
// 20 bytes with no pointer, where a netip.AddrPort takes 32.
type tcpEnd struct {
	a    [16]byte
	port uint16
	v4   bool
	ok   bool
}

func endOf(ap netip.AddrPort) tcpEnd {
	if !ap.IsValid() {
		return tcpEnd{}
	}
	return tcpEnd{a: ap.Addr().As16(), port: ap.Port(), v4: ap.Addr().Is4(), ok: true}
}

func (e tcpEnd) addrPort() netip.AddrPort {
	if !e.ok {
		return netip.AddrPort{}
	}
	a := netip.AddrFrom16(e.a)
	if e.v4 {
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, e.port)
}

// services are the port names a program may write instead of a number.
var services = map[string]uint16{"http": 80, "https": 443, "domain": 53, "ssh": 22, "ntp": 123, "smtp": 25}

func parsePort(s string) (uint16, bool) {
	if s == "" {
		return 0, true
	}
	if v, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(v), true
	}
	p, ok := services[strings.ToLower(s)]
	return p, ok
}

// inetAddrs resolves "host:port" for network spec: the candidates to dial
// in order, or for a listener the one address package net would pick (the
// first IPv4 address of a name unless the network is IPv6-only). An empty
// host is the wildcard (invalid Addr) for a listener and 0.0.0.0 / :: for
// a dialer ("the local system"). Addresses of the wrong family for tcp4 /
// tcp6 are filtered out. The candidates are appended to buf[:0], so a
// caller's small array holds the usual one or two without an allocation.
func (n *Network) inetAddrs(spec netSpec, address string, listen bool, buf []netip.AddrPort) ([]netip.AddrPort, error) {
	host, ps, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, ok := parsePort(ps)
	if !ok {
		return nil, &net.AddrError{Err: "invalid port", Addr: address}
	}
	out := buf[:0]
	if host == "" {
		switch {
		case listen:
			return append(out, netip.AddrPortFrom(netip.Addr{}, port)), nil
		case spec.only6:
			return append(out, netip.AddrPortFrom(netip.IPv6Unspecified(), port)), nil
		}
		return append(out, netip.AddrPortFrom(netip.IPv4Unspecified(), port)), nil
	}
	var literal [1]netip.Addr
	addrs := literal[:]
	if a, err := netip.ParseAddr(host); err == nil {
		literal[0] = a.WithZone("")
	} else if addrs, err = n.resolve(host); err != nil {
		return nil, err
	}
	for _, a := range addrs {
		v4 := a.Unmap().Is4()
		if (spec.only4 && !v4) || (spec.only6 && v4 && !a.Is4In6()) {
			continue
		}
		if spec.only4 {
			a = a.Unmap()
		}
		out = append(out, netip.AddrPortFrom(a, port))
	}
	if len(out) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
	}
	if listen && len(out) > 1 {
		if _, err := netip.ParseAddr(host); err != nil && !spec.only6 {
			for _, ap := range out {
				if ap.Addr().Is4() {
					return []netip.AddrPort{ap}, nil
				}
			}
		}
		out = out[:1]
	}
	return out, nil
}

// family is the socket package net opens for this network and addresses
// (favoriteAddrFamily): tcp4/udp4 AF_INET; tcp6/udp6 AF_INET6 with
// IPV6_V6ONLY; a wildcard listener AF_INET6 dual-stack, since every
// modelled OS maps IPv4 into IPv6 and Go clears IPV6_V6ONLY; otherwise
// AF_INET when both ends are IPv4, else AF_INET6 dual-stack.
func family(spec netSpec, laddr, raddr netip.Addr, listen bool) (fam engine.Family, v6only bool) {
	switch {
	case spec.only4:
		return engine.Inet, false
	case spec.only6:
		return engine.Inet6, true
	case listen && (!laddr.IsValid() || laddr.IsUnspecified()):
		return engine.Inet6, false
	case (!laddr.IsValid() || laddr.Unmap().Is4()) && (!raddr.IsValid() || raddr.Unmap().Is4()):
		return engine.Inet, false
	}
	return engine.Inet6, false
}

// sockAddr writes a into a socket of family fam as package net does
// (ipToSockaddr): 0.0.0.0 becomes :: and other IPv4 addresses v4-mapped in
// an AF_INET6 socket; a missing address is the family's wildcard.
func sockAddr(fam engine.Family, ap netip.AddrPort) netip.AddrPort {
	a := ap.Addr()
	if fam == engine.Inet {
		if !a.IsValid() {
			a = netip.IPv4Unspecified()
		}
		return netip.AddrPortFrom(a.Unmap(), ap.Port())
	}
	switch {
	case !a.IsValid() || (a.Is4() && a.IsUnspecified()):
		a = netip.IPv6Unspecified()
	case a.Is4():
		a = netip.AddrFrom16(a.As16())
	}
	return netip.AddrPortFrom(a, ap.Port())
}

// tcpAddr is net.TCPAddrFromAddrPort with the IP's bytes in the same
// allocation as the address: one allocation where package net makes two
// (a connection makes four addresses, a received datagram one).
func tcpAddr(ap netip.AddrPort) *net.TCPAddr {
	if !ap.IsValid() {
		return nil
	}
	a := ap.Addr()
	if a.Is4() {
		x := new(struct {
			a  net.TCPAddr
			ip [4]byte
		})
		x.ip = a.As4()
		x.a = net.TCPAddr{IP: x.ip[:4:4], Port: int(ap.Port())}
		return &x.a
	}
	x := new(struct {
		a  net.TCPAddr
		ip [16]byte
	})
	x.ip = a.As16()
	x.a = net.TCPAddr{IP: x.ip[:16:16], Port: int(ap.Port()), Zone: a.Zone()}
	return &x.a
}

// udpAddr is tcpAddr for UDP: net.UDPAddr and net.TCPAddr have the same
// fields, so the pointer converts.
func udpAddr(ap netip.AddrPort) *net.UDPAddr { return (*net.UDPAddr)(tcpAddr(ap)) }

// addrPortOf reads a net.Addr a program passed (TCP, UDP or IP address).
func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	switch v := a.(type) {
	case *net.TCPAddr:
		if v == nil {
			return netip.AddrPort{}, false
		}
		ip, ok := netip.AddrFromSlice(v.IP)
		if !ok && len(v.IP) == 0 {
			ip, ok = netip.Addr{}, true
		}
		return netip.AddrPortFrom(ip.Unmap(), uint16(v.Port)), ok
	case *net.UDPAddr:
		if v == nil {
			return netip.AddrPort{}, false
		}
		ip, ok := netip.AddrFromSlice(v.IP)
		if !ok && len(v.IP) == 0 {
			ip, ok = netip.Addr{}, true
		}
		return netip.AddrPortFrom(ip.Unmap(), uint16(v.Port)), ok
	}
	return netip.AddrPort{}, false
}
