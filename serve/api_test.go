package serve

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/socktab/socktab/live"
)

func getJSON(t *testing.T, h http.Handler, url string, v any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	if v != nil && rec.Code == 200 {
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("%s: %v: %s", url, err, rec.Body)
		}
	}
	return rec.Code
}

// bigHost is a namespace with n established connections plus the fake
// host's sockets.
func bigHost(n int) *live.Snapshot {
	s := fakeHost("")
	for i := 0; i < n; i++ {
		s.Sockets = append(s.Sockets, live.Socket{Proto: "tcp", Family: "inet", State: "ESTAB",
			Local:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(10000+i%50000)),
			Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(i >> 16), byte(i >> 8)}), uint16(i)),
			Inode:  uint64(1000000 + i)})
	}
	return s
}

func TestSocketsPagedFilteredSorted(t *testing.T) {
	fakeRead(t, bigHost(100000))
	h := Handler(Config{Metrics: DefaultMetricsOptions})
	// Decoded apart from the Go type, as the page reads it.
	var p struct {
		Total, Matched int
		Sockets        []struct {
			Local string
			Inode uint64
		}
	}
	if code := getJSON(t, h, "/api/sockets?limit=50&sort=inode&desc=1", &p); code != 200 {
		t.Fatalf("status %d", code)
	}
	if p.Total < 100000 || p.Matched != p.Total || len(p.Sockets) != 50 {
		t.Fatalf("total %d matched %d page %d: want every socket counted and 50 sent", p.Total, p.Matched, len(p.Sockets))
	}
	if p.Sockets[0].Inode != 1000000+99999 || p.Sockets[1].Inode != 1000000+99998 {
		t.Errorf("sort inode desc: first %d, %d", p.Sockets[0].Inode, p.Sockets[1].Inode)
	}
	getJSON(t, h, "/api/sockets?q=listen+0.0.0.0:80&limit=1000", &p)
	if p.Matched != 1 || p.Sockets[0].Local != "0.0.0.0:80" {
		t.Errorf("filter 'listen 0.0.0.0:80': %d matches %+v", p.Matched, p.Sockets)
	}
	getJSON(t, h, "/api/sockets?proto=unix", &p)
	if p.Matched != 1 {
		t.Errorf("proto=unix: %d matches, want 1", p.Matched)
	}
	getJSON(t, h, "/api/sockets?offset=99990&limit=1000", &p)
	if len(p.Sockets) != p.Matched-99990 {
		t.Errorf("last page: %d rows of %d", len(p.Sockets), p.Matched)
	}
	if code := getJSON(t, h, "/api/sockets?sort=nonsense", nil); code != 400 {
		t.Errorf("bad sort key: status %d, want 400", code)
	}
}

func BenchmarkSocketsPage100k(b *testing.B) {
	snap := bigHost(100000)
	old := readFunc
	readFunc = func(Target, live.Options) ([]*live.Snapshot, error) { return []*live.Snapshot{snap}, nil }
	defer func() { readFunc = old }()
	h := Handler(Config{Metrics: DefaultMetricsOptions})
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/sockets?limit=200&sort=local&q=127.0.0", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// The forms' inputs reach the CLI only as checked values: nothing can be
// taken for a flag, and bad input is a 400 naming the field.
func TestWhoAndBindArguments(t *testing.T) {
	var got []string
	cli := func(args []string) ([]byte, []byte, int, error) {
		got = append(got, strings.Join(args, " "))
		if args[len(args)-1] == "json" {
			return []byte(`[{"result":"EADDRINUSE"}]`), nil, 1, nil
		}
		return []byte("text\n"), nil, 1, nil
	}
	h := Handler(Config{Metrics: DefaultMetricsOptions, CLI: cli, Target: Target{Netns: "blue"}})
	var ans cliAnswer
	if code := getJSON(t, h, "/api/bind?proto=tcp&addr=203.0.113.5:8080&reuseport=1&uid=1000", &ans); code != 200 {
		t.Fatalf("bind: status %d", code)
	}
	want := "bind tcp 203.0.113.5:8080 --reuseport --uid 1000 --netns blue"
	if len(got) != 2 || got[0] != want+" -o json" || got[1] != want {
		t.Errorf("CLI runs %q, want %q with and without -o json", got, want)
	}
	if ans.Code != 1 || ans.Text != "text\n" || string(ans.JSON) != `[{"result":"EADDRINUSE"}]` {
		t.Errorf("answer %+v", ans)
	}
	got = nil
	getJSON(t, h, "/api/who?proto=udp&dst=[2001:db8::1]:53&from=[2001:db8::2]:5353", &ans)
	if len(got) != 2 || got[1] != "who udp [2001:db8::1]:53 --from [2001:db8::2]:5353 --netns blue" {
		t.Errorf("who runs %q", got)
	}
	for _, u := range []string{"/api/bind?proto=tcp&addr=--help", "/api/bind?proto=sctp&addr=1.2.3.4:5",
		"/api/bind?proto=tcp&addr=1.2.3.4:5&uid=-1", "/api/who?proto=tcp&dst=-o", "/api/who?proto=tcp&dst=1.2.3.4:5&from=--all-netns"} {
		got = nil
		if code := getJSON(t, h, u, nil); code != 400 || got != nil {
			t.Errorf("%s: status %d, CLI ran %q; want 400 and no run", u, code, got)
		}
	}
}

func TestDashboardPageIsSelfContained(t *testing.T) {
	h := Handler(Config{Metrics: DefaultMetricsOptions})
	for _, f := range []string{"/", "/app.js", "/style.css"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", f, nil))
		if rec.Code != 200 {
			t.Fatalf("%s: %d", f, rec.Code)
		}
		body := rec.Body.String()
		for _, bad := range []string{"http://", "https://", "//cdn", "innerHTML"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q: the page must load nothing from elsewhere and never parse untrusted strings as HTML", f, bad)
			}
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: CSP %q", f, csp)
		}
	}
	if code := getJSON(t, Handler(Config{MetricsOnly: true, Metrics: DefaultMetricsOptions}), "/api/sockets", nil); code != 404 {
		t.Errorf("--metrics-only must not serve the API: %d", code)
	}
}
