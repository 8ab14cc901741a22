// Package serve is `socktab serve`: a Prometheus exporter and a local
// dashboard over the live table. Every scrape and every API call reads the
// machine afresh (no background polling) and answers through package
// inspect, so the answers are the CLI's.
package serve

import (
	"net/netip"
	"sort"
	"time"

	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/live"
)

// Target says which namespaces to read, as the CLI's --netns flags do.
type Target struct {
	Netns    string
	NetnsPID int
	AllNetns bool
}

func (t Target) isOwn() bool { return t.Netns == "" && t.NetnsPID == 0 && !t.AllNetns }

// Reading is one read of the machine, reduced to what the metrics need.
type Reading struct {
	Namespaces []*NSReading
	Duration   time.Duration
}

// SocketKey is one (protocol, family, state) combination.
type SocketKey struct{ Proto, Family, State string }

// OptionKey counts sockets by how an option's value is known.
type OptionKey struct {
	Option string // v6only, reuseport, reuseaddr
	Source string // read, inferred, unknown
}

// NSReading is one namespace.
type NSReading struct {
	Netns   string
	Source  string
	Missing []string
	Sockets map[SocketKey]int
	Options map[OptionKey]int
	// Table holds the namespace's listeners and unconnected UDP sockets in
	// the engine, with its interfaces and sysctls: what Audit needs.
	Table *inspect.Table
	Audit []inspect.Exposure
	Pools []inspect.PortUse // fullest first
	// Usable is the number of ports the ephemeral range allows per pool.
	Usable int
}

// record is what a streamed socket leaves behind: enough to count it.
type record struct {
	key        SocketKey
	local, rem netip.AddrPort
	netns      string
	listener   int // index into listeners, or -1
}

// readFunc reads the chosen namespaces, streaming the sockets to emit. It is
// a variable so that tests can feed recorded snapshots.
var readFunc = func(t Target, opts live.Options) ([]*live.Snapshot, error) {
	if t.isOwn() {
		s, err := live.Read(opts)
		if err != nil {
			return nil, err
		}
		return []*live.Snapshot{s}, nil
	}
	return live.ReadNetns(live.NetnsTarget{Name: t.Netns, PID: t.NetnsPID, All: t.AllNetns}, opts)
}

