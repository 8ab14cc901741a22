//go:build !linux

package live

import (
	"errors"
	"net/netip"
)

var errUnsupported = errors.New("live: reading sockets is implemented for Linux only")

// Read reads the sockets of the caller's network namespace (Linux only).
func Read(opts Options) (*Snapshot, error) { return nil, errUnsupported }

// ReadNetns reads other network namespaces (Linux only).
func ReadNetns(target NetnsTarget, opts Options) ([]*Snapshot, error) {
	return nil, errUnsupported
}

// Membership is what a socket's descriptor says about a multicast group.
type Membership struct {
	Joined bool
	All6   *bool
}

// GroupMembership is Linux only.
func GroupMembership(s *Socket, group netip.Addr, ifindexes []int) (Membership, error) {
	return Membership{}, errUnsupported
}

// NetnsDir is where Linux bind-mounts named network namespaces; elsewhere
// there are none, and every read fails with errUnsupported.
var NetnsDir = "/run/netns"
