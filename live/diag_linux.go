//go:build linux

package live

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Wire constants (include/uapi/linux/{sock_diag,inet_diag,unix_diag}.h).
const (
	sockDiagByFamily = 20

	sizeofInetDiagReqV2 = 56
	sizeofInetDiagMsg   = 72
	sizeofUnixDiagReq   = 24
	sizeofUnixDiagMsg   = 16

	inetDiagSKV6Only = 11
	inetDiagSockopt  = 22     // struct inet_diag_sockopt, since Linux 5.10
	nlaTypeMask      = 0x3fff // ~(NLA_F_NESTED|NLA_F_NET_BYTEORDER)

	unixDiagName  = 0
	unixDiagPeer  = 2
	unixDiagRQLen = 4
	unixDiagUID   = 7

	udiagShowName  = 0x01
	udiagShowPeer  = 0x04
	udiagShowRQLen = 0x10
	udiagShowUID   = 0x40

	// dumpRetries is how often a dump flagged NLM_F_DUMP_INTR is redone.
	dumpRetries = 5
	// recvBufSize sets the datagram buffer; the kernel sizes dump skbs up
	// to 32 KiB after the reader's buffer.
	recvBufSize = 32 << 10
)

// diagConn is a NETLINK_SOCK_DIAG socket in the calling thread's netns.
// Replies are read through the connection's raw file descriptor into one
// reused buffer: mdlayher/netlink's ReceiveIter copies every datagram into
// a fresh slice, which at 100,000 sockets costs as much as the kernel's
// dump itself. A connection without a raw descriptor (the library's test
// fakes) is read through ReceiveIter.
type diagConn struct {
	c   *netlink.Conn
	raw syscall.RawConn
	buf []byte
}

// dialDiagFn is replaced in tests to simulate kernels without sock_diag.
var dialDiagFn = dialDiag

func dialDiag() (*diagConn, error) {
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, &netlink.Config{MessageBufferSize: recvBufSize})
	if err != nil {
		return nil, err
	}
	d := &diagConn{c: c}
	if raw, err := c.SyscallConn(); err == nil {
		d.raw, d.buf = raw, make([]byte, recvBufSize)
	}
	return d, nil
}

func (d *diagConn) Close() error { return d.c.Close() }

// inetDiagReq encodes struct inet_diag_req_v2 for a full dump.
func inetDiagReq(family, proto uint8, states uint32) []byte {
	b := make([]byte, sizeofInetDiagReqV2)
	b[0] = family
	b[1] = proto
	binary.NativeEndian.PutUint32(b[4:], states)
	// idiag_cookie = INET_DIAG_NOCOOKIE
	binary.NativeEndian.PutUint32(b[48:], ^uint32(0))
	binary.NativeEndian.PutUint32(b[52:], ^uint32(0))
	return b
}

// Bytecode ops of inet_diag filters (include/uapi/linux/inet_diag.h).
const (
	inetDiagReqBytecode = 1
	inetDiagBCSGE       = 2 // local port >= the next op's "no" field
	inetDiagBCSLE       = 3 // local port <= the next op's "no" field
)

// inetDiagPortReq is inetDiagReq with a filter the kernel runs on every
// socket (INET_DIAG_REQ_BYTECODE): local port == port. A program accepts a
// socket by running exactly off its end and rejects it by jumping 4 bytes
// past it, as ss compiles its filters.
func inetDiagPortReq(family, proto uint8, states uint32, port uint16) []byte {
	b := inetDiagReq(family, proto, states)
	if port == 0 {
		return b
	}
	const progLen = 16
	attr := make([]byte, 4+progLen)
	ne := binary.NativeEndian
	ne.PutUint16(attr[0:], uint16(len(attr)))
	ne.PutUint16(attr[2:], inetDiagReqBytecode)
	prog := attr[4:]
	// op 0: S_GE port, yes -> op 2 (offset 8), no -> reject.
	prog[0], prog[1] = inetDiagBCSGE, 8
	ne.PutUint16(prog[2:], progLen+4)
	ne.PutUint16(prog[6:], port)
	// op 2: S_LE port, yes -> end (accept), no -> reject.
	prog[8], prog[9] = inetDiagBCSLE, 8
	ne.PutUint16(prog[10:], progLen-8+4)
	ne.PutUint16(prog[14:], port)
	return append(b, attr...)
}

