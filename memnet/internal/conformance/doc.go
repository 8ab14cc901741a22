// Package conformance holds the "same test, both networks" suite: every
// behaviour is written once against a small interface (a network of hosts
// that listen and dial with options) and runs against memnet and against
// the real Linux kernel, on loopback and on a veth pair between two network
// namespaces made for the test. Each behaviour records what it saw (errno
// classes, address classes, bytes); both runs must record the same thing.
//
// The package has only tests; run them as root on Linux to include the
// kernel side (without root they skip the kernel, except under CI=true,
// where a missing kernel side is a failure).
package conformance
