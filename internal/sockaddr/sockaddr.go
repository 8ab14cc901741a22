//go:build linux

// Package sockaddr converts between netip.AddrPort and the socket
// addresses the kernel's bind, connect and getsockname take and give
// (sockaddr_in, sockaddr_in6), for the tests and replayers that drive the
// real kernel. The caller chooses the family and the scope id: tests differ
// on both (a v4-mapped address in a sockaddr_in6, a zone read as an
// interface name or dropped), so nothing is guessed here.
package sockaddr

import (
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Family is the family a written address asks for: unix.AF_INET for IPv4,
// unix.AF_INET6 for IPv6, v4-mapped included.
func Family(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// Inet returns ap as a socket address of family: a sockaddr_in for
// unix.AF_INET (ap's address must be IPv4 or v4-mapped), else a
// sockaddr_in6 with scope id scope, an IPv4 address written v4-mapped.
// ap's zone is not read: the scope id says which interface.
func Inet(family int, ap netip.AddrPort, scope uint32) unix.Sockaddr {
	if family == unix.AF_INET {
		return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	return &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port()), ZoneId: scope}
}

// Scope reads zone as the name of an interface in the calling thread's
// network namespace and returns its index, the scope id of a sockaddr_in6;
// no zone gives 0, a name no interface has gives unknown.
func Scope(zone string, unknown uint32) uint32 {
	if zone == "" {
		return 0
	}
	i, err := net.InterfaceByName(zone)
	if err != nil {
		return unknown
	}
	return uint32(i.Index)
}

// AddrPort returns an IPv4 or IPv6 socket address as an AddrPort: a
// v4-mapped address stays v4-mapped and the scope id is dropped. Any other
// socket address gives the zero AddrPort.
func AddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}
