package live

import (
	"errors"
	"net/netip"
	"strconv"
	"unsafe"
)

// Process is one holder of a socket, found through /proc/PID/fd.
type Process struct {
	PID     int    `json:"pid"`
	Command string `json:"command"` // /proc/PID/comm
	FD      int    `json:"fd"`      // the process's first descriptor of the socket
	// FDs are the process's descriptor numbers that refer to the socket.
	FDs []int `json:"fds,omitempty"`
}

// Socket is one kernel socket, as read from sock_diag or /proc/net.
type Socket struct {
	// Proto is "tcp", "udp" or "unix".
	Proto string `json:"proto"`
	// Family is "inet", "inet6" or "unix".
	Family string `json:"family"`
	// State uses ss names: LISTEN, ESTAB, TIME-WAIT, SYN-SENT, SYN-RECV,
	// FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT, LAST-ACK, CLOSING, CLOSE (TCP, this
	// includes bound-but-inactive sockets) and UNCONN (unconnected UDP/unix).
	State string `json:"state"`
	// Local and Remote are set for inet sockets. Addresses of AF_INET
	// sockets are 4-byte; AF_INET6 sockets keep their addresses as the
	// kernel reports them, v4-mapped ones included.
	Local  netip.AddrPort `json:"local,omitzero"`
	Remote netip.AddrPort `json:"remote,omitzero"`
	// Path is the unix socket address: a filesystem path, "@name" for an
	// abstract name (embedded NULs shown as '@'), "" for an unnamed socket.
	Path string `json:"path,omitempty"`
	// UnixType is "stream", "dgram" or "seqpacket" for unix sockets.
	UnixType string `json:"unix_type,omitempty"`
	// PeerInode is the inode of a connected unix socket's peer (0: none or
	// not read; netlink only).
	PeerInode uint64 `json:"peer_inode,omitempty"`
	// V6Only is IPV6_V6ONLY of an AF_INET6 socket. The kernel reports it for
	// LISTEN and unconnected (CLOSE/UNCONN) sockets only; it is nil when
	// unknown (other states, AF_INET, unix, or the /proc fallback). The
	// kernel sets it for every socket bound to a specific IPv6 address,
	// so in practice it separates [::] dual-stack from [::] v6-only.
	// The pointed-to value may be shared: do not write through it.
	V6Only *bool  `json:"v6only,omitempty"`
	UID    uint32 `json:"uid"`
	// Inode is the socket inode (0 for TIME-WAIT and SYN-RECV entries).
	Inode uint64 `json:"inode"`
	// RecvQ and SendQ are the queue sizes as the source reports them. For a
	// TCP listener sock_diag gives the accept backlog and its limit, while
	// /proc/net gives the backlog and 0.
	RecvQ uint32 `json:"recv_q"`
	SendQ uint32 `json:"send_q"`
	// BoundDev is the kernel's ifindex of SO_BINDTODEVICE, 0 for none
	// (always 0 from the /proc fallback, which does not carry it), and
	// BoundDevName that interface's name ("" when unbound, or when no
	// interface of the namespace has the index any more).
	BoundDev     int    `json:"bound_dev,omitempty"`
	BoundDevName string `json:"bound_dev_name,omitempty"`
	// MulticastAll is IP_MULTICAST_ALL as sock_diag reports it
	// (INET_DIAG_SOCKOPT; not for TIME-WAIT or from /proc): an unjoined
	// socket then takes every IPv4 group its host joined. nil when unknown.
	MulticastAll *bool `json:"multicast_all,omitempty"`
	// Netns labels the network namespace; "" is the caller's own.
	Netns string `json:"netns,omitempty"`
	// Processes holding the socket; filled only with Options.Processes.
	Processes []Process `json:"processes,omitempty"`
	// Opts are the socket's bind-relevant options, nil when not read
	// (Options.SockOpts) or unreadable; OptsSource says where they came
	// from: SourceKernel or SourceSocket.
	Opts       *SockOpts `json:"options,omitempty"`
	OptsSource string    `json:"options_source,omitempty"`
	// ChainPos is, for a UDP socket read by the BPF reader, 1 + how many
	// sockets follow it on its port's hash chain; 0 when unknown.
	// udp_lib_lport_inuse meets a port's holders in that chain's order,
	// which sock_diag keeps only within one address family.
	ChainPos uint16 `json:"-"`
	// UDPSlot is, for a UDP socket read by the BPF reader, how many
	// sockets the kernel counts in its port's primary hash slot
	// (hslot->count): the port's own and those of other ports and
	// namespaces that hash there. With more than ten, a bind to a specific
	// address is checked on other chains (udp_lib_get_port). 0 when not
	// read: a slot that was read holds at least the socket itself.
	UDPSlot int `json:"-"`
	// ConnectBind says, for a TCP socket read by the BPF reader on Linux
	// 6.18+, whether connect() chose its port (SOCK_CONNECT_BIND,
	// tw_connect_bind): a port whose holders all have it may be shared by
	// another connect(). nil when unknown.
	ConnectBind *bool `json:"-"`
}

