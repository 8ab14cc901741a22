//go:build linux

package live

import (
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// readRecorded splits a recorded netlink stream into messages.
func readRecorded(t testing.TB, name string) []netlink.Message {
	t.Helper()
	b, err := os.ReadFile("testdata/netlink/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out []netlink.Message
	for len(b) >= 16 {
		l := int(binary.NativeEndian.Uint32(b))
		al := (l + 3) &^ 3
		if l < 16 || al > len(b) {
			t.Fatalf("%s: bad message length %d", name, l)
		}
		var m netlink.Message
		if err := m.UnmarshalBinary(b[:al]); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
		b = b[al:]
	}
	return out
}

// Recorded sock_diag dumps of the TestNetns fixture (all states); the
// expected values were checked by hand against the fixture log and the
// /proc/net recording of the same moment (same inodes and ports).
func TestParseRecordedNetlink(t *testing.T) {
	if !littleEndian {
		t.Skip("testdata/netlink was recorded on a little-endian machine")
	}
	p := &parser{}
	for _, c := range []struct {
		file  string
		parse func(*parser, []byte)
	}{{"tcp4.bin", parseTCP}, {"tcp6.bin", parseTCP}, {"udp6.bin", parseUDP}, {"unix.bin", parseUnix}} {
		for _, m := range readRecorded(t, c.file) {
			if m.Header.Type != sockDiagByFamily {
				t.Fatalf("%s: message type %d", c.file, m.Header.Type)
			}
			c.parse(p, m.Data)
		}
	}
	want := []string{
		"tcp inet LISTEN     0.0.0.0:7001 -> 0.0.0.0:0 ino=18622 netns= uid=65534 v6only=nil dev=0 sendq=16",
		"tcp inet LISTEN     192.0.2.1:7002 -> 0.0.0.0:0 ino=18623 netns= uid=0 v6only=nil dev=0 sendq=16",
		"tcp inet ESTAB      127.0.0.1:27532 -> 127.0.0.1:7001 ino=18627 netns= uid=0 v6only=nil dev=0",
		"tcp inet ESTAB      127.0.0.1:7001 -> 127.0.0.1:27532 ino=18628 netns= uid=0 v6only=nil dev=0",
		"tcp inet ESTAB      127.0.0.1:27622 -> 127.0.0.1:7003 ino=18631 netns= uid=0 v6only=nil dev=0",
		"tcp inet TIME-WAIT  192.0.2.1:20706 -> 192.0.2.1:7002 ino=0 netns= uid=0 v6only=nil dev=0",
		"tcp inet6 LISTEN     [::]:7003 -> [::]:0 ino=18624 netns= uid=0 v6only=false dev=0 sendq=16",
		"tcp inet6 LISTEN     [::]:7004 -> [::]:0 ino=18625 netns= uid=0 v6only=true dev=0 sendq=16",
		"tcp inet6 LISTEN     [::1]:7005 -> [::]:0 ino=18626 netns= uid=0 v6only=true dev=0 sendq=16",
		"tcp inet6 ESTAB      [::1]:24456 -> [::1]:7005 ino=18629 netns= uid=0 v6only=nil dev=0",
		"tcp inet6 ESTAB      [::1]:7005 -> [::1]:24456 ino=18630 netns= uid=0 v6only=nil dev=0",
		"tcp inet6 ESTAB      [::ffff:127.0.0.1]:7003 -> [::ffff:127.0.0.1]:27622 ino=18632 netns= uid=0 v6only=nil dev=0",
		"udp inet6 UNCONN     [2001:db8::1]:7102 -> [::]:0 ino=17284 netns= uid=0 v6only=true dev=0",
		"udp inet6 UNCONN     [::]:7103 -> [::]:0 ino=17285 netns= uid=0 v6only=false dev=0",
		`unix unix LISTEN     stream "/tmp/TestRecordTestdata747333280/001/s.sock" ino=17288 netns= uid=0 v6only=nil dev=0 sendq=8`,
		`unix unix LISTEN     stream "@socktab-live-54ba9423" ino=17289 netns= uid=0 v6only=nil dev=0 sendq=8`,
		`unix unix LISTEN     seqpacket "@socktab-live-54ba9423-seq" ino=17290 netns= uid=0 v6only=nil dev=0 sendq=8`,
	}
	slices.Sort(want)
	diffKeys(t, "recorded netlink", keys(p.out, false, nil), want)
	if p.badMsg != 0 {
		t.Errorf("%d bad messages", p.badMsg)
	}
}

func TestParseShortMessages(t *testing.T) {
	if !littleEndian {
		t.Skip("testdata/netlink was recorded on a little-endian machine")
	}
	p := &parser{}
	parseTCP(p, make([]byte, sizeofInetDiagMsg-1))
	parseUnix(p, make([]byte, sizeofUnixDiagMsg-1))
	if len(p.out) != 0 || p.badMsg != 2 {
		t.Errorf("short messages: %d sockets, %d bad", len(p.out), p.badMsg)
	}
	// A truncated attribute list must not panic or be misread.
	m := readRecorded(t, "tcp6.bin")[0].Data
	for n := sizeofInetDiagMsg; n <= len(m); n++ {
		parseTCP(p, m[:n])
	}
}

func TestRequestLayout(t *testing.T) {
	r := inetDiagReq(unix.AF_INET6, unix.IPPROTO_TCP, StatesListen)
	if len(r) != 56 || r[0] != unix.AF_INET6 || r[1] != unix.IPPROTO_TCP ||
		binary.NativeEndian.Uint32(r[4:]) != 1<<10 {
		t.Errorf("inet_diag_req_v2 = % x", r)
	}
	u := unixDiagReq(1 << TCPListen)
	if len(u) != 24 || u[0] != unix.AF_UNIX || binary.NativeEndian.Uint32(u[4:]) != 1<<10 ||
		binary.NativeEndian.Uint32(u[12:]) != udiagShowName|udiagShowPeer|udiagShowRQLen|udiagShowUID {
		t.Errorf("unix_diag_req = % x", u)
	}
}

// fakeDump answers each request with the recorded tcp4 records as a
// multi-part dump, flagging it NLM_F_DUMP_INTR while intr(call) is true.
func fakeDump(t *testing.T, intr func(call int) bool, calls *int) *diagConn {
	recs := readRecorded(t, "tcp4.bin")
	return &diagConn{c: nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) != 1 || req[0].Header.Type != sockDiagByFamily ||
			req[0].Header.Flags != netlink.Request|netlink.Dump || len(req[0].Data) != sizeofInetDiagReqV2 {
			t.Errorf("unexpected request %+v", req)
		}
		*calls++
		var msgs []netlink.Message
		for i, m := range recs {
			m.Header.Sequence = req[0].Header.Sequence
			m.Header.PID = req[0].Header.PID
			if intr(*calls) && i >= 2 {
				m.Header.Flags |= netlink.DumpInterrupted
			}
			msgs = append(msgs, m)
		}
		msgs = append(msgs, netlink.Message{Header: netlink.Header{Sequence: req[0].Header.Sequence}})
		return nltest.Multipart(msgs)
	})}
}

