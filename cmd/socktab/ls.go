package main

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/socktab/socktab/live"
	"github.com/spf13/cobra"
)

type lsFlags struct {
	liveFlags
	tcp, udp, unix, listening, all, procs bool
	state                                 string
	port                                  int
	addr                                  string
}

func newLsCmd() *cobra.Command {
	var f lsFlags
	c := &cobra.Command{
		Use:   "ls",
		Short: "List sockets like ss: Netid State Recv-Q Send-Q Local Peer Process",
		Long: `List this machine's sockets. By default connections (not listeners), like ss;
-l for listeners, -a for both. A dual-stack [::] listener shows as *:PORT (IPv4 and
IPv6), an IPv6-only one as [::]:PORT.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLs(cmd.OutOrStdout(), cmd.ErrOrStderr(), f) },
	}
	f.add(c)
	c.Flags().BoolVarP(&f.tcp, "tcp", "t", false, "TCP sockets")
	c.Flags().BoolVarP(&f.udp, "udp", "u", false, "UDP sockets")
	c.Flags().BoolVarP(&f.unix, "unix", "x", false, "unix sockets")
	c.Flags().BoolVarP(&f.listening, "listening", "l", false, "listening sockets only")
	c.Flags().BoolVarP(&f.all, "all", "a", false, "listening and non-listening sockets")
	c.Flags().BoolVarP(&f.procs, "processes", "p", false, "show the processes holding each socket")
	c.Flags().StringVar(&f.state, "state", "", "only sockets in this state (LISTEN, ESTAB, TIME-WAIT, ...)")
	c.Flags().IntVar(&f.port, "port", 0, "only sockets with this local or remote port")
	c.Flags().StringVar(&f.addr, "addr", "", "only sockets with this local or remote address")
	return c
}

func listening(s *live.Socket) bool {
	return s.State == "LISTEN" || s.State == "UNCONN" || (s.Proto == "tcp" && s.State == "CLOSE")
}

func runLs(stdout, stderr io.Writer, f lsFlags) error {
	var addr netip.Addr
	if f.addr != "" {
		a, err := netip.ParseAddr(f.addr)
		if err != nil {
			return fmt.Errorf("--addr %q: not an IP address", f.addr)
		}
		addr = a.Unmap()
	}
	if f.port < 0 || f.port > 65535 {
		return fmt.Errorf("--port %d: want 0..65535", f.port)
	}
	opts := live.Options{TCP: f.tcp, UDP: f.udp, Unix: f.unix, Processes: f.procs}
	if f.listening && !f.all {
		opts.States = live.StatesListening
	}
	snaps, err := f.snapshots(opts, stderr)
	if err != nil {
		return err
	}
	var rows []*live.Socket
	for _, snap := range snaps {
		for i := range snap.Sockets {
			s := &snap.Sockets[i]
			switch {
			case !f.all && f.listening && !listening(s):
				continue
			case !f.all && !f.listening && listening(s):
				continue
			case f.state != "" && !strings.EqualFold(s.State, f.state):
				continue
			case f.port != 0 && int(s.Local.Port()) != f.port && int(s.Remote.Port()) != f.port:
				continue
			case addr.IsValid() && s.Local.Addr().Unmap() != addr && s.Remote.Addr().Unmap() != addr:
				continue
			}
			rows = append(rows, s)
		}
	}
	if f.output == "json" {
		out := make([]jsonSocket, len(rows))
		for i, s := range rows {
			out[i] = toJSON(s)
		}
		return writeJSON(stdout, out)
	}
	tab := newTable(stdout, "Netid", "State", "Recv-Q", "Send-Q", "Local", "Peer", "Process")
	var buf []byte
	for _, s := range rows {
		netid := s.Proto
		if s.Family == "unix" {
			netid = "u_" + map[string]string{"stream": "str", "dgram": "dgr", "seqpacket": "seq"}[s.UnixType]
		}
		buf = buf[:0]
		for i, p := range s.Processes {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, p.Command...)
			buf = append(buf, '(')
			buf = strconv.AppendInt(buf, int64(p.PID), 10)
			buf = append(buf, ')')
		}
		tab.row(nsPrefix(s.Netns)+netid, s.State, strconv.FormatUint(uint64(s.RecvQ), 10),
			strconv.FormatUint(uint64(s.SendQ), 10), localText(s), peerText(s), string(buf))
	}
	return tab.flush()
}

func localText(s *live.Socket) string {
	if s.Family == "unix" {
		if s.Path == "" {
			return "*"
		}
		return s.Path
	}
	if s.Family == "inet6" && s.Local.Addr().IsUnspecified() && s.V6Only != nil && !*s.V6Only {
		return fmt.Sprintf("*:%d", s.Local.Port())
	}
	return s.Local.String()
}

func peerText(s *live.Socket) string {
	if s.Family == "unix" || !s.Remote.IsValid() || (s.Remote.Port() == 0 && s.Remote.Addr().IsUnspecified()) {
		return "*"
	}
	return s.Remote.String()
}
