// Package report is how socktab writes its answers: the one -o json schema
// shared by every command (and by anything else that serves the same
// answers), and the escaping that keeps untrusted strings from reaching a
// terminal raw.
//
// Schema conventions: keys are snake_case; a value nobody knows is null
// (a TIME-WAIT socket has no uid or inode); a value that does not apply is
// null too (the peer of an unconnected socket); a list is [] when empty,
// never null, except where null means "not read" (processes without -p).
//
// Unix socket paths and process names are bytes any local user chooses.
// In JSON they are strings when they are valid UTF-8 (control characters
// then travel as JSON escapes, losslessly). When they are not valid UTF-8,
// the string field holds a display form (each invalid byte as U+FFFD) and
// a sibling field "<name>_base64" holds the exact bytes in standard base64;
// that sibling is null whenever the string field is exact.
package report

import (
	"net/netip"
	"unicode/utf8"

	"github.com/socktab/socktab/live"
)

// Socket is one socket, as in `ls -o json` and inside every other answer.
type Socket struct {
	// Proto is tcp, udp or unix; Family inet, inet6 or unix.
	Proto  string `json:"proto"`
	Family string `json:"family"`
	// UnixType is stream, dgram or seqpacket for unix sockets, else null.
	UnixType *string `json:"unix_type"`
	// State uses ss's names: LISTEN, ESTAB, TIME-WAIT, UNCONN, ...
	State string `json:"state"`
	// Local is ip:port or [ip]:port, or the path of a unix socket ("@name"
	// for an abstract one); null for an unnamed unix socket.
	Local *string `json:"local"`
	// LocalBase64 holds Local's exact bytes when they are not valid UTF-8.
	LocalBase64 []byte `json:"local_base64"`
	// Remote is the peer's ip:port; null when unconnected and for unix.
	Remote *string `json:"remote"`
	// PeerInode is a connected unix socket's peer inode, else null.
	PeerInode *uint64 `json:"peer_inode"`
	// Device is the interface the socket is bound to (SO_BINDTODEVICE, or
	// an IPv6 zone at bind), null when unbound; "if7" when index 7 names
	// no interface any more.
	Device *string `json:"device"`
	// V6Only is IPV6_V6ONLY where the kernel reports it, else null.
	V6Only *bool `json:"v6only"`
	// UID and Inode are null where the kernel has none (TIME-WAIT,
	// SYN-RECV request sockets).
	UID   *uint32 `json:"uid"`
	Inode *uint64 `json:"inode"`
	RecvQ uint32  `json:"recv_q"`
	SendQ uint32  `json:"send_q"`
	// Netns labels the namespace: "" for the caller's own.
	Netns string `json:"netns"`
	// Processes holding the socket; null when owners were not read.
	Processes []Process `json:"processes"`
	// Options are null when not read; OptionsSource is "kernel" (BPF
	// iterator), "socket" (getsockopt on an owner's descriptor),
	// "inferred" (bind/who: not read, assumed), "unknown", or "memnet"
	// (memnet's listing: the options its program set, known exactly).
	Options       *live.SockOpts `json:"options"`
	OptionsSource string         `json:"options_source"`
}

// Process is one holder of a socket.
type Process struct {
	PID     int    `json:"pid"`
	Command string `json:"command"`
	// CommandBase64 holds Command's exact bytes when not valid UTF-8.
	CommandBase64 []byte `json:"command_base64"`
	// FDs are the holder's descriptor numbers for the socket.
	FDs []int `json:"fds"`
}

// exact returns s for a JSON string field and, when s is not valid UTF-8,
// its exact bytes for the _base64 sibling.
func exact(s string) (string, []byte) {
	if utf8.ValidString(s) {
		return s, nil
	}
	return s, []byte(s) // encoding/json writes U+FFFD for each invalid byte
}

// NoPeer tells whether a reported remote address means "no peer"
// (sock_diag reports it as 0.0.0.0:0 or [::]:0).
func NoPeer(r netip.AddrPort) bool {
	return !r.IsValid() || (r.Port() == 0 && r.Addr().IsUnspecified())
}