func TestDumpInterruptedRetried(t *testing.T) {
	calls := 0
	d := fakeDump(t, func(call int) bool { return call < 3 }, &calls)
	p := &parser{out: make([]Socket, 1)} // a socket from an earlier table stays
	if err := d.dump(inetDiagReq(unix.AF_INET, unix.IPPROTO_TCP, 0), p, parseTCP); err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Errorf("%d dumps, want 3 (two interrupted, one clean)", calls)
	}
	if n := len(readRecorded(t, "tcp4.bin")); len(p.out) != 1+n {
		t.Errorf("%d sockets after retries, want %d (no duplicates from interrupted dumps)", len(p.out), 1+n)
	}

	calls = 0
	d = fakeDump(t, func(int) bool { return true }, &calls)
	p = &parser{out: make([]Socket, 1)}
	err := d.dump(inetDiagReq(unix.AF_INET, unix.IPPROTO_TCP, 0), p, parseTCP)
	if !errors.Is(err, ErrDumpInterrupted) || calls != dumpRetries || len(p.out) != 1 {
		t.Errorf("always interrupted: err=%v after %d dumps with %d sockets; want ErrDumpInterrupted after %d, no partial result",
			err, calls, len(p.out), dumpRetries)
	}
}

func TestDumpErrnoInDone(t *testing.T) {
	// A missing diag handler answers with -ENOENT in the NLMSG_DONE payload.
	d := &diagConn{c: nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
		done := netlink.Message{
			Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi, Sequence: req[0].Header.Sequence, PID: req[0].Header.PID},
			Data:   binary.NativeEndian.AppendUint32(nil, negErrno(unix.ENOENT)),
		}
		return []netlink.Message{done}, nil
	})}
	err := d.dump(inetDiagReq(unix.AF_INET, unix.IPPROTO_UDP, 0), &parser{}, parseUDP)
	if !errors.Is(err, unix.ENOENT) || !fallbackErr(err) {
		t.Errorf("err = %v, want ENOENT classified as fallback", err)
	}
	if fallbackErr(unix.ENOBUFS) {
		t.Error("ENOBUFS must not silently fall back")
	}
}

