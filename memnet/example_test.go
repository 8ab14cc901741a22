package memnet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/socktab/socktab/memnet"
)

// An HTTP server and its client on two hosts of one in-memory network:
// no real port is taken, and the server sees the client's address.
func Example_httpServer() {
	n := memnet.New(memnet.Options{OS: "linux"})
	web := n.Host("web", "192.0.2.10/24")
	laptop := n.Host("laptop", "192.0.2.20/24")

	l, err := web.Listen("tcp", ":8080")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.RemoteAddr[:len("192.0.2.20")])
	})}
	go srv.Serve(l)
	defer srv.Close()

	client := &http.Client{Transport: &http.Transport{DialContext: laptop.DialContext}}
	resp, err := client.Get("http://web:8080/")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	// Output: 200 OK hello 192.0.2.20
}

// On Linux, net.Listen("tcp", ":8080") is a dual-stack socket: it holds
// the port for IPv4 too, so a second server on 127.0.0.1:8080 fails.
// A test on memnet catches this before production does; the error is the
// one package net returns (errors.Is works with the errno) and says which
// socket is in the way.
func Example_dualStackConflict() {
	n := memnet.New(memnet.Options{OS: "linux"})
	h := n.Host("app", "192.0.2.10/24")

	l, err := h.Listen("tcp", ":8080")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	fmt.Println("first listener:", l.Addr())

	_, err = h.Listen("tcp4", "127.0.0.1:8080")
	fmt.Println("EADDRINUSE:", errors.Is(err, syscall.EADDRINUSE))
	fmt.Println(err)
	// Output:
	// first listener: [::]:8080
	// EADDRINUSE: true
	// listen tcp4 127.0.0.1:8080: bind: address already in use (EADDRINUSE: a listener holds an overlapping address; SO_REUSEADDR never shares with a listener on Linux (tcp dual-stack [::]:8080 LISTEN))
}

// A partition between two hosts: a dial waits for an answer that never
// comes, until its deadline; after Heal the hosts talk again.
func Example_partition() {
	n := memnet.New(memnet.Options{})
	db := n.Host("db", "192.0.2.5/24")
	app := n.Host("app", "192.0.2.6/24")
	l, err := db.Listen("tcp", ":5432")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	n.Partition(app, db)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = app.DialContext(ctx, "tcp", "db:5432")
	fmt.Println("partitioned:", err)

	n.Heal(app, db)
	conn, err := app.DialContext(context.Background(), "tcp", "db:5432")
	fmt.Println("healed, dial:", err)
	if err == nil {
		conn.Close()
	}
	// Output:
	// partitioned: dial tcp 192.0.2.5:5432: i/o timeout
	// healed, dial: <nil>
}
