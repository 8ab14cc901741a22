package serve

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckListen(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	auth := writeFile(t, "auth.yml", "basic_auth_users:\n  prom: "+string(hash)+"\n")
	empty := writeFile(t, "empty.yml", "http_server_config:\n  http2: false\n")
	bad := writeFile(t, "bad.yml", "no_such_key: 1\n")
	for _, c := range []struct {
		cfg  Config
		want string // "" = accepted, else a piece of the error
	}{
		{Config{Listen: "127.0.0.1:9810"}, ""},
		{Config{Listen: "[::1]:9810"}, ""},
		{Config{Listen: "localhost:9810"}, ""},
		{Config{Listen: "0.0.0.0:9810"}, "not a loopback address"},
		{Config{Listen: ":9810"}, "not a loopback address"},
		{Config{Listen: "192.0.2.1:9810", InsecureListen: true}, ""},
		{Config{Listen: "0.0.0.0:9810", WebConfig: auth}, ""},
		{Config{Listen: "0.0.0.0:9810", WebConfig: empty}, "enables neither TLS"},
		{Config{Listen: "127.0.0.1:9810", WebConfig: bad}, "no_such_key"},
		{Config{Listen: "0.0.0.0:9810", WebConfig: "/nonexistent.yml"}, "nonexistent"},
		{Config{Listen: "9810"}, "want HOST:PORT"},
	} {
		err := c.cfg.CheckListen()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", c.cfg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want one containing %q", c.cfg, err, c.want)
		}
	}
}

// serveForTest runs Serve on a free loopback port until the test ends.
func serveForTest(t *testing.T, c Config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	c.Listen = "127.0.0.1:0"
	go func() { done <- Serve(ctx, c, func(a net.Addr) { addr <- a }) }()
	var a net.Addr
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + a.String()
}

func TestBasicAuthAndReadOnly(t *testing.T) {
	fakeRead(t, fakeHost(""))
	hash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	url := serveForTest(t, Config{WebConfig: writeFile(t, "auth.yml", "basic_auth_users:\n  prom: "+string(hash)+"\n"), Metrics: DefaultMetricsOptions})
	get := func(method, user, pass string) int {
		req, _ := http.NewRequest(method, url+"/metrics", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get("GET", "", ""); s != http.StatusUnauthorized {
		t.Errorf("no credentials: status %d, want 401", s)
	}
	if s := get("GET", "prom", "wrong"); s != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", s)
	}
	if s := get("GET", "prom", "secret"); s != http.StatusOK {
		t.Errorf("right password: status %d, want 200", s)
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		if s := get(m, "prom", "secret"); s != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405 (read-only)", m, s)
		}
	}
}