func negErrno(e unix.Errno) uint32 { return uint32(-int32(e)) }

// BenchmarkParseInet measures the userspace side only: decoding 100,000
// recorded inet_diag records into Sockets.
func BenchmarkParseInet(b *testing.B) {
	var recs [][]byte
	for _, f := range []string{"tcp4.bin", "tcp6.bin"} {
		for _, m := range readRecorded(b, f) {
			recs = append(recs, m.Data)
		}
	}
	const n = 100000
	p := &parser{out: make([]Socket, 0, n)}
	for b.Loop() {
		p.out = p.out[:0]
		for i := range n {
			parseTCP(p, recs[i%len(recs)])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/socket")
}

// fakeKernel answers sock_diag requests from the recordings, except for
// the protocols in missing, which get -ENOENT in NLMSG_DONE like a kernel
// without that diag module.
func fakeKernel(t *testing.T, missing map[uint8]bool) *diagConn {
	rec := map[[2]uint8]string{
		{unix.AF_INET, unix.IPPROTO_TCP}:  "tcp4.bin",
		{unix.AF_INET6, unix.IPPROTO_TCP}: "tcp6.bin",
		{unix.AF_INET6, unix.IPPROTO_UDP}: "udp6.bin",
		{unix.AF_UNIX, 0}:                 "unix.bin",
	}
	return &diagConn{c: nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
		h := netlink.Header{Sequence: req[0].Header.Sequence, PID: req[0].Header.PID}
		fam, proto := req[0].Data[0], req[0].Data[1]
		if fam == unix.AF_UNIX {
			proto = 0
		}
		if missing[proto] {
			h.Type, h.Flags = netlink.Done, netlink.Multi
			return []netlink.Message{{Header: h, Data: binary.NativeEndian.AppendUint32(nil, negErrno(unix.ENOENT))}}, nil
		}
		var msgs []netlink.Message
		if f, ok := rec[[2]uint8{fam, proto}]; ok {
			for _, m := range readRecorded(t, f) {
				m.Header.Sequence, m.Header.PID = h.Sequence, h.PID
				msgs = append(msgs, m)
			}
		}
		return nltest.Multipart(append(msgs, netlink.Message{Header: h}))
	})}
}

