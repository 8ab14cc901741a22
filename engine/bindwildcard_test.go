package engine

import (
	"bufio"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// WildcardCase is one row of the kernel selftest bind_wildcard.c.
type wildcardCase struct {
	name         string
	addr         [2]string
	v6only       [2]bool
	plain, reuse []string
}

// loadWildcardCases reads ../testdata/bind-wildcard-cases.md, the kernel
// selftest's table as data.
func loadWildcardCases(t testing.TB) []wildcardCase {
	f, err := os.Open("../testdata/bind-wildcard-cases.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []wildcardCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "|")
		if len(cols) < 8 || strings.TrimSpace(cols[1]) == "#" || strings.HasPrefix(strings.TrimSpace(cols[1]), "-") {
			continue
		}
		c := wildcardCase{name: strings.TrimSpace(cols[2])}
		for i := 0; i < 2; i++ {
			f := strings.Fields(cols[3+i]) // "v6 :: (V6ONLY)"
			c.addr[i] = f[1]
			c.v6only[i] = len(f) > 2
		}
		c.plain = strings.Fields(cols[5])
		c.reuse = strings.Fields(cols[6])
		out = append(out, c)
	}
	if len(out) != 44 {
		t.Fatalf("read %d cases, want 44", len(out))
	}
	return out
}

func TestBindWildcardSelftest(t *testing.T) {
	extra := []string{"0.0.0.0", "127.0.0.1", "::", "::1", "::ffff:0.0.0.0", "::ffff:127.0.0.1"}
	for _, c := range loadWildcardCases(t) {
		for _, opt := range []Option{0, SO_REUSEADDR, SO_REUSEPORT} {
			want := c.plain
			if opt != 0 {
				want = c.reuse
			}
			name := c.name + "/" + map[Option]string{0: "plain", SO_REUSEADDR: "reuseaddr", SO_REUSEPORT: "reuseport"}[opt]
			t.Run(name, func(t *testing.T) {
				h := NewNetwork(Linux, 1).AddHost("local")
				addrs := append([]string{c.addr[0], c.addr[1]}, extra...)
				var port uint16
				for i, as := range addrs {
					a := netip.MustParseAddr(as)
					fam := Inet6
					if a.Is4() {
						fam = Inet
					}
					s, _ := h.NewSocket(fam, TCP, 0)
					if i < 2 {
						if c.v6only[i] {
							h.SetSockOpt(s, IPV6_V6ONLY, 1, "")
						}
						if opt != 0 {
							h.SetSockOpt(s, opt, 1, "")
						}
					}
					r := h.Bind(s, netip.AddrPortFrom(a, port))
					if i == 0 {
						port = s.Local().Port()
					}
					got := "0"
					if r.Err == EADDRINUSE {
						got = "E"
					} else if r.Err != OK {
						got = r.Err.String()
					}
					if got != want[i] {
						t.Errorf("fd%d bind %s: got %s, want %s (%s)", i, as, got, want[i], r.Rule)
					}
				}
			})
		}
	}
}
