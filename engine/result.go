package engine

import "net/netip"

// Rule names the rule that decided a result, in words for the trace.
type Rule string

// Result is the outcome of one operation: ok or an errno, the rule that
// decided it, and the socket it conflicted with or reached, if any.
type Result struct {
	Err    Errno
	Rule   Rule
	Other  *Socket        // the conflicting holder, the listener reached, ...
	Local  netip.AddrPort // the endpoint bound / the connection's local end
	Remote netip.AddrPort // the connection's remote end
}

func fail(e Errno, r Rule) Result { return Result{Err: e, Rule: r} }

func failWith(e Errno, r Rule, other *Socket) Result { return Result{Err: e, Rule: r, Other: other} }

const (
	ruleCreated              Rule = "socket created"
	ruleBadFamily            Rule = "unsupported family/type combination"
	ruleClosed               Rule = "socket already closed"
	ruleNoSocket             Rule = "no socket"
	ruleOtherHost            Rule = "the socket belongs to another host"
	ruleUnixOption           Rule = "option not supported on AF_UNIX"
	ruleProfileOption        Rule = "option not known on this OS"
	ruleOptAfterBind         Rule = "option must be set before bind"
	ruleV6OnlyOnV4           Rule = "IPV6_V6ONLY needs an AF_INET6 socket"
	ruleV6OnlyAfterBind      Rule = "IPV6_V6ONLY cannot change once the socket has a port (ipv6_setsockopt)"
	ruleNoDevice             Rule = "no such device"
	ruleDeviceChangeNeedsRaw Rule = "changing SO_BINDTODEVICE once set needs CAP_NET_RAW (sock_bindtoindex_locked)"
	rulePortRangeOrder       Rule = "IP_LOCAL_PORT_RANGE low above high"
	ruleOptionSet            Rule = "option set"
	ruleWrongFamily          Rule = "the address family does not match the socket"
	ruleShortAddr            Rule = "an IPv4 sockaddr is too short for an AF_INET6 socket"
	ruleNotLocal             Rule = "address is not configured on this host (no IP_FREEBIND / ip_nonlocal_bind)"
	rulePrivileged           Rule = "port below ip_unprivileged_port_start needs root"
	ruleAlreadyBound         Rule = "socket is already bound"
	ruleMappedOnV6Only       Rule = "v4-mapped address on an IPV6_V6ONLY socket"
	ruleMcastStream          Rule = "multicast address on a stream socket"
	ruleNeedsScope           Rule = "a link-local IPv6 address needs an interface: a zone (%eth0) or SO_BINDTODEVICE"
	ruleBound                Rule = "bound"
	ruleBoundNoPort          Rule = "address recorded; IP_BIND_ADDRESS_NO_PORT defers the port to connect()"
	ruleConflict             Rule = "port held by an overlapping socket whose options do not allow sharing"
	ruleConflictListen       Rule = "a listener holds an overlapping address; SO_REUSEADDR never shares with a listener on Linux"
	ruleConflictTW           Rule = "a TIME_WAIT connection still holds the port with its original socket's options"
	rulePortsExhausted       Rule = "no free port in the local port range"
	ruleBoundPort0           Rule = "port 0: the kernel picked a free port"
	ruleBoundUDPFirst        Rule = "bound: udp_lib_lport_inuse stops at the first overlapping holder on the port's chain, a SO_REUSEPORT " +
		"sharer of the same owner, and never looks at the older ones that would refuse"
	ruleUDPHash2 Rule = "more than ten sockets in the port's hash slot: udp_lib_lport_inuse2 checks the bound address's " +
		"own chain, then the wildcards', and a SO_REUSEPORT sharer on the first does not hide a holder that refuses on the second"
	ruleBoundFast Rule = "bound without a conflict check: the port's bind-bucket cache (tb->fastreuse / " +
		"fastreuseport, inet_csk_get_port) says the newcomer matches the sockets that joined before, " +
		"whatever they have changed or become since"
	ruleListening              Rule = "listening"
	ruleNotListenable          Rule = "socket is connected"
	ruleListenUDP              Rule = "listen needs a stream socket"
	ruleListenUnbound          Rule = "AF_UNIX listen needs a bound socket"
	ruleIsConn                 Rule = "socket is already connected"
	ruleConnListening          Rule = "connect on a listening socket"
	ruleNoRoute                Rule = "no route to the destination"
	ruleMappedDstV6Only        Rule = "v4-mapped destination on an IPV6_V6ONLY socket"
	ruleV4OnV6Only             Rule = "an IPv4 sockaddr on an IPV6_V6ONLY socket"
	ruleMappedSrcV6Dst         Rule = "a socket bound to a v4-mapped address cannot reach a native IPv6 address"
	ruleLostRST                Rule = "the answer never comes back: the connect stays in progress"
	ruleAlreadyConnecting      Rule = "a connect is already in progress"
	ruleForeignToLocal         Rule = "no route from a source address this host does not have to one it has"
	ruleLoopbackOffLo          Rule = "a loopback source address on a socket bound to a non-loopback device"
	ruleLoopbackLeaves         Rule = "a loopback source address cannot leave the host: the route to another host is not through lo (__mkroute_output)"
	ruleDeviceRoute6           Rule = "a device-bound IPv6 socket has no route out of its device to this destination (no on-link fallback in IPv6)"
	ruleSYNNeverArrives        Rule = "the SYN leaves through the bound device, which does not lead to that host: the connect stays in progress"
	ruleLoopbackSourceDropped  Rule = "the SYN from ::1 is dropped by the receiving host (a loopback source on a non-loopback device): the connect stays in progress"
	ruleTimeWaitKilled         Rule = "the SYN met a TIME_WAIT connection and no listener: its ACK drew the client's RST, which kills it (tcp_rfc1337 = 0), and the connect is refused"
	ruleChallengeACKReset      Rule = "the SYN met a connection of the same 4-tuple whose client is gone: its challenge ACK drew the client's RST, which reset it (tcp_validate_incoming, tcp_reset)"
	ruleGroupSourceMapped      Rule = "an AF_INET6 socket bound to a v4-mapped multicast or broadcast address keeps it as its source, which the IPv4 route refuses"
	ruleNoRouteBack            Rule = "the other host has no route back to the source: its answer is never sent, and the connect stays in progress"
	ruleConnectNeedsScope      Rule = "a link-local or interface-local IPv6 destination needs a device: bind one (SO_BINDTODEVICE, a zoned bind)"
	ruleListenerAnswerLost     Rule = "the device-bound listener's SYN-ACK cannot get back to this source: the SYN is dropped and the connect stays in progress"
	ruleConnectedIndeterminate Rule = "connected; which of the listeners sharing the address takes it is indeterminate (Microsoft documents no choice), and socktab queued it on one of them"
	ruleNotOnDevice            Rule = "the address is not on the device the socket is bound to"
	ruleDeviceLocal6           Rule = "a device-bound IPv6 socket has no route to a local address of another device"
	ruleSelfConnect            Rule = "connected to itself (simultaneous open: the SYN reached its own port)"
	ruleUnixProtoType          Rule = "the socket at that path has another type"
	ruleMulticastConnect       Rule = "TCP cannot connect to a multicast or broadcast address"
	ruleTupleInUse             Rule = "the 4-tuple is already in use"
	ruleNoEphemeral            Rule = "no local port gives a unique 4-tuple toward this destination"
	ruleUDPAutobindFail        Rule = "UDP autobind found no free port"
	ruleRefused                Rule = "nothing listens there: the peer answered RST"
	ruleConnected              Rule = "connected"
	ruleConnectedExt           Rule = "connected (the peer is on no simulated host and is assumed to answer)"
	ruleAccepted               Rule = "accepted"
	ruleAcceptEmpty            Rule = "no connection waiting"
	ruleAcceptNotListen        Rule = "accept on a socket that is not listening"
	ruleClosedOK               Rule = "closed"
	ruleShutdown               Rule = "shut down for writing (FIN sent)"
	ruleNotConnected           Rule = "the socket is not connected"
	ruleAborted                Rule = "closed with a RST (SO_LINGER 0 or unread data): no TIME_WAIT, the peer is reset"
	ruleReset                  Rule = "connection reset by the peer"
	ruleUnixInUse              Rule = "the path exists in the filesystem (remove it with unlink)"
	ruleUnixPathTooLong        Rule = "the address is longer than sun_path's 108 bytes (unix_validate_addr)"
	ruleUnixAbstractUse        Rule = "the abstract name is bound"
	ruleUnixNoEntry            Rule = "no such file"
	ruleUnixNotSocket          Rule = "nothing listens on that path"
	ruleUnixWrongType          Rule = "the socket there has another type"
	ruleUnlinked               Rule = "path removed"
	ruleBadAddr                Rule = "address does not suit the socket"
)
