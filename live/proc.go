package live

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// This file decodes /proc/net/{tcp,tcp6,udp,udp6,unix}. Addresses are
// printed by the kernel as 32-bit words in host byte order, so each word is
// parsed as a number and stored back with the native byte order; that is
// right on little- and big-endian machines alike.

// nextField returns the next space-separated field of line and the rest.
func nextField(line []byte) (field, rest []byte) {
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	j := i
	for j < len(line) && line[j] != ' ' {
		j++
	}
	return line[i:j], line[j:]
}

// parseHex parses an unsigned hexadecimal number of at most 16 digits.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

func parseDec(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// parseProcAddr decodes "0100007F:0016" (IPv4) or 32 hex digits ":PORT".
func parseProcAddr(b []byte, v6 bool) (netip.AddrPort, bool) {
	i := bytes.IndexByte(b, ':')
	if i < 0 {
		return netip.AddrPort{}, false
	}
	port, ok := parseHex(b[i+1:])
	if !ok || port > 0xffff {
		return netip.AddrPort{}, false
	}
	h := b[:i]
	if !v6 {
		if len(h) != 8 {
			return netip.AddrPort{}, false
		}
		w, ok := parseHex(h)
		if !ok {
			return netip.AddrPort{}, false
		}
		var a [4]byte
		binary.NativeEndian.PutUint32(a[:], uint32(w))
		return netip.AddrPortFrom(netip.AddrFrom4(a), uint16(port)), true
	}
	if len(h) != 32 {
		return netip.AddrPort{}, false
	}
	var a [16]byte
	for k := 0; k < 4; k++ {
		w, ok := parseHex(h[k*8 : k*8+8])
		if !ok {
			return netip.AddrPort{}, false
		}
		binary.NativeEndian.PutUint32(a[k*4:], uint32(w))
	}
	return netip.AddrPortFrom(netip.AddrFrom16(a), uint16(port)), true
}

func stateWanted(states uint32, st uint64) bool {
	if st >= 32 {
		return false
	}
	if states&(1<<st) != 0 {
		return true
	}
	// Request sockets are TCP_NEW_SYN_RECV in the kernel, printed as 03.
	return st == TCPSynRecv && states&(1<<TCPNewSynRecv) != 0
}

var errProcFormat = errors.New("live: unexpected /proc/net line")

// parseProcInet appends the sockets of a /proc/net/{tcp,tcp6,udp,udp6}
// file whose state is in states.
func parseProcInet(p *parser, data []byte, proto string, v6 bool, states uint32) error {
	fam := "inet"
	if v6 {
		fam = "inet6"
	}
	tcp := proto == "tcp"
	// Skip the header line.
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[i+1:]
	} else {
		return nil
	}
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		var f [10][]byte
		rest := line
		n := 0
		for ; n < len(f); n++ {
			f[n], rest = nextField(rest)
			if len(f[n]) == 0 {
				break
			}
		}
		if n == 0 {
			continue
		}
		if n < len(f) {
			return fmt.Errorf("%w: %q", errProcFormat, line)
		}
		st, ok1 := parseHex(f[3])
		if !ok1 {
			return fmt.Errorf("%w: %q", errProcFormat, line)
		}
		if !stateWanted(states, st) {
			continue
		}
		local, ok1 := parseProcAddr(f[1], v6)
		remote, ok2 := parseProcAddr(f[2], v6)
		c := bytes.IndexByte(f[4], ':')
		if !ok1 || !ok2 || c < 0 {
			return fmt.Errorf("%w: %q", errProcFormat, line)
		}
		tx, ok1 := parseHex(f[4][:c])
		rx, ok2 := parseHex(f[4][c+1:])
		uid, ok3 := parseDec(f[7])
		ino, ok4 := parseDec(f[9])
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return fmt.Errorf("%w: %q", errProcFormat, line)
		}
		p.out = append(p.out, Socket{
			Proto:  proto,
			Family: fam,
			State:  stateName(uint8(st), tcp),
			Local:  local,
			Remote: remote,
			UID:    uint32(uid),
			Inode:  ino,
			RecvQ:  uint32(rx),
			SendQ:  uint32(tx),
			Netns:  p.netns,
		})
	}
	return nil
}

// Socket states of /proc/net/unix (include/uapi/linux/net.h) mapped to the
// kernel sk_state numbers sock_diag uses.
func unixProcState(st uint64, listening bool) uint8 {
	if listening {
		return TCPListen
	}
	switch st {
	case 2: // SS_CONNECTING
		return TCPSynSent
	case 3: // SS_CONNECTED
		return TCPEstablished
	}
	return TCPClose // SS_UNCONNECTED, SS_DISCONNECTING
}

const soAcceptCon = 1 << 16

// parseProcUnix appends the sockets of /proc/net/unix whose state is in
// states.
func parseProcUnix(p *parser, data []byte, states uint32) error {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[i+1:]
	} else {
		return nil
	}
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		// Num RefCount Protocol Flags Type St Inode [Path]
		var f [7][]byte
		rest := line
		n := 0
		for ; n < len(f); n++ {
			f[n], rest = nextField(rest)
			if len(f[n]) == 0 {
				break
			}
		}
		if n == 0 {
			continue
		}
		if n < len(f) {
			return fmt.Errorf("%w: %q", errProcFormat, line)
		}
		flags, ok1 := parseHex(f[3])
		typ, ok2 := parseHex(f[4])
		st, ok3 := parseHex(f[5])
		ino, ok4 := parseDec(f[6])
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return fmt.Errorf("%w: %q", errProcFormat, line)
		}
		kst := unixProcState(st, flags&soAcceptCon != 0)
		if states&(1<<kst) == 0 {
			continue
		}
		var path []byte
		if len(rest) > 1 && rest[0] == ' ' {
			path = rest[1:]
		}
		p.out = append(p.out, Socket{
			Proto:    "unix",
			Family:   "unix",
			State:    stateName(kst, false),
			Path:     p.strs.str(path, false),
			UnixType: unixTypeName(uint8(typ)),
			Inode:    ino,
			Netns:    p.netns,
		})
	}
	return nil
}

func unixTypeName(t uint8) string {
	switch t {
	case 1:
		return "stream"
	case 2:
		return "dgram"
	case 5:
		return "seqpacket"
	}
	return fmt.Sprintf("type%d", t)
}
