package live

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"testing"
)

// Recorded from the TestNetns fixture namespace (see TestRecordTestdata)
// on a little-endian machine; every value below was checked by hand
// against the hex in testdata/proc/net/* (e.g. tcp "010200C0:1B5A" is
// 192.0.2.1:7002, tcp6 "0000000000000000FFFF00000100007F:1B5B" is
// [::ffff:127.0.0.1]:7003, udp6 "B80D0120...01000000:1BBE" is
// [2001:db8::1]:7102).
var wantProc = []string{
	"tcp inet LISTEN     0.0.0.0:7001 -> 0.0.0.0:0 ino=18622 netns= uid=65534",
	"tcp inet LISTEN     192.0.2.1:7002 -> 0.0.0.0:0 ino=18623 netns= uid=0",
	"tcp inet TIME-WAIT  192.0.2.1:20706 -> 192.0.2.1:7002 ino=0 netns= uid=0",
	"tcp inet ESTAB      127.0.0.1:27532 -> 127.0.0.1:7001 ino=18627 netns= uid=0",
	"tcp inet ESTAB      127.0.0.1:7001 -> 127.0.0.1:27532 ino=18628 netns= uid=0",
	"tcp inet ESTAB      127.0.0.1:27622 -> 127.0.0.1:7003 ino=18631 netns= uid=0",
	"tcp inet6 LISTEN     [::1]:7005 -> [::]:0 ino=18626 netns= uid=0",
	"tcp inet6 LISTEN     [::]:7003 -> [::]:0 ino=18624 netns= uid=0",
	"tcp inet6 LISTEN     [::]:7004 -> [::]:0 ino=18625 netns= uid=0",
	"tcp inet6 ESTAB      [::1]:24456 -> [::1]:7005 ino=18629 netns= uid=0",
	"tcp inet6 ESTAB      [::ffff:127.0.0.1]:7003 -> [::ffff:127.0.0.1]:27622 ino=18632 netns= uid=0",
	"tcp inet6 ESTAB      [::1]:7005 -> [::1]:24456 ino=18630 netns= uid=0",
	"udp inet UNCONN     0.0.0.0:7101 -> 0.0.0.0:0 ino=17283 netns= uid=0",
	"udp inet UNCONN     0.0.0.0:7104 -> 0.0.0.0:0 ino=17286 netns= uid=0",
	"udp inet ESTAB      127.0.0.1:26446 -> 127.0.0.1:7101 ino=17287 netns= uid=0",
	"udp inet6 UNCONN     [2001:db8::1]:7102 -> [::]:0 ino=17284 netns= uid=0",
	"udp inet6 UNCONN     [::]:7103 -> [::]:0 ino=17285 netns= uid=0",
	`unix unix LISTEN     stream "/tmp/TestRecordTestdata747333280/001/s.sock" ino=17288 netns=`,
	`unix unix LISTEN     seqpacket "@socktab-live-54ba9423-seq" ino=17290 netns=`,
	`unix unix LISTEN     stream "@socktab-live-54ba9423" ino=17289 netns=`,
}

