package engine

import (
	"fmt"
	"net/netip"
)

// Error is a failed Result as a Go error: the errno, the rule that decided
// it and the socket it ran into. errors.Is(err, syscall.EADDRINUSE) holds
// for an EADDRINUSE result on every platform whose syscall package has that
// errno (Unwrap gives the syscall.Errno).
type Error struct {
	Errno Errno
	Rule  Rule
	Other *Socket // the conflicting holder or the socket reached, if any
	// Holder describes Other as it was when the operation failed (the
	// socket may change or leave later; Error reads only this).
	Holder string
}

// AsError is r as an error: nil when the operation succeeded, else *Error.
func (r Result) AsError() error {
	if r.Err == OK {
		return nil
	}
	e := &Error{Errno: r.Err, Rule: r.Rule, Other: r.Other}
	if r.Other != nil {
		e.Holder = Describe(r.Other)
	}
	return e
}

// OK reports whether the operation succeeded.
func (r Result) OK() bool { return r.Err == OK }

func (e *Error) Error() string {
	if e.Holder == "" {
		return fmt.Sprintf("%s: %s", e.Errno, e.Rule)
	}
	return fmt.Sprintf("%s: %s (%s)", e.Errno, e.Rule, e.Holder)
}

// Unwrap returns the matching syscall.Errno, or nil where the platform has
// none, so errors.Is compares with the syscall package's constants.
func (e *Error) Unwrap() error { return e.Errno.sys() }

// Is matches another *Error with the same errno.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Errno == e.Errno && (t.Rule == "" || t.Rule == e.Rule)
}

// Describe names a socket for a message: "tcp [::]:8080 LISTEN" (a name
// the scenario or live table gave it first, when it has one).
func Describe(s *Socket) string {
	if s == nil {
		return "no socket"
	}
	var where string
	switch {
	case s.fam == Unix:
		where = s.Path()
	case s.remote.ok:
		where = s.Local().String() + " -> " + s.Remote().String()
	default:
		where = s.Local().String()
	}
	if where == "" {
		where = netip.AddrPort{}.String()
	}
	kind := s.proto.String()
	if s.fam == Inet6 && !s.V6Only() && s.local.ok && s.local.Addr().IsUnspecified() {
		kind += " dual-stack"
	}
	d := fmt.Sprintf("%s %s %s", kind, where, s.state)
	if n := s.Name(); n != "" {
		d = n + " (" + d + ")"
	}
	return d
}
