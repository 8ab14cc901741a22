//go:build linux

package live

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Membership is what a socket's own descriptor says about one multicast
// group: the kernel reports memberships per interface, not per socket, so
// this is read through an owner's descriptor (pidfd_getfd), never set.
type Membership struct {
	// Joined: the socket joined the group (on the interface asked, for an
	// IPv4 group; on any of ifindexes, for an IPv6 one).
	Joined bool
	// All6 is IPV6_MULTICAST_ALL (nil for an IPv4 group).
	All6 *bool
}

// GroupMembership asks socket s, through a duplicate of an owner's
// descriptor, whether it joined group: getsockopt(MCAST_MSFILTER) answers
// EADDRNOTAVAIL for a group the socket did not join on that interface
// (ip_mc_gsfget, ip6_mc_msfget). An IPv4 group is asked on ifindex, an IPv6
// one on each of ifindexes (an IPv6 membership counts on any interface).
// It needs an owner (Socket.Processes) that may be traced.
func GroupMembership(s *Socket, group netip.Addr, ifindexes []int) (Membership, error) {
	var last error = unix.ESRCH
	for _, p := range s.Processes {
		m, err := membershipOfFD(p.PID, p.FD, s.Inode, group, ifindexes)
		if err == nil {
			return m, nil
		}
		last = err
	}
	return Membership{}, last
}

func membershipOfFD(pid, fd int, ino uint64, group netip.Addr, ifindexes []int) (Membership, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return Membership{}, err
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return Membership{}, err
	}
	defer unix.Close(dup)
	var st unix.Stat_t
	if err := unix.Fstat(dup, &st); err != nil {
		return Membership{}, err
	}
	if st.Ino != ino {
		return Membership{}, unix.ESTALE
	}
	var m Membership
	level := unix.SOL_IP
	if group.Is6() {
		level = unix.SOL_IPV6
		v, err := unix.GetsockoptInt(dup, unix.SOL_IPV6, unix.IPV6_MULTICAST_ALL)
		if err != nil {
			return Membership{}, err
		}
		all := v != 0
		m.All6 = &all
	}
	for _, idx := range ifindexes {
		joined, err := msfilterJoined(dup, level, group, idx)
		if err != nil {
			return Membership{}, err
		}
		if joined {
			m.Joined = true
			break
		}
	}
	return m, nil
}

// groupFilter is struct group_filter with room for one source.
type groupFilter struct {
	iface  uint32
	_      uint32
	group  unix.RawSockaddrAny // sockaddr_storage: 128 bytes
	fmode  uint32
	numsrc uint32
	slist  [1]unix.RawSockaddrAny
}

// msfilterJoined reads MCAST_MSFILTER for group on interface idx: ok means
// joined, EADDRNOTAVAIL not joined.
func msfilterJoined(fd, level int, group netip.Addr, idx int) (bool, error) {
	var gf groupFilter
	gf.iface = uint32(idx)
	if group.Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&gf.group))
		sa.Family, sa.Addr = unix.AF_INET, group.As4()
	} else {
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&gf.group))
		sa.Family, sa.Addr = unix.AF_INET6, group.As16()
	}
	l := uint32(unsafe.Sizeof(gf))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), unix.MCAST_MSFILTER,
		uintptr(unsafe.Pointer(&gf)), uintptr(unsafe.Pointer(&l)), 0)
	switch e {
	case 0:
		return true, nil
	case unix.EADDRNOTAVAIL:
		return false, nil
	}
	return false, e
}
