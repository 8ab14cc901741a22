package live

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// key renders what a test compares; queue sizes only for listeners, and
// optionally without the fields /proc/net lacks.
func key(s Socket, procMode bool) string {
	v6 := "nil"
	if s.V6Only != nil {
		v6 = strconv.FormatBool(*s.V6Only)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %-10s", s.Proto, s.Family, s.State)
	if s.Proto == "unix" {
		fmt.Fprintf(&b, " %s %q", s.UnixType, s.Path)
	} else {
		fmt.Fprintf(&b, " %s -> %s", s.Local, s.Remote)
	}
	fmt.Fprintf(&b, " ino=%d netns=%s", s.Inode, s.Netns)
	if procMode {
		if s.Proto != "unix" {
			fmt.Fprintf(&b, " uid=%d", s.UID)
		}
	} else {
		fmt.Fprintf(&b, " uid=%d v6only=%s dev=%d", s.UID, v6, s.BoundDev)
		if s.State == "LISTEN" {
			fmt.Fprintf(&b, " sendq=%d", s.SendQ)
		}
	}
	return b.String()
}

func keys(ss []Socket, procMode bool, keep func(Socket) bool) []string {
	var out []string
	for _, s := range ss {
		if keep == nil || keep(s) {
			out = append(out, key(s, procMode))
		}
	}
	slices.Sort(out)
	return out
}

func diffKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var b strings.Builder
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "\n  missing: %s", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "\n  extra:   %s", g)
		}
	}
	t.Errorf("%s: sockets differ (got %d, want %d):%s", what, len(got), len(want), b.String())
}
