package memnet_test

// net/http end to end over memnet: a server on one host, a client on
// another, plain and with crypto/tls (a certificate made for the test),
// and inside a testing/synctest bubble, where a client's 5 s timeout
// against a handler that sleeps 10 s passes in virtual time.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/socktab/socktab/memnet"
)

// webAndClient makes a network with a server host "web" (192.0.2.10,
// 2001:db8::10) and a host "client" (192.0.2.20) on one link, and serves
// h on web's ":port" through srv (or a plain http.Server when srv is nil).
// The client's http.Client dials through memnet.
func webAndClient(t *testing.T, port string, srv *http.Server, tlsCfg *tls.Config) (*http.Client, *http.Transport) {
	t.Helper()
	n := memnet.New(memnet.Options{OS: "linux"})
	web := n.Host("web", "192.0.2.10/24", "2001:db8::10/64")
	client := n.Host("client", "192.0.2.20/24", "2001:db8::20/64")
	l, err := web.Listen("tcp", ":"+port)
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		l = tls.NewListener(l, tlsCfg)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	tr := &http.Transport{DialContext: client.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, tr
}

// echoPeer answers with the method, path and the peer's address.
var echoPeer = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s from %s tls=%v body=%q", r.Method, r.URL.Path, hostOf(r.RemoteAddr), r.TLS != nil, body)
})

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "bad address " + addr
	}
	return h
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

func TestHTTP(t *testing.T) {
	c, _ := webAndClient(t, "8080", &http.Server{Handler: echoPeer}, nil)
	for url, want := range map[string]string{
		"http://web:8080/hello":            `GET /hello from 192.0.2.20 tls=false body=""`,
		"http://192.0.2.10:8080/by-ipv4":   `GET /by-ipv4 from 192.0.2.20 tls=false body=""`,
		"http://[2001:db8::10]:8080/by-v6": `GET /by-v6 from 2001:db8::20 tls=false body=""`,
	} {
		if got := get(t, c, url); got != want {
			t.Errorf("GET %s: %q, want %q", url, got, want)
		}
	}
	resp, err := c.Post("http://web:8080/upload", "text/plain", strings.NewReader(strings.Repeat("x", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `POST /upload from 192.0.2.20 tls=false body="` + strings.Repeat("x", 1<<20) + `"`; string(b) != want {
		t.Errorf("POST of 1 MiB: got %d bytes back, want %d", len(b), len(want))
	}
	if _, err := c.Get("http://web:9999/"); !isRefused(err) {
		t.Errorf("GET on a closed port: %v, want ECONNREFUSED", err)
	}
	if _, err := c.Get("http://nowhere:8080/"); !isNotFound(err) {
		t.Errorf("GET of an unknown host: %v, want a *net.DNSError with IsNotFound", err)
	}
}

func isRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && strings.Contains(err.Error(), "connection refused")
}

func isNotFound(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns) && dns.IsNotFound
}

// selfSigned makes a certificate for the names and addresses, and a pool
// that trusts it.
func selfSigned(t *testing.T, names []string, ips ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

func TestHTTPS(t *testing.T) {
	cert, pool := selfSigned(t, []string{"web"}, "192.0.2.10")
	srvCfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	c, tr := webAndClient(t, "8443", &http.Server{Handler: echoPeer}, srvCfg)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tr.ForceAttemptHTTP2 = true
	for url, want := range map[string]string{
		"https://web:8443/secure":         `GET /secure from 192.0.2.20 tls=true body=""`,
		"https://192.0.2.10:8443/by-ipv4": `GET /by-ipv4 from 192.0.2.20 tls=true body=""`,
	} {
		if got := get(t, c, url); got != want {
			t.Errorf("GET %s: %q, want %q", url, got, want)
		}
	}
	resp, err := c.Get("https://web:8443/proto")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS == nil || !resp.TLS.HandshakeComplete || resp.Proto != "HTTP/2.0" {
		t.Errorf("response over %s, TLS %v: want HTTP/2.0 after a TLS handshake", resp.Proto, resp.TLS != nil)
	}
	// A client that does not trust the certificate fails the handshake.
	untrusting := &http.Client{Transport: &http.Transport{DialContext: tr.DialContext}}
	var unknown x509.UnknownAuthorityError
	if _, err := untrusting.Get("https://web:8443/"); !errors.As(err, &unknown) {
		t.Errorf("GET without trusting the certificate: %v, want x509.UnknownAuthorityError", err)
	}
	untrusting.CloseIdleConnections()
}

// TestClientTimeoutInSynctest: inside a synctest bubble, memnet's waits are
// durably blocking, so virtual time jumps over the 5 s client timeout; the
// test runs in far under a second of wall time without a word about wall
// time in its assertions.
func TestClientTimeoutInSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slept := make(chan time.Duration, 1)
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			time.Sleep(10 * time.Second)
			slept <- time.Since(start)
			fmt.Fprint(w, "too late")
		})
		c, _ := webAndClient(t, "8080", &http.Server{Handler: slow}, nil)
		c.Timeout = 5 * time.Second
		start := time.Now()
		_, err := c.Get("http://web:8080/slow")
		elapsed := time.Since(start)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("GET against a 10 s handler with a 5 s timeout: %v, want a timeout", err)
		}
		if elapsed != 5*time.Second {
			t.Errorf("the timeout came after %v of virtual time, want exactly 5s", elapsed)
		}
		if d := <-slept; d != 10*time.Second {
			t.Errorf("the handler slept %v of virtual time, want 10s", d)
		}
	})
}
