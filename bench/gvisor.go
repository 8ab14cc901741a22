package main

// The gVisor column drives gVisor's netstack through its public API only:
// a stack.Stack with IPv4/IPv6 and TCP/UDP and a channel link endpoint as
// NIC 1; binds and the ephemeral choice through the stack's
// ports.PortManager (ReservePort, ReserveTuple, PickEphemeralPort, as
// gVisor's tcp endpoint calls them); lookups through the stack's transport
// demuxer (RegisterTransportEndpoint / FindTransportEndpoint). The
// endpoints registered are empty stand-ins: gVisor's own tcp.Endpoint is
// not created, so its memory is not counted.

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"

	gvrand "gvisor.dev/gvisor/pkg/rand"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/ports"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

type gvisorImpl struct{ cfg Config }

const gvNIC tcpip.NICID = 1

var v4only = []tcpip.NetworkProtocolNumber{ipv4.ProtocolNumber}

func (m *gvisorImpl) stack() *stack.Stack {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	if err := s.CreateNIC(gvNIC, channel.New(256, 1500, "")); err != nil {
		panic(fmt.Sprint("gvisor CreateNIC: ", err))
	}
	if err := s.AddProtocolAddress(gvNIC, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: gvAddr(serverAddr), PrefixLen: 24}}, stack.AddressProperties{}); err != nil {
		panic(fmt.Sprint("gvisor AddProtocolAddress: ", err))
	}
	return s
}

// rng is a seeded gVisor RNG (it reads bytes from any io.Reader).
func (m *gvisorImpl) rng() gvrand.RNG {
	var seed [32]byte
	for i := range 8 {
		seed[i] = byte(m.cfg.Seed >> (8 * i))
	}
	return gvrand.RNG{Reader: rand.NewChaCha8(seed)}
}

func gvAddr(a netip.Addr) tcpip.Address {
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	return tcpip.AddrFrom16(a.As16())
}

func tcpRes(addr tcpip.Address, port uint16, reuse bool) ports.Reservation {
	return ports.Reservation{Networks: v4only, Transport: tcp.ProtocolNumber, Addr: addr, Port: port,
		Flags: ports.Flags{TupleOnly: reuse}}
}

func (m *gvisorImpl) bindSpecific() prepared {
	s, rng := m.stack(), m.rng()
	res := tcpRes(gvAddr(serverAddr), bindPort, false)
	return prepared{close: s.Destroy, batch: loop(func() {
		if _, err := s.ReservePort(rng, res, nil); err != nil {
			panic(fmt.Sprint("gvisor bind: ", err))
		}
		s.ReleasePort(res)
	})}
}

func (m *gvisorImpl) wildcardBind(n int) prepared {
	s, rng := m.stack(), m.rng()
	for i := range n {
		if _, err := s.ReservePort(rng, tcpRes(tcpip.AddrFrom4(loopN(i)), bindPort, true), nil); err != nil {
			panic(fmt.Sprint("gvisor specific bind: ", err))
		}
	}
	res := tcpRes(tcpip.Address{}, bindPort, true)
	return prepared{close: s.Destroy, batch: loop(func() {
		if _, err := s.ReservePort(rng, res, nil); err != nil {
			panic(fmt.Sprint("gvisor wildcard bind: ", err))
		}
		s.ReleasePort(res)
	})}
}

// acceptedBind: the listener's reservation and one tuple reservation per
// accepted connection (tcp accept.go: ReserveTuple), then a plain bind on
// the listener's address, which fails.
func (m *gvisorImpl) acceptedBind(n int) prepared {
	s, rng := m.stack(), m.rng()
	lo := tcpip.AddrFrom4([4]byte{127, 0, 0, 1})
	res := tcpRes(lo, acceptPt, false)
	if _, err := s.ReservePort(rng, res, nil); err != nil {
		panic(fmt.Sprint("gvisor listener bind: ", err))
	}
	for i := range n {
		t := res
		t.Dest = tcpip.FullAddress{Addr: lo, Port: uint16(32768 + i)}
		if !s.ReserveTuple(t) {
			panic("gvisor ReserveTuple failed")
		}
	}
	return prepared{close: s.Destroy, batch: loop(func() {
		if _, err := s.ReservePort(rng, res, nil); err == nil {
			panic("gvisor: bind on a listener's address succeeded")
		}
	}), note: "ErrPortInUse"}
}

// ephemeral is the ephemeral choice of gVisor's tcp connect
// (endpoint.go: PickEphemeralPort with a tester that reserves the port
// toward the destination), undone by ReleasePort. Registering the
// endpoint with the demuxer, which connect also does, is left out.
func (m *gvisorImpl) ephemeral(lo, hi, occ int, contiguous bool) prepared {
	s, rng := m.stack(), m.rng()
	if err := s.SetPortRange(uint16(lo), uint16(hi)); err != nil {
		panic(fmt.Sprint("gvisor SetPortRange: ", err))
	}
	src := gvAddr(serverAddr)
	dst := tcpip.FullAddress{Addr: gvAddr(connDst.Addr()), Port: connDst.Port()}
	for _, p := range takenPorts(m.cfg.Seed, lo, hi, occ, contiguous) {
		r := tcpRes(src, uint16(p), false)
		r.Dest = dst
		if _, err := s.ReservePort(rng, r, nil); err != nil {
			panic(fmt.Sprint("gvisor fill: ", err))
		}
	}
	return prepared{close: s.Destroy, batch: loop(func() {
		var got ports.Reservation
		if _, err := s.PickEphemeralPort(rng, func(p uint16) (bool, tcpip.Error) {
			r := tcpRes(src, p, false)
			r.Dest = dst
			if _, err := s.ReservePort(rng, r, nil); err != nil {
				return false, nil
			}
			got = r
			return true, nil
		}); err != nil {
			panic(fmt.Sprint("gvisor ephemeral: ", err))
		}
		s.ReleasePort(got)
	})}
}

