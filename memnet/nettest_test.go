package memnet_test

import (
	"net"
	"testing"

	"github.com/socktab/socktab/memnet"
	"golang.org/x/net/nettest"
)

// TestConn runs the net.Conn conformance suite of golang.org/x/net/nettest
// (basic I/O, ping-pong, racy reads and writes, read and write timeouts,
// close while blocked, concurrent method calls) on memnet connections.
func TestConn(t *testing.T) {
	t.Run("tcp-one-host", func(t *testing.T) {
		nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
			h := memnet.New(memnet.Options{}).Host("web", "192.0.2.10/24")
			return pipe(h, h, "tcp", "127.0.0.1:0")
		})
	})
	t.Run("tcp-two-hosts", func(t *testing.T) {
		nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
			n := memnet.New(memnet.Options{})
			a, b := n.Host("a", "192.0.2.1/24"), n.Host("b", "192.0.2.2/24")
			return pipe(a, b, "tcp", "192.0.2.1:0")
		})
	})
	t.Run("unix", func(t *testing.T) {
		nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
			h := memnet.New(memnet.Options{}).Host("web")
			return pipe(h, h, "unix", "/tmp/app.sock")
		})
	})
}

// pipe listens on server, dials from client and returns both ends.
func pipe(server, client *memnet.Host, network, address string) (c1, c2 net.Conn, stop func(), err error) {
	l, err := server.Listen(network, address)
	if err != nil {
		return nil, nil, nil, err
	}
	defer l.Close()
	c1, err = client.Dial(network, l.Addr().String())
	if err != nil {
		return nil, nil, nil, err
	}
	c2, err = l.Accept()
	if err != nil {
		c1.Close()
		return nil, nil, nil, err
	}
	return c1, c2, func() { c1.Close(); c2.Close() }, nil
}
