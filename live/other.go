//go:build !linux

package live

import "errors"

var errUnsupported = errors.New("live: reading sockets is implemented for Linux only")

// Read reads the sockets of the caller's network namespace (Linux only).
func Read(opts Options) (*Snapshot, error) { return nil, errUnsupported }

// ReadNetns reads other network namespaces (Linux only).
func ReadNetns(target NetnsTarget, opts Options) ([]*Snapshot, error) {
	return nil, errUnsupported
}
