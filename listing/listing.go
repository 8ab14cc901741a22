// Package listing is the JSON schema of one socket as `socktab ls -o json`
// prints it. It is shared by the CLI, the exporter and memnet, so that a
// socket reads the same wherever it is listed.
package listing

import "github.com/socktab/socktab/live"

// Socket is the stable -o json schema of a socket.
type Socket struct {
	Proto     string         `json:"proto"`
	Family    string         `json:"family"`
	State     string         `json:"state"`
	Local     string         `json:"local"`
	Remote    *string        `json:"remote"`
	V6Only    *bool          `json:"v6only"`
	UID       uint32         `json:"uid"`
	Inode     uint64         `json:"inode"`
	RecvQ     uint32         `json:"recv_q"`
	SendQ     uint32         `json:"send_q"`
	Netns     string         `json:"netns"`
	Processes []live.Process `json:"processes"`
	// Options are null when not read; OptionsSource is "kernel" (BPF
	// iterator), "socket" (getsockopt on an owner's descriptor),
	// "inferred" (bind/who: not read, assumed) or "unknown".
	Options       *live.SockOpts `json:"options"`
	OptionsSource string         `json:"options_source"`
}

// FromLive is the listing of a socket read from the kernel.
func FromLive(s *live.Socket) Socket {
	j := Socket{Proto: s.Proto, Family: s.Family, State: s.State, V6Only: s.V6Only, UID: s.UID,
		Inode: s.Inode, RecvQ: s.RecvQ, SendQ: s.SendQ, Netns: s.Netns, Processes: s.Processes}
	if j.Processes == nil {
		j.Processes = []live.Process{}
	}
	j.Options, j.OptionsSource = s.Opts, s.OptsSource
	if s.Opts == nil && s.Family != "unix" {
		j.OptionsSource = "unknown"
	}
	if s.Family == "unix" {
		j.Local = s.Path
		if s.Path == "" {
			j.Local = "*"
		}
	} else {
		j.Local = s.Local.String()
		if s.Remote.IsValid() && (s.Remote.Port() != 0 || !s.Remote.Addr().IsUnspecified()) {
			r := s.Remote.String()
			j.Remote = &r
		}
	}
	return j
}
