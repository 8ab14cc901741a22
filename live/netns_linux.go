//go:build linux

package live

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted.
var NetnsDir = "/run/netns"

// nsKey identifies a namespace by the (dev, inode) of its nsfs file.
type nsKey struct{ dev, ino uint64 }

type nsTarget struct {
	key   nsKey
	label string
	path  string // file to open for setns
	pid   int    // 0 for /run/netns entries
	own   bool
}

// isNSFS tells whether path is a namespace file (nsfs), as opposed to the
// placeholder `ip netns add` creates before bind-mounting.
func isNSFS(path string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(path, &fs) == nil && fs.Type == unix.NSFS_MAGIC
}

func statNS(path string) (nsKey, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsKey{}, err
	}
	return nsKey{uint64(st.Dev), st.Ino}, nil
}

// RuntimeNetnsDirs are where container runtimes keep network namespace
// mounts outside /run/netns: Docker under /run/docker/netns (one file per
// sandbox), containerd and its shims somewhere under /run/containerd. They
// are searched a few levels deep for network-namespace files, labelled
// "docker:NAME" or "containerd:NAME". $SOCKTAB_NETNS_DIRS (a colon-
// separated list of DIR or LABEL=DIR) replaces the list.
var RuntimeNetnsDirs = []string{"docker=/run/docker/netns", "docker=/var/run/docker/netns",
	"containerd=/run/containerd", "containerd=/var/run/containerd"}

// nsGetNSType is ioctl NS_GET_NSTYPE (_IO(0xb7, 0x3), linux/nsfs.h).
const nsGetNSType = 0xb703

// isNetNS tells whether path is a network namespace file.
func isNetNS(path string) bool {
	if !isNSFS(path) {
		return false
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	t, err := unix.IoctlRetInt(fd, nsGetNSType)
	return err == nil && t == unix.CLONE_NEWNET
}

type mountedNS struct{ path, label string }

// runtimeNS finds the network namespace mounts of container runtimes.
func runtimeNS() []mountedNS {
	dirs := RuntimeNetnsDirs
	if v := os.Getenv("SOCKTAB_NETNS_DIRS"); v != "" {
		dirs = strings.Split(v, ":")
	}
	var out []mountedNS
	seenDir := map[nsKey]bool{}
	var walk func(dir, label string, depth int)
	walk = func(dir, label string, depth int) {
		k, err := statNS(dir)
		if err != nil || seenDir[k] {
			return
		}
		seenDir[k] = true
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			switch {
			case e.IsDir() && depth > 0 && e.Name() != "rootfs": // not a container's files
				walk(p, label, depth-1)
			case e.Type().IsRegular() && isNetNS(p):
				out = append(out, mountedNS{p, label + ":" + e.Name()})
			}
		}
	}
	for _, d := range dirs {
		label, dir, ok := strings.Cut(d, "=")
		if !ok {
			label, dir = filepath.Base(d), d
		}
		walk(dir, label, 4)
	}
	return out
}

// namedNS maps the namespaces under NetnsDir, then those container
// runtimes mounted, to their names.
func namedNS() map[nsKey]string {
	out := map[nsKey]string{}
	defer func() {
		for _, m := range runtimeNS() {
			if k, err := statNS(m.path); err == nil && out[k] == "" {
				out[k] = m.label
			}
		}
	}()
	ents, err := os.ReadDir(NetnsDir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		p := filepath.Join(NetnsDir, e.Name())
		if !isNSFS(p) {
			continue // not (or not yet) a namespace bind mount
		}
		k, err := statNS(p)
		if err != nil {
			continue
		}
		if old, ok := out[k]; !ok || e.Name() < old {
			out[k] = e.Name()
		}
	}
	return out
}

func pidLabel(procRoot string, pid int) string {
	return fmt.Sprintf("pid:%d(%s)", pid, readComm(procRoot, pid))
}

