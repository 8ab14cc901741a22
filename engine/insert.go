package engine

import (
	"fmt"
	"net/netip"
)

// SocketSpec describes a socket that already exists, as read from a live
// machine or built for a benchmark: Insert places it in the tables without
// judging it (the kernel already did).
type SocketSpec struct {
	Name          string
	Family        Family
	Proto         Proto
	State         State
	Local, Remote netip.AddrPort
	Path          string // AF_UNIX
	UID           uint32
	V6Only        bool
	ReuseAddr     bool
	ReusePort     bool
	Dev           int
	ConnectBind   bool // the port was chosen by connect(), so connect() may share it
	// MulticastAll is IP_MULTICAST_ALL; nil: the family's default (on for
	// AF_INET, off for AF_INET6).
	MulticastAll *bool
}

// Insert adds an existing socket to the host's tables.
func (h *Host) Insert(sp SocketSpec) (*Socket, error) {
	s := &Socket{fam: sp.Family, proto: sp.Proto, state: sp.State, uid: sp.UID}
	if sp.Dev != 0 {
		s.x().dev = int32(sp.Dev)
	}
	s.SetName(sp.Name)
	if sp.V6Only {
		s.flags |= fV6Only
	}
	if sp.ReuseAddr {
		s.flags |= fReuseAddr
	}
	if sp.ReusePort {
		s.flags |= fReusePort
	}
	switch {
	case sp.MulticastAll != nil && *sp.MulticastAll, sp.MulticastAll == nil && sp.Family == Inet:
		s.flags |= fMcAll4
	}
	if sp.Family == Inet6 {
		s.flags |= fMcAll6
	}
	if sp.Family == Unix {
		if sp.Path != "" {
			s.more().path = sp.Path
			if isAbstract(sp.Path) {
				h.unix.abstract[abstractKey{sp.Path, sp.Proto}] = s
			} else if sp.State == Listen || h.unix.files[sp.Path] == nil {
				h.unix.files[sp.Path] = s
			}
		}
		h.register(s)
		return s, nil
	}
	if sp.Family != Inet && sp.Family != Inet6 || (sp.Proto != TCP && sp.Proto != UDP) {
		return nil, fmt.Errorf("insert: bad family/protocol %s/%s", sp.Family, sp.Proto)
	}
	s.local, s.remote = ep(sp.Local), ep(sp.Remote)
	if sp.State == TimeWait || sp.State == FinWait2 {
		s.flags |= fClosed // a timewait sock has no user: it is an orphan
	}
	h.register(s)
	if sp.Local.Port() == 0 {
		return s, nil
	}
	s.flags |= fHasPort | fHasAddr
	if sp.ConnectBind {
		s.flags |= fConnectBind
	}
	t := h.table(sp.Proto)
	t.addOwner(s)
	switch {
	case sp.Proto == TCP && sp.State == Listen:
		t.hashListener(s)
	case sp.Proto == TCP && sp.State != Closed:
		t.hashFlow(s)
		if sp.ConnectBind {
			t.addDest(s)
		}
	case sp.Proto == UDP && sp.State == Established:
		k := flowKeyOf(s)
		t.uflows[k] = insertOrdered(t.uflows[k], s)
	case sp.Proto == UDP:
		t.hashUDP(s)
	}
	return s, nil
}
