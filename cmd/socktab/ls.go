package main

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

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
	opts := live.Options{TCP: f.tcp, UDP: f.udp, Unix: f.unix, Processes: f.procs, SocketsOnly: true}
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
	return printSockets(stdout, rows)
}

// printSockets writes the ss-style table in two passes over the rows (the
// first measures the columns), formatting into one reused buffer: at
// 100,000 sockets a string per cell costs more than the reading.
func printSockets(w io.Writer, rows []*live.Socket) error {
	header := [...]string{"Netid", "State", "Recv-Q", "Send-Q", "Local", "Peer", "Process"}
	var width [len(header)]int
	for i, h := range header {
		width[i] = len(h)
	}
	var cell [len(header)][]byte
	format := func(s *live.Socket) {
		for i := range cell {
			cell[i] = cell[i][:0]
		}
		cell[0] = append(cell[0], nsPrefix(s.Netns)...)
		if s.Family == "unix" {
			cell[0] = append(cell[0], "u_"+map[string]string{"stream": "str", "dgram": "dgr", "seqpacket": "seq"}[s.UnixType]...)
		} else {
			cell[0] = append(cell[0], s.Proto...)
		}
		cell[1] = append(cell[1], s.State...)
		cell[2] = strconv.AppendUint(cell[2], uint64(s.RecvQ), 10)
		cell[3] = strconv.AppendUint(cell[3], uint64(s.SendQ), 10)
		cell[4] = appendLocal(cell[4], s)
		cell[5] = appendPeer(cell[5], s)
		for i, p := range s.Processes {
			if i > 0 {
				cell[6] = append(cell[6], ',')
			}
			cell[6] = append(cell[6], p.Command...)
			cell[6] = append(cell[6], '(')
			cell[6] = strconv.AppendInt(cell[6], int64(p.PID), 10)
			cell[6] = append(cell[6], ')')
		}
	}
	for _, s := range rows {
		format(s)
		for i := range cell {
			width[i] = max(width[i], utf8.RuneCount(cell[i]))
		}
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	line := func() {
		last := len(cell) - 1
		for last > 0 && len(cell[last]) == 0 {
			last--
		}
		for i := 0; i <= last; i++ {
			bw.Write(cell[i])
			if i < last {
				for n := width[i] - utf8.RuneCount(cell[i]) + 2; n > 0; n-- {
					bw.WriteByte(' ')
				}
			}
		}
		bw.WriteByte('\n')
	}
	for i, h := range header {
		cell[i] = append(cell[i][:0], h...)
	}
	line()
	for _, s := range rows {
		format(s)
		line()
	}
	return bw.Flush()
}

func appendLocal(b []byte, s *live.Socket) []byte {
	if s.Family == "unix" {
		if s.Path == "" {
			return append(b, '*')
		}
		return append(b, s.Path...)
	}
	if s.Family == "inet6" && s.Local.Addr().IsUnspecified() && s.V6Only != nil && !*s.V6Only {
		b = append(b, "*:"...)
		return strconv.AppendUint(b, uint64(s.Local.Port()), 10)
	}
	return s.Local.AppendTo(b)
}

func appendPeer(b []byte, s *live.Socket) []byte {
	if s.Family == "unix" || !s.Remote.IsValid() || (s.Remote.Port() == 0 && s.Remote.Addr().IsUnspecified()) {
		return append(b, '*')
	}
	return s.Remote.AppendTo(b)
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
