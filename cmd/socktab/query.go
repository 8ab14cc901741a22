package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/report"
	"github.com/spf13/cobra"
)

func parseProto(s string) (engine.Proto, error) {
	switch s {
	case "tcp":
		return engine.TCP, nil
	case "udp":
		return engine.UDP, nil
	}
	return 0, usageErr(fmt.Errorf("protocol %q: want tcp or udp", s))
}

func parseEndpoint(what, s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, usageErr(fmt.Errorf("%s %q: want ADDR:PORT or [ADDR]:PORT", what, s))
	}
	return ap, nil
}

// completeProto completes the protocol argument of who and bind.
func completeProto(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return []string{"tcp", "udp"}, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

func newWhoCmd() *cobra.Command {
	var f liveFlags
	var from, dev string
	c := &cobra.Command{
		Use:   "who tcp|udp DST [--from SRC] [--dev IFACE]",
		Short: "Which live socket would receive a packet to DST, and why",
		Long: `Which socket of this machine would receive a packet (a TCP SYN, or a UDP datagram)
to DST, and the lookup steps that decided it: an established 4-tuple first, then a
socket bound to DST's address, then a wildcard socket, a socket bound to the
interface the packet arrives on (SO_BINDTODEVICE) scoring above one that is not.
When none would, TCP answers RST and UDP ICMP port unreachable.

The packet arrives on the interface that carries DST, or on --dev IFACE; a
link-local IPv6 DST takes its interface as a zone, [fe80::1%eth0]:80. From
another host, an address configured on lo that is not a loopback address
arrives on one of the interfaces other than lo (nothing from outside arrives
on lo); when a socket bound to one of them makes the answer differ, the
answer is "depends" and says to name the interface with --dev. A UDP
datagram to a broadcast address (255.255.255.255, or a subnet's broadcast
address) or to a multicast group reaches every matching socket, and nothing
answers it; a multicast one only if the interface joined the group (as the
kernel lists in /proc/net/igmp and igmp6). Its default interface is the
subnet's for a subnet broadcast, else the first one other than lo. Which
socket joined which group is not in the kernel's tables: socktab asks each
candidate socket's own descriptor (a duplicate of an owner's, as root); where
none can be read and it decides, the answer is "depends" and names the socket.

Exit 0 when a socket would receive the packet (with several namespaces: in any of
them), 1 when nothing would (RST, ICMP, drop), 2 on a usage or read error, 3 when the
receiver depends on socket options nobody could read or on an arrival interface the
question left open, so scripts can test it.`,
		Example: `  socktab who tcp 127.0.0.1:8080
  socktab who tcp [fe80::1%eth0]:22 --all-netns -o json
  socktab who udp 239.1.2.3:5000 --dev eth0`,
		Args:              exactArgs(2, "tcp|udp DST"),
		ValidArgsFunction: completeProto,
		RunE: func(cmd *cobra.Command, args []string) error {
			proto, err := parseProto(args[0])
			if err != nil {
				return err
			}
			dst, err := parseEndpoint("DST", args[1])
			if err != nil {
				return err
			}
			src := inspect.DefaultSource(dst.Addr())
			if from != "" {
				if src, err = parseEndpoint("--from", from); err != nil {
					return err
				}
			}
			if src.Addr().Unmap().Is4() != dst.Addr().Unmap().Is4() {
				return usageErr(fmt.Errorf("--from and DST must both be IPv4 or both IPv6"))
			}
			opts := live.Options{TCP: proto == engine.TCP, UDP: proto == engine.UDP, Processes: true, Port: dst.Port(), OptsPort: dst.Port()}
			if opts.SockOpts, err = f.optionsMode(); err != nil {
				return err
			}
			tabs, err := f.read(opts, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runWho(cmd.OutOrStdout(), f.output, tabs, proto, src, dst, dev)
		},
	}
	f.add(c)
	c.Flags().StringVar(&from, "from", "", "source ADDR:PORT (default: an outside address, or loopback for a loopback DST)")
	c.Flags().StringVar(&dev, "dev", "", "the interface the packet arrives on (default: the one that carries DST)")
	return c
}

var verdictNames = map[engine.Verdict]string{engine.Deliver: "deliver", engine.RST: "rst",
	engine.PortUnreachable: "icmp_port_unreachable", engine.Drop: "drop"}

// ifaceIndex is the kernel index of the interface called name in a
// namespace's snapshot.
func ifaceIndex(s *live.Snapshot, name string) (int, error) {
	for _, i := range s.Interfaces {
		if i.Name == name {
			return i.Index, nil
		}
	}
	return 0, usageErr(fmt.Errorf("--dev %q: no such interface%s", name, map[bool]string{true: " in namespace " + s.Netns, false: ""}[s.Netns != ""]))
}

func runWho(w io.Writer, output string, tabs []*inspect.Table, proto engine.Proto, src, dst netip.AddrPort, dev string) error {
	outs := []report.Who{}
	var answers []inspect.Answer
	for _, t := range tabs {
		idx := 0
		if dev != "" {
			var err error
			if idx, err = ifaceIndex(t.Snap, dev); err != nil {
				return err
			}
		}
		ans, err := t.WhoAnswerOn(proto, src, dst, idx)
		if err != nil {
			return err
		}
		d := ans.Delivery
		o := report.Who{Netns: t.Snap.Netns, Proto: proto.String(), Src: src.String(), Dst: dst.String(),
			Answer: string(ans.Answer), Unknowns: nonNil(ans.Unknowns), OptionsSource: snapOptsSource(t.Snap),
			Verdict: verdictNames[d.Verdict], Stage: d.Stage.String(), Group: []report.Socket{}, Receivers: []report.Socket{}}
		if ans.AnswerLost != "" {
			o.Stage += "; " + ans.AnswerLost
		}
		for _, r := range d.All {
			if ls := t.Live(r); ls != nil {
				o.Receivers = append(o.Receivers, tableJSON(ls))
			}
		}
		answers = append(answers, ans.Answer)
		if d.Socket != nil {
			if ls := t.Live(d.Socket); ls != nil {
				j := tableJSON(ls)
				o.Socket = &j
			}
			for _, g := range d.Group {
				if ls := t.Live(g); ls != nil {
					o.Group = append(o.Group, tableJSON(ls))
				}
			}
		}
		outs = append(outs, o)
		if output == "json" {
			continue
		}
		fmt.Fprintf(w, "%s%s %s -> %s\n", nsPrefix(t.Snap.Netns), proto, src, dst)
		if groupWho(w, t, d, dst) {
			printUnknowns(w, ans.Answer, ans.Unknowns)
			continue
		}
		steps := []string{"1. established 4-tuple", "2. listener on " + dst.Addr().String(), "3. wildcard listener"}
		if proto == engine.UDP {
			steps = []string{"1. connected socket", "2. socket bound to " + dst.Addr().String(), "3. wildcard socket"}
		}
		decided := map[engine.Stage]int{engine.StageEstablished: 0, engine.StageTimeWait: 0, engine.StageUDPConnected: 0,
			engine.StageListenerExact: 1, engine.StageUDPExact: 1, engine.StageTimeWaitSYN: 2, engine.StageListenerWildcard: 2, engine.StageUDPWildcard: 2}
		at, ok := decided[d.Stage]
		if d.Verdict == engine.Drop && d.Stage == engine.StageNotLocal {
			fmt.Fprintf(w, "  %s is not an address of this host: dropped\n", dst.Addr())
			continue
		}
		for i, s := range steps {
			switch {
			case ok && i == at:
				fmt.Fprintf(w, "  %s: match\n", s)
			case ok && i > at:
			default:
				fmt.Fprintf(w, "  %s: none\n", s)
			}
		}
		switch {
		case ans.AnswerLost != "":
			if ls := t.Live(d.Socket); ls != nil {
				fmt.Fprintf(w, "  => %s %s %s held by %s takes the SYN\n", ls.Proto, localText(ls), ls.State, inspect.Owners(ls))
			}
			fmt.Fprintf(w, "  => no answer reaches the client: %s\n", ans.AnswerLost)
		case d.Verdict == engine.Deliver:
			ls := t.Live(d.Socket)
			fmt.Fprintf(w, "  => %s %s %s held by %s\n", ls.Proto, localText(ls), ls.State, inspect.Owners(ls))
			if len(d.Group) > 1 {
				fmt.Fprintf(w, "     one of a SO_REUSEPORT group of %d; the kernel picks a member by a hash of the 4-tuple\n", len(d.Group))
			}
		case d.Verdict == engine.RST:
			fmt.Fprintln(w, "  => no socket: TCP answers RST (the client sees ECONNREFUSED)")
		case d.Verdict == engine.PortUnreachable:
			fmt.Fprintln(w, "  => no socket: UDP answers ICMP port unreachable")
		default:
			fmt.Fprintf(w, "  => dropped: %s\n", d.Stage)
		}
		printUnknowns(w, ans.Answer, ans.Unknowns)
		if src := optionsSourceText(t.Snap); src != "" {
			fmt.Fprintf(w, "  (socket options %s)\n", src)
		}
	}
	if output == "json" {
		if err := writeJSON(w, outs); err != nil {
			return err
		}
	}
	if code := whoExit(answers); code != 0 {
		return exitError{code}
	}
	return nil
}

// whoExit is who's exit code over the namespaces read: 0 when a socket
// in some namespace receives the packet, else 3 when one namespace's
// receiver depends on what could not be read, else 1 (nothing receives).
func whoExit(answers []inspect.Answer) int {
	code := 1
	for _, a := range answers {
		switch a {
		case inspect.AnswerOK:
			return 0
		case inspect.AnswerDepends:
			code = 3
		}
	}
	return code
}

// combineExit folds one namespace's answer into the exit code: 3 when
// any namespace's answer depends on what could not be read, else 1 when
// any says fails, else 0.
func combineExit(code int, a inspect.Answer) int {
	switch {
	case a == inspect.AnswerDepends || code == 3:
		return 3
	case a == inspect.AnswerFails:
		return 1
	}
	return code
}

func printUnknowns(w io.Writer, a inspect.Answer, unknowns []string) {
	if a != inspect.AnswerDepends {
		return
	}
	fmt.Fprintln(w, "  => it depends on what could not be read:")
	for _, u := range unknowns {
		fmt.Fprintf(w, "     %s\n", u)
	}
}

// optionsSourceText says in words where the options came from when it was
// not the kernel itself ("" when it was).
func optionsSourceText(s *live.Snapshot) string {
	switch s.OptsSource {
	case live.SourceKernel:
		return ""
	case live.SourceSocket:
		return "read from the owners' descriptors: TIME-WAIT and unowned sockets' options are unknown without BPF (run as root on a kernel with BTF)"
	}
	return "not read: assumed"
}

// snapOptsSource says how a snapshot's socket options were read.
func snapOptsSource(s *live.Snapshot) string {
	if s.OptsSource == "" {
		return "unknown"
	}
	return s.OptsSource
}

// nonNil makes an empty list [] in JSON.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// tableJSON is a socket loaded into a table, owners read: options not
// read are the loader's inferred values.
func tableJSON(ls *live.Socket) report.Socket {
	j := report.FromLive(ls, true)
	if ls.Opts == nil && ls.Family != "unix" {
		j.OptionsSource = inspect.OptsSource(ls)
	}
	return j
}

func newBindCmd() *cobra.Command {
	var f liveFlags
	var req inspect.BindRequest
	c := &cobra.Command{
		Use:   "bind tcp|udp ADDR [--reuseaddr --reuseport --v6only --uid N]",
		Short: "Would this bind succeed here, now? If not: the errno, the holder and the rule",
		Long: `Run a bind of ADDR through the kernel's rules against this machine's sockets, as
if a new socket with the given options were bound now. If it would fail: the errno,
the socket that blocks it with its owners, and the rule.

Exit status: 0 the bind would succeed, 1 it would fail, 3 it depends on
socket options that could not be read (the answer names them), 2 usage or
read error. Socket options of the sockets on the port are read by a BPF
socket iterator (root, kernel with BTF), else from the owners' descriptors.

The bind runs as --uid, by default the caller's own uid: as a user other
than root, a port below net.ipv4.ip_unprivileged_port_start is EACCES, and
SO_REUSEPORT shares a port only with that user's sockets. (The kernel tests
the capability CAP_NET_BIND_SERVICE, not the uid: a non-root program given
that capability may bind low ports; socktab answers as for a plain user.)`,
		Example: `  socktab bind tcp 0.0.0.0:8080
  socktab bind tcp [::]:443 --v6only --reuseport
  socktab bind udp 127.0.0.1:5353 -o json`,
		Args:              exactArgs(2, "tcp|udp ADDR"),
		ValidArgsFunction: completeProto,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if req.Proto, err = parseProto(args[0]); err != nil {
				return err
			}
			if req.Addr, err = parseEndpoint("ADDR", args[1]); err != nil {
				return err
			}
			if req.V6Only && !req.Addr.Addr().Is6() {
				return usageErr(fmt.Errorf("--v6only needs an IPv6 ADDR"))
			}
			opts := live.Options{TCP: req.Proto == engine.TCP, UDP: req.Proto == engine.UDP, Processes: true, Port: req.Addr.Port(), OptsPort: req.Addr.Port()}
			if opts.SockOpts, err = f.optionsMode(); err != nil {
				return err
			}
			if req.Addr.Port() == 0 {
				opts.SockOpts = live.OptsNone // port 0: the kernel picks among every port
			}
			tabs, err := f.read(opts, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runBind(cmd.OutOrStdout(), f.output, tabs, req)
		},
	}
	f.add(c)
	c.Flags().BoolVar(&req.ReuseAddr, "reuseaddr", false, "set SO_REUSEADDR")
	c.Flags().BoolVar(&req.ReusePort, "reuseport", false, "set SO_REUSEPORT")
	c.Flags().BoolVar(&req.V6Only, "v6only", false, "set IPV6_V6ONLY")
	c.Flags().Uint32Var(&req.UID, "uid", uint32(os.Getuid()), "bind as this user: the socket's owner (SO_REUSEPORT sharing) and the caller (ports below net.ipv4.ip_unprivileged_port_start need uid 0)")
	return c
}

func runBind(w io.Writer, output string, tabs []*inspect.Table, req inspect.BindRequest) error {
	code := 0
	outs := []report.Bind{}
	echo := report.BindRequest{Proto: req.Proto.String(), Addr: req.Addr.String(), ReuseAddr: req.ReuseAddr,
		ReusePort: req.ReusePort, V6Only: req.V6Only, UID: req.UID}
	for _, t := range tabs {
		ans, err := t.Bind(req)
		if err != nil {
			return err
		}
		res := ans.Result
		code = combineExit(code, ans.Answer)
		o := report.Bind{Netns: t.Snap.Netns, Request: echo, Answer: string(ans.Answer), Unknowns: nonNil(ans.Unknowns),
			OptionsSource: snapOptsSource(t.Snap), Result: res.Err.String(), Reason: string(res.Rule)}
		if res.Err != engine.OK {
			o.Reason = t.Explain(req, res)
			if res.Other != nil {
				if ls := t.Live(res.Other); ls != nil {
					j := tableJSON(ls)
					o.Blocker = &j
				}
			}
		}
		outs = append(outs, o)
		if output == "text" {
			p := nsPrefix(t.Snap.Netns)
			switch {
			case ans.Answer == inspect.AnswerDepends:
				fmt.Fprintf(w, "%sbind %s %s: depends\n", p, req.Proto, req.Addr)
				for _, u := range ans.Unknowns {
					fmt.Fprintf(w, "  %s\n", u)
				}
			case res.Err == engine.OK:
				fmt.Fprintf(w, "%sbind %s %s: ok\n", p, req.Proto, req.Addr)
			default:
				fmt.Fprintf(w, "%sbind %s %s: %s\n  %s\n", p, req.Proto, req.Addr, res.Err, o.Reason)
			}
			if ans.Inferred && ans.Answer != inspect.AnswerDepends {
				fmt.Fprintf(w, "  (some options on port %d were not read; every value they could have gives this answer)\n", req.Addr.Port())
			}
			if src := optionsSourceText(t.Snap); src != "" && req.Addr.Port() != 0 {
				fmt.Fprintf(w, "  (socket options %s)\n", src)
			}
		}
	}
	if output == "json" {
		if err := writeJSON(w, outs); err != nil {
			return err
		}
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

// groupWho prints the answer for a broadcast or multicast destination and
// reports whether it did.
func groupWho(w io.Writer, t *inspect.Table, d engine.Delivery, dst netip.AddrPort) bool {
	switch d.Stage {
	case engine.StageBroadcast, engine.StageMulticast:
		fmt.Fprintf(w, "  %s (%d)\n", d.Stage, len(d.All))
		for _, s := range d.All {
			if ls := t.Live(s); ls != nil {
				fmt.Fprintf(w, "  => %s %s %s held by %s\n", ls.Proto, localText(ls), ls.State, inspect.Owners(ls))
			}
		}
	case engine.StageNotJoined:
		fmt.Fprintf(w, "  no interface it arrives on joined %s: dropped\n", dst.Addr())
	case engine.StageNoGroupReceiver:
		fmt.Fprintf(w, "  => no socket takes it: dropped (a broadcast or multicast is never answered with ICMP)\n")
	case engine.StageNotUnicast:
		fmt.Fprintf(w, "  => dropped: TCP takes no broadcast or multicast segment\n")
	default:
		return false
	}
	return true
}
