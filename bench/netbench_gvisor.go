package main

// The gVisor column of the network table: two netstacks (IPv4, TCP, UDP)
// joined by gVisor's pipe link, driven through gonet (its net.Conn,
// net.Listener and net.PacketConn adapters). The client stack has
// 192.0.2.2, the server stack 192.0.2.1.

import (
	"fmt"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

func newGVisorOps() (*netOps, error) {
	srvAddr, cliAddr := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	e1, e2 := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 65536)
	mk := func(ep stack.LinkEndpoint, a netip.Addr) (*stack.Stack, error) {
		s := stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
		})
		if err := s.CreateNIC(1, ep); err != nil {
			return nil, fmt.Errorf("CreateNIC: %v", err)
		}
		if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: gvAddr(a), PrefixLen: 24}}, stack.AddressProperties{}); err != nil {
			return nil, fmt.Errorf("AddProtocolAddress: %v", err)
		}
		subnet := orPanic(tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{192, 0, 2, 0}), tcpip.MaskFromBytes([]byte{255, 255, 255, 0})))
		s.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: 1}})
		return s, nil
	}
	srv, err := mk(e1, srvAddr)
	if err != nil {
		return nil, err
	}
	cli, err := mk(e2, cliAddr)
	if err != nil {
		return nil, err
	}
	full := func(address string) (tcpip.FullAddress, error) {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return tcpip.FullAddress{}, err
		}
		fa := tcpip.FullAddress{NIC: 1, Port: ap.Port()}
		if !ap.Addr().IsUnspecified() {
			fa.Addr = gvAddr(ap.Addr())
		}
		return fa, nil
	}
	packet := func(s *stack.Stack) func(network, address string) (net.PacketConn, error) {
		return func(network, address string) (net.PacketConn, error) {
			fa, err := full(address)
			if err != nil {
				return nil, err
			}
			return gonet.DialUDP(s, &fa, nil, ipv4.ProtocolNumber)
		}
	}
	return &netOps{
		name:   "gvisor",
		server: srvAddr.String(),
		heap:   true,
		listen: func(network, address string) (net.Listener, error) {
			fa, err := full(address)
			if err != nil {
				return nil, err
			}
			return gonet.ListenTCP(srv, fa, ipv4.ProtocolNumber)
		},
		dial: func(network, address string) (net.Conn, error) {
			fa, err := full(address)
			if err != nil {
				return nil, err
			}
			return gonet.DialTCP(cli, fa, ipv4.ProtocolNumber)
		},
		listenPacket: packet(srv),
		clientPacket: packet(cli),
		close:        func() { cli.Destroy(); srv.Destroy() },
	}, nil
}
