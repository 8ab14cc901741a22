package memnet_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"

	"github.com/socktab/socktab/memnet"
)

func TestZHTTP(t *testing.T) {
	n := memnet.New(memnet.Options{OS: "linux"})
	web := n.Host("web", "192.0.2.10/24", "2001:db8::10/64")
	client := n.Host("client", "192.0.2.20/24")
	l, _ := web.Listen("tcp", ":8080")
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hi ", r.RemoteAddr) }))
	hc := &http.Client{Transport: &http.Transport{DialContext: client.DialContext}}
	resp, err := hc.Get("http://web:8080/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	t.Log(string(b))
	_, err = web.Listen("tcp4", "0.0.0.0:8080")
	t.Log(errors.Is(err, syscall.EADDRINUSE), err)
	t.Log("\n" + web.String())
	l.Close()
	t.Log("\n" + web.String())
}
