package live

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
)

func TestParseIGMPGroups(t *testing.T) {
	// 224.0.0.1 and 239.1.2.3 as the kernel prints a __be32 with %08X.
	hexv4 := func(a string) string {
		b := netip.MustParseAddr(a).As4()
		return fmtHex(binary.NativeEndian.Uint32(b[:]))
	}
	igmp := "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n" +
		"1\tlo        :     1      V3\n" +
		"\t\t\t\t" + hexv4("224.0.0.1") + "     1 0:00000000\t\t0\n" +
		"7\teth1      :     2      V3\n" +
		"\t\t\t\t" + hexv4("239.1.2.3") + "     1 0:00000000\t\t0\n" +
		"\t\t\t\t" + hexv4("224.0.0.1") + "     1 0:00000000\t\t0\n"
	igmp6 := "1    lo              ff020000000000000000000000000001     1 0000000C 0\n" +
		"7    eth1            ff050000000000000000000000000123     1 00000004 0\n"
	got := map[int][]netip.Addr{}
	add := func(i int, a netip.Addr) { got[i] = append(got[i], a) }
	parseIGMP([]byte(igmp), add)
	parseIGMP6([]byte(igmp6), add)
	want := map[int][]netip.Addr{
		1: {netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("ff02::1")},
		7: {netip.MustParseAddr("239.1.2.3"), netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("ff05::123")},
	}
	for i, w := range want {
		if !slices.Equal(got[i], w) {
			t.Errorf("interface %d: %v, want %v", i, got[i], w)
		}
	}
}

func fmtHex(v uint32) string {
	const d = "0123456789ABCDEF"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = d[v&15]
		v >>= 4
	}
	return string(b)
}