// FromLive converts a live socket. withOwners says whether owners were
// read (then Processes is [] rather than null when there are none).
func FromLive(s *live.Socket, withOwners bool) Socket {
	j := Socket{Proto: s.Proto, Family: s.Family, State: s.State, V6Only: s.V6Only,
		RecvQ: s.RecvQ, SendQ: s.SendQ, Netns: s.Netns}
	if s.State != "TIME-WAIT" && s.State != "SYN-RECV" {
		uid := s.UID
		j.UID = &uid
	}
	if s.Inode != 0 {
		ino := s.Inode
		j.Inode = &ino
	}
	if s.Family == "unix" {
		t := s.UnixType
		j.UnixType = &t
		if s.Path != "" {
			p, raw := exact(s.Path)
			j.Local, j.LocalBase64 = &p, raw
		}
		if s.PeerInode != 0 {
			pi := s.PeerInode
			j.PeerInode = &pi
		}
	} else {
		l := s.Local.String()
		j.Local = &l
		if d := s.DeviceName(); d != "" {
			j.Device = &d
		}
		if !NoPeer(s.Remote) {
			r := s.Remote.String()
			j.Remote = &r
		}
	}
	j.Options, j.OptionsSource = s.Opts, s.OptsSource
	if s.Opts == nil && s.Family != "unix" {
		j.OptionsSource = "unknown"
	}
	if withOwners || len(s.Processes) > 0 {
		j.Processes = make([]Process, len(s.Processes))
		for i, p := range s.Processes {
			c, raw := exact(p.Command)
			fds := p.FDs
			if fds == nil {
				fds = []int{}
			}
			j.Processes[i] = Process{PID: p.PID, Command: c, CommandBase64: raw, FDs: fds}
		}
	}
	return j
}

// Who is the answer of `who`: which socket would receive a packet.
type Who struct {
	Netns string `json:"netns"`
	Proto string `json:"proto"`
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	// Answer is ok, fails or depends; Unknowns name what it depends on.
	Answer        string   `json:"answer"`
	Unknowns      []string `json:"unknowns"`
	OptionsSource string   `json:"options_source"`
	// Verdict is deliver, rst, icmp_port_unreachable or drop.
	Verdict string `json:"verdict"`
	// Stage is the lookup step that decided, in words.
	Stage string `json:"stage"`
	// Socket is the receiver; null when none.
	Socket *Socket `json:"socket"`
	// Group is the SO_REUSEPORT group the receiver was picked from, [] if
	// there is none.
	Group []Socket `json:"group"`
	// Receivers are every socket that gets a copy of a UDP broadcast or
	// multicast datagram (Socket is the first), [] for unicast.
	Receivers []Socket `json:"receivers"`
}

// BindRequest echoes what `bind` was asked.
type BindRequest struct {
	Proto     string `json:"proto"`
	Addr      string `json:"addr"`
	ReuseAddr bool   `json:"reuseaddr"`
	ReusePort bool   `json:"reuseport"`
	V6Only    bool   `json:"v6only"`
	UID       uint32 `json:"uid"`
}

// Bind is the answer of `bind` for one namespace.
type Bind struct {
	Netns   string      `json:"netns"`
	Request BindRequest `json:"request"`
	// Answer is ok, fails or depends; Unknowns name what it depends on.
	Answer        string   `json:"answer"`
	Unknowns      []string `json:"unknowns"`
	OptionsSource string   `json:"options_source"`
	// Result is "ok" or the errno (EADDRINUSE, EACCES, ...) under the
	// options as read (inferred where not).
	Result string `json:"result"`
	// Reason is the rule (ok) or the explanation naming the holder.
	Reason string `json:"reason"`
	// Blocker is the socket in the way; null when none.
	Blocker *Socket `json:"blocker"`
}

// Finding is one audit entry: a listener (or one SO_REUSEPORT group of
// listeners) and where it accepts.
type Finding struct {
	Netns string `json:"netns"`
	// Socket is the listener (the first member of a group).
	Socket Socket `json:"socket"`
	// Group holds every member when the listener is a SO_REUSEPORT group,
	// else [].
	Group    []Socket `json:"group"`
	Accepts  []string `json:"accepts"`
	Classes  []string `json:"classes"`
	Severity string   `json:"severity"`
	Finding  string   `json:"finding"`
	// Fix is one line of advice; null when none is needed.
	Fix *string `json:"fix"`
}

// Ports is the ephemeral port use of one namespace.
type Ports struct {
	Netns        string        `json:"netns"`
	PortLow      int           `json:"port_low"`
	PortHigh     int           `json:"port_high"`
	Reserved     []uint16      `json:"reserved_ports"`
	Usable       int           `json:"usable"`
	Destinations []Destination `json:"destinations"`
}

// Destination is the use of ephemeral ports toward one destination.
type Destination struct {
	Proto    string `json:"proto"`
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	InUse    int    `json:"in_use"`
	TimeWait int    `json:"time_wait"`
	// Blocked (TCP) is the ports of the range that listeners and bound
	// sockets hold: connect() never picks them, so Capacity is without them.
	Blocked  int     `json:"blocked"`
	Capacity int     `json:"capacity"`
	Percent  float64 `json:"percent"`
	Warning  bool    `json:"warning"`
}

// Overview is `socktab -o json` for one namespace: the listeners with
// their exposure and connection counts, and the ephemeral port use.
type Overview struct {
	Netns     string     `json:"netns"`
	Listeners []Listener `json:"listeners"`
	Ports     Ports      `json:"ports"`
}

// Listener is one row of the overview.
type Listener struct {
	Socket      Socket   `json:"socket"`
	Classes     []string `json:"classes"`
	Severity    string   `json:"severity"`
	Connections int      `json:"connections"`
}
