// Package memnet is an in-memory network for Go programs and their tests,
// built on socktab's engine: every bind, connect and delivery follows the
// socket table of the chosen OS (Linux by default), so the bugs of real
// networks show up in a test: "[::]:8080 took my IPv4 port", EADDRINUSE
// after a restart in TIME_WAIT, ephemeral port exhaustion, tcp4/tcp6
// separation, a unix socket path that outlives its listener.
//
//	n := memnet.New(memnet.Options{OS: "linux"})
//	web := n.Host("web", "192.0.2.10/24", "2001:db8::10/64")
//	client := n.Host("client", "192.0.2.20/24")
//	l, _ := web.Listen("tcp", ":8080")            // dual-stack [::]:8080, SO_REUSEADDR as Go sets it
//	go http.Serve(l, handler)
//	tr := &http.Transport{DialContext: client.DialContext}
//	resp, _ := (&http.Client{Transport: tr}).Get("http://web:8080/")
//
// A host has lo (127.0.0.1/8, ::1) and its addresses on eth0; hosts whose
// subnets meet reach each other (AddRoute adds routes), and each host has
// its own sysctls (Host.Sysctl), ports, loopback and unix files. Host names
// resolve to their addresses, "localhost" to 127.0.0.1 and ::1, anything
// else to a *net.DNSError with IsNotFound.
//
// Hosts offer the shapes of package net: Listen, ListenPacket, Dial,
// DialContext (net.Dialer.DialContext's signature), and ListenConfig /
// Dialer with socket options (SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY,
// SO_BINDTODEVICE, IP_LOCAL_PORT_RANGE, local address). Networks are tcp,
// tcp4, tcp6, udp, udp4, udp6, unix and unixgram; the address family is
// chosen as package net chooses it. Addresses are *net.TCPAddr,
// *net.UDPAddr and *net.UnixAddr; errors are *net.OpError wrapping
// *os.SyscallError wrapping the errno, so errors.Is(err,
// syscall.EADDRINUSE), net.ErrClosed, os.ErrDeadlineExceeded and Timeout()
// behave as with real sockets, and errors.As(err, &e) with e an
// *engine.Error gives the engine's reason and the socket in the way.
//
// # What is modelled
//
// TCP: the listener is chosen by the engine's lookup (SO_REUSEPORT groups
// included) and the ephemeral port by the engine; the accept queue holds
// backlog+1 connections and a full queue makes Dial wait; ECONNREFUSED when
// nobody listens; byte streams with flow control (a writer blocks while the
// peer's buffers are full); CloseWrite gives the peer EOF; Close with
// unread data or SO_LINGER 0 resets the peer (ECONNRESET); a write to a
// closed peer is answered by a reset; closing a listener resets the
// connections it did not accept; the side that closes first holds
// TIME_WAIT in the engine for 60 s of the program's clock.
// UDP: delivery by the engine's lookup, datagram boundaries, truncation,
// drops when the receive buffer is full, ECONNREFUSED on a connected socket
// after a datagram to a closed port. Unix: paths per host (EADDRINUSE until
// removed; a listener removes its path on Close) and abstract "@names".
// Faults: per link latency and partition (Network.SetLatency, Partition,
// Heal), UDP loss (SetLoss), a reset (Conn.Reset), injected read and write
// errors (SetReadError, SetWriteError).
//
// Time: every wait is a channel or timer, so inside a testing/synctest
// bubble the network is durably blocked and virtual time drives latency,
// deadlines and TIME_WAIT (the engine's clock follows time.Now, which is
// virtual in a bubble). Create the Network inside the bubble.
//
// # What is not modelled
//
// Segments, retransmission, congestion control, MTU and Nagle (bytes move
// as soon as there is room); TCP keepalive; urgent data; IP_RECVERR and
// ICMP errors other than port unreachable on a connected UDP socket;
// broadcast and multicast delivery; a TCP self-connect (simultaneous open)
// and connects to an address no host has (they time out); the buffer
// autotuning of Linux (buffers are fixed: 128 KiB receive + 128 KiB send per
// direction, 208 KiB for datagram sockets, each datagram charged 768 bytes
// of overhead); a blocking unix connect to a full queue (EAGAIN, as a
// non-blocking connect gets). Nothing is safe to share between Networks.
package memnet
