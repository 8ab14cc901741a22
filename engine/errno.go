package engine

// Errno is a POSIX error name. Every profile reports POSIX names; a profile
// may add its own spelling (WSAEADDRINUSE) in the trace.
type Errno uint8

const (
	OK Errno = iota
	EADDRINUSE
	EADDRNOTAVAIL
	EACCES
	EINVAL
	EAFNOSUPPORT
	ECONNREFUSED
	EAGAIN
	ENETUNREACH
	ENOENT
	ENODEV
	EOPNOTSUPP
	EISCONN
	ENOTCONN
	EBADF
	ENOPROTOOPT
	EALREADY
	EPERM
	EPROTOTYPE
	EINPROGRESS
	EPROTO
	ENOBUFS
)

var errnoNames = [...]string{"ok", "EADDRINUSE", "EADDRNOTAVAIL", "EACCES", "EINVAL", "EAFNOSUPPORT",
	"ECONNREFUSED", "EAGAIN", "ENETUNREACH", "ENOENT", "ENODEV", "EOPNOTSUPP", "EISCONN", "ENOTCONN",
	"EBADF", "ENOPROTOOPT", "EALREADY", "EPERM", "EPROTOTYPE", "EINPROGRESS", "EPROTO", "ENOBUFS"}

func (e Errno) String() string { return errnoNames[e] }

// ParseErrno maps "ok" or an errno name to the Errno.
func ParseErrno(s string) (Errno, bool) {
	for i, n := range errnoNames {
		if n == s {
			return Errno(i), true
		}
	}
	return 0, false
}

// Errnos lists every errno name the engine can produce.
func Errnos() []string { return errnoNames[:] }
