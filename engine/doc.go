// Package engine is socktab's socket table: bind, listen, connect, accept,
// close and packet lookup with an operating system's exact rules. The
// simulator, the live inspector and memnet all drive this one engine; they
// differ only in how the table is filled and what carries the bytes.
//
// # Walkthrough
//
// A Network holds hosts that share a clock and an OS profile. A Host is one
// machine (one network namespace): interfaces with addresses, routes,
// sysctls, and the TCP, UDP and AF_UNIX tables. Sockets are made by a host
// and belong to it: every operation is a method of the host, and a socket
// of another host (or one already closed) is refused with EBADF.
//
//	n := engine.NewNetwork(engine.Linux, 1)        // profile, seed of random choices
//	web := n.AddHost("web")                         // lo: 127.0.0.1/8, ::1
//	web.AddIface("eth0", netip.MustParsePrefix("192.0.2.10/24"))
//	s, _ := web.NewSocket(engine.Inet6, engine.TCP, 1000) // family, proto, uid
//	web.SetReuseAddr(s, true)                       // typed setters, one per option
//	r := web.Bind(s, netip.MustParseAddrPort("[::]:8080"))
//	if err := r.AsError(); err != nil {             // errors.Is(err, syscall.EADDRINUSE)
//		...
//	}
//	web.Listen(s)
//	d := web.Lookup(engine.Packet{Proto: engine.TCP, Flags: engine.FlagSYN,
//		Src: netip.MustParseAddrPort("192.0.2.20:40000"),
//		Dst: netip.MustParseAddrPort("192.0.2.10:8080")})
//	// d.Verdict == engine.Deliver, d.Socket == s: [::]:8080 is dual-stack.
//
// Every operation returns a Result: Err is the errno (OK on success), Rule
// says in words which rule decided, Other is the socket it ran into (the
// holder of a port, the listener reached) and Local/Remote the endpoints
// it bound or connected. Result.AsError gives the same as an error (*Error)
// that unwraps to the platform's syscall.Errno. Connect between two hosts
// of one network reaches the other host's listener and queues a child for
// Accept; Network.Advance moves the clock that expires TIME_WAIT.
//
// Host.Lookup answers "who receives this packet" without changing anything
// and without allocating: the established 4-tuple, TIME_WAIT, the listener
// on the exact address, then the wildcard one (SO_REUSEPORT groups by a
// seeded hash), or RST / ICMP port unreachable.
//
// # Concurrency
//
// Nothing in the package is safe for concurrent use: a Network, its hosts
// and their sockets form one data structure, and every method (Lookup
// included, which reads tables others modify) must be serialized by the
// caller, e.g. one mutex per Network, as memnet does. Distinct Networks are
// independent. Profiles are read-only after package initialization and may
// be shared.
//
// # Profiles
//
// A Profile holds every rule that differs between operating systems, each
// citing its source (Profile.Sources):
//
//   - Linux (v6.18): inet_bind_conflict and bhash2 for TCP,
//     udp_lib_lport_inuse for UDP, the dual-stack overlap matrix,
//     inet_csk_find_open_port (bind port 0) and __inet_hash_connect
//     (RFC 6056 algorithm 4, parity) for ephemeral ports, listen's re-check,
//     TIME_WAIT and tcp_tw_reuse, compute_score lookups and reuseport groups,
//     AF_UNIX paths and abstract names. Replayed against the running kernel by
//     kerneltest.
//   - FreeBSD and MacOS: 4.4BSD in_pcbbind (SO_REUSEADDR and SO_REUSEPORT
//     as those kernels read them, the dual-stack asymmetry, privileged
//     ports), their ephemeral ranges (FreeBSD 10000-65535, macOS
//     49152-65535) and IPV6_V6ONLY defaults (on for FreeBSD, off for macOS).
//     Linux-only options are refused with ENOPROTOOPT.
//   - Windows: Winsock's documented sharing table (SO_REUSEADDR,
//     SO_EXCLUSIVEADDRUSE), IPV6_V6ONLY on by default, 49152-65535, no
//     privileged ports, from Microsoft's documentation only (no kernel
//     source is public).
//
// What a profile does not model is said in its own comments and in the
// README; a profile never silently borrows Linux's rules.
package engine
