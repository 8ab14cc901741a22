// Command populate holds TCP connections open in the current network
// namespace for the live-inspection benchmark: one listener on
// 127.0.0.1:PORT and N loopback connections to it (2N+1 sockets). It prints
// "ready" and waits until its standard input closes.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	conns := flag.Int("conns", 1000, "connections to hold (each is two sockets)")
	port := flag.Int("port", 10000, "listener port on 127.0.0.1")
	flag.Parse()
	ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "populate:", err)
		os.Exit(1)
	}
	accepted := make(chan net.Conn, *conns)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	held := make([]net.Conn, 0, 2**conns)
	for i := 0; i < *conns; i++ {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			fmt.Fprintf(os.Stderr, "populate: dial %d: %v\n", i, err)
			os.Exit(1)
		}
		held = append(held, c, <-accepted)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	_ = held
}
