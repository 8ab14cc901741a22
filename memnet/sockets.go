package memnet

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/report"
)

// Sockets lists the host's sockets, in creation order, in the schema of
// `socktab ls -o json` (Netns is the host's name), TIME_WAIT connections
// included, so a failing test can print its network's ss.
func (h *Host) Sockets() []report.Socket {
	n := h.n
	n.lock()
	defer n.unlock()
	conns := map[*engine.Socket]*Conn{}
	for c := n.conns; c != nil; c = c.next {
		if c.h == h && c.sock != nil {
			conns[c.sock] = c
		}
	}
	var out []report.Socket
	for _, s := range h.eng.Sockets() {
		out = append(out, h.listingOf(s, conns[s]))
	}
	return out
}

// listingOf is socket s as a row of the listing; c is its stream end, if any.
func (h *Host) listingOf(s *engine.Socket, c *Conn) report.Socket {
	j := report.Socket{Family: s.Family().String(), State: stateName(s), Netns: h.name,
		Processes: []report.Process{}, OptionsSource: live.SourceMemnet}
	if s.State() != engine.TimeWait {
		uid := s.UID()
		j.UID = &uid
	}
	str := func(v string) *string { return &v }
	switch s.Proto() {
	case engine.TCP:
		j.Proto = "tcp"
	case engine.UDP:
		j.Proto = "udp"
	case engine.UnixStream:
		j.Proto, j.UnixType = "unix", str("stream")
	case engine.UnixDgram:
		j.Proto, j.UnixType = "unix", str("dgram")
	}
	if s.Family() == engine.Unix {
		if p := s.Path(); p != "" {
			j.Local = str(p)
		}
		j.OptionsSource = ""
	} else {
		j.Local = str(s.Local().String())
		if r := s.Remote(); r.IsValid() {
			j.Remote = str(r.String())
		}
		if s.Family() == engine.Inet6 {
			v := s.V6Only()
			j.V6Only = &v
		}
		j.Options = &live.SockOpts{ReuseAddr: s.ReuseAddr(), ReusePort: s.ReusePort(), V6Only: s.V6Only(), Device: s.Device()}
	}
	switch {
	case c != nil:
		c.pr.mu.Lock()
		j.RecvQ = uint32(c.in().n)     // bytes the peer wrote that this end has not read
		j.SendQ = uint32(c.out().held) // written, still on the link (latency)
		if c.pr.link.isDown() {
			j.SendQ = uint32(c.out().n) // a partition holds everything written
			j.RecvQ = 0
		}
		c.pr.mu.Unlock()
	case h.n.listeners[s] != nil:
		j.RecvQ = uint32(len(h.n.listeners[s].queue))
	case h.n.packets[s] != nil:
		pc := h.n.packets[s]
		pc.mu.Lock()
		for _, d := range pc.q[pc.head:] {
			j.RecvQ += uint32(len(d.data))
		}
		pc.mu.Unlock()
	}
	return j
}

// stateName is the state as ss names it: an unconnected UDP or unix
// datagram socket is UNCONN.
func stateName(s *engine.Socket) string {
	if (s.Proto() == engine.UDP || s.Proto() == engine.UnixDgram) && s.State() == engine.Closed {
		return "UNCONN"
	}
	return s.State().String()
}

// WriteSockets writes the host's sockets as a table like `socktab ls -a`:
// Netid State Recv-Q Send-Q Local Peer. A dual-stack [::] socket shows as
// *:PORT.
func (h *Host) WriteSockets(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Netid\tState\tRecv-Q\tSend-Q\tLocal\tPeer\n")
	for _, s := range h.Sockets() {
		netid := s.Proto
		if s.UnixType != nil {
			netid = map[string]string{"stream": "u_str", "dgram": "u_dgr"}[*s.UnixType]
		}
		local := "*"
		if s.Local != nil {
			local = *s.Local
		}
		if s.V6Only != nil && !*s.V6Only && strings.HasPrefix(local, "[::]:") {
			local = "*:" + strings.TrimPrefix(local, "[::]:")
		}
		peer := "*"
		if s.Remote != nil {
			peer = *s.Remote
		} else if s.Family != "unix" {
			peer = "*:*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", netid, s.State, s.RecvQ, s.SendQ, local, peer)
	}
	return tw.Flush()
}

// String is the host's socket table as WriteSockets writes it.
func (h *Host) String() string {
	var b strings.Builder
	h.WriteSockets(&b)
	return "host " + h.name + "\n" + b.String()
}