// ReadNetns reads one or more network namespaces: by name under /run/netns,
// by the namespace of a process, or every namespace in use (found through
// /proc/*/ns/net and /run/netns, deduplicated by the nsfs dev and inode).
// Each snapshot and its sockets are labelled: "" for the caller's own
// namespace, the name for a namespace under /run/netns, else
// "pid:N(comm)" after the lowest pid in it. Reading another namespace
// needs CAP_SYS_ADMIN (setns).
func ReadNetns(target NetnsTarget, opts Options) ([]*Snapshot, error) {
	if opts.Emit != nil && opts.Processes {
		return nil, errors.New("live: Emit cannot be combined with Processes")
	}
	if err := opts.checkSockOpts(); err != nil {
		return nil, err
	}
	procRoot := opts.procRoot()
	own, err := statNS("/proc/thread-self/ns/net")
	if err != nil {
		if own, err = statNS("/proc/self/ns/net"); err != nil {
			return nil, fmt.Errorf("live: own netns: %w", err)
		}
	}
	names := namedNS()
	label := func(k nsKey, pid int) string {
		switch {
		case k == own:
			return ""
		case names[k] != "":
			return names[k]
		}
		return pidLabel(procRoot, pid)
	}

	var targets []nsTarget
	var notes []string
	switch {
	case target.Name != "":
		if strings.ContainsRune(target.Name, '/') || target.Name == "." || target.Name == ".." {
			return nil, fmt.Errorf("live: bad netns name %q", target.Name)
		}
		p := filepath.Join(NetnsDir, target.Name)
		k, err := statNS(p)
		if err != nil {
			return nil, fmt.Errorf("live: netns %q: %w", target.Name, err)
		}
		l := target.Name
		if k == own {
			l = ""
		}
		targets = append(targets, nsTarget{key: k, label: l, path: p, own: k == own})
	case target.PID > 0:
		p := filepath.Join(procRoot, strconv.Itoa(target.PID), "ns", "net")
		k, err := statNS(p)
		if err != nil {
			return nil, fmt.Errorf("live: netns of pid %d: %w", target.PID, err)
		}
		targets = append(targets, nsTarget{key: k, label: label(k, target.PID), path: p, pid: target.PID, own: k == own})
	case target.All:
		targets, notes = allNamespaces(procRoot, own, names, label)
	default:
		return nil, errors.New("live: empty NetnsTarget")
	}

	var snaps []*Snapshot
	for _, t := range targets {
		var snap *Snapshot
		var err error
		if t.own {
			snap, err = collect(opts, t.label)
		} else {
			snap, err = collectIn(t.path, t.key, opts, t.label)
		}
		if err != nil {
			// With All, namespaces come and go while they are read: one
			// that fails is noted, not fatal (the caller's own is).
			if target.All && !t.own {
				if errors.Is(err, os.ErrNotExist) || errors.Is(err, errNSChanged) {
					notes = append(notes, fmt.Sprintf("netns %s vanished while reading", t.label))
				} else {
					notes = append(notes, fmt.Sprintf("netns %s not read: %v", t.label, err))
				}
				continue
			}
			return nil, fmt.Errorf("live: netns %q: %w", t.label, err)
		}
		snaps = append(snaps, snap)
	}
	for _, s := range snaps {
		s.Missing = append(s.Missing, notes...)
	}
	finish(opts, snaps)
	return snaps, nil
}

// allNamespaces lists every namespace in use: the caller's own first, then
// the named ones by name, then the others by lowest pid.
func allNamespaces(procRoot string, own nsKey, names map[nsKey]string, label func(nsKey, int) string) ([]nsTarget, []string) {
	var notes []string
	seen := map[nsKey]*nsTarget{}
	var order []nsKey
	add := func(k nsKey, path string, pid int) {
		// First seen wins: named entries come first, then pids ascending.
		if _, ok := seen[k]; ok {
			return
		}
		seen[k] = &nsTarget{key: k, path: path, pid: pid, own: k == own}
		order = append(order, k)
	}
	ents, _ := os.ReadDir(NetnsDir)
	for _, e := range ents {
		p := filepath.Join(NetnsDir, e.Name())
		if k, err := statNS(p); err == nil && names[k] == e.Name() {
			add(k, p, 0)
		}
	}
	for _, m := range runtimeNS() {
		if k, err := statNS(m.path); err == nil && names[k] == m.label {
			add(k, m.path, 0)
		}
	}
	d, err := os.Open(procRoot)
	if err == nil {
		pnames, _ := d.Readdirnames(-1)
		d.Close()
		var pids []int
		for _, n := range pnames {
			if pid, err := strconv.Atoi(n); err == nil && pid > 0 {
				pids = append(pids, pid)
			}
		}
		slices.Sort(pids)
		denied := 0
		for _, pid := range pids {
			p := filepath.Join(procRoot, strconv.Itoa(pid), "ns", "net")
			k, err := statNS(p)
			if err != nil {
				if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
					denied++
				}
				continue
			}
			add(k, p, pid)
		}
		if denied > 0 && os.Geteuid() != 0 {
			notes = append(notes, fmt.Sprintf("namespaces of %d processes unreadable (need root)", denied))
		} else if denied > 0 {
			notes = append(notes, fmt.Sprintf("namespaces of %d processes unreadable", denied))
		}
	} else {
		notes = append(notes, fmt.Sprintf("namespaces of processes: %v", err))
	}
	if _, ok := seen[own]; !ok {
		seen[own] = &nsTarget{key: own, own: true}
		order = append(order, own)
	}
	var out []nsTarget
	for _, k := range order {
		t := seen[k]
		t.label = label(k, t.pid)
		out = append(out, *t)
	}
	rank := func(t nsTarget) int {
		switch {
		case t.own:
			return 0
		case t.pid == 0 || names[t.key] != "":
			return 1
		}
		return 2
	}
	slices.SortStableFunc(out, func(a, b nsTarget) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		if rank(a) == 1 {
			return strings.Compare(a.label, b.label)
		}
		return a.pid - b.pid
	})
	return out, notes
}

var errNSChanged = errors.New("namespace file no longer refers to the same namespace")

// collectIn enters the namespace at path on a locked OS thread, collects
// there and goes back. If the thread cannot be restored it is left locked,
// so the Go runtime terminates it instead of reusing it.
func collectIn(path string, key nsKey, opts Options, label string) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if (nsKey{uint64(st.Dev), st.Ino}) != key {
		return nil, errNSChanged
	}
	type result struct {
		snap *Snapshot
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("own netns: %w", err)}
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		snap, err := collect(opts, label)
		if rerr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); rerr != nil {
			// Leave the thread locked: it dies with this goroutine.
			ch <- result{err: fmt.Errorf("restoring netns: %w", rerr)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{snap, err}
	}()
	r := <-ch
	return r.snap, r.err
}
