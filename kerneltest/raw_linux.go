//go:build linux

package kerneltest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/scenario"
)

// A TCP segment other than a plain SYN (ACK, RST, FIN, SYN+ACK) cannot be
// made by connect(): the replay writes it as a raw frame and watches the
// wire for the answer. The answer is all the wire shows, so the result is
// one of three: "rst" (a RST came back), "ack" (an ACK came back: a
// connection or a TIME_WAIT socket answering an out-of-window segment) or
// "drop" (nothing came back). WireAnswer maps the engine's verdict to the
// same three words.
//
// A segment from this host goes out on lo and is watched there; one from
// another host (of the scenario or not) is written on the wire's end of the
// veth it comes in on and watched there, with the answer's next hop set to
// a MAC nobody has, so that no stack but the one under test sees the
// segment or its answer (another stack would answer the answer).

// rawWait bounds the wait for an answer once the host's TCP has taken the
// segment in (its InSegs counter moved): the answer is sent while the
// segment is processed, so it is on the wire at once on an idle machine.
const rawWait = 2 * time.Second

func (r *replayer) probeRaw(st *scenario.Step) Result {
	src, dst := unmapAP(st.Src), unmapAP(st.Addr)
	h := r.cur
	if r.waitingTuple(dst, src) {
		if st.Flags&engine.FlagRST != 0 {
			return skip("a RST to a TIME_WAIT 4-tuple may kill it in the kernel")
		}
		if h.isLocal(src.Addr()) {
			// The TIME_WAIT socket's ACK comes back to this host, where
			// no socket has the source any more: its RST, exactly in
			// window, kills the TIME_WAIT socket (tcp_rfc1337 = 0).
			return skip("a segment from this host to a TIME_WAIT 4-tuple: the answer's RST kills it in the kernel")
		}
	}
	var dev string   // the device the frame is written on and the answer read from
	var where *netns // its namespace
	var dstMAC net.HardwareAddr
	if h.isLocal(src.Addr()) {
		if why := r.localProbeOK(st, src, dst); why != "" {
			return skip(why)
		}
		dev, where, dstMAC = "lo", h.ns, make(net.HardwareAddr, 6)
		if src.Addr().Is4() {
			// A frame written on lo has no route yet: it takes the
			// input path, where a 127.x.y.z address is a martian unless
			// route_localnet, and a source that is an address of this
			// host is one unless accept_local (fib_validate_source).
			// Both only loosen input on lo while the frame passes.
			defer r.loosenLo(h)()
		}
	} else {
		if o := r.hostOf(src.Addr()); o != nil {
			if why := r.otherHostProbeOK(st, dst); why != "" {
				return skip(why)
			}
		}
		in, why := r.ingress(st, dst)
		if why != "" {
			return skip(why)
		}
		undo, err := r.silenceSource(in, src.Addr())
		defer undo()
		if err != nil {
			return skip(err.Error())
		}
		r.inHost(h, func() error {
			if i, err := net.InterfaceByName(in); err == nil {
				dstMAC = i.HardwareAddr
			}
			return nil
		})
		if dstMAC == nil {
			return skip("no MAC address for " + in)
		}
		dev, where = ifName(fmt.Sprintf("k%d", h.index), in), r.peer
	}
	fd := -1
	var err error
	r.asRoot(func() error {
		if where != h.ns {
			if err = where.enter(); err != nil {
				return err
			}
			defer h.ns.enter()
		}
		fd, err = packetSocket(dev)
		return err
	})
	if err != nil {
		return skip("packet socket on " + dev + ": " + errName(err))
	}
	defer closeFD(fd)
	before := r.tcpInSegs(h)
	frame, seq := tcpFrame(dstMAC, src, dst, st.Flags)
	if _, err := unix.Write(fd, frame); err != nil {
		return skip("write the segment: " + errName(err))
	}
	return r.readAnswer(fd, h, before, src, dst, seq)
}

// loosenLo sets net.ipv4.conf.lo.route_localnet and accept_local on h and
// returns what puts them back.
func (r *replayer) loosenLo(h *khost) func() {
	set := func(v string) {
		r.inHost(h, func() error {
			os.WriteFile("/proc/sys/net/ipv4/conf/lo/route_localnet", []byte(v), 0)
			return os.WriteFile("/proc/sys/net/ipv4/conf/lo/accept_local", []byte(v), 0)
		})
	}
	set("1")
	return func() { set("0") }
}

// silenceSource makes this host send whatever it sends to src out of
// interface in to a MAC nobody has, until undo: the wire shows the answer,
// and no other stack answers it. A source off every link gets a route.
func (r *replayer) silenceSource(in string, src netip.Addr) (undo func(), err error) {
	h := r.cur
	undo = func() {}
	bits := 32
	if src.Is6() {
		bits = 128
	}
	sp := netip.PrefixFrom(src, bits).String()
	err = r.asRoot(func() error {
		if err := h.ns.ip("neigh", "replace", src.String(), "lladdr", silentMAC, "dev", in, "nud", "permanent"); err != nil {
			return err
		}
		routed := h.ns.ip("route", "add", sp, "dev", in) == nil
		undo = func() {
			r.asRoot(func() error {
				if routed {
					h.ns.ip("route", "del", sp, "dev", in)
				}
				return h.ns.ip("neigh", "del", src.String(), "dev", in)
			})
		}
		return nil
	})
	return undo, err
}

// packetSocket is an AF_PACKET socket on device dev of the calling
// thread's namespace, reading every frame there and writing whole frames.
func packetSocket(dev string) (int, error) {
	i, err := net.InterfaceByName(dev)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: i.Index}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// tcpInSegs reads the TCP InSegs counter of h's namespace (IPv4 and IPv6
