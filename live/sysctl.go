package live

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// readSysctls reads the bind-related sysctls under sysRoot (normally
// /proc/sys, which shows the values of the calling thread's netns). It
// returns notes for values it could not read.
func readSysctls(sysRoot string) (Sysctls, []string) {
	var s Sysctls
	var notes []string
	read := func(name string) (string, bool) {
		b, err := os.ReadFile(filepath.Join(sysRoot, strings.ReplaceAll(name, ".", "/")))
		if err != nil {
			notes = append(notes, fmt.Sprintf("sysctl %s: %v", name, err))
			return "", false
		}
		return strings.TrimSpace(string(b)), true
	}
	readInt := func(name string) (int, bool) {
		v, ok := read(name)
		if !ok {
			return 0, false
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			notes = append(notes, fmt.Sprintf("sysctl %s: bad value %q", name, v))
			return 0, false
		}
		return n, true
	}
	if v, ok := read("net.ipv4.ip_local_port_range"); ok {
		f := strings.Fields(v)
		lo, err1 := strconv.Atoi(f[0])
		var hi int
		err2 := fmt.Errorf("missing")
		if len(f) == 2 {
			hi, err2 = strconv.Atoi(f[1])
		}
		if err1 != nil || err2 != nil {
			notes = append(notes, fmt.Sprintf("sysctl net.ipv4.ip_local_port_range: bad value %q", v))
		} else {
			s.PortLow, s.PortHigh = lo, hi
		}
	}
	if v, ok := read("net.ipv4.ip_local_reserved_ports"); ok {
		ports, err := parsePortList(v)
		if err != nil {
			notes = append(notes, fmt.Sprintf("sysctl net.ipv4.ip_local_reserved_ports: %v", err))
		}
		s.ReservedPorts = ports
	}
	s.UnprivilegedPortStart, _ = readInt("net.ipv4.ip_unprivileged_port_start")
	if n, ok := readInt("net.ipv6.bindv6only"); ok {
		s.BindV6Only = n != 0
	}
	s.TCPTWReuse, _ = readInt("net.ipv4.tcp_tw_reuse")
	if n, ok := readInt("net.ipv4.ip_nonlocal_bind"); ok {
		s.NonlocalBind4 = n != 0
	}
	if n, ok := readInt("net.ipv6.ip_nonlocal_bind"); ok {
		s.NonlocalBind6 = n != 0
	}
	return s, notes
}

// parsePortList expands "8080,9000-9002" into sorted, unique ports.
func parsePortList(v string) ([]uint16, error) {
	out := []uint16{}
	if strings.TrimSpace(v) == "" {
		return out, nil
	}
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
		if err != nil {
			return out, fmt.Errorf("bad port %q", part)
		}
		b := a
		if isRange {
			b, err = strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
			if err != nil || b < a {
				return out, fmt.Errorf("bad range %q", part)
			}
		}
		for p := a; p <= b; p++ {
			out = append(out, uint16(p))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