func TestCollectFallbacks(t *testing.T) {
	defer func(f func() (*diagConn, error)) { dialDiagFn = f }(dialDiagFn)

	// No UDP diag module: UDP comes from /proc/net, the rest from netlink.
	dialDiagFn = func() (*diagConn, error) { return fakeKernel(t, map[uint8]bool{unix.IPPROTO_UDP: true}), nil }
	sn, err := Read(Options{ProcRoot: "testdata/proc"})
	if err != nil {
		t.Fatal(err)
	}
	if sn.Source != "netlink+proc" {
		t.Errorf("Source = %q, want netlink+proc", sn.Source)
	}
	if !slices.Contains(sn.Missing, "v6only unknown (read from /proc/net)") ||
		!slices.ContainsFunc(sn.Missing, func(s string) bool { return strings.HasPrefix(s, "udp/inet6: sock_diag unavailable") }) {
		t.Errorf("Missing = %q", sn.Missing)
	}
	var udp, v6listen int
	for _, s := range sn.Sockets {
		switch {
		case s.Proto == "udp":
			udp++
			if s.V6Only != nil {
				t.Errorf("UDP from /proc with v6only: %s", key(s, false))
			}
		case s.Proto == "tcp" && s.Family == "inet6" && s.State == "LISTEN":
			v6listen++
			if s.V6Only == nil {
				t.Errorf("TCP from netlink without v6only: %s", key(s, false))
			}
		}
	}
	if udp != 5 || v6listen != 3 {
		t.Errorf("%d UDP sockets (want 5 from /proc), %d inet6 TCP listeners (want 3 from netlink)", udp, v6listen)
	}

	// No sock_diag at all.
	dialDiagFn = func() (*diagConn, error) { return nil, unix.EPROTONOSUPPORT }
	sn, err = Read(Options{ProcRoot: "testdata/proc"})
	if err != nil {
		t.Fatal(err)
	}
	if sn.Source != "proc" || len(sn.Sockets) != len(wantProc) {
		t.Errorf("Source = %q with %d sockets, want proc with %d", sn.Source, len(sn.Sockets), len(wantProc))
	}

	// A real failure is an error, not a silent fallback.
	dialDiagFn = func() (*diagConn, error) {
		return &diagConn{c: nltest.Dial(func(req []netlink.Message) ([]netlink.Message, error) {
			h := netlink.Header{Type: netlink.Done, Flags: netlink.Multi, Sequence: req[0].Header.Sequence, PID: req[0].Header.PID}
			return []netlink.Message{{Header: h, Data: binary.NativeEndian.AppendUint32(nil, negErrno(unix.ENOBUFS))}}, nil
		})}, nil
	}
	if _, err := Read(Options{ProcRoot: "testdata/proc"}); !errors.Is(err, unix.ENOBUFS) {
		t.Errorf("err = %v, want ENOBUFS", err)
	}
}

// TestDumpStreamsAndRewinds: with Emit, sockets leave the parser as they
// are read, and a redone (interrupted) dump voids what it emitted.
func TestDumpStreamsAndRewinds(t *testing.T) {
	calls := 0
	d := fakeDump(t, func(call int) bool { return call < 3 }, &calls)
	var got []uint64
	p := &parser{
		emit:   func(s *Socket) { got = append(got, s.Inode) },
		rewind: func(n int) { got = got[:len(got)-n] },
	}
	if err := d.dump(inetDiagReq(unix.AF_INET, unix.IPPROTO_TCP, 0), p, parseTCP); err != nil {
		t.Fatal(err)
	}
	want := &parser{}
	calls = 0
	if err := fakeDump(t, func(int) bool { return false }, &calls).dump(inetDiagReq(unix.AF_INET, unix.IPPROTO_TCP, 0), want, parseTCP); err != nil {
		t.Fatal(err)
	}
	if len(p.out) != 0 || len(got) != len(want.out) || len(got) == 0 {
		t.Fatalf("streamed %d sockets (%d kept), want %d", len(got), len(p.out), len(want.out))
	}
	for i, s := range want.out {
		if got[i] != s.Inode {
			t.Fatalf("socket %d: inode %d, want %d", i, got[i], s.Inode)
		}
	}
}
