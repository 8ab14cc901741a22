//go:build linux

package live

import (
	"encoding/binary"
	"net/netip"
	"slices"

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
		ifi := Interface{
			Index: int(int32(binary.NativeEndian.Uint32(m.Data[4:]))),
			Up:    binary.NativeEndian.Uint32(m.Data[8:])&unix.IFF_UP != 0,
			Addrs: []netip.Prefix{},
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
		var address, local []byte
		for ad.Next() {
			switch ad.Type() {
			case unix.IFA_ADDRESS:
				address = ad.Bytes()
			case unix.IFA_LOCAL:
				local = ad.Bytes()
			}
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
