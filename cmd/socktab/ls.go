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
	keep := func(s *live.Socket) bool {
		switch {
		case !f.all && f.listening && !listening(s):
			return false
		case !f.all && !f.listening && listening(s):
			return false
		case f.state != "" && !strings.EqualFold(s.State, f.state):
			return false
		case f.port != 0 && int(s.Local.Port()) != f.port && int(s.Remote.Port()) != f.port:
			return false
		case addr.IsValid() && s.Local.Addr().Unmap() != addr && s.Remote.Addr().Unmap() != addr:
			return false
		}
		return true
	}
	if f.output == "text" && !f.procs {
		// The plain listing streams: each socket is formatted as it is read
		// and none is kept, which is what makes it as cheap as ss.
		var t textRows
		var kept []bool
		opts.Emit = func(s *live.Socket) {
			k := keep(s)
			kept = append(kept, k)
			if k {
				t.add(s)
			}
		}
		opts.Rewind = func(n int) {
			drop := 0
			for _, k := range kept[len(kept)-n:] {
				if k {
					drop++
				}
			}
			kept = kept[:len(kept)-n]
			t.drop(drop)
		}
		if _, err := f.snapshots(opts, stderr); err != nil {
			return err
		}
		return t.print(stdout)
	}
	snaps, err := f.snapshots(opts, stderr)
	if err != nil {
		return err
	}
	var rows []*live.Socket
	for _, snap := range snaps {
		for i := range snap.Sockets {
			if s := &snap.Sockets[i]; keep(s) {
				rows = append(rows, s)
			}
		}
	}
	if f.output == "json" {
		out := make([]jsonSocket, len(rows))
		for i, s := range rows {
			out[i] = toJSON(s)
		}
		return writeJSON(stdout, out)
	}
	var t textRows
	for _, s := range rows {
		t.add(s)
	}
	return t.print(stdout)
}

var lsHeader = [...]string{"Netid", "State", "Recv-Q", "Send-Q", "Local", "Peer", "Process"}

// textRows holds the ss-style table as text: cells appended to fixed-size
// chunks that are never copied (with the collector off, a slice grown by
// doubling leaves every old copy behind), a row being where its cells end.
// At 100,000 sockets a string per cell, or keeping the sockets, costs more
// than reading them.
type textRows struct {
	chunks [][]byte
	rows   [][]rowAt // rowChunk rows per slice
	n      int
	width  [len(lsHeader)]int
}

type rowAt struct {
	chunk, start uint32
	end          [len(lsHeader)]uint32
}

const (
	textChunk = 256 << 10
	rowChunk  = 4096
)

func (t *textRows) add(s *live.Socket) {
	if len(t.chunks) == 0 || cap(t.chunks[len(t.chunks)-1])-len(t.chunks[len(t.chunks)-1]) < 1024 {
		t.chunks = append(t.chunks, make([]byte, 0, textChunk))
	}
	ci := len(t.chunks) - 1
	b := t.chunks[ci]
	r := rowAt{chunk: uint32(ci), start: uint32(len(b))}
	from := len(b)
	cell := func(i int) {
		r.end[i] = uint32(len(b))
		t.width[i] = max(t.width[i], utf8.RuneCount(b[from:]))
		from = len(b)
	}
	b = append(b, nsPrefix(s.Netns)...)
	if s.Family == "unix" {
		b = append(b, "u_"+map[string]string{"stream": "str", "dgram": "dgr", "seqpacket": "seq"}[s.UnixType]...)
	} else {
		b = append(b, s.Proto...)
	}
	cell(0)
	b = append(b, s.State...)
	cell(1)
	b = strconv.AppendUint(b, uint64(s.RecvQ), 10)
	cell(2)
	b = strconv.AppendUint(b, uint64(s.SendQ), 10)
	cell(3)
	b = appendLocal(b, s)
	cell(4)
	b = appendPeer(b, s)
	cell(5)
	for i, p := range s.Processes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p.Command...)
		b = append(b, '(')
		b = strconv.AppendInt(b, int64(p.PID), 10)
		b = append(b, ')')
	}
	cell(6)
	t.chunks[ci] = b
	if t.n%rowChunk == 0 {
		t.rows = append(t.rows, make([]rowAt, 0, rowChunk))
	}
	t.rows[len(t.rows)-1] = append(t.rows[len(t.rows)-1], r)
	t.n++
}

// drop forgets the last n rows (a dump the kernel interrupted is redone).
func (t *textRows) drop(n int) {
	for ; n > 0; n-- {
		last := &t.rows[len(t.rows)-1]
		*last = (*last)[:len(*last)-1]
		if len(*last) == 0 {
			t.rows = t.rows[:len(t.rows)-1]
		}
		t.n--
	}
}

func (t *textRows) print(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	var cells [len(lsHeader)][]byte
	line := func() {
		last := len(cells) - 1
		for last > 0 && len(cells[last]) == 0 {
			last--
		}
		for i := 0; i <= last; i++ {
			bw.Write(cells[i])
			if i < last {
				for n := max(t.width[i], len(lsHeader[i])) - utf8.RuneCount(cells[i]) + 2; n > 0; n-- {
					bw.WriteByte(' ')
				}
			}
		}
		bw.WriteByte('\n')
	}
	for i, h := range lsHeader {
		cells[i] = []byte(h)
	}
	line()
	for _, rs := range t.rows {
		for _, r := range rs {
			b, prev := t.chunks[r.chunk], r.start
			for i, e := range r.end {
				cells[i] = b[prev:e]
				prev = e
			}
			line()
		}
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