// unixDiagReq encodes struct unix_diag_req for a full dump.
func unixDiagReq(states uint32) []byte {
	b := make([]byte, sizeofUnixDiagReq)
	b[0] = unix.AF_UNIX
	binary.NativeEndian.PutUint32(b[4:], states)
	binary.NativeEndian.PutUint32(b[12:], udiagShowName|udiagShowPeer|udiagShowRQLen|udiagShowUID)
	binary.NativeEndian.PutUint32(b[16:], ^uint32(0))
	binary.NativeEndian.PutUint32(b[20:], ^uint32(0))
	return b
}

// dump sends one SOCK_DIAG_BY_FAMILY dump request and parses every reply
// with parse. A dump the kernel flags NLM_F_DUMP_INTR is discarded and
// redone; after dumpRetries it fails with ErrDumpInterrupted.
func (d *diagConn) dump(req []byte, p *parser, parse func(*parser, []byte)) error {
	start := len(p.out)
	p.emitted = 0
	for try := 0; ; try++ {
		p.out = p.out[:start]
		if p.emitted > 0 && p.rewind != nil {
			p.rewind(p.emitted)
		}
		p.emitted = 0
		_, err := d.c.Send(netlink.Message{
			Header: netlink.Header{
				Type:  sockDiagByFamily,
				Flags: netlink.Request | netlink.Dump,
			},
			Data: req,
		})
		if err != nil {
			return err
		}
		intr := false
		err = d.receive(func(typ, flags uint16, data []byte) {
			if flags&uint16(netlink.DumpInterrupted) != 0 {
				intr = true
			}
			if typ == sockDiagByFamily {
				parse(p, data)
				p.drain(start)
			}
		})
		if err != nil {
			return err
		}
		if !intr {
			return nil
		}
		if try+1 >= dumpRetries {
			p.out = p.out[:start]
			if p.emitted > 0 && p.rewind != nil {
				p.rewind(p.emitted)
			}
			return ErrDumpInterrupted
		}
	}
}

// receive reads one dump's replies, handing each message to fn, until
// NLMSG_DONE; an error carried by the kernel comes back as its errno.
func (d *diagConn) receive(fn func(typ, flags uint16, data []byte)) error {
	if d.raw == nil {
		for m, err := range d.c.ReceiveIter() {
			if err != nil {
				return err
			}
			fn(uint16(m.Header.Type), uint16(m.Header.Flags), m.Data)
		}
		return nil
	}
	for {
		var n, rflags int
		var rerr error
		err := d.raw.Read(func(fd uintptr) bool {
			n, _, rflags, _, rerr = unix.Recvmsg(int(fd), d.buf, nil, 0)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
		if rflags&unix.MSG_TRUNC != 0 {
			return errors.New("live: netlink datagram truncated")
		}
		for b := d.buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(binary.NativeEndian.Uint32(b))
			typ := binary.NativeEndian.Uint16(b[4:])
			flags := binary.NativeEndian.Uint16(b[6:])
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return errors.New("live: malformed netlink message")
			}
			data := b[unix.SizeofNlMsghdr:l]
			switch typ {
			case unix.NLMSG_DONE, unix.NLMSG_ERROR:
				// Both carry an int32: 0, or a negative errno.
				if len(data) >= 4 {
					if code := int32(binary.NativeEndian.Uint32(data)); code < 0 {
						return unix.Errno(-code)
					}
				}
				if typ == unix.NLMSG_DONE {
					return nil
				}
			case unix.NLMSG_NOOP:
			default:
				fn(typ, flags, data)
			}
			b = b[min(nlaAlign(l), len(b)):]
		}
	}
}

func familyName(f uint8) string {
	if f == unix.AF_INET6 {
		return "inet6"
	}
	return "inet"
}