// Read reads every socket of the target once, streaming: a socket is
// reduced to its counts as it arrives and only listeners are kept, so a
// host with 100,000 connections costs one dump and no table of them.
// Listeners are loaded into the engine for the exposure audit.
//
// sockOpts (live.OptsNone, OptsAuto, OptsBPF, OptsFD) chooses whether the
// listeners' options are read from the kernel: then the listeners come from
// a second, listeners-only read with options (which needs the process
// owners, a walk of /proc/*/fd), and the streamed one only counts.
func Read(t Target, sockOpts string) (*Reading, error) {
	start := time.Now()
	var recs []record
	var listeners []live.Socket
	withOpts := sockOpts != live.OptsNone
	opts := live.Options{
		SocketsOnly: withOpts,
		Emit: func(s *live.Socket) {
			r := record{key: SocketKey{s.Proto, s.Family, s.State}, local: s.Local, rem: s.Remote, netns: s.Netns, listener: -1}
			if s.Family != "unix" && (s.State == "LISTEN" || s.State == "UNCONN") {
				r.listener = len(listeners)
				if !withOpts {
					listeners = append(listeners, *s)
				}
			}
			recs = append(recs, r)
		},
		Rewind: func(n int) {
			recs = recs[:len(recs)-n]
			if withOpts {
				return
			}
			keep := 0
			for i := len(recs) - 1; i >= 0; i-- {
				if recs[i].listener >= 0 {
					keep = recs[i].listener + 1
					break
				}
			}
			listeners = listeners[:keep]
		},
	}
	var listenSnaps []*live.Snapshot
	if withOpts {
		var err error
		listenSnaps, err = readFunc(t, live.Options{TCP: true, UDP: true, States: live.StatesListening, SockOpts: sockOpts})
		if err != nil {
			return nil, err
		}
	}
	snaps, err := readFunc(t, opts)
	if err != nil {
		return nil, err
	}
	if withOpts {
		// Namespaces come from the listeners' read (interfaces, sysctls and
		// options); the streamed read only counts.
		snaps = listenSnaps
		for _, s := range listenSnaps {
			for _, l := range s.Sockets {
				if l.Family != "unix" {
					listeners = append(listeners, l)
				}
			}
		}
	}
	// The streamed records follow the snapshots' order; split them by label.
	byNS := map[string]*NSReading{}
	var out Reading
	for _, s := range snaps {
		ns := &NSReading{Netns: s.Netns, Source: s.Source, Missing: s.Missing,
			Sockets: map[SocketKey]int{}, Options: map[OptionKey]int{}}
		byNS[s.Netns] = ns
		out.Namespaces = append(out.Namespaces, ns)
	}
	pools := map[string]*inspect.PoolCounter{}
	listen := map[string][]live.Socket{}
	for i := range recs {
		r := &recs[i]
		ns := byNS[r.netns]
		if ns == nil {
			continue
		}
		ns.Sockets[r.key]++
		if r.key.Family == "unix" {
			continue
		}
		pc := pools[r.netns]
		if pc == nil {
			pc = &inspect.PoolCounter{}
			pools[r.netns] = pc
		}
		if r.listener >= 0 {
			// A listener or bound socket holds its port off every pool.
			pc.AddHolder(r.key.Proto, r.local, r.key.State == "LISTEN")
			if !withOpts {
				listen[r.netns] = append(listen[r.netns], listeners[r.listener])
			}
			continue
		}
		pc.Add(r.key.Proto, r.local, r.rem, r.key.State == "TIME-WAIT")
	}
	if withOpts {
		for i := range listeners {
			l := listeners[i]
			listen[l.Netns] = append(listen[l.Netns], l)
		}
	}
	for _, s := range snaps {
		ns := byNS[s.Netns]
		snap := *s
		snap.Sockets = listen[s.Netns]
		for i := range snap.Sockets {
			countOptions(ns.Options, &snap.Sockets[i])
		}
		tab, err := inspect.Load(&snap)
		if err != nil {
			return nil, err
		}
		ns.Table = tab
		ns.Audit = tab.Audit()
		ns.Usable = tab.Usable()
		if pc := pools[s.Netns]; pc != nil {
			ns.Pools = pc.Pools(tab.Host.Sysctl.PortLow, tab.Host.Sysctl.PortHigh, ns.Usable, tab.Host.Sysctl.Reserved.Has)
		}
	}
	sort.SliceStable(out.Namespaces, func(i, j int) bool { return out.Namespaces[i].Netns < out.Namespaces[j].Netns })
	out.Duration = time.Since(start)
	return &out, nil
}

// countOptions records how the options that decide binds are known for a
// listener: read from the kernel's socket (BPF iterator, "kernel") or a
// duplicate of its descriptor ("socket") when --options asked for them;
// otherwise IPV6_V6ONLY comes from sock_diag ("kernel") or is unknown (the
// /proc fallback), and SO_REUSEADDR and SO_REUSEPORT are inferred by
// inspect.Load from sockets sharing an address.
func countOptions(m map[OptionKey]int, s *live.Socket) {
	if s.Opts != nil {
		if s.Family == "inet6" {
			m[OptionKey{"v6only", s.OptsSource}]++
		}
		m[OptionKey{"reuseaddr", s.OptsSource}]++
		m[OptionKey{"reuseport", s.OptsSource}]++
		return
	}
	if s.Family == "inet6" {
		src := live.SourceKernel
		if s.V6Only == nil {
			src = "unknown"
		}
		m[OptionKey{"v6only", src}]++
	}
	m[OptionKey{"reuseaddr", "inferred"}]++
	m[OptionKey{"reuseport", "inferred"}]++
}

// Labels of a pool.