// SockOpts are the options of a socket that sock_diag does not report and
// that decide binds and lookups.
type SockOpts struct {
	// ReuseAddr is SO_REUSEADDR. A TIME-WAIT socket carries the value of
	// the socket it came from (for an accepted connection, the listener's).
	ReuseAddr bool `json:"reuseaddr"`
	ReusePort bool `json:"reuseport"`
	// V6Only is IPV6_V6ONLY (false for AF_INET sockets).
	V6Only bool `json:"v6only"`
	// Device is the ifindex of SO_BINDTODEVICE, 0 for none.
	Device int `json:"device"`
}

// Where socket options came from (Socket.OptsSource).
const (
	// SourceKernel: read from the kernel's socket by a BPF iterator (every
	// socket, TIME-WAIT included).
	SourceKernel = "kernel"
	// SourceSocket: read with getsockopt on a duplicate of an owner's
	// descriptor (pidfd_getfd); TIME-WAIT and unowned sockets stay unknown.
	SourceSocket = "socket"
	// SourceMemnet: not read from any kernel: a memnet socket's options are
	// the ones its program set (or Go's defaults), known exactly
	// (memnet.Host.Sockets).
	SourceMemnet = "memnet"
)

// Options sources a reader may be asked to use (Options.SockOpts).
const (
	OptsNone = ""     // do not read options
	OptsAuto = "auto" // the BPF iterator, else descriptors
	OptsBPF  = "bpf"  // like auto, but an error when the iterator cannot run
	OptsFD   = "fd"   // descriptors only (pidfd_getfd)
	// OptsKernel: the BPF iterator where it runs, nothing otherwise (no
	// walk of the processes' descriptors): the kernel's facts at the
	// iterator's cost, for readers of every socket (socktab ports).
	OptsKernel = "kernel"
)

// BindBucket is the kernel's cached reuse state of one TCP port's bind
// bucket (struct inet_bind_bucket), read by the BPF iterator. The kernel
// consults it before the full conflict check (inet_csk_get_port).
type BindBucket struct {
	Port          uint16     `json:"port"`
	FastReuse     int8       `json:"fastreuse"`
	FastReuseport int8       `json:"fastreuseport"` // 1 any, 2 strict (FASTREUSEPORT_*)
	FastUID       uint32     `json:"fastuid"`
	FastFamily    string     `json:"fast_family"` // "inet" or "inet6"
	FastIPv6Only  bool       `json:"fast_ipv6_only"`
	FastRcvSaddr  netip.Addr `json:"fast_rcv_saddr"`
}

// Interface is a network interface and its addresses.
type Interface struct {
	Name     string         `json:"name"`
	Index    int            `json:"index"` // the kernel's ifindex
	Up       bool           `json:"up"`
	Loopback bool           `json:"loopback"`
	Addrs    []netip.Prefix `json:"addrs"`
	// Broadcast holds the IPv4 broadcast addresses set on its addresses
	// (IFA_BROADCAST), beside the subnets' last addresses.
	Broadcast []netip.Addr `json:"broadcast,omitempty"`
	// Groups are the multicast groups the interface joined
	// (/proc/net/igmp, /proc/net/igmp6): a group's datagrams are accepted
	// on it. Which socket joined is not reported by the kernel.
	Groups []netip.Addr `json:"groups,omitempty"`
}

// DeviceName is the name of the socket's bound device as ss shows it: the
// interface's name, "if7" when the index names no interface, "" unbound.
func (s *Socket) DeviceName() string {
	switch {
	case s.BoundDev == 0:
		return ""
	case s.BoundDevName != "":
		return s.BoundDevName
	}
	return "if" + strconv.Itoa(s.BoundDev)
}

