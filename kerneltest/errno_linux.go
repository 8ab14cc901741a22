//go:build linux

package kerneltest

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// errName names an error from a system call the way the engine names its
// errnos: "ok" for nil, EOPNOTSUPP rather than ENOTSUP, EAGAIN rather than
// EWOULDBLOCK.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var e unix.Errno
	if !errors.As(err, &e) {
		return err.Error()
	}
	switch e {
	case unix.EOPNOTSUPP:
		return "EOPNOTSUPP"
	case unix.EAGAIN:
		return "EAGAIN"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno%d", int(e))
}