// parseInet decodes one struct inet_diag_msg and its attributes.
func parseInet(p *parser, proto string, b []byte) {
	if len(b) < sizeofInetDiagMsg {
		p.badMsg++
		return
	}
	p.out = append(p.out, Socket{})
	s := &p.out[len(p.out)-1]
	fam := b[0]
	s.Proto = proto
	s.Family = familyName(fam)
	s.State = stateName(b[1], proto == "tcp")
	sport := binary.BigEndian.Uint16(b[4:])
	dport := binary.BigEndian.Uint16(b[6:])
	if fam == unix.AF_INET6 {
		s.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[24:40])), dport)
	} else {
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[8:12])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[24:28])), dport)
	}
	s.BoundDev = int(binary.NativeEndian.Uint32(b[40:]))
	if s.BoundDev != 0 {
		s.BoundDevName = p.devs[s.BoundDev]
	}
	// b[44:52] cookie, b[52:56] expires
	s.RecvQ = binary.NativeEndian.Uint32(b[56:])
	s.SendQ = binary.NativeEndian.Uint32(b[60:])
	s.UID = binary.NativeEndian.Uint32(b[64:])
	s.Inode = uint64(binary.NativeEndian.Uint32(b[68:]))
	s.Netns = p.netns
	for a := b[sizeofInetDiagMsg:]; len(a) >= 4; {
		l := int(binary.NativeEndian.Uint16(a))
		typ := binary.NativeEndian.Uint16(a[2:]) & nlaTypeMask
		if l < 4 || l > len(a) {
			break
		}
		if typ == inetDiagSKV6Only && l >= 5 && fam == unix.AF_INET6 {
			s.V6Only = p.bools.ptr(a[4] != 0)
		}
		if typ == inetDiagSockopt && l >= 5 {
			s.MulticastAll = p.bools.ptr(a[4]&mcAllBit != 0)
		}
		a = a[min(nlaAlign(l), len(a)):]
	}
}

func parseTCP(p *parser, b []byte) { parseInet(p, "tcp", b) }
func parseUDP(p *parser, b []byte) { parseInet(p, "udp", b) }

// parseUnix decodes one struct unix_diag_msg and its attributes.
func parseUnix(p *parser, b []byte) {
	if len(b) < sizeofUnixDiagMsg {
		p.badMsg++
		return
	}
	p.out = append(p.out, Socket{})
	s := &p.out[len(p.out)-1]
	s.Proto = "unix"
	s.Family = "unix"
	s.UnixType = unixTypeName(b[1])
	s.State = stateName(b[2], false)
	s.Inode = uint64(binary.NativeEndian.Uint32(b[4:]))
	s.Netns = p.netns
	for a := b[sizeofUnixDiagMsg:]; len(a) >= 4; {
		l := int(binary.NativeEndian.Uint16(a))
		typ := binary.NativeEndian.Uint16(a[2:]) & nlaTypeMask
		if l < 4 || l > len(a) {
			break
		}
		v := a[4:l]
		switch typ {
		case unixDiagName:
			s.Path = unixName(&p.strs, v)
		case unixDiagPeer:
			if len(v) >= 4 {
				s.PeerInode = uint64(binary.NativeEndian.Uint32(v))
			}
		case unixDiagRQLen:
			if len(v) >= 8 {
				s.RecvQ = binary.NativeEndian.Uint32(v)
				s.SendQ = binary.NativeEndian.Uint32(v[4:])
			}
		case unixDiagUID:
			if len(v) >= 4 {
				s.UID = binary.NativeEndian.Uint32(v)
			}
		}
		a = a[min(nlaAlign(l), len(a)):]
	}
}

// unixName renders sun_path bytes: abstract names (leading NUL) become
// "@name" with every NUL shown as '@', as in /proc/net/unix and ss.
func unixName(a *strArena, v []byte) string {
	if len(v) == 0 {
		return ""
	}
	if v[0] != 0 {
		// A filesystem path may be NUL-terminated inside the attribute.
		for i, c := range v {
			if c == 0 {
				v = v[:i]
				break
			}
		}
		return a.str(v, false)
	}
	return a.str(v, true)
}

func nlaAlign(l int) int { return (l + 3) &^ 3 }

// fallbackErr tells whether a diag error means "this kernel cannot answer
// the request" (missing module, old kernel, no permission), so the table
// is read from /proc/net instead.
func fallbackErr(err error) bool {
	for _, e := range []error{unix.ENOENT, unix.EINVAL, unix.EOPNOTSUPP, unix.EPROTONOSUPPORT,
		unix.EAFNOSUPPORT, unix.ENOPROTOOPT, unix.ENOSYS, unix.EPERM, unix.EACCES} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// mcAllBit is mc_all in the first byte of struct inet_diag_sockopt, a C
// bitfield: the seventh field, counted from the low bit on little-endian
// machines and from the high bit on big-endian ones.
var mcAllBit = func() byte {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return 1 << 6
	}
	return 1 << 1
}()