// Sysctls are the namespace's sysctls that decide binds.
type Sysctls struct {
	PortLow               int      `json:"port_low"`  // net.ipv4.ip_local_port_range
	PortHigh              int      `json:"port_high"` // net.ipv4.ip_local_port_range
	ReservedPorts         []uint16 `json:"reserved_ports"`
	UnprivilegedPortStart int      `json:"unprivileged_port_start"`
	BindV6Only            bool     `json:"bindv6only"`
	TCPTWReuse            int      `json:"tcp_tw_reuse"`
	NonlocalBind4         bool     `json:"nonlocal_bind4"`
	NonlocalBind6         bool     `json:"nonlocal_bind6"`
}

// Snapshot is what was read from one network namespace.
type Snapshot struct {
	// Netns labels the namespace: "" for the caller's own, the name for one
	// under /run/netns, else "pid:N(comm)".
	Netns string `json:"netns"`
	// Source is "netlink" or "proc" ("netlink+proc" when some tables had
	// to be read from /proc/net; Missing says which).
	Source     string      `json:"source"`
	Sockets    []Socket    `json:"sockets"`
	Interfaces []Interface `json:"interfaces"`
	Sysctls    Sysctls     `json:"sysctls"`
	// Missing holds human notes about what could not be read.
	Missing []string `json:"missing,omitempty"`
	// OptsSource says how socket options were read: SourceKernel,
	// SourceSocket, or "" when they were not.
	OptsSource string `json:"options_source,omitempty"`
	// Buckets are the TCP bind buckets' caches, by port (BPF only).
	Buckets []BindBucket `json:"bind_buckets,omitempty"`
}

// Kernel TCP states (include/net/tcp_states.h). Options.States is a mask of
// 1<<state; unix and UDP sockets use the same numbers (ESTABLISHED for
// connected, CLOSE for unconnected, LISTEN for unix listeners).
const (
	TCPEstablished   = 1
	TCPSynSent       = 2
	TCPSynRecv       = 3
	TCPFinWait1      = 4
	TCPFinWait2      = 5
	TCPTimeWait      = 6
	TCPClose         = 7
	TCPCloseWait     = 8
	TCPLastAck       = 9
	TCPListen        = 10
	TCPClosing       = 11
	TCPNewSynRecv    = 12
	TCPBoundInactive = 13 // query-only: bound, not listening TCP sockets
)

const (
	// StatesListen selects TCP and unix listeners only; with it the kernel
	// does not walk the established table.
	StatesListen uint32 = 1 << TCPListen
	// StatesListening is ss -l: listeners plus unconnected UDP and unix
	// sockets.
	StatesListening uint32 = 1<<TCPListen | 1<<TCPClose
)

// Options chooses what Read reads.
type Options struct {
	// TCP, UDP and Unix select the tables; all false means all three.
	TCP, UDP, Unix bool
	// States is a bitmask of kernel states (1<<TCPListen, ...); 0 means
	// all, including TCP sockets that are bound but not listening. It
	// applies to every table: UDP sockets are ESTABLISHED (connected) or
	// CLOSE (unconnected), unix sockets LISTEN, ESTABLISHED or CLOSE, so
	// StatesListen returns no UDP sockets while StatesListening does.
	// Netlink filters in the kernel; the /proc fallback filters after
	// reading.
	States uint32
	// Processes fills Socket.Processes from /proc/*/fd.
	Processes bool
	// Port, when not 0, reads only the TCP and UDP sockets whose local
	// port it is (netlink filters in the kernel with an inet_diag
	// bytecode; the /proc fallback after reading). A bind to a port and a
	// packet to it concern no other socket.
	Port uint16
	// SockOpts chooses how socket options (Socket.Opts) are read:
	// OptsNone, OptsAuto, OptsBPF or OptsFD. OptsPort, when not 0, limits
	// it to the sockets on that local port. Options are not read when
	// sockets are streamed (Emit).
	SockOpts string
	OptsPort uint16
	// ForceProc reads sockets from /proc/net instead of netlink (testing).
	ForceProc bool
	// SocketsOnly skips interfaces and sysctls (a plain listing needs
	// neither).
	SocketsOnly bool
	// Emit, when set, receives each socket as it is read instead of
	// Snapshot.Sockets collecting them, so a listing of 100,000 sockets
	// keeps none of them: the *Socket is valid only during the call. When a
	// dump the kernel interrupted is redone, Rewind(n) says that the last n
	// sockets emitted are void. Emit cannot be combined with Processes.
	Emit   func(*Socket)
	Rewind func(n int)
	// ProcRoot is where proc is mounted, default "/proc". Tests point it at
	// recorded files: ProcRoot/net/{tcp,tcp6,udp,udp6,unix},
	// ProcRoot/sys/net/..., ProcRoot/PID/{comm,fd/}. Interfaces are still
	// read from the kernel (rtnetlink).
	ProcRoot string
}

