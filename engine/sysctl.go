package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sysctls are the per-namespace settings the rules read.
type Sysctls struct {
	PortLow, PortHigh int           // net.ipv4.ip_local_port_range
	Reserved          bitmap        // net.ipv4.ip_local_reserved_ports
	UnprivilegedStart int           // net.ipv4.ip_unprivileged_port_start
	BindV6Only        bool          // net.ipv6.bindv6only
	NonlocalBind4     bool          // net.ipv4.ip_nonlocal_bind
	NonlocalBind6     bool          // net.ipv6.ip_nonlocal_bind
	AutobindReuse     bool          // net.ipv4.ip_autobind_reuse
	TWReuse           int           // net.ipv4.tcp_tw_reuse: 0 off, 1 on, 2 loopback only
	TWReuseDelay      time.Duration // net.ipv4.tcp_tw_reuse_delay
}

// SysctlNames lists the settings Set accepts.
var SysctlNames = []string{
	"net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports",
	"net.ipv4.ip_unprivileged_port_start", "net.ipv6.bindv6only", "net.ipv4.ip_nonlocal_bind",
	"net.ipv6.ip_nonlocal_bind", "net.ipv4.ip_autobind_reuse", "net.ipv4.tcp_tw_reuse",
	"net.ipv4.tcp_tw_reuse_delay",
}

// KnownSysctl reports whether name is a setting Set accepts.
func KnownSysctl(name string) bool {
	for _, n := range SysctlNames {
		if n == name {
			return true
		}
	}
	return false
}

// Set applies "sysctl name value..." with the kernel's validation: a value
// the kernel refuses gives EINVAL and changes nothing. A malformed value
// (not a number) is an error, not a result.
func (s *Sysctls) Set(name string, vals []string) (Errno, error) {
	ints := func(n int) ([]int, error) {
		if len(vals) != n {
			return nil, fmt.Errorf("%s takes %d value(s)", name, n)
		}
		out := make([]int, n)
		for i, v := range vals {
			x, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", name, v)
			}
			out[i] = x
		}
		return out, nil
	}
	boolean := func() (bool, Errno, error) {
		v, err := ints(1)
		if err != nil {
			return false, OK, err
		}
		if v[0] != 0 && v[0] != 1 {
			return false, EINVAL, nil
		}
		return v[0] == 1, OK, nil
	}
	switch name {
	case "net.ipv4.ip_local_port_range":
		v, err := ints(2)
		if err != nil {
			return OK, err
		}
		// ipv4_local_port_range (net/ipv4/sysctl_net_ipv4.c): low <= high,
		// both in 1..65535, and low not below ip_unprivileged_port_start.
		if v[0] < 1 || v[1] > 65535 || v[0] > v[1] || v[0] < s.UnprivilegedStart {
			return EINVAL, nil
		}
		s.PortLow, s.PortHigh = v[0], v[1]
	case "net.ipv4.ip_local_reserved_ports":
		var b bitmap
		for _, part := range strings.Split(strings.Join(vals, ","), ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			lo, hi, isRange := strings.Cut(part, "-")
			a, err1 := strconv.Atoi(lo)
			z := a
			var err2 error
			if isRange {
				z, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil {
				return OK, fmt.Errorf("%s: %q is not a port or range", name, part)
			}
			if a < 0 || z > 65535 || a > z {
				return EINVAL, nil
			}
			for p := a; p <= z; p++ {
				b.set(uint16(p))
			}
		}
		s.Reserved = b
	case "net.ipv4.ip_unprivileged_port_start":
		v, err := ints(1)
		if err != nil {
			return OK, err
		}
		// ipv4_privileged_ports: 0..65535 and below the port range's low end.
		if v[0] < 0 || v[0] > 65535 || v[0] > s.PortLow {
			return EINVAL, nil
		}
		s.UnprivilegedStart = v[0]
	case "net.ipv4.tcp_tw_reuse":
		v, err := ints(1)
		if err != nil {
			return OK, err
		}
		if v[0] < 0 || v[0] > 2 {
			return EINVAL, nil
		}
		s.TWReuse = v[0]
	case "net.ipv4.tcp_tw_reuse_delay":
		v, err := ints(1)
		if err != nil {
			return OK, err
		}
		if v[0] < 1 || v[0] > 600000 {
			return EINVAL, nil
		}
		s.TWReuseDelay = time.Duration(v[0]) * time.Millisecond
	default:
		var dst *bool
		switch name {
		case "net.ipv6.bindv6only":
			dst = &s.BindV6Only
		case "net.ipv4.ip_nonlocal_bind":
			dst = &s.NonlocalBind4
		case "net.ipv6.ip_nonlocal_bind":
			dst = &s.NonlocalBind6
		case "net.ipv4.ip_autobind_reuse":
			dst = &s.AutobindReuse
		default:
			return OK, fmt.Errorf("unknown sysctl %q (known: %s)", name, strings.Join(SysctlNames, ", "))
		}
		v, e, err := boolean()
		if err != nil || e != OK {
			return e, err
		}
		*dst = v
	}
	return OK, nil
}

// bitmap is one bit per port.
type bitmap [1024]uint64

func (b *bitmap) set(p uint16)      { b[p>>6] |= 1 << (p & 63) }
func (b *bitmap) clear(p uint16)    { b[p>>6] &^= 1 << (p & 63) }
func (b *bitmap) has(p uint16) bool { return b[p>>6]&(1<<(p&63)) != 0 }

// Has reports whether port p is set.
func (b *bitmap) Has(p uint16) bool { return b.has(p) }
