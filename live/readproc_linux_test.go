//go:build linux

package live

import (
	"slices"
	"testing"
)

// Read with ProcRoot pointing at recorded files: tables, sysctls and
// owners all come from testdata/proc.
func TestReadRecordedProcRoot(t *testing.T) {
	sn, err := Read(Options{ForceProc: true, ProcRoot: "testdata/proc", Processes: true})
	if err != nil {
		t.Fatal(err)
	}
	if sn.Source != "proc" || sn.Netns != "" {
		t.Errorf("Source=%q Netns=%q", sn.Source, sn.Netns)
	}
	for _, note := range []string{"v6only unknown (read from /proc/net)", "bound device unknown (read from /proc/net)"} {
		if !slices.Contains(sn.Missing, note) {
			t.Errorf("Missing = %q, lacks %q", sn.Missing, note)
		}
	}
	if len(sn.Sockets) != len(wantProc) {
		t.Errorf("%d sockets, want %d", len(sn.Sockets), len(wantProc))
	}
	if sn.Sysctls.PortLow != 20000 || !slices.Equal(sn.Sysctls.ReservedPorts, []uint16{8080, 9000, 9001, 9002}) {
		t.Errorf("Sysctls = %+v", sn.Sysctls)
	}
	owners := map[uint64][]Process{}
	for _, s := range sn.Sockets {
		if s.Processes != nil {
			owners[s.Inode] = s.Processes
		}
	}
	// 18622 is held by 4242 (fds 3 and 9, one entry, FD the lowest) and
	// 4243; 17283 by 4242; 4250's socket:[99999] is not in the tables.
	want := map[uint64][]Process{
		18622: {{4242, "nginx", 3, []int{3, 9}}, {4243, "nginx", 7, []int{7}}},
		17283: {{4242, "nginx", 4, []int{4}}},
	}
	if len(owners) != len(want) {
		t.Errorf("owners = %v, want %v", owners, want)
	}
	for ino, w := range want {
		if !slices.EqualFunc(owners[ino], w, sameProcess) {
			t.Errorf("owners of %d = %v, want %v", ino, owners[ino], w)
		}
	}

	// Only the requested tables and states.
	sn, err = Read(Options{ForceProc: true, ProcRoot: "testdata/proc", UDP: true, States: StatesListening})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sn.Sockets {
		if s.Proto != "udp" || s.State != "UNCONN" {
			t.Errorf("UDP listening read returned %s", key(s, true))
		}
	}
	if len(sn.Sockets) != 4 {
		t.Errorf("%d unconnected UDP sockets, want 4", len(sn.Sockets))
	}
}

func sameProcess(a, b Process) bool {
	return a.PID == b.PID && a.Command == b.Command && slices.Equal(a.FDs, b.FDs)
}