// NetnsTarget selects namespaces for ReadNetns. Exactly one of Name, PID
// and All should be set.
type NetnsTarget struct {
	Name string // under /run/netns
	PID  int    // the namespace of /proc/PID/ns/net
	All  bool   // every namespace in use (/proc/*/ns/net and /run/netns)
}

// ErrDumpInterrupted is returned when the kernel kept marking a netlink
// dump NLM_F_DUMP_INTR (changed while it was read) through every retry.
var ErrDumpInterrupted = errors.New("live: netlink dump interrupted repeatedly")

func (o Options) tables() (tcp, udp, unx bool) {
	if !o.TCP && !o.UDP && !o.Unix {
		return true, true, true
	}
	return o.TCP, o.UDP, o.Unix
}

func (o Options) states() uint32 {
	if o.States == 0 {
		return ^uint32(0)
	}
	return o.States
}

func (o Options) procRoot() string {
	if o.ProcRoot == "" {
		return "/proc"
	}
	return o.ProcRoot
}

var tcpStateNames = [...]string{
	TCPEstablished:   "ESTAB",
	TCPSynSent:       "SYN-SENT",
	TCPSynRecv:       "SYN-RECV",
	TCPFinWait1:      "FIN-WAIT-1",
	TCPFinWait2:      "FIN-WAIT-2",
	TCPTimeWait:      "TIME-WAIT",
	TCPClose:         "CLOSE",
	TCPCloseWait:     "CLOSE-WAIT",
	TCPLastAck:       "LAST-ACK",
	TCPListen:        "LISTEN",
	TCPClosing:       "CLOSING",
	TCPNewSynRecv:    "SYN-RECV",
	TCPBoundInactive: "CLOSE",
}

// stateName maps a kernel state to its ss name; unconnected is the name of
// TCP_CLOSE for the protocol ("CLOSE" for TCP, "UNCONN" otherwise).
func stateName(st uint8, tcp bool) string {
	if st == TCPClose && !tcp {
		return "UNCONN"
	}
	if int(st) < len(tcpStateNames) && tcpStateNames[st] != "" {
		return tcpStateNames[st]
	}
	return "UNKNOWN"
}

// parser turns diag messages and /proc/net lines into Sockets appended to out.
type parser struct {
	out    []Socket
	emit   func(*Socket) // Options.Emit: sockets leave out as soon as parsed
	rewind func(int)     // Options.Rewind
	// emitted counts sockets emitted since the current dump began, for a
	// rewind when the dump is redone.
	emitted int
	netns   string
	devs    map[int]string // interface names by kernel index, for BoundDevName
	bools   boolSlab
	strs    strArena
	badMsg  int
}

// drain emits the sockets parsed since index from and drops them, when
// the caller streams (Options.Emit).
func (p *parser) drain(from int) {
	if p.emit == nil {
		return
	}
	for i := from; i < len(p.out); i++ {
		p.emit(&p.out[i])
		p.emitted++
	}
	p.out = p.out[:from]
}

// boolSlab hands out *bool without one allocation per socket.
type boolSlab struct{ buf []bool }

func (b *boolSlab) ptr(v bool) *bool {
	if len(b.buf) == cap(b.buf) {
		b.buf = make([]bool, 0, 1024)
	}
	b.buf = append(b.buf, v)
	return &b.buf[len(b.buf)-1]
}

// strArena makes strings from bytes without one allocation per string.
type strArena struct{ buf []byte }

// str copies b into the arena; with nulAt every NUL byte becomes '@'.
func (a *strArena) str(b []byte, nulAt bool) string {
	if len(b) == 0 {
		return ""
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, max(32<<10, len(b)))
	}
	off := len(a.buf)
	a.buf = append(a.buf, b...)
	out := a.buf[off:len(a.buf):len(a.buf)]
	if nulAt {
		for i, c := range out {
			if c == 0 {
				out[i] = '@'
			}
		}
	}
	return unsafe.String(&out[0], len(out))
}
