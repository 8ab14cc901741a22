//go:build linux

package live

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Read reads the sockets, interfaces and sysctls of the caller's network
// namespace.
func Read(opts Options) (*Snapshot, error) {
	if opts.Emit != nil && opts.Processes {
		return nil, errors.New("live: Emit cannot be combined with Processes")
	}
	if err := opts.checkSockOpts(); err != nil {
		return nil, err
	}
	snap, err := collect(opts, "")
	if err != nil {
		return nil, err
	}
	finish(opts, []*Snapshot{snap})
	return snap, nil
}

func (o Options) checkSockOpts() error {
	switch o.SockOpts {
	case OptsNone, OptsAuto, OptsBPF, OptsFD, OptsKernel:
	default:
		return fmt.Errorf("live: options source %q: want auto, bpf, fd or none", o.SockOpts)
	}
	if o.SockOpts != OptsNone && o.Emit != nil {
		return errors.New("live: options cannot be read while streaming (Emit)")
	}
	return nil
}

// finish does what needs every namespace read: process owners, and
// options read through the owners' descriptors for the sockets the BPF
// iterator does not walk (TCP sockets bound but not listening, which live
// only in the bind hash) or when it did not run.
func finish(opts Options, snaps []*Snapshot) {
	needFD := opts.SockOpts != OptsNone && opts.SockOpts != OptsKernel
	if opts.Processes || needFD {
		attachOwners(opts.procRoot(), snaps)
	}
	if needFD {
		readOptsFD(snaps, opts.OptsPort)
	}
}

func procNetDir(opts Options) string {
	root := opts.procRoot()
	if filepath.Clean(root) != "/proc" {
		return filepath.Join(root, "net")
	}
	if _, err := os.Stat("/proc/thread-self/net"); err == nil {
		return "/proc/thread-self/net"
	}
	return "/proc/self/net"
}

type table struct {
	name  string // for notes
	file  string // under /proc/net
	proto string
	fam   uint8
}

var inetTables = []table{
	{"tcp/inet", "tcp", "tcp", unix.AF_INET},
	{"tcp/inet6", "tcp6", "tcp", unix.AF_INET6},
	{"udp/inet", "udp", "udp", unix.AF_INET},
	{"udp/inet6", "udp6", "udp", unix.AF_INET6},
}

