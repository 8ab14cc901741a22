package main

import (
	"bufio"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/report"
	"github.com/spf13/cobra"
)

type lsFlags struct {
	liveFlags
	tcp, udp, unix, inet4, inet6, listening, all, procs, noHeader, numeric bool
	options                                                                bool
	states, ports, pids, commands                                          []string
	addr                                                                   string
}

func newLsCmd() *cobra.Command {
	var f lsFlags
	c := &cobra.Command{
		Use:   "ls [-t -u -x -4 -6 -l -a -p -H] [--state S] [--port P] [--addr A] [--pid N] [--command C]",
		Short: "List sockets like ss: Netid State Recv-Q Send-Q Local Peer Process",
		Long: `List this machine's sockets, like ss. By default the connections, without
listeners, unconnected sockets, TIME-WAIT and SYN-RECV (as ss does); -l for
listeners and unconnected sockets, -a for everything. A dual-stack [::] listener
shows as *:PORT (IPv4 and IPv6), an IPv6-only one as [::]:PORT. Unix sockets show
their path and inode, and the peer's inode. With -p, the Process column lists
each holder as ss does: users:(("name",pid=N,fd=N)).

Filters combine (all must match): --state takes ss's state names and groups
(established, time-wait, listening, connected, bucket, ...) and the printed names
(LISTEN, ESTAB, TIME-WAIT or TIME_WAIT), and replaces the -l/-a selection;
--port takes numbers, ranges and service names (22,8000-8100,https), matching the
local or the remote port; --addr takes an address or prefix, matching the local or
the remote address (0.0.0.0 and :: match sockets bound to that wildcard); --pid and
--command (a name or shell pattern) select sockets by holder and imply -p.
Paths and process names are printed escaped (\n, \x1b, ...).`,
		Example: `  socktab ls -tl
  socktab ls -ta --state time-wait --port 8000-8100
  socktab ls -x -p --command 'python*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLs(cmd.OutOrStdout(), cmd.ErrOrStderr(), f) },
	}
	f.add(c)
	fl := c.Flags()
	fl.BoolVarP(&f.tcp, "tcp", "t", false, "TCP sockets")
	fl.BoolVarP(&f.udp, "udp", "u", false, "UDP sockets")
	fl.BoolVarP(&f.unix, "unix", "x", false, "unix sockets")
	fl.BoolVarP(&f.inet4, "ipv4", "4", false, "IPv4 sockets only (no unix unless -x)")
	fl.BoolVarP(&f.inet6, "ipv6", "6", false, "IPv6 sockets only (no unix unless -x)")
	fl.BoolVarP(&f.listening, "listening", "l", false, "listening and unconnected sockets only")
	fl.BoolVarP(&f.all, "all", "a", false, "sockets in every state")
	fl.BoolVarP(&f.procs, "processes", "p", false, "show the processes holding each socket, with their fds")
	fl.BoolVar(&f.options, "options", false, "read each socket's SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY and device (BPF as root, else the owners' descriptors) into -o json's options")
	fl.BoolVarP(&f.noHeader, "no-header", "H", false, "do not print the header line")
	fl.BoolVarP(&f.numeric, "numeric", "n", false, "numeric addresses and ports (always so; accepted for ss habits)")
	fl.StringSliceVar(&f.states, "state", nil, "only sockets in these states (ss names or groups; repeat or comma-separate)")
	fl.StringSliceVar(&f.ports, "port", nil, "only sockets with one of these local or remote ports (80, 8000-8100, https)")
	fl.StringVar(&f.addr, "addr", "", "only sockets with this local or remote address or prefix")
	fl.StringSliceVar(&f.pids, "pid", nil, "only sockets held by these process ids (implies -p)")
	fl.StringSliceVar(&f.commands, "command", nil, "only sockets held by a process of this name or shell pattern (implies -p)")
	c.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]string{"established", "syn-sent", "syn-recv",
		"fin-wait-1", "fin-wait-2", "time-wait", "closed", "close-wait", "last-ack", "listening", "closing",
		"all", "connected", "synchronized", "bucket", "big"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// ssConn is ss's default selection: every state but LISTEN, CLOSE,
// TIME-WAIT and SYN-RECV.
var ssConn = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range []string{"ESTAB", "SYN-SENT", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "LAST-ACK", "CLOSING"} {
		m[s] = true
	}
	return m
}()

func runLs(stdout, stderr io.Writer, f lsFlags) error {
	var am addrMatch
	if f.addr != "" {
		var err error
		if am, err = parseAddrMatch(f.addr); err != nil {
			return usageErr(err)
		}
	}
	ports, err := parsePorts(f.ports)
	if err != nil {
		return usageErr(err)
	}
	pm, err := parseProcMatch(f.pids, f.commands)
	if err != nil {
		return usageErr(err)
	}
	if pm.active() {
		f.procs = true
	}
	if err := f.check(); err != nil {
		return err
	}
	opts := live.Options{TCP: f.tcp, UDP: f.udp, Unix: f.unix, Processes: f.procs, SocketsOnly: true}
	if (f.inet4 || f.inet6) && !f.tcp && !f.udp && !f.unix {
		opts.TCP, opts.UDP = true, true
	}
	if f.options {
		if opts.SockOpts, err = f.optionsMode(); err != nil {
			return usageErr(err)
		}
	}
	var wantState map[string]bool
	switch {
	case len(f.states) > 0:
		var mask uint32
		if wantState, mask, err = parseStates(f.states); err != nil {
			return usageErr(err)
		}
		opts.States = mask
	case f.all:
	case f.listening:
		opts.States = live.StatesListening
		wantState = map[string]bool{"LISTEN": true, "UNCONN": true, "CLOSE": true}
	default:
		wantState = ssConn
		for s := range ssConn {
			opts.States |= stateBits[s]
		}
	}
	keep := func(s *live.Socket) bool {
		switch {
		case wantState != nil && !wantState[s.State]:
			return false
		case f.inet4 && !f.inet6 && s.Family == "inet6", f.inet6 && !f.inet4 && s.Family == "inet":
			return false
		case len(ports) > 0 && !portsMatch(ports, s):
			return false
		case f.addr != "" && !am.match(s):
			return false
		case pm.active() && !pm.match(s):
			return false
		}
		return true
	}
	t := textRows{showNetns: f.netnsMode()}
	if f.output == "text" && !f.procs && opts.SockOpts == live.OptsNone {
		// The plain listing streams: each socket is formatted as it is read
		// and none is kept, which is what makes it as cheap as ss.
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
		return t.print(stdout, !f.noHeader)
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
		out := make([]report.Socket, len(rows))
		for i, s := range rows {
			out[i] = report.FromLive(s, f.procs)
		}
		return writeJSON(stdout, out)
	}
	for _, s := range rows {
		t.add(s)
	}
	return t.print(stdout, !f.noHeader)
}

func portsMatch(ports []portRange, s *live.Socket) bool {
	if s.Family == "unix" {
		return false
	}
	in := func(p uint16) bool {
		for _, r := range ports {
			if p >= r.lo && p <= r.hi {
				return true
			}
		}
		return false
	}
	return in(s.Local.Port()) || (!report.NoPeer(s.Remote) && in(s.Remote.Port()))
}

var lsHeader = [...]string{"Netns", "Netid", "State", "Recv-Q", "Send-Q", "Local", "Peer", "Process"}

// textRows holds the ss-style table as text: cells appended to fixed-size
// chunks that are never copied (with the collector off, a slice grown by
// doubling leaves every old copy behind), a row being where its cells end.
// At 100,000 sockets a string per cell, or keeping the sockets, costs more
// than reading them. The Netns column is printed only when namespaces were
// chosen (--netns, --netns-pid, --all-netns); the caller's own shows as "-".
type textRows struct {
	showNetns bool
	chunks    [][]byte
	rows      [][]rowAt // rowChunk rows per slice
	n         int
	width     [len(lsHeader)]int
}

type rowAt struct {
	chunk, start uint32
	end          [len(lsHeader)]uint32
}

const (
	textChunk = 256 << 10
	rowChunk  = 4096
)

var unixNetid = map[string]string{"stream": "u_str", "dgram": "u_dgr", "seqpacket": "u_seq"}

func (t *textRows) add(s *live.Socket) {
	// A cell's text is bounded except for escaped paths and commands.
	need := 1024 + 4*(len(s.Path)+len(s.Processes)*32)
	if len(t.chunks) == 0 || cap(t.chunks[len(t.chunks)-1])-len(t.chunks[len(t.chunks)-1]) < need {
		t.chunks = append(t.chunks, make([]byte, 0, max(textChunk, need)))
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
	if s.Netns == "" {
		b = append(b, '-')
	} else {
		b = report.AppendEscaped(b, s.Netns)
	}
	cell(0)
	if s.Family == "unix" {
		b = append(b, unixNetid[s.UnixType]...)
	} else {
		b = append(b, s.Proto...)
	}
	cell(1)
	b = append(b, s.State...)
	cell(2)
	b = strconv.AppendUint(b, uint64(s.RecvQ), 10)
	cell(3)
	b = strconv.AppendUint(b, uint64(s.SendQ), 10)
	cell(4)
	b = appendLocal(b, s)
	if s.Family == "unix" {
		b = append(b, ' ')
		b = strconv.AppendUint(b, s.Inode, 10)
	}
	cell(5)
	b = appendPeer(b, s)
	if s.Family == "unix" {
		b = append(b, ' ')
		b = strconv.AppendUint(b, s.PeerInode, 10)
	}
	cell(6)
	if len(s.Processes) > 0 {
		b = append(b, "users:("...)
		for i, p := range s.Processes {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `("`...)
			b = report.AppendEscaped(b, p.Command)
			b = append(b, `",pid=`...)
			b = strconv.AppendInt(b, int64(p.PID), 10)
			for _, fd := range p.FDs {
				b = append(b, ",fd="...)
				b = strconv.AppendInt(b, int64(fd), 10)
			}
			b = append(b, ')')
		}
		b = append(b, ')')
	}
	cell(7)
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

func (t *textRows) print(w io.Writer, header bool) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	var cells [len(lsHeader)][]byte
	first := 1
	if t.showNetns {
		first = 0
	}
	lastCol := len(cells) - 1
	line := func() {
		last := lastCol
		for last > first && len(cells[last]) == 0 {
			last--
		}
		for i := first; i <= last; i++ {
			bw.Write(cells[i])
			if i < last {
				for n := max(t.width[i], len(lsHeader[i])) - utf8.RuneCount(cells[i]) + 2; n > 0; n-- {
					bw.WriteByte(' ')
				}
			}
		}
		bw.WriteByte('\n')
	}
	if header {
		for i, h := range lsHeader {
			cells[i] = []byte(h)
		}
		line()
	}
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
		return report.AppendEscaped(b, s.Path)
	}
	a := s.Local.Addr()
	switch {
	case s.Family == "inet6" && a.IsUnspecified() && s.V6Only != nil && !*s.V6Only:
		b = append(b, '*')
	case a.Is6():
		b = append(a.AppendTo(append(b, '[')), ']')
	default:
		b = a.AppendTo(b)
	}
	if d := s.DeviceName(); d != "" {
		// ss writes the bound device after the address: 127.0.0.53%lo:53.
		b = append(b, '%')
		b = report.AppendEscaped(b, d)
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(s.Local.Port()), 10)
}

func appendPeer(b []byte, s *live.Socket) []byte {
	if s.Family == "unix" || report.NoPeer(s.Remote) {
		return append(b, '*')
	}
	return s.Remote.AppendTo(b)
}

// localText is a socket's local address for text output, escaped.
func localText(s *live.Socket) string { return string(appendLocal(nil, s)) }
