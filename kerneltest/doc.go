// Package kerneltest proves the engine's Linux profile against the real
// kernel: it replays scenarios through real syscalls in a fresh network
// namespace and compares every step with scenario.Run.
//
// The kernel side (Replay) needs root and network namespaces; the tests
// skip loudly where no namespace can be made, and fail instead when the
// environment variable CI is "true".
package kerneltest

// Result is the kernel's answer to one step, in the vocabulary of
// scenario.Outcome.Result: "ok", an errno name, or for a packet a socket
// name, "rst", "icmp-port-unreachable" or "drop". A connect to this host
// still in progress after a while (it will never complete) is
// "EINPROGRESS"; one elsewhere is "ok", as the engine assumes an unknown
// peer answers.
type Result struct {
	Result string
	// Skip, when set, says why this step cannot be compared with the
	// engine (a packet no probe can make, another OS, a second host).
	Skip string
}
