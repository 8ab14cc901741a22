package kerneltest

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// WildcardCase is one run of a row of testdata/bind-wildcard-cases.md (the
// kernel selftest bind_wildcard.c) as a scenario.
type WildcardCase struct {
	Name string
	Text string
}

// wildcardPort stands for the port the selftest lets fd0 pick: a fixed
// port outside every ephemeral range keeps the scenario self-contained.
const wildcardPort = 20000

// BindWildcardCases reads the table and writes each row three times:
// plain, SO_REUSEADDR and SO_REUSEPORT on fd0 and fd1.
func BindWildcardCases(path string) ([]WildcardCase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	extra := []string{"0.0.0.0", "127.0.0.1", "::", "::1", "::ffff:0.0.0.0", "::ffff:127.0.0.1"}
	var out []WildcardCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "|")
		if len(cols) < 8 || strings.TrimSpace(cols[1]) == "#" || strings.HasPrefix(strings.TrimSpace(cols[1]), "-") {
			continue
		}
		name := strings.TrimSpace(cols[2])
		var addrs [8]string
		var v6only [2]bool
		for i := 0; i < 2; i++ {
			fs := strings.Fields(cols[3+i]) // "v6 :: (V6ONLY)"
			addrs[i] = fs[1]
			v6only[i] = len(fs) > 2
		}
		copy(addrs[2:], extra)
		for _, opt := range []string{"", "SO_REUSEADDR", "SO_REUSEPORT"} {
			want := strings.Fields(cols[5])
			variant := "plain"
			if opt != "" {
				want = strings.Fields(cols[6])
				variant = strings.ToLower(strings.TrimPrefix(opt, "SO_"))
			}
			if len(want) != 8 {
				return nil, fmt.Errorf("%s: %d results, want 8", name, len(want))
			}
			var b strings.Builder
			fmt.Fprintf(&b, "# bind_wildcard.c %s, %s\n", name, variant)
			for i, a := range addrs {
				fam, ap := "inet", fmt.Sprintf("%s:%d", a, wildcardPort)
				if strings.Contains(a, ":") {
					fam, ap = "inet6", fmt.Sprintf("[%s]:%d", a, wildcardPort)
				}
				fmt.Fprintf(&b, "fd%d = socket %s tcp\n", i, fam)
				if i < 2 && v6only[i] {
					fmt.Fprintf(&b, "setsockopt fd%d IPV6_V6ONLY 1 => ok\n", i)
				}
				if i < 2 && opt != "" {
					fmt.Fprintf(&b, "setsockopt fd%d %s 1 => ok\n", i, opt)
				}
				res := "ok"
				if want[i] == "E" {
					res = "EADDRINUSE"
				}
				fmt.Fprintf(&b, "bind fd%d %s => %s\n", i, ap, res)
			}
			out = append(out, WildcardCase{Name: name + "/" + variant, Text: b.String()})
		}
	}
	if len(out) != 44*3 {
		return nil, fmt.Errorf("%s: read %d cases, want %d", path, len(out), 44*3)
	}
	return out, sc.Err()
}
