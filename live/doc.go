// Package live reads the sockets of the running machine into plain
// records: TCP, UDP (IPv4 and IPv6) and unix sockets with their state,
// addresses, IPV6_V6ONLY, owner uid, inode, queues and bound device, plus
// the interfaces, the bind-related sysctls and, on request, the processes
// holding each socket. It reads the caller's network namespace (Read) or
// others (ReadNetns). It only reads: deciding what a bind would do is the
// job of another package.
//
// # Sources
//
// Sockets come from netlink sock_diag (inet_diag for TCP/UDP, unix_diag),
// like ss. The TCP state filter travels in the request (idiag_states), so a
// listeners-only query does not make the kernel walk the established
// table, and INET_DIAG_SKV6ONLY is parsed so that a dual-stack [::]
// listener is told from an IPv6-only one. A dump the kernel flags
// NLM_F_DUMP_INTR is redone (a few times) and never returned partial.
//
// Where sock_diag is unavailable (no netlink, kernel built without
// INET_DIAG / UDP_DIAG / UNIX_DIAG, module autoload off), or with
// Options.ForceProc, the tables are read from /proc/net (tcp, tcp6, udp,
// udp6 and unix), each file with one read and its addresses decoded in
// native byte order. /proc/net carries no v6only flag and no bound device, so
// V6Only is nil there (unknown, not "dual-stack") and Snapshot.Missing
// says so.
//
// # Why a thin client on mdlayher/netlink
//
// The sock_diag request and the reply records are a few fixed-layout
// structs (inet_diag_req_v2 56 bytes, inet_diag_msg 72 bytes, unix_diag
// 24/16 bytes), so this package encodes and parses them itself and uses
// github.com/mdlayher/netlink as the transport: the socket, its namespace,
// sending the request. Replies are read through the connection's raw
// descriptor (Conn.SyscallConn) into one reused buffer, with the netlink
// headers and the errno in NLMSG_DONE/NLMSG_ERROR checked here: the
// library's ReceiveIter copies every datagram into a fresh slice, which at
// 100,000 sockets cost as much as the kernel's dump (docs/benchmarks.md).
// A connection without a raw descriptor (the library's test fakes) is read
// through ReceiveIter. Options.Emit streams the sockets instead of
// collecting them.
//
//   - github.com/vishvananda/netlink hard-codes all states (0xfff) in its
//     SocketDiag* calls, so a listener audit would pay for every
//     established and TIME-WAIT socket; it does not parse
//     INET_DIAG_SKV6ONLY; and it returns partial results with
//     ErrDumpInterrupted.
//   - florianl/go-diag parses SKV6ONLY but calls itself a work in
//     progress, and its Config.SkipOptional is never applied.
//   - gopsutil, go-netstat and procfs read /proc/net only (no v6only, no
//     kernel-side filtering, several hard-code little-endian).
//
// mdlayher/netlink is maintained, small and is the transport that
// node_exporter's tcpstat collector uses for the same purpose. Parsing in
// place keeps a dump cheap: each record becomes one Socket appended to a
// slice sized from /proc/net/sockstat, with no other per-record
// allocation (v6only flags and unix names come from shared slabs).
//
// # Socket options
//
// sock_diag does not carry SO_REUSEADDR or SO_REUSEPORT. With
// Options.SockOpts they are read for the sockets on Options.OptsPort (or
// all): first by BPF socket iterators (iter/tcp, iter/udp; bpf/sockopts.c,
// compiled by bpf2go into the committed sockopts_bpfe[lb].o and loaded
// with github.com/cilium/ebpf), which see every socket of the namespace
// the reading thread is in, TIME-WAIT ones included, and each TCP port's
// bind-bucket caches (Snapshot.Buckets); records are matched to sock_diag
// rows by inode, orphans by their tuple. What the iterators do not walk
// (TCP sockets bound but not listening) or everything, when BPF cannot run
// (no privilege, no BTF), is read from an owner's descriptor duplicated
// with pidfd_getfd, getsockopt only, closed at once. Socket.OptsSource
// says which; what stays nil is unknown.
//
// # Namespaces
//
// ReadNetns enters a namespace on a locked OS thread (setns), reads the
// sock_diag and rtnetlink sockets, /proc/thread-self/net and /proc/sys
// there (both show the calling thread's namespace), and restores the
// thread. Process owners are found with one walk of /proc/*/fd for all
// namespaces together, since socket inodes are unique across them.
package live
