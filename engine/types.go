package engine

import "fmt"

// Family is a socket's address family.
type Family uint8

const (
	Inet  Family = iota + 1 // AF_INET
	Inet6                   // AF_INET6
	Unix                    // AF_UNIX
)

func (f Family) String() string {
	switch f {
	case Inet:
		return "inet"
	case Inet6:
		return "inet6"
	case Unix:
		return "unix"
	}
	return fmt.Sprintf("family(%d)", uint8(f))
}

// Proto is the transport: TCP and UDP have separate port spaces; the unix
// kinds live in the host's file namespace.
type Proto uint8

const (
	TCP        Proto = iota + 1
	UDP              // SOCK_DGRAM over IP
	UnixStream       // AF_UNIX SOCK_STREAM
	UnixDgram        // AF_UNIX SOCK_DGRAM
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case UnixStream:
		return "stream"
	case UnixDgram:
		return "dgram"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// State is a socket's protocol state, named as ss(8) names them.
type State uint8

const (
	Closed      State = iota // TCP_CLOSE: new, bound, or reset
	Listen                   // TCP_LISTEN
	Established              // TCP_ESTABLISHED, or a connected UDP/unix socket
	CloseWait                // the peer closed first
	FinWait2                 // we closed first; the peer has not closed yet
	TimeWait                 // both closed, we closed first
	Gone                     // closed by the user and no longer in any table
	SynSent                  // a connect that never completes (its answer is lost)
)

func (s State) String() string {
	return [...]string{"CLOSE", "LISTEN", "ESTAB", "CLOSE-WAIT", "FIN-WAIT-2", "TIME-WAIT", "GONE", "SYN-SENT"}[s]
}

// Option is a socket option the engine models.
type Option uint8

const (
	SO_REUSEADDR Option = iota + 1
	SO_REUSEPORT
	IPV6_V6ONLY
	IP_FREEBIND
	SO_BINDTODEVICE
	IP_LOCAL_PORT_RANGE
	IP_BIND_ADDRESS_NO_PORT
	SO_EXCLUSIVEADDRUSE // Windows only
	IP_MULTICAST_ALL    // an unjoined socket takes every IPv4 group the host joined (default 1 for AF_INET)
	IPV6_MULTICAST_ALL  // the same for IPv6 groups (default 1)
)

var optionNames = map[string]Option{
	"SO_REUSEADDR": SO_REUSEADDR, "SO_REUSEPORT": SO_REUSEPORT, "IPV6_V6ONLY": IPV6_V6ONLY,
	"IP_FREEBIND": IP_FREEBIND, "SO_BINDTODEVICE": SO_BINDTODEVICE,
	"IP_LOCAL_PORT_RANGE": IP_LOCAL_PORT_RANGE, "IP_BIND_ADDRESS_NO_PORT": IP_BIND_ADDRESS_NO_PORT,
	"SO_EXCLUSIVEADDRUSE": SO_EXCLUSIVEADDRUSE, "IP_MULTICAST_ALL": IP_MULTICAST_ALL, "IPV6_MULTICAST_ALL": IPV6_MULTICAST_ALL,
}

// ParseOption maps an option's C name to the Option.
func ParseOption(name string) (Option, bool) {
	o, ok := optionNames[name]
	return o, ok
}

func (o Option) String() string {
	for n, v := range optionNames {
		if v == o {
			return n
		}
	}
	return fmt.Sprintf("option(%d)", uint8(o))
}
