//go:build !plan9

package engine

import "syscall"

// sysErrno maps each Errno to the syscall package's constant of the build
// platform (on Windows these are the package's own values for POSIX names).
var sysErrno = [...]syscall.Errno{
	EADDRINUSE: syscall.EADDRINUSE, EADDRNOTAVAIL: syscall.EADDRNOTAVAIL, EACCES: syscall.EACCES,
	EINVAL: syscall.EINVAL, EAFNOSUPPORT: syscall.EAFNOSUPPORT, ECONNREFUSED: syscall.ECONNREFUSED,
	EAGAIN: syscall.EAGAIN, ENETUNREACH: syscall.ENETUNREACH, ENOENT: syscall.ENOENT,
	ENODEV: syscall.ENODEV, EOPNOTSUPP: syscall.EOPNOTSUPP, EISCONN: syscall.EISCONN,
	ENOTCONN: syscall.ENOTCONN, EBADF: syscall.EBADF, ENOPROTOOPT: syscall.ENOPROTOOPT,
	EALREADY: syscall.EALREADY, EPERM: syscall.EPERM, EPROTOTYPE: syscall.EPROTOTYPE,
	EINPROGRESS: syscall.EINPROGRESS,
	EPROTO:      syscall.EPROTO,
	ENOBUFS:     syscall.ENOBUFS,
}

// Syscall is e as the platform's syscall.Errno (0 for OK), for callers that
// build the errors package net builds (os.SyscallError wrapping an Errno).
func (e Errno) Syscall() syscall.Errno {
	if int(e) < len(sysErrno) {
		return sysErrno[e]
	}
	return 0
}

func (e Errno) sys() error {
	if x := e.Syscall(); x != 0 {
		return x
	}
	return nil
}
