//go:build linux

package live

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// readOptsFD fills the options of owned sockets that have none yet by
// duplicating an owner's descriptor (pidfd_open + pidfd_getfd) and reading
// them with getsockopt. The duplicate is closed at once; nothing is ever
// set. TIME-WAIT sockets (no descriptor) and sockets whose owners are not
// known stay without options. It needs Socket.Processes.
func readOptsFD(snaps []*Snapshot, port uint16) {
	for _, snap := range snaps {
		unread, denied := 0, 0
		for i := range snap.Sockets {
			s := &snap.Sockets[i]
			if s.Family == "unix" || s.Opts != nil || (port != 0 && s.Local.Port() != port) {
				continue
			}
			ok := false
			for _, p := range s.Processes {
				o, err := optsOfFD(p.PID, p.FD, s.Inode, s.Family == "inet6")
				if err == nil {
					s.Opts, s.OptsSource, ok = o, SourceSocket, true
					break
				}
				if err == unix.EPERM || err == unix.EACCES {
					denied++
				}
			}
			if !ok {
				unread++
			}
		}
		if snap.OptsSource == "" {
			snap.OptsSource = SourceSocket
		}
		if unread > 0 {
			note := fmt.Sprintf("options of %d sockets unknown (TIME-WAIT or no readable owner; read as root with BPF to see them)", unread)
			if denied > 0 {
				note += fmt.Sprintf("; %d owners' descriptors not duplicable (need CAP_SYS_PTRACE)", denied)
			}
			snap.Missing = append(snap.Missing, note)
		}
	}
}

// optsOfFD reads the options of fd in process pid, after checking that the
// descriptor still refers to socket inode ino.
func optsOfFD(pid, fd int, ino uint64, inet6 bool) (*SockOpts, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, fd, 0) // always O_CLOEXEC
	if err != nil {
		return nil, err
	}
	defer unix.Close(dup)
	var st unix.Stat_t
	if err := unix.Fstat(dup, &st); err != nil {
		return nil, err
	}
	if st.Ino != ino {
		return nil, unix.ESTALE // the descriptor was reused meanwhile
	}
	get := func(level, opt int) (int, error) { return unix.GetsockoptInt(dup, level, opt) }
	o := &SockOpts{}
	v, err := get(unix.SOL_SOCKET, unix.SO_REUSEADDR)
	if err != nil {
		return nil, err
	}
	o.ReuseAddr = v != 0
	if v, err = get(unix.SOL_SOCKET, unix.SO_REUSEPORT); err != nil {
		return nil, err
	}
	o.ReusePort = v != 0
	if v, err = get(unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX); err != nil {
		return nil, err
	}
	o.Device = v
	if inet6 {
		if v, err = get(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); err != nil {
			return nil, err
		}
		o.V6Only = v != 0
	}
	return o, nil
}
