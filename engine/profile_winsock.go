package engine

import "time"

// The Windows profile, from Microsoft's documentation (no kernel source is
// public). This file is not called profile_windows.go on purpose: Go reads a
// _windows suffix as a build constraint, and the profile must exist on every
// OS the simulator runs on.

// Windows is Winsock's rules as Microsoft documents them for Windows Vista
// and later.
var Windows = register(&Profile{
	Name: "windows",
	// "Dual-Stack Sockets for IPv6 Winsock Applications": since Windows
	// Vista IPV6_V6ONLY is on by default and must be cleared before bind()
	// for an AF_INET6 socket to take IPv4.
	// https://learn.microsoft.com/en-us/windows/win32/winsock/dual-stack-sockets
	V6OnlyDefault: true,
	// "The default dynamic port range for TCP/IP has changed since Windows
	// Vista" (KB929851): 49152-65535, the IANA range (RFC 6335).
	// https://learn.microsoft.com/en-us/troubleshoot/windows-server/networking/default-dynamic-port-range-tcpip-chang
	PortLow: 49152, PortHigh: 65535,
	// Winsock has no privileged ports: any user may bind below 1024.
	PrivilegedBelow: 0,
	// Windows picks ephemeral ports without Linux's odd/even split.
	ParityPorts: false,
	// No document says listen() checks the port again, and the sharing table
	// below is stated for bind(); the check runs at bind only.
	ListenRecheck: false,
	// SO_REUSEPORT does not exist in Winsock (setsockopt fails, modelled as
	// ENOPROTOOPT / WSAENOPROTOOPT); SO_EXCLUSIVEADDRUSE is Windows' own.
	// IP_FREEBIND, SO_BINDTODEVICE, IP_LOCAL_PORT_RANGE and
	// IP_BIND_ADDRESS_NO_PORT are Linux options.
	Options: []Option{SO_REUSEADDR, SO_EXCLUSIVEADDRUSE, IPV6_V6ONLY},
	Sources: []string{
		"https://learn.microsoft.com/en-us/windows-hardware/drivers/network/sharing-transport-addresses (bind-sharing table)",
		"https://learn.microsoft.com/en-us/windows/win32/winsock/using-so-reuseaddr-and-so-exclusiveaddruse",
		"https://learn.microsoft.com/en-us/windows/win32/winsock/dual-stack-sockets (IPV6_V6ONLY on by default)",
		"https://learn.microsoft.com/en-us/troubleshoot/windows-server/networking/default-dynamic-port-range-tcpip-chang (49152-65535)",
	},
	tcpRule: windowsRule, udpRule: windowsRule,
	errName: windowsErrName, conflictWhy: windowsWhy,
	// TcpTimedWaitDelay (HKLM\System\CurrentControlSet\Services\Tcpip\
	// Parameters), documented default 120 s on current Windows
	// ("Settings that can be modified to improve network performance").
	TimeWait: 120 * time.Second,
	Lookup:   LookupWinsock,
	// connect(): "If the socket is unbound, unique values are assigned to
	// the local association by the system". Nothing documents the order.
	connectPort: connectPortUnused,
	connectNote: "Windows documents no order for ephemeral ports (not modelled): socktab takes a random start " +
		"in 49152-65535, walks up and takes a port nobody holds",
})

const (
	ruleWinInUse   Rule = "bind-sharing table: INUSE (learn.microsoft.com sharing-transport-addresses)"
	ruleWinDenied  Rule = "bind-sharing table: DENIED (learn.microsoft.com sharing-transport-addresses)"
	ruleWinDenied2 Rule = "bind-sharing table: DENIED, or CHECK: the access check fails for another user " +
		"(learn.microsoft.com sharing-transport-addresses)"
)

func windowsWhy(e Errno, s, holder *Socket) Rule {
	switch {
	case e != EACCES:
		return ruleWinInUse
	case holder != nil && s.uid != holder.uid:
		return ruleWinDenied2
	}
	return ruleWinDenied
}

// winCell is one cell of Microsoft's bind-sharing table.
type winCell uint8

const (
	wSuccess winCell = iota // SUCCESS: the second bind succeeds
	wInUse                  // INUSE: STATUS_ADDRESS_ALREADY_EXISTS, WSAEADDRINUSE
	wDenied                 // DENIED: STATUS_ACCESS_DENIED, WSAEACCES
	wCheck                  // CHECK: an access check decides (see windowsRule)
)