// collect reads everything for the netns the calling thread is in.
func collect(opts Options, label string) (*Snapshot, error) {
	snap := &Snapshot{Netns: label}
	note := func(format string, a ...any) { snap.Missing = append(snap.Missing, fmt.Sprintf(format, a...)) }
	netDir := procNetDir(opts)
	doTCP, doUDP, doUnix := opts.tables()
	states := opts.states()

	// The interfaces first: a device-bound socket is named as it is parsed
	// (ls streams them out at once), and one rtnetlink dump is cheap.
	ifs, ifErr := readInterfaces()
	p := &parser{netns: label, emit: opts.Emit, rewind: opts.Rewind, devs: make(map[int]string, len(ifs))}
	for _, i := range ifs {
		p.devs[i.Index] = i.Name
	}
	if p.emit != nil {
		p.out = make([]Socket, 0, 16)
	} else {
		p.out = make([]Socket, 0, capacityHint(netDir, doTCP, doUDP, states))
	}

	var dc *diagConn
	if !opts.ForceProc {
		var err error
		dc, err = dialDiagFn()
		if err != nil {
			note("netlink sock_diag unavailable (%v): sockets read from /proc/net", err)
			dc = nil
		} else {
			defer dc.Close()
		}
	}
	usedNL, usedProc := false, false
	procInet6, procInet, procUnix := false, false, false

	for _, t := range inetTables {
		if (t.proto == "tcp" && !doTCP) || (t.proto == "udp" && !doUDP) {
			continue
		}
		if dc != nil {
			proto := uint8(unix.IPPROTO_TCP)
			parse := parseTCP
			if t.proto == "udp" {
				proto, parse = unix.IPPROTO_UDP, parseUDP
			}
			err := dc.dump(inetDiagPortReq(t.fam, proto, states, opts.Port), p, parse)
			if err == nil {
				usedNL = true
				continue
			}
			if !fallbackErr(err) {
				return nil, fmt.Errorf("live: %s sock_diag dump: %w", t.name, err)
			}
			note("%s: sock_diag unavailable (%v): read from /proc/net/%s", t.name, err, t.file)
		}
		data, err := os.ReadFile(filepath.Join(netDir, t.file))
		if err != nil {
			note("%s: %v", t.name, err)
			continue
		}
		from := len(p.out)
		err = parseProcInet(p, data, t.proto, t.fam == unix.AF_INET6, states)
		if opts.Port != 0 {
			keep := p.out[:from]
			for _, s := range p.out[from:] {
				if s.Local.Port() == opts.Port {
					keep = append(keep, s)
				}
			}
			p.out = keep
		}
		p.drain(from)
		if err != nil {
			return nil, fmt.Errorf("live: %s/%s: %w", netDir, t.file, err)
		}
		usedProc, procInet = true, true
		if t.fam == unix.AF_INET6 {
			procInet6 = true
		}
	}
	if doUnix {
		done := false
		if dc != nil {
			err := dc.dump(unixDiagReq(states), p, parseUnix)
			switch {
			case err == nil:
				usedNL, done = true, true
			case !fallbackErr(err):
				return nil, fmt.Errorf("live: unix sock_diag dump: %w", err)
			default:
				note("unix: sock_diag unavailable (%v): read from /proc/net/unix", err)
			}
		}
		if !done {
			data, err := os.ReadFile(filepath.Join(netDir, "unix"))
			if err != nil {
				note("unix: %v", err)
			} else if err := parseProcUnix(p, data, states); err != nil {
				return nil, fmt.Errorf("live: %s/unix: %w", netDir, err)
			} else {
				p.drain(0)
				usedProc, procUnix = true, true
			}
		}
	}
	if p.badMsg > 0 {
		note("%d short sock_diag messages skipped", p.badMsg)
	}
	switch {
	case usedNL && usedProc:
		snap.Source = "netlink+proc"
	case usedNL:
		snap.Source = "netlink"
	case usedProc:
		snap.Source = "proc"
	default:
		return nil, fmt.Errorf("live: no socket table could be read: %v", snap.Missing)
	}
	if procInet6 {
		note("v6only unknown (read from /proc/net)")
	}
	if procInet {
		note("bound device unknown (read from /proc/net)")
		if doTCP && states&(1<<TCPBoundInactive) != 0 {
			note("TCP sockets bound but not listening are not listed in /proc/net")
		}
	}
	if procUnix {
		note("unix uid and queues unknown (read from /proc/net/unix)")
	}
	snap.Sockets = p.out
	if opts.SockOpts == OptsAuto || opts.SockOpts == OptsBPF || opts.SockOpts == OptsKernel {
		if err := readOptsBPF(snap, doTCP, doUDP, opts.OptsPort); err != nil {
			switch opts.SockOpts {
			case OptsBPF:
				return nil, fmt.Errorf("live: %w", err)
			case OptsKernel:
				note("%v: options not read", err)
			default:
				note("%v: options read from the owners' descriptors instead", err)
			}
		}
	}
	if opts.SocketsOnly {
		return snap, nil
	}

	if ifErr != nil {
		note("interfaces: %v", ifErr)
	}
	if err := readGroups(netDir, ifs); err != nil {
		note("multicast groups: %v", err)
	}
	snap.Interfaces = ifs
	var notes []string
	snap.Sysctls, notes = readSysctls(filepath.Join(opts.procRoot(), "sys"))
	snap.Missing = append(snap.Missing, notes...)
	return snap, nil
}

// capacityHint sizes the socket slice from /proc/net/sockstat{,6} when the
// request includes connected states, so that a big dump is not regrown.
func capacityHint(netDir string, tcp, udp bool, states uint32) int {
	const connected = 1<<TCPEstablished | 1<<TCPTimeWait | 1<<TCPSynRecv | 1<<TCPFinWait2
	if states&connected == 0 {
		return 64
	}
	n := 64
	for _, f := range []string{"sockstat", "sockstat6"} {
		data, err := os.ReadFile(filepath.Join(netDir, f))
		if err != nil {
			continue
		}
		for line := range bytes.Lines(data) {
			name, rest := nextField(line)
			switch {
			case tcp && (bytes.Equal(name, []byte("TCP:")) || bytes.Equal(name, []byte("TCP6:"))),
				udp && (bytes.Equal(name, []byte("UDP:")) || bytes.Equal(name, []byte("UDP6:"))):
			default:
				continue
			}
			for {
				var k, v []byte
				k, rest = nextField(rest)
				v, rest = nextField(rest)
				if len(k) == 0 {
					break
				}
				if string(k) == "inuse" || string(k) == "tw" {
					if x, ok := parseDec(v); ok && x < 1<<24 {
						n += int(x)
					}
				}
			}
		}
	}
	return n
}