// share it): it moves when TCP takes a segment in.
func (r *replayer) tcpInSegs(h *khost) int64 {
	var n int64 = -1
	r.inHost(h, func() error {
		b, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		var names []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(l, "Tcp:") {
				continue
			}
			f := strings.Fields(l)
			if names == nil {
				names = f
				continue
			}
			for i, name := range names {
				if name == "InSegs" && i < len(f) {
					n, _ = strconv.ParseInt(f[i], 10, 64)
				}
			}
		}
		return nil
	})
	return n
}

// readAnswer reads frames on fd until the answer to the segment src -> dst
// (sequence number seq) shows: "rst" or "ack"; "drop" when nothing answers.
func (r *replayer) readAnswer(fd int, h *khost, before int64, src, dst netip.AddrPort, seq uint32) Result {
	buf := make([]byte, 2048)
	start := time.Now()
	var taken time.Time // when TCP took the segment in
	for {
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				break
			}
			if ans := answerOf(buf[:n], src, dst, seq); ans != "" {
				return Result{Result: ans}
			}
		}
		now := time.Now()
		if taken.IsZero() && r.tcpInSegs(h) != before {
			taken = now
		}
		switch {
		case !taken.IsZero() && now.Sub(taken) > 50*time.Millisecond:
			return Result{Result: "drop"} // taken in, and nothing came back
		case now.Sub(start) > rawWait:
			return Result{Result: "drop"} // never reached TCP (not for this host)
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		unix.Poll(pfd, 5)
	}
}

// answerOf reads an Ethernet frame and returns "rst" or "ack" when it is a
// TCP segment from dst to src, else "". The segment itself (seq), seen
// going out, is no answer, even when src and dst are one endpoint.
func answerOf(f []byte, src, dst netip.AddrPort, seq uint32) string {
	if len(f) < 14 {
		return ""
	}
	var from, to netip.Addr
	var tcp []byte
	switch binary.BigEndian.Uint16(f[12:14]) {
	case unix.ETH_P_IP:
		ip := f[14:]
		if len(ip) < 20 || ip[9] != unix.IPPROTO_TCP {
			return ""
		}
		hl := int(ip[0]&0xf) * 4
		if len(ip) < hl+20 {
			return ""
		}
		from, to, tcp = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])), ip[hl:]
	case unix.ETH_P_IPV6:
		ip := f[14:]
		if len(ip) < 60 || ip[6] != unix.IPPROTO_TCP {
			return ""
		}
		from, to, tcp = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40])), ip[40:]
	default:
		return ""
	}
	if from != dst.Addr() || to != src.Addr() || len(tcp) < 20 ||
		binary.BigEndian.Uint16(tcp[0:2]) != dst.Port() || binary.BigEndian.Uint16(tcp[2:4]) != src.Port() ||
		(src == dst && binary.BigEndian.Uint32(tcp[4:8]) == seq) {
		return ""
	}
	if tcp[13]&0x04 != 0 {
		return "rst"
	}
	return "ack"
}

// tcpFrame writes an Ethernet frame to dstMAC carrying a TCP segment from
// src to dst with the step's flags, a random sequence number (out of any
// window but by a tiny chance) and no options.
func tcpFrame(dstMAC net.HardwareAddr, src, dst netip.AddrPort, flags uint8) ([]byte, uint32) {
	tcp := make([]byte, 20)
	seq := rand.Uint32()
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	var fl byte
	if flags&engine.FlagFIN != 0 {
		fl |= 0x01
	}
	if flags&engine.FlagSYN != 0 {
		fl |= 0x02
	}
	if flags&engine.FlagRST != 0 {
		fl |= 0x04
	}
	if flags&engine.FlagACK != 0 {
		fl |= 0x10
		binary.BigEndian.PutUint32(tcp[8:], rand.Uint32())
	}
	tcp[12] = 5 << 4
	tcp[13] = fl
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	mac, _ := net.ParseMAC(silentMAC)
	eth := append(append(append([]byte{}, dstMAC...), mac...), 0, 0)
	var ip []byte
	if src.Addr().Is4() {
		binary.BigEndian.PutUint16(eth[12:], unix.ETH_P_IP)
		ip = make([]byte, 20)
		ip[0], ip[8], ip[9] = 0x45, 64, unix.IPPROTO_TCP
		binary.BigEndian.PutUint16(ip[2:], 40)
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		copy(ip[12:], s4[:])
		copy(ip[16:], d4[:])
		binary.BigEndian.PutUint16(ip[10:], ^sum16(ip, 0))
		pseudo := append(append(append([]byte{}, s4[:]...), d4[:]...), 0, unix.IPPROTO_TCP, 0, 20)
		binary.BigEndian.PutUint16(tcp[16:], ^sum16(tcp, sum16(pseudo, 0)))
	} else {
		binary.BigEndian.PutUint16(eth[12:], unix.ETH_P_IPV6)
		ip = make([]byte, 40)
		ip[0], ip[6], ip[7] = 0x60, unix.IPPROTO_TCP, 64
		binary.BigEndian.PutUint16(ip[4:], 20)
		s6, d6 := src.Addr().As16(), dst.Addr().As16()
		copy(ip[8:], s6[:])
		copy(ip[24:], d6[:])
		pseudo := append(append(append([]byte{}, s6[:]...), d6[:]...), 0, 0, 0, 20, 0, 0, 0, unix.IPPROTO_TCP)
		binary.BigEndian.PutUint16(tcp[16:], ^sum16(tcp, sum16(pseudo, 0)))
	}
	return append(append(eth, ip...), tcp...), seq
}

// sum16 adds b to the ones' complement sum acc (RFC 1071).
func sum16(b []byte, acc uint16) uint16 {
	s := uint32(acc)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