// winOpt is a socket's sharing option, the table's option axis.
const (
	winDefault = iota // neither option
	winReuse          // SO_REUSEADDR
	winExcl           // SO_EXCLUSIVEADDRUSE
)

// winTable is the table of "Sharing Transport Addresses"
// (learn.microsoft.com/en-us/windows-hardware/drivers/network/sharing-transport-addresses),
// indexed [second socket's option][second is specific][first socket's
// option][first is specific]. Rows and columns are in the page's order.
var winTable = [3][2][3][2]winCell{
	winDefault: {
		// first: default W, S;  SO_REUSEADDR W, S;  SO_EXCLUSIVEADDRUSE W, S
		{{wInUse, wSuccess}, {wInUse, wSuccess}, {wInUse, wSuccess}}, // second wildcard
		{{wCheck, wInUse}, {wCheck, wDenied}, {wDenied, wInUse}},     // second specific
	},
	winReuse: {
		{{wDenied, wSuccess}, {wSuccess, wSuccess}, {wDenied, wSuccess}},
		{{wCheck, wDenied}, {wSuccess, wSuccess}, {wDenied, wDenied}},
	},
	winExcl: {
		{{wInUse, wInUse}, {wInUse, wInUse}, {wInUse, wInUse}},
		{{wCheck, wInUse}, {wCheck, wInUse}, {wDenied, wInUse}},
	},
}

func winOptOf(a *attrs) int {
	switch {
	case a.exclusive:
		// Winsock refuses to set both options on one socket; should both be
		// recorded, the exclusive one governs.
		return winExcl
	case a.reuse:
		return winReuse
	}
	return winDefault
}

func spec(a *attrs) int {
	if a.cat.wildcard() {
		return 0
	}
	return 1
}

// windowsRule applies the sharing table to a new socket s against holder e
// whose address overlaps. The table covers TCP and UDP alike (the page
// speaks of any socket bound to a transport address) and every holder of the
// address, connected and TIME_WAIT ones included, each with its own options.
// Two different specific addresses never reach here: the page says they
// never share and the second bind "will always complete successfully".
//
// CHECK is "an access check ... of the second socket's security context
// against the first socket's security descriptor". socktab has users, not
// security descriptors, and models it as: the same user passes (the default
// descriptor grants its owner), another user is denied (EACCES). That is a
// modelling choice, not a documented rule; a descriptor granting other
// users would let them pass.
//
// The port-0 search (mode other than explicit) takes only a port nobody
// holds: Microsoft does not document ephemeral ports being shared.
func windowsRule(s, e attrs, _ bool, m mode) Errno {
	if m != modeExplicit {
		return EADDRINUSE
	}
	switch winTable[winOptOf(&s)][spec(&s)][winOptOf(&e)][spec(&e)] {
	case wInUse:
		return EADDRINUSE
	case wDenied:
		return EACCES
	case wCheck:
		if s.uid != e.uid {
			return EACCES
		}
	}
	return OK
}

// windowsErrName spells an errno as Winsock reports it (WSAGetLastError);
// errnos with no WSA code keep their POSIX name.
// https://learn.microsoft.com/en-us/windows/win32/winsock/windows-sockets-error-codes-2
func windowsErrName(e Errno) string {
	switch e {
	case EADDRINUSE:
		return "WSAEADDRINUSE"
	case EADDRNOTAVAIL:
		return "WSAEADDRNOTAVAIL"
	case EACCES:
		return "WSAEACCES"
	case EINVAL:
		return "WSAEINVAL"
	case EAFNOSUPPORT:
		return "WSAEAFNOSUPPORT"
	case ECONNREFUSED:
		return "WSAECONNREFUSED"
	case EAGAIN:
		return "WSAEWOULDBLOCK"
	case ENETUNREACH:
		return "WSAENETUNREACH"
	case EOPNOTSUPP:
		return "WSAEOPNOTSUPP"
	case EISCONN:
		return "WSAEISCONN"
	case ENOTCONN:
		return "WSAENOTCONN"
	case EBADF:
		return "WSAENOTSOCK"
	case ENOPROTOOPT:
		return "WSAENOPROTOOPT"
	case EALREADY:
		return "WSAEALREADY"
	}
	return e.String()
}