// gvEP stands in for a transport endpoint.
type gvEP struct{ id int }

func (*gvEP) HandlePacket(stack.TransportEndpointID, *stack.PacketBuffer) {}
func (*gvEP) HandleError(stack.TransportError, *stack.PacketBuffer)       {}
func (*gvEP) Abort()                                                      {}
func (*gvEP) Wait()                                                       {}

var sharedEP = &gvEP{}

func gvID(local netip.AddrPort, remote netip.AddrPort) stack.TransportEndpointID {
	id := stack.TransportEndpointID{LocalPort: local.Port(), RemotePort: remote.Port()}
	if local.Addr().IsValid() && !local.Addr().IsUnspecified() {
		id.LocalAddress = gvAddr(local.Addr())
	}
	if remote.Addr().IsValid() {
		id.RemoteAddress = gvAddr(remote.Addr())
	}
	return id
}

// lookupStack is the socktab lookup table in gVisor: n established flows
// to 192.0.2.1:443, registered with the demuxer and holding a tuple
// reservation each, as an accepted connection does, and listeners on
// 192.0.2.1:8080 and 0.0.0.0:80.
func (m *gvisorImpl) lookupStack(n int) *stack.Stack {
	s := m.stack()
	local := netip.AddrPortFrom(serverAddr, httpsPort)
	res := tcpRes(gvAddr(serverAddr), httpsPort, false)
	for i := range n {
		p := peer(i)
		if err := s.RegisterTransportEndpoint(v4only, tcp.ProtocolNumber, gvID(local, p), sharedEP, ports.Flags{}, 0); err != nil {
			panic(fmt.Sprint("gvisor register: ", err))
		}
		t := res
		t.Dest = tcpip.FullAddress{Addr: gvAddr(p.Addr()), Port: p.Port()}
		if !s.ReserveTuple(t) {
			panic("gvisor ReserveTuple failed")
		}
	}
	for _, l := range []netip.AddrPort{
		netip.AddrPortFrom(netip.IPv4Unspecified(), wildPort),
		netip.AddrPortFrom(serverAddr, exactPort),
	} {
		if err := s.RegisterTransportEndpoint(v4only, tcp.ProtocolNumber, gvID(l, netip.AddrPort{}), &gvEP{}, ports.Flags{}, 0); err != nil {
			panic(fmt.Sprint("gvisor register listener: ", err))
		}
	}
	return s
}

func (m *gvisorImpl) lookup(n int) []prepared {
	s := m.lookupStack(n)
	srcs := probeOrder(m.cfg.Seed, n)
	var out []prepared
	for k, port := range []uint16{httpsPort, exactPort, wildPort, missPort} {
		dst := netip.AddrPortFrom(serverAddr, port)
		want := k != 3
		i := 0
		p := prepared{batch: loop(func() {
			ep := s.FindTransportEndpoint(ipv4.ProtocolNumber, tcp.ProtocolNumber, gvID(dst, srcs[i]), gvNIC)
			if (ep != nil) != want {
				panic(fmt.Sprintf("gvisor lookup %s: %v", lookupKinds[k], ep))
			}
			if i++; i == len(srcs) {
				i = 0
			}
		})}
		if k == 0 {
			p.close = s.Destroy
		}
		out = append(out, p)
	}
	return out
}

func (m *gvisorImpl) reuseport(n, flows int) prepared {
	s := m.stack()
	id := gvID(netip.AddrPortFrom(netip.IPv4Unspecified(), groupPort), netip.AddrPort{})
	for i := range n {
		if err := s.RegisterTransportEndpoint(v4only, tcp.ProtocolNumber, id, &gvEP{id: i}, ports.Flags{LoadBalanced: true}, 0); err != nil {
			panic(fmt.Sprint("gvisor reuseport register: ", err))
		}
	}
	srcs := groupSources(m.cfg.Seed, flows)
	dst := netip.AddrPortFrom(serverAddr, groupPort)
	counts := make([]int, n)
	for _, src := range srcs {
		ep := s.FindTransportEndpoint(ipv4.ProtocolNumber, tcp.ProtocolNumber, gvID(dst, src), gvNIC)
		counts[ep.(*gvEP).id]++
	}
	i := 0
	return prepared{close: s.Destroy, note: spread(counts), batch: loop(func() {
		s.FindTransportEndpoint(ipv4.ProtocolNumber, tcp.ProtocolNumber, gvID(dst, srcs[i]), gvNIC)
		if i++; i == len(srcs) {
			i = 0
		}
	})}
}

func (m *gvisorImpl) memory(n int) prepared {
	before := heapAlloc()
	s := m.lookupStack(n)
	after := heapAlloc()
	runtime.KeepAlive(s)
	s.Destroy()
	return fixed(Cell{V: float64(after-before) / float64(n), Note: "demuxer + port reservations only"})
}
