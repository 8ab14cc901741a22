package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/live"
	"github.com/spf13/cobra"
)

func parseProto(s string) (engine.Proto, error) {
	switch s {
	case "tcp":
		return engine.TCP, nil
	case "udp":
		return engine.UDP, nil
	}
	return 0, fmt.Errorf("protocol %q: want tcp or udp", s)
}

func parseEndpoint(what, s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("%s %q: want ADDR:PORT or [ADDR]:PORT", what, s)
	}
	return ap, nil
}

func newWhoCmd() *cobra.Command {
	var f liveFlags
	var from string
	c := &cobra.Command{
		Use:   "who tcp|udp DST [--from SRC]",
		Short: "Which live socket would receive a packet to DST, and why",
		Args:  cobra.ExactArgs(2),
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
				return fmt.Errorf("--from and DST must both be IPv4 or both IPv6")
			}
			opts := live.Options{TCP: proto == engine.TCP, UDP: proto == engine.UDP, Processes: true}
			tabs, err := f.read(opts, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runWho(cmd.OutOrStdout(), f.output, tabs, proto, src, dst)
		},
	}
	f.add(c)
	c.Flags().StringVar(&from, "from", "", "source ADDR:PORT (default: an outside address, or loopback for a loopback DST)")
	return c
}

type whoJSON struct {
	Netns    string       `json:"netns"`
	Verdict  string       `json:"verdict"`
	Stage    string       `json:"stage"`
	Socket   *jsonSocket  `json:"socket"`
	Group    []jsonSocket `json:"group,omitempty"`
	Src, Dst string
}

func runWho(w io.Writer, output string, tabs []*inspect.Table, proto engine.Proto, src, dst netip.AddrPort) error {
	var outs []whoJSON
	for _, t := range tabs {
		d := t.Who(proto, src, dst)
		o := whoJSON{Netns: t.Snap.Netns, Stage: d.Stage.String(), Src: src.String(), Dst: dst.String()}
		o.Verdict = map[engine.Verdict]string{engine.Deliver: "deliver", engine.RST: "rst",
			engine.PortUnreachable: "icmp-port-unreachable", engine.Drop: "drop"}[d.Verdict]
		if d.Socket != nil {
			if ls := t.Live(d.Socket); ls != nil {
				j := toJSON(ls)
				o.Socket = &j
			}
			for _, g := range d.Group {
				if ls := t.Live(g); ls != nil {
					o.Group = append(o.Group, toJSON(ls))
				}
			}
		}
		outs = append(outs, o)
		if output == "json" {
			continue
		}
		fmt.Fprintf(w, "%s%s %s -> %s\n", nsPrefix(t.Snap.Netns), proto, src, dst)
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
		switch d.Verdict {
		case engine.Deliver:
			ls := t.Live(d.Socket)
			fmt.Fprintf(w, "  => %s %s %s held by %s\n", ls.Proto, localText(ls), ls.State, inspect.Owners(ls))
			if len(d.Group) > 1 {
				fmt.Fprintf(w, "     one of a SO_REUSEPORT group of %d; the kernel picks a member by a hash of the 4-tuple\n", len(d.Group))
			}
		case engine.RST:
			fmt.Fprintln(w, "  => no socket: TCP answers RST (the client sees ECONNREFUSED)")
		case engine.PortUnreachable:
			fmt.Fprintln(w, "  => no socket: UDP answers ICMP port unreachable")
		default:
			fmt.Fprintf(w, "  => dropped: %s\n", d.Stage)
		}
	}
	if output == "json" {
		return writeJSON(w, outs)
	}
	return nil
}

func newBindCmd() *cobra.Command {
	var f liveFlags
	var req inspect.BindRequest
	c := &cobra.Command{
		Use:   "bind tcp|udp ADDR [--reuseaddr --reuseport --v6only --uid N]",
		Short: "Would this bind succeed here, now? If not: the errno, the holder and the rule",
		Long:  "Exit 0 when the bind would succeed, 1 when not.",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if req.Proto, err = parseProto(args[0]); err != nil {
				return err
			}
			if req.Addr, err = parseEndpoint("ADDR", args[1]); err != nil {
				return err
			}
			if req.V6Only && !req.Addr.Addr().Is6() {
				return fmt.Errorf("--v6only needs an IPv6 ADDR")
			}
			opts := live.Options{TCP: req.Proto == engine.TCP, UDP: req.Proto == engine.UDP, Processes: true}
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
	c.Flags().Uint32Var(&req.UID, "uid", 0, "bind as this user")
	return c
}

type bindJSON struct {
	Netns   string      `json:"netns"`
	Result  string      `json:"result"`
	Reason  string      `json:"reason"`
	Blocker *jsonSocket `json:"blocker"`
}

func runBind(w io.Writer, output string, tabs []*inspect.Table, req inspect.BindRequest) error {
	failed := false
	var outs []bindJSON
	for _, t := range tabs {
		res, err := t.CheckBind(req)
		if err != nil {
			return err
		}
		o := bindJSON{Netns: t.Snap.Netns, Result: res.Err.String(), Reason: string(res.Rule)}
		if res.Err != engine.OK {
			failed = true
			o.Reason = t.Explain(req, res)
			if res.Other != nil {
				if ls := t.Live(res.Other); ls != nil {
					j := toJSON(ls)
					o.Blocker = &j
				}
			}
		}
		outs = append(outs, o)
		if output == "text" {
			if res.Err == engine.OK {
				fmt.Fprintf(w, "%sbind %s %s: ok\n", nsPrefix(t.Snap.Netns), req.Proto, req.Addr)
			} else {
				fmt.Fprintf(w, "%sbind %s %s: %s\n  %s\n", nsPrefix(t.Snap.Netns), req.Proto, req.Addr, res.Err, o.Reason)
			}
		}
	}
	if output == "json" {
		if err := writeJSON(w, outs); err != nil {
			return err
		}
	}
	if failed {
		return exitError{1}
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
