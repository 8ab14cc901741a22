//go:build linux

package live

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// sizeofRecord is the size of struct record in bpf/sockopts.c.
const sizeofRecord = 104

// bpfRecord is one socket as the iterator reported it.
type bpfRecord struct {
	ino          uint64
	netns        uint32
	uid          uint32
	dev          int32
	proto, state uint8
	family       uint16
	local        netip.AddrPort
	remote       netip.AddrPort
	reuse        uint8
	reuseport    bool
	v6only       bool
	chain        uint16 // UDP: 1 + sockets after it on its port's chain; 0 unread, 0xffff too long
	slot         uint32 // UDP: 1 + the sockets in its port's primary hash slot; 0 unread
	connectBind  uint8  // TCP: 2 port chosen by connect(), 1 bound, 0 unknown
	bucket       *BindBucket
}

func parseRecord(b []byte) bpfRecord {
	ne := binary.NativeEndian
	r := bpfRecord{
		ino:         ne.Uint64(b[0:]),
		netns:       ne.Uint32(b[8:]),
		uid:         ne.Uint32(b[12:]),
		dev:         int32(ne.Uint32(b[16:])),
		family:      ne.Uint16(b[24:]),
		proto:       b[32],
		state:       b[33],
		reuse:       b[34],
		reuseport:   b[35] != 0,
		v6only:      b[36] != 0,
		chain:       ne.Uint16(b[42:]),
		slot:        ne.Uint32(b[96:]),
		connectBind: b[41],
	}
	lport, rport := ne.Uint16(b[26:]), ne.Uint16(b[28:])
	var la, ra netip.Addr
	if r.family == unix.AF_INET6 {
		la, ra = netip.AddrFrom16([16]byte(b[48:64])), netip.AddrFrom16([16]byte(b[64:80]))
	} else {
		la, ra = netip.AddrFrom4([4]byte(b[48:52])), netip.AddrFrom4([4]byte(b[64:68]))
	}
	r.local, r.remote = netip.AddrPortFrom(la, lport), netip.AddrPortFrom(ra, rport)
	if b[37] != 0 && r.proto == unix.IPPROTO_TCP {
		bk := &BindBucket{
			Port:          lport,
			FastReuse:     int8(b[38]),
			FastReuseport: int8(b[39]),
			FastUID:       ne.Uint32(b[20:]),
			FastIPv6Only:  b[40] != 0,
			FastFamily:    "inet",
			FastRcvSaddr:  netip.AddrFrom4([4]byte(b[44:48])),
		}
		if ne.Uint16(b[30:]) == unix.AF_INET6 {
			bk.FastFamily = "inet6"
			bk.FastRcvSaddr = netip.AddrFrom16([16]byte(b[80:96]))
		}
		r.bucket = bk
	}
	return r
}