func parseRecordedProc(t *testing.T, states uint32) []Socket {
	t.Helper()
	p := &parser{}
	for _, f := range []struct {
		file, proto string
		v6          bool
	}{{"tcp", "tcp", false}, {"tcp6", "tcp", true}, {"udp", "udp", false}, {"udp6", "udp", true}} {
		data, err := os.ReadFile("testdata/proc/net/" + f.file)
		if err != nil {
			t.Fatal(err)
		}
		data = recordedToHostOrder(data)
		if err := parseProcInet(p, data, f.proto, f.v6, states); err != nil {
			t.Fatalf("%s: %v", f.file, err)
		}
	}
	data, err := os.ReadFile("testdata/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	if err := parseProcUnix(p, data, states); err != nil {
		t.Fatal(err)
	}
	return p.out
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// recordedToHostOrder rewrites a /proc/net/{tcp,udp}[6] table recorded on
// a little-endian machine as a kernel of this machine's byte order would
// print it: each 8-hex-digit address word is a host-order integer, so on a
// big-endian machine its bytes are swapped.
func recordedToHostOrder(data []byte) []byte {
	if littleEndian {
		return data
	}
	out := slices.Clone(data)
	lines := bytes.SplitAfter(out, []byte("\n"))
	for _, line := range lines[1:] {
		rest := line
		var f []byte
		for i := 0; i < 3; i++ {
			start := len(line) - len(rest)
			f, rest = nextField(rest)
			if len(f) == 0 {
				break
			}
			if i == 0 {
				continue
			}
			off := start + bytes.Index(line[start:], f)
			hexAddr := line[off : off+bytes.IndexByte(f, ':')]
			for w := 0; w+8 <= len(hexAddr); w += 8 {
				word := hexAddr[w : w+8]
				for k := 0; k < 4; k += 2 {
					word[k], word[6-k] = word[6-k], word[k]
					word[k+1], word[7-k] = word[7-k], word[k+1]
				}
			}
		}
	}
	return out
}

func TestParseProcRecorded(t *testing.T) {
	got := parseRecordedProc(t, ^uint32(0))
	want := slices.Clone(wantProc)
	slices.Sort(want)
	diffKeys(t, "recorded /proc/net", keys(got, true, nil), want)
	for _, s := range got {
		if s.V6Only != nil || s.BoundDev != 0 {
			t.Errorf("/proc socket with v6only or device: %+v", s)
		}
		if s.Family == "inet" && !s.Local.Addr().Is4() {
			t.Errorf("AF_INET socket with a 16-byte address: %+v", s)
		}
	}

	// State filtering happens in userspace for /proc.
	got = parseRecordedProc(t, StatesListen)
	for _, s := range got {
		if s.State != "LISTEN" {
			t.Errorf("listeners-only parse returned %s", key(s, true))
		}
	}
	if len(got) != 8 {
		t.Errorf("listeners-only parse: %d sockets, want 8", len(got))
	}
}

// The kernel prints each 32-bit address word as a host-order integer;
// decoding must invert exactly that on any byte order.
func TestParseProcAddrHostOrder(t *testing.T) {
	for _, s := range []string{"127.0.0.1:22", "192.0.2.1:65535", "0.0.0.0:0"} {
		ap := netip.MustParseAddrPort(s)
		a := ap.Addr().As4()
		hexs := fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(a[:]), ap.Port())
		got, ok := parseProcAddr([]byte(hexs), false)
		if !ok || got != ap {
			t.Errorf("parseProcAddr(%q) = %v %v, want %v", hexs, got, ok, ap)
		}
	}
	for _, s := range []string{"[2001:db8::1]:7102", "[::ffff:127.0.0.1]:80", "[::1]:1"} {
		ap := netip.MustParseAddrPort(s)
		a := ap.Addr().As16()
		hexs := ""
		for i := 0; i < 16; i += 4 {
			hexs += fmt.Sprintf("%08X", binary.NativeEndian.Uint32(a[i:]))
		}
		hexs += fmt.Sprintf(":%04X", ap.Port())
		got, ok := parseProcAddr([]byte(hexs), true)
		if !ok || got != ap {
			t.Errorf("parseProcAddr(%q) = %v %v, want %v", hexs, got, ok, ap)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007F:", "0100007G:0016", "100007F:0016", "0100007F:10000"} {
		if _, ok := parseProcAddr([]byte(bad), false); ok {
			t.Errorf("parseProcAddr(%q) accepted", bad)
		}
	}
}

func TestParseProcMalformed(t *testing.T) {
	p := &parser{}
	hdr := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	for _, line := range []string{
		"   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n",
		"   0: 0100007F:0016 00000000:0000 ZZ 00000000:00000000 00:00000000 00000000     0        0 1\n",
		"   0: 0100007F:0016 00000000:0000 0A 00000000-00000000 00:00000000 00000000     0        0 1\n",
	} {
		if err := parseProcInet(p, []byte(hdr+line), "tcp", false, ^uint32(0)); err == nil {
			t.Errorf("accepted %q", line)
		}
	}
	if err := parseProcInet(p, []byte(hdr+"\n"), "tcp", false, ^uint32(0)); err != nil || len(p.out) != 0 {
		t.Errorf("empty table: %v, %d sockets", err, len(p.out))
	}
	// Queues: tx is SendQ, rx is RecvQ.
	line := "   0: 0100007F:0016 0100007F:D431 01 0000000A:00000014 00:00000000 00000000  1000        0 77 1\n"
	if err := parseProcInet(p, recordedToHostOrder([]byte(hdr+line)), "tcp", false, ^uint32(0)); err != nil {
		t.Fatal(err)
	}
	s := p.out[0]
	if s.SendQ != 10 || s.RecvQ != 20 || s.UID != 1000 || s.Inode != 77 || s.State != "ESTAB" ||
		s.Remote != mustAP("127.0.0.1:54321") {
		t.Errorf("parsed %+v", s)
	}
}

func TestParseProcUnixStates(t *testing.T) {
	data := "Num       RefCount Protocol Flags    Type St Inode Path\n" +
		"0000000000000000: 00000002 00000000 00010000 0001 01 100 /run/a b.sock\n" +
		"0000000000000000: 00000003 00000000 00000000 0001 03 101 /run/a b.sock\n" +
		"0000000000000000: 00000002 00000000 00000000 0002 01 102\n" +
		"0000000000000000: 00000002 00000000 00000000 0002 03 103 @ab@c\n"
	p := &parser{}
	if err := parseProcUnix(p, []byte(data), ^uint32(0)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`unix unix LISTEN     stream "/run/a b.sock" ino=100 netns=`,
		`unix unix ESTAB      stream "/run/a b.sock" ino=101 netns=`,
		`unix unix UNCONN     dgram "" ino=102 netns=`,
		`unix unix ESTAB      dgram "@ab@c" ino=103 netns=`,
	}
	slices.Sort(want)
	diffKeys(t, "unix", keys(p.out, true, nil), want)
}

func TestParsePortList(t *testing.T) {
	for in, want := range map[string][]uint16{
		"":                  {},
		"8080":              {8080},
		"8080,9000-9002":    {8080, 9000, 9001, 9002},
		"9002,9000-9001,80": {80, 9000, 9001, 9002},
		"1-3,2-4":           {1, 2, 3, 4},
	} {
		got, err := parsePortList(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parsePortList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "5-1", "70000", "1-"} {
		if _, err := parsePortList(bad); err == nil {
			t.Errorf("parsePortList(%q) accepted", bad)
		}
	}
}

func TestReadSysctlsRecorded(t *testing.T) {
	got, notes := readSysctls("testdata/proc/sys")
	want := Sysctls{PortLow: 20000, PortHigh: 30000, ReservedPorts: []uint16{8080, 9000, 9001, 9002},
		UnprivilegedPortStart: 1024, TCPTWReuse: 0, NonlocalBind4: true}
	if len(notes) != 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("readSysctls = %+v %q, want %+v", got, notes, want)
	}
	_, notes = readSysctls("testdata/nonexistent")
	if len(notes) != 7 {
		t.Errorf("missing sysctls gave %d notes, want 7: %q", len(notes), notes)
	}
}

func TestStateNames(t *testing.T) {
	for _, c := range []struct {
		st   uint8
		tcp  bool
		want string
	}{
		{TCPListen, true, "LISTEN"}, {TCPClose, true, "CLOSE"}, {TCPClose, false, "UNCONN"},
		{TCPEstablished, false, "ESTAB"}, {TCPNewSynRecv, true, "SYN-RECV"}, {TCPTimeWait, true, "TIME-WAIT"},
		{TCPFinWait1, true, "FIN-WAIT-1"}, {TCPCloseWait, true, "CLOSE-WAIT"}, {TCPLastAck, true, "LAST-ACK"},
		{TCPClosing, true, "CLOSING"}, {TCPSynSent, true, "SYN-SENT"}, {99, true, "UNKNOWN"},
	} {
		if got := stateName(c.st, c.tcp); got != c.want {
			t.Errorf("stateName(%d, %v) = %q, want %q", c.st, c.tcp, got, c.want)
		}
	}
}
