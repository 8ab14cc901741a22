package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/inspect"
	"github.com/socktab/socktab/live"
	"github.com/socktab/socktab/report"
)

// CLIRunner runs a socktab command line (e.g. ["who", "tcp", "ADDR", "-o",
// "json"]) and returns what it wrote and its exit code. The dashboard's who,
// bind, audit and ports answers come from it, so that they are the CLI's
// answers byte for byte: the same JSON schema, the same text.
type CLIRunner func(args []string) (stdout, stderr []byte, code int, err error)

// api serves the dashboard's JSON.
type api struct {
	target   Target
	sockOpts string
	cli      CLIRunner
}

func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func badRequest(w http.ResponseWriter, format string, a ...any) {
	writeJSONResponse(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(format, a...)})
}

// targetArgs are the CLI's namespace flags for the server's target.
func (a *api) targetArgs() []string {
	switch {
	case a.target.AllNetns:
		return []string{"--all-netns"}
	case a.target.Netns != "":
		return []string{"--netns", a.target.Netns}
	case a.target.NetnsPID != 0:
		return []string{"--netns-pid", strconv.Itoa(a.target.NetnsPID)}
	}
	return nil
}

// cliAnswer is a CLI command's answer in both forms: JSON is exactly what
// `-o json` prints, Text what the command prints without it.
type cliAnswer struct {
	Command string          `json:"command"`
	Code    int             `json:"exit_code"`
	JSON    json.RawMessage `json:"json"`
	Text    string          `json:"text"`
	Notes   string          `json:"notes"`
}