// readBPF runs the tcp and udp socket iterators in the calling thread's
// network namespace (an iterator walks the namespace of the thread that
// opens it), and the task_file one for bound TCP sockets of that namespace,
// and returns their records, restricted to port unless 0. A socket held
// by several descriptors is reported once per descriptor.
func readBPF(tcp, udp bool, port uint16) ([]bpfRecord, error) {
	spec, err := loadSockopts()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables[sockoptsVarWantPort].Set(port); err != nil {
		return nil, err
	}
	if err := spec.Variables[sockoptsVarWantNetns].Set(threadNetns()); err != nil {
		return nil, err
	}
	var objs sockoptsObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("loading the socket iterator: %w", err)
	}
	defer objs.Close()
	var out []bpfRecord
	run := func(prog *ebpf.Program) error {
		l, err := link.AttachIter(link.IterOptions{Program: prog})
		if err != nil {
			return fmt.Errorf("attaching the socket iterator: %w", err)
		}
		defer l.Close()
		rd, err := l.Open()
		if err != nil {
			return fmt.Errorf("opening the socket iterator: %w", err)
		}
		defer rd.Close()
		data, err := io.ReadAll(rd)
		if err != nil {
			return fmt.Errorf("reading the socket iterator: %w", err)
		}
		if len(data)%sizeofRecord != 0 {
			return fmt.Errorf("socket iterator: %d bytes is not a whole number of records", len(data))
		}
		for off := 0; off < len(data); off += sizeofRecord {
			out = append(out, parseRecord(data[off:off+sizeofRecord]))
		}
		return nil
	}
	if tcp {
		if err := run(objs.TcpOptions); err != nil {
			return nil, err
		}
		// Bound TCP sockets that neither listen nor connect, reached
		// through their descriptors (bound_tcp_options in bpf/sockopts.c).
		if err := run(objs.BoundTcpOptions); err != nil {
			return nil, err
		}
	}
	if udp {
		if err := run(objs.UdpOptions); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type tupleKey struct {
	proto         uint8
	local, remote netip.AddrPort
}

// applyBPF gives the sockets of snap that the records describe their
// options, matched by inode, and TIME-WAIT sockets (no inode) by their
// tuple. Records of another namespace than netns are ignored.
func applyBPF(snap *Snapshot, recs []bpfRecord, netns uint32, port uint16) {
	byIno := make(map[uint64]*bpfRecord, len(recs))
	byTuple := map[tupleKey]*bpfRecord{}
	buckets := map[uint16]bool{}
	foreign := 0
	for i := range recs {
		r := &recs[i]
		if netns != 0 && r.netns != netns {
			foreign++
			continue
		}
		if r.ino != 0 {
			byIno[r.ino] = r
		}
		// Orphans (TIME-WAIT, and FIN-WAIT-2 after close) have no inode
		// in sock_diag: they are found by their tuple.
		if r.remote.Port() != 0 {
			byTuple[tupleKey{r.proto, r.local, r.remote}] = r
		}
		if r.bucket != nil && !buckets[r.bucket.Port] {
			buckets[r.bucket.Port] = true
			snap.Buckets = append(snap.Buckets, *r.bucket)
		}
	}
	if foreign > 0 {
		snap.Missing = append(snap.Missing, fmt.Sprintf("socket iterator: %d sockets of other namespaces ignored", foreign))
	}
	for i := range snap.Sockets {
		s := &snap.Sockets[i]
		if s.Family == "unix" || (port != 0 && s.Local.Port() != port) {
			continue
		}
		var r *bpfRecord
		if s.Inode != 0 {
			r = byIno[s.Inode]
		} else {
			proto := uint8(unix.IPPROTO_TCP)
			if s.Proto == "udp" {
				proto = unix.IPPROTO_UDP
			}
			r = byTuple[tupleKey{proto, s.Local, s.Remote}]
		}
		if r == nil {
			continue // gone or new between the two reads
		}
		s.Opts = &SockOpts{ReuseAddr: r.reuse != 0, ReusePort: r.reuseport, V6Only: r.v6only, Device: int(r.dev)}
		s.OptsSource = SourceKernel
		if r.chain != 0xffff {
			s.ChainPos = r.chain
		}
		if r.slot != 0 {
			s.UDPSlot = int(r.slot - 1)
		}
		if r.connectBind != 0 {
			cb := r.connectBind == 2
			s.ConnectBind = &cb
		}
	}
}

// threadNetns is the inode of the calling thread's network namespace.
func threadNetns() uint32 {
	var st unix.Stat_t
	if unix.Stat("/proc/thread-self/ns/net", &st) != nil {
		return 0
	}
	return uint32(st.Ino)
}

// errNoBPF marks a BPF reader that could not run, so auto mode falls back.
var errNoBPF = errors.New("BPF socket iterator unavailable")

// readOptsBPF fills snap's options from the BPF iterators, in the calling
// thread's namespace.
func readOptsBPF(snap *Snapshot, tcp, udp bool, port uint16) error {
	recs, err := readBPF(tcp, udp, port)
	if err != nil {
		return fmt.Errorf("%w: %v", errNoBPF, err)
	}
	applyBPF(snap, recs, threadNetns(), port)
	snap.OptsSource = SourceKernel
	return nil
}
