package memnet

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/socktab/socktab/engine"
)

// reasonError is the errno of a failed engine operation together with the
// engine's reason: errors.Is(err, syscall.EADDRINUSE) holds, and
// errors.As(err, &e) with e an *engine.Error gives the rule and the socket
// that decided ("held by tcp dual-stack [::]:8080 LISTEN").
type reasonError struct {
	errno syscall.Errno
	why   *engine.Error
}

func (r *reasonError) Error() string   { return r.errno.Error() + " (" + r.why.Error() + ")" }
func (r *reasonError) Unwrap() []error { return []error{r.errno, r.why} }
func (r *reasonError) Timeout() bool   { return r.errno.Timeout() }
func (r *reasonError) Temporary() bool { return r.errno.Temporary() }

// sysErr is the error of a failed engine result, for os.SyscallError.
func sysErr(r engine.Result) error {
	e := r.AsError()
	if e == nil {
		return nil
	}
	var ee *engine.Error
	errors.As(e, &ee)
	return &reasonError{errno: r.Err.Syscall(), why: ee}
}

// opError builds the error package net returns: *net.OpError wrapping
// *os.SyscallError wrapping the errno (err may be a bare syscall.Errno or
// a reasonError).
func opError(op, network string, src, addr net.Addr, call string, err error) error {
	return &net.OpError{Op: op, Net: network, Source: nilAddr(src), Addr: nilAddr(addr), Err: os.NewSyscallError(call, err)}
}

// plainOpError wraps an error that package net does not put inside an
// os.SyscallError: net.ErrClosed, os.ErrDeadlineExceeded, a DNS error.
func plainOpError(op, network string, src, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: network, Source: nilAddr(src), Addr: nilAddr(addr), Err: err}
}

// nilAddr keeps a typed nil pointer out of an interface, so that
// OpError's Source/Addr compare to nil as they do in package net.
func nilAddr(a net.Addr) net.Addr {
	switch v := a.(type) {
	case *net.TCPAddr:
		if v == nil {
			return nil
		}
	case *net.UDPAddr:
		if v == nil {
			return nil
		}
	case *net.UnixAddr:
		if v == nil {
			return nil
		}
	}
	return a
}

var (
	errDeadline = os.ErrDeadlineExceeded
	netipZero   netip.AddrPort
)
