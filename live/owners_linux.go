//go:build linux

package live

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// attachOwners walks ProcRoot/[0-9]*/fd once, maps socket inodes of the
// snapshots to every process holding them, and fills Socket.Processes.
// Socket inodes are unique across network namespaces (one sockfs), so one
// walk serves all snapshots.
func attachOwners(procRoot string, snaps []*Snapshot) {
	want := map[uint64][]Process{}
	for _, s := range snaps {
		for i := range s.Sockets {
			if ino := s.Sockets[i].Inode; ino != 0 {
				want[ino] = nil
			}
		}
	}
	denied, err := walkOwners(procRoot, want)
	var note string
	switch {
	case err != nil:
		note = fmt.Sprintf("process owners: %v", err)
	case denied > 0 && os.Geteuid() != 0:
		note = fmt.Sprintf("process owners: need root (fds of %d processes unreadable)", denied)
	case denied > 0:
		note = fmt.Sprintf("process owners: fds of %d processes unreadable", denied)
	}
	for _, s := range snaps {
		if note != "" {
			s.Missing = append(s.Missing, note)
		}
		for i := range s.Sockets {
			if ps := want[s.Sockets[i].Inode]; len(ps) > 0 {
				s.Sockets[i].Processes = ps
			}
		}
	}
}

// walkOwners fills want[inode] with the processes whose fds refer to
// socket:[inode]. It returns how many processes' fds could not be read
// for lack of permission.
func walkOwners(procRoot string, want map[uint64][]Process) (denied int, err error) {
	d, err := os.Open(procRoot)
	if err != nil {
		return 0, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return 0, err
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	buf := make([]byte, 64)
	var fdSlab []int // FDs slices without one allocation per socket
	for _, pid := range pids {
		dir := filepath.Join(procRoot, strconv.Itoa(pid), "fd")
		fdDir, err := os.Open(dir)
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				denied++
			}
			continue // gone, or a kernel thread
		}
		fds, err := fdDir.Readdirnames(-1)
		if err != nil {
			fdDir.Close()
			if errors.Is(err, fs.ErrPermission) {
				denied++
			}
			continue
		}
		dfd := int(fdDir.Fd())
		comm := ""
		for _, fd := range fds {
			n, err := unix.Readlinkat(dfd, fd, buf)
			if err != nil || n < 10 {
				continue
			}
			l := buf[:n]
			// "socket:[12345]"
			if string(l[:8]) != "socket:[" || l[n-1] != ']' {
				continue
			}
			ino, ok := parseDec(l[8 : n-1])
			if !ok {
				continue
			}
			holders, ok := want[ino]
			if !ok {
				continue
			}
			fdn, _ := strconv.Atoi(fd)
			if len(holders) > 0 && holders[len(holders)-1].PID == pid {
				h := &holders[len(holders)-1] // same process, another fd: FD keeps the lowest
				h.FD = min(h.FD, fdn)
				h.FDs = append(h.FDs, fdn)
				continue
			}
			if comm == "" {
				comm = readComm(procRoot, pid)
			}
			if len(fdSlab) == cap(fdSlab) {
				fdSlab = make([]int, 0, 4096)
			}
			fdSlab = append(fdSlab, fdn)
			fds := fdSlab[len(fdSlab)-1 : len(fdSlab) : len(fdSlab)] // a second fd copies
			want[ino] = append(holders, Process{PID: pid, Command: comm, FD: fdn, FDs: fds})
		}
		fdDir.Close()
	}
	for _, holders := range want {
		for _, h := range holders {
			slices.Sort(h.FDs) // directory order is not numeric order everywhere
		}
	}
	return denied, nil
}

func readComm(procRoot string, pid int) string {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}
