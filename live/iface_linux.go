//go:build linux

package live

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// readInterfaces lists the links and addresses of the calling thread's
// netns with two rtnetlink dumps (RTM_GETLINK, RTM_GETADDR).
func readInterfaces() ([]Interface, error) {
	c, err := netlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()

	links, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETLINK, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, unix.SizeofIfInfomsg),
	})
	if err != nil {
		return nil, err
	}
	var ifs []Interface
	byIndex := map[int]int{}
	for _, m := range links {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		flags := binary.NativeEndian.Uint32(m.Data[8:])
		ifi := Interface{
			Index:    int(int32(binary.NativeEndian.Uint32(m.Data[4:]))),
			Up:       flags&unix.IFF_UP != 0,
			Loopback: flags&unix.IFF_LOOPBACK != 0,
			Addrs:    []netip.Prefix{},
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfInfomsg:])
		if err != nil {
			continue
		}
		for ad.Next() {
			if ad.Type() == unix.IFLA_IFNAME {
				ifi.Name = ad.String()
			}
		}
		byIndex[ifi.Index] = len(ifs)
		ifs = append(ifs, ifi)
	}

	addrs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_GETADDR, Flags: netlink.Request | netlink.Dump},
		Data:   make([]byte, unix.SizeofIfAddrmsg),
	})
	if err != nil {
		return ifs, err
	}
	for _, m := range addrs {
		if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
			continue
		}
		fam, plen := m.Data[0], int(m.Data[1])
		idx := int(binary.NativeEndian.Uint32(m.Data[4:]))
		i, ok := byIndex[idx]
		if !ok {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfAddrmsg:])
		if err != nil {
			continue
		}
		var address, local, brd []byte
		for ad.Next() {
			switch ad.Type() {
			case unix.IFA_ADDRESS:
				address = ad.Bytes()
			case unix.IFA_LOCAL:
				local = ad.Bytes()
			case unix.IFA_BROADCAST:
				brd = ad.Bytes()
			}
		}
		if b, ok := netip.AddrFromSlice(brd); ok && fam == unix.AF_INET && !slices.Contains(ifs[i].Broadcast, b) {
			ifs[i].Broadcast = append(ifs[i].Broadcast, b)
		}
		// For IPv4 IFA_LOCAL is the interface's own address (IFA_ADDRESS
		// is the peer on point-to-point links).
		raw := address
		if fam == unix.AF_INET && local != nil {
			raw = local
		}
		a, ok := netip.AddrFromSlice(raw)
		if !ok {
			continue
		}
		if pfx, err := a.Prefix(plen); err == nil && pfx.Bits() == plen {
			ifs[i].Addrs = append(ifs[i].Addrs, netip.PrefixFrom(a, plen))
		}
	}
	slices.SortFunc(ifs, func(a, b Interface) int { return a.Index - b.Index })
	return ifs, nil
}

// readGroups adds to each interface the multicast groups it joined, from
// netDir's igmp and igmp6 (the kernel lists groups per interface, not per
// socket). A missing file leaves the groups empty.
func readGroups(netDir string, ifs []Interface) error {
	byIndex := map[int]*Interface{}
	for i := range ifs {
		byIndex[ifs[i].Index] = &ifs[i]
	}
	add := func(idx int, g netip.Addr) {
		if f := byIndex[idx]; f != nil && !slices.Contains(f.Groups, g) {
			f.Groups = append(f.Groups, g)
		}
	}
	data, err := os.ReadFile(filepath.Join(netDir, "igmp"))
	if err != nil {
		return err
	}
	parseIGMP(data, add)
	data, err = os.ReadFile(filepath.Join(netDir, "igmp6"))
	if err != nil {
		return nil // no IPv6 in this kernel
	}
	parseIGMP6(data, add)
	return nil
}

// parseIGMP reads /proc/net/igmp: a line per interface ("IDX NAME : COUNT
// QUERIER"), then an indented line per group whose first field is the
// address as the kernel prints a __be32 with %08X, i.e. in host byte order.
func parseIGMP(data []byte, add func(int, netip.Addr)) {
	idx := -1
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 {
			continue
		}
		if line[0] != '\t' && line[0] != ' ' {
			idx = -1
			if n, err := strconv.Atoi(f[0]); err == nil {
				idx = n
			}
			continue
		}
		v, err := strconv.ParseUint(f[0], 16, 32)
		if err != nil || idx < 0 {
			continue
		}
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], uint32(v))
		add(idx, netip.AddrFrom4(b))
	}
}

// parseIGMP6 reads /proc/net/igmp6: "IDX NAME GROUP USERS FLAGS TIMER",
// the group as 32 hex digits in network order.
func parseIGMP6(data []byte, add func(int, netip.Addr)) {
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || len(f[2]) != 32 {
			continue
		}
		idx, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		var b [16]byte
		if _, err := hex.Decode(b[:], []byte(f[2])); err != nil {
			continue
		}
		add(idx, netip.AddrFrom16(b))
	}
}