// runCLI runs args with -o json and as text.
func (a *api) runCLI(w http.ResponseWriter, args []string) {
	if a.cli == nil {
		writeJSONResponse(w, http.StatusNotImplemented, map[string]string{"error": "no CLI runner"})
		return
	}
	args = append(args, a.targetArgs()...)
	out, errOut, code, err := a.cli(append(append([]string{}, args...), "-o", "json"))
	if err != nil {
		writeJSONResponse(w, http.StatusInternalServerError, map[string]string{"error": err.Error(), "notes": string(errOut)})
		return
	}
	if code == 2 {
		writeJSONResponse(w, http.StatusBadRequest, map[string]string{"error": strings.TrimSpace(string(errOut))})
		return
	}
	text, _, _, err := a.cli(args)
	if err != nil {
		writeJSONResponse(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if !json.Valid(out) {
		writeJSONResponse(w, http.StatusInternalServerError, map[string]string{"error": "the CLI printed no JSON", "notes": string(errOut)})
		return
	}
	writeJSONResponse(w, http.StatusOK, cliAnswer{Command: "socktab " + strings.Join(args, " "), Code: code,
		JSON: bytes.TrimSpace(out), Text: string(text), Notes: string(errOut)})
}

func (a *api) audit(w http.ResponseWriter, r *http.Request) { a.runCLI(w, []string{"audit"}) }
func (a *api) ports(w http.ResponseWriter, r *http.Request) { a.runCLI(w, []string{"ports"}) }

// who is `socktab who PROTO DST [--from SRC]`; the inputs are checked here
// so that none can be taken for a flag.
func (a *api) who(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	proto := q.Get("proto")
	if proto != "tcp" && proto != "udp" {
		badRequest(w, "proto %q: want tcp or udp", proto)
		return
	}
	dst, err := netip.ParseAddrPort(q.Get("dst"))
	if err != nil {
		badRequest(w, "dst %q: want ADDR:PORT or [ADDR]:PORT", q.Get("dst"))
		return
	}
	args := []string{"who", proto, dst.String()}
	if f := q.Get("from"); f != "" {
		src, err := netip.ParseAddrPort(f)
		if err != nil {
			badRequest(w, "from %q: want ADDR:PORT or [ADDR]:PORT", f)
			return
		}
		args = append(args, "--from", src.String())
	}
	a.runCLI(w, args)
}

// bind is `socktab bind PROTO ADDR [--reuseaddr --reuseport --v6only --uid N]`.
func (a *api) bind(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	proto := q.Get("proto")
	if proto != "tcp" && proto != "udp" {
		badRequest(w, "proto %q: want tcp or udp", proto)
		return
	}
	addr, err := netip.ParseAddrPort(q.Get("addr"))
	if err != nil {
		badRequest(w, "addr %q: want ADDR:PORT or [ADDR]:PORT", q.Get("addr"))
		return
	}
	args := []string{"bind", proto, addr.String()}
	for _, o := range []string{"reuseaddr", "reuseport", "v6only"} {
		if q.Get(o) == "1" || q.Get(o) == "true" || q.Get(o) == "on" {
			args = append(args, "--"+o)
		}
	}
	if u := q.Get("uid"); u != "" {
		uid, err := strconv.ParseUint(u, 10, 32)
		if err != nil {
			badRequest(w, "uid %q: want a number", u)
			return
		}
		args = append(args, "--uid", strconv.FormatUint(uid, 10))
	}
	a.runCLI(w, args)
}

// socketsPage is one page of the socket table.
type socketsPage struct {
	Namespaces []string        `json:"namespaces"`
	Total      int             `json:"total"`   // sockets in the chosen namespace(s)
	Matched    int             `json:"matched"` // after the filter
	Offset     int             `json:"offset"`
	Sockets    []report.Socket `json:"sockets"` // the CLI's ls -o json schema
	Notes      []string        `json:"notes"`
}

var sortKeys = map[string]func(a, b *live.Socket) int{
	"proto": func(a, b *live.Socket) int { return strings.Compare(a.Proto, b.Proto) },
	"state": func(a, b *live.Socket) int { return strings.Compare(a.State, b.State) },
	"local": func(a, b *live.Socket) int { return cmpEndpoint(a.Local, b.Local, a.Path, b.Path) },
	"remote": func(a, b *live.Socket) int {
		return cmpEndpoint(a.Remote, b.Remote, "", "")
	},
	"uid":    func(a, b *live.Socket) int { return cmpInt(int64(a.UID), int64(b.UID)) },
	"inode":  func(a, b *live.Socket) int { return cmpInt(int64(a.Inode), int64(b.Inode)) },
	"recv_q": func(a, b *live.Socket) int { return cmpInt(int64(a.RecvQ), int64(b.RecvQ)) },
	"send_q": func(a, b *live.Socket) int { return cmpInt(int64(a.SendQ), int64(b.SendQ)) },
	"process": func(a, b *live.Socket) int {
		return strings.Compare(inspect.Owners(a), inspect.Owners(b))
	},
	"netns": func(a, b *live.Socket) int { return strings.Compare(a.Netns, b.Netns) },
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpEndpoint(a, b netip.AddrPort, pa, pb string) int {
	if c := a.Compare(b); c != 0 {
		return c
	}
	return strings.Compare(pa, pb)
}

// matcher is the table's filter: every space-separated word must occur
// in the socket's protocol, state, addresses, path or holders (case
// folded). It reuses one buffer, so filtering 100,000 rows allocates
// nothing per row.
type matcher struct {
	words [][]byte
	buf   []byte
}

func newMatcher(q string) *matcher {
	m := &matcher{}
	for _, w := range strings.Fields(strings.ToLower(q)) {
		m.words = append(m.words, []byte(w))
	}
	return m
}

func (m *matcher) match(s *live.Socket) bool {
	if len(m.words) == 0 {
		return true
	}
	b := append(m.buf[:0], s.Proto...)
	b = append(b, ' ')
	b = append(b, s.State...)
	b = append(b, ' ')
	if s.Family == "unix" {
		b = append(b, s.Path...)
	} else {
		b = s.Local.AppendTo(b)
		b = append(b, ' ')
		if s.Remote.IsValid() {
			b = s.Remote.AppendTo(b)
		}
	}
	for _, p := range s.Processes {
		b = append(b, ' ')
		b = append(b, p.Command...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(p.PID), 10)
	}
	for i, c := range b { // fold ASCII case in place
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	m.buf = b
	for _, w := range m.words {
		if !bytes.Contains(b, w) {
			return false
		}
	}
	return true
}

const maxPage = 1000

// sockets serves one sorted, filtered page of the socket table, so the
// page never holds more rows than it shows.
func (a *api) sockets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, _ := strconv.Atoi(q.Get("offset"))
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 || limit > maxPage {
		limit = 100
	}
	if offset < 0 {
		offset = 0
	}
	sortBy := q.Get("sort")
	cmp, ok := sortKeys[sortBy]
	if sortBy != "" && !ok {
		badRequest(w, "sort %q: want one of proto, state, local, remote, uid, inode, recv_q, send_q, process, netns", sortBy)
		return
	}
	snaps, err := readFunc(a.target, live.Options{Processes: true})
	if err != nil {
		writeJSONResponse(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	page := socketsPage{Namespaces: []string{}, Sockets: []report.Socket{}, Notes: []string{}, Offset: offset}
	nsWanted, nsGiven := q.Get("netns"), q.Has("netns")
	proto, state := q.Get("proto"), q.Get("state")
	m := newMatcher(q.Get("q"))
	var rows []*live.Socket
	for _, s := range snaps {
		page.Namespaces = append(page.Namespaces, s.Netns)
		if nsGiven && s.Netns != nsWanted {
			continue
		}
		for _, m := range s.Missing {
			page.Notes = append(page.Notes, nsLabel(s.Netns)+m)
		}
		page.Total += len(s.Sockets)
		for i := range s.Sockets {
			x := &s.Sockets[i]
			if (proto == "" || x.Proto == proto) && (state == "" || x.State == state) && m.match(x) {
				rows = append(rows, x)
			}
		}
	}
	page.Matched = len(rows)
	if cmp != nil {
		desc := q.Get("desc") == "1"
		sort.SliceStable(rows, func(i, j int) bool {
			c := cmp(rows[i], rows[j])
			if desc {
				return c > 0
			}
			return c < 0
		})
	}
	for i := offset; i < len(rows) && i < offset+limit; i++ {
		page.Sockets = append(page.Sockets, report.FromLive(rows[i], len(rows[i].Processes) > 0))
	}
	writeJSONResponse(w, http.StatusOK, page)
}

func nsLabel(ns string) string {
	if ns == "" {
		return ""
	}
	return "[" + ns + "] "
}

// exposure is one listener on the exposure map: the audit's finding, and
// for every address of the host on its port that it does not receive, the
// socket that takes it instead (a more specific listener shadowing it).
type exposure struct {
	Netns    string        `json:"netns"`
	Socket   report.Socket `json:"socket"`
	Accepts  []addrClass   `json:"accepts"`
	Shadowed []shadow      `json:"shadowed"`
	Classes  []string      `json:"classes"`
	Severity string        `json:"severity"`
	Finding  string        `json:"finding"`
	Fix      string        `json:"fix"`
}

type addrClass struct {
	Addr  string `json:"addr"`
	Class string `json:"class"`
}

type shadow struct {
	Addr  string        `json:"addr"`
	Class string        `json:"class"`
	By    report.Socket `json:"by"`
}

// exposureMap asks the engine, for every listener and every address of
// the host, who receives a connection to that address and port.
func (a *api) exposureMap(w http.ResponseWriter, r *http.Request) {
	rd, err := Read(a.target, a.sockOpts)
	if err != nil {
		writeJSONResponse(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	// The holders of the listeners, as the CLI's audit shows them: one
	// listeners-only read with owners (a walk of /proc/*/fd).
	owners := map[uint64][]live.Process{}
	if snaps, err := readFunc(a.target, live.Options{TCP: true, UDP: true, States: live.StatesListening, Processes: true}); err == nil {
		for _, sn := range snaps {
			for _, ls := range sn.Sockets {
				if ls.Inode != 0 && len(ls.Processes) > 0 {
					owners[ls.Inode] = ls.Processes
				}
			}
		}
	}
	withOwners := func(ls *live.Socket) report.Socket {
		c := *ls
		if c.Processes == nil {
			c.Processes = owners[c.Inode]
		}
		return report.FromLive(&c, len(c.Processes) > 0)
	}
	out := []exposure{}
	for _, n := range rd.Namespaces {
		t := n.Table
		var addrs []netip.Addr
		for _, i := range t.Host.Ifaces {
			for _, p := range i.Addrs {
				addrs = append(addrs, p.Addr())
			}
		}
		for _, e := range n.Audit {
			ls := t.Live(e.Socket)
			if ls == nil {
				continue
			}
			x := exposure{Netns: n.Netns, Socket: withOwners(ls), Accepts: []addrClass{}, Shadowed: []shadow{},
				Classes: e.Classes, Severity: e.Severity.String(), Finding: e.Finding, Fix: e.Fix}
			if x.Classes == nil {
				x.Classes = []string{}
			}
			for _, ad := range e.Accepts {
				x.Accepts = append(x.Accepts, addrClass{ad.String(), inspect.Class(ad)})
			}
			for _, ad := range addrs {
				if !covers(e.Socket, ad) || containsAddr(e.Accepts, ad) {
					continue
				}
				d := t.Who(e.Socket.Proto(), inspect.DefaultSource(ad), netip.AddrPortFrom(ad, e.Socket.Local().Port()))
				if d.Socket == nil || d.Socket == e.Socket {
					continue
				}
				if by := t.Live(d.Socket); by != nil {
					x.Shadowed = append(x.Shadowed, shadow{ad.String(), inspect.Class(ad), withOwners(by)})
				}
			}
			out = append(out, x)
		}
	}
	writeJSONResponse(w, http.StatusOK, out)
}

// covers says whether a listener's bound address could take ad at all:
// the wildcard of its family (IPv4 too for a dual-stack [::]), or ad itself.
func covers(s *engine.Socket, ad netip.Addr) bool {
	l := s.Local().Addr()
	switch {
	case l.Unmap() == ad.Unmap():
		return true
	case !l.IsUnspecified():
		return false
	case s.Family() == engine.Inet:
		return ad.Is4()
	case s.V6Only():
		return ad.Is6() && !ad.Is4In6()
	}
	return true
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}
