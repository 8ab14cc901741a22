package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Net is one network under test, made fresh for each behaviour, with two
// hosts:
//
//	"a": lo (127.0.0.1/8, ::1) and eth0 with 192.0.2.1/24, 2001:db8::1/64
//	"b": lo and eth0 with 192.0.2.2/24, 2001:db8::2/64, on one link with a
type Net interface {
	Host(name string) Host
	// Partition cuts the link between a and b (true) or heals it (false):
	// packets on it are lost, nothing is reported to either side.
	Partition(cut bool) error
}

// Host is the part of a host the behaviours use: the shapes of package
// net, with the socket options a program sets through ListenConfig and
// Dialer.
type Host interface {
	Listen(o Opts, network, address string) (net.Listener, error)
	ListenPacket(o Opts, network, address string) (net.PacketConn, error)
	Dial(ctx context.Context, o Opts, network, address string) (net.Conn, error)
	// SetPortRange sets net.ipv4.ip_local_port_range (both families).
	SetPortRange(lo, hi int) error
	// Path names a unix socket file in this host's file namespace.
	Path(name string) string
	// Remove removes a file from this host's file namespace.
	Remove(path string) error
}

// Opts are the socket options of one Listen, ListenPacket or Dial.
type Opts struct {
	ReuseAddr *bool // nil: Go's default (on for TCP listeners, off otherwise)
	ReusePort bool
	V6Only    *bool    // nil: Go's default (on for tcp6/udp6, off for a dual-stack "tcp"/"udp")
	LocalAddr net.Addr // Dial only
}

var (
	on, off = ptr(true), ptr(false)
	def     Opts
)

func ptr[T any](v T) *T { return &v }

// network is how a test makes a fresh network of one kind.
type network struct {
	name string
	// make returns a fresh network, or the reason it cannot run here.
	make func(t *testing.T) (Net, error)
	// gaps names behaviours this network does not model, with the reason;
	// they are skipped on it and listed in the README.
	gaps map[string]string
}

// networks are registered by the files that implement them.
var networks []network

type behaviour struct {
	name string
	run  func(c *C)
}

// suites are the behaviour lists of each file, joined in TestConformance.
var suites [][]behaviour

// TestConformance runs every behaviour on every network and checks that
// each network records the same transcript.
func TestConformance(t *testing.T) {
	var all []behaviour
	for _, s := range suites {
		all = append(all, s...)
	}
	if len(all) < 60 {
		t.Errorf("only %d behaviours; the suite promises at least 60", len(all))
	}
	seen := map[string]bool{}
	for _, b := range all {
		if seen[b.name] {
			t.Fatalf("behaviour %q twice", b.name)
		}
		seen[b.name] = true
	}
	if len(networks) == 0 {
		t.Fatal("no network registered")
	}
	for _, b := range all {
		t.Run(b.name, func(t *testing.T) {
			var first []string
			firstName := ""
			for _, nw := range networks {
				var got []string
				ok := t.Run(nw.name, func(t *testing.T) {
					if why, gap := nw.gaps[b.name]; gap {
						t.Skip("not modelled: " + why)
					}
					n, err := nw.make(t)
					if err != nil {
						if os.Getenv("CI") == "true" {
							t.Fatalf("%s network unavailable in CI: %v", nw.name, err)
						}
						t.Skipf("%s network unavailable: %v", nw.name, err)
					}
					c := &C{T: t, n: n}
					b.run(c)
					got = c.log
				})
				if !ok || got == nil {
					continue
				}
				if first == nil {
					first, firstName = got, nw.name
				} else if !slices.Equal(first, got) {
					t.Errorf("transcripts differ:\n%s:\n  %s\n%s:\n  %s", firstName,
						strings.Join(first, "\n  "), nw.name, strings.Join(got, "\n  "))
				}
			}
		})
	}
}

// C is one behaviour's run on one network: assertions that also record a
// transcript line, so that two networks can be compared line by line.
type C struct {
	*testing.T
	n   Net
	log []string
}

func (c *C) A() Host { return c.n.Host("a") }
func (c *C) B() Host { return c.n.Host("b") }

// note records one observation.
func (c *C) note(format string, args ...any) {
	c.log = append(c.log, fmt.Sprintf(format, args...))
}

// want checks got against want and records it.
func (c *C) want(step, got, want string) {
	c.Helper()
	c.note("%s: %s", step, got)
	if got != want {
		c.Errorf("%s: got %s, want %s", step, got, want)
	}
}

// wantErr checks an error's class (see errClass) and records it.
func (c *C) wantErr(step string, err error, want string) {
	c.Helper()
	c.want(step, errClass(err), want)
}

// wantAddr checks an address as "network host:port"; a want ending in
// ":*" accepts any port and records it as "*".
func (c *C) wantAddr(step string, a net.Addr, want string) {
	c.Helper()
	got := addrString(a)
	if strings.HasSuffix(want, ":*") {
		if i := strings.LastIndex(got, ":"); i >= 0 {
			if _, err := strconv.Atoi(got[i+1:]); err == nil {
				got = got[:i] + ":*"
			}
		}
	}
	c.want(step, got, want)
}

// wantUnix checks a unix address, with h's socket directory written "$DIR/".
func (c *C) wantUnix(step string, h Host, a net.Addr, want string) {
	c.Helper()
	dir := strings.TrimSuffix(h.Path("x"), "x")
	c.want(step, strings.ReplaceAll(addrString(a), dir, "$DIR/"), want)
}

func addrString(a net.Addr) string {
	if a == nil {
		return "<nil>"
	}
	switch a.(type) {
	case *net.TCPAddr, *net.UDPAddr, *net.UnixAddr:
	default:
		return fmt.Sprintf("%T %s %s", a, a.Network(), a)
	}
	return a.Network() + " " + a.String()
}

// port returns an address's port, or -1.
func port(a net.Addr) int {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.Port
	case *net.UDPAddr:
		return a.Port
	}
	return -1
}

// errClass names an error the way a program would test it: the
// *net.OpError's Op, the *os.SyscallError's system call, and the errno (or
// timeout, closed, EOF, canceled). "ok" for nil.
func errClass(err error) string {
	if err == nil {
		return "ok"
	}
	var parts []string
	var op *net.OpError
	if errors.As(err, &op) {
		parts = append(parts, op.Op)
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		parts = append(parts, se.Syscall)
	}
	var errno syscall.Errno
	what := ""
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		// A dial whose context runs out fails with either, depending on
		// where package net notices: os.ErrDeadlineExceeded while waiting
		// for connect, its "i/o timeout" mapped from the context before.
		what = "timeout"
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			what += "(not a net.Error with Timeout)"
		}
	case errors.Is(err, context.Canceled):
		what = "canceled"
	case errors.Is(err, net.ErrClosed):
		what = "closed"
	case errors.Is(err, io.EOF):
		what = "EOF"
	case errors.As(err, &errno):
		what = errnoName(errno)
	default:
		what = fmt.Sprintf("other(%T %v)", err, err)
	}
	if len(parts) == 0 {
		return what
	}
	return strings.Join(parts, "/") + ": " + what
}

var errnoNames = map[syscall.Errno]string{
	syscall.EADDRINUSE: "EADDRINUSE", syscall.EADDRNOTAVAIL: "EADDRNOTAVAIL",
	syscall.ECONNREFUSED: "ECONNREFUSED", syscall.ECONNRESET: "ECONNRESET",
	syscall.EPIPE: "EPIPE", syscall.EAGAIN: "EAGAIN", syscall.ENOENT: "ENOENT",
	syscall.ENETUNREACH: "ENETUNREACH", syscall.EHOSTUNREACH: "EHOSTUNREACH",
	syscall.EMSGSIZE: "EMSGSIZE", syscall.EPROTOTYPE: "EPROTOTYPE",
	syscall.EINVAL: "EINVAL", syscall.EAFNOSUPPORT: "EAFNOSUPPORT",
	syscall.ETIMEDOUT: "ETIMEDOUT", syscall.ENOTCONN: "ENOTCONN",
}

func errnoName(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}

// Helpers that fail the behaviour at once. Every blocking step has a
// generous deadline, so a network that loses a packet fails instead of
// hanging; no step waits on time to pass unless the behaviour is about
// a deadline.
const patience = 10 * time.Second

func (c *C) listen(h Host, o Opts, network, address string) net.Listener {
	c.Helper()
	l, err := h.Listen(o, network, address)
	if err != nil {
		c.Fatalf("listen %s %s: %v", network, address, err)
	}
	c.Cleanup(func() { l.Close() })
	return l
}

func (c *C) listenPacket(h Host, o Opts, network, address string) net.PacketConn {
	c.Helper()
	p, err := h.ListenPacket(o, network, address)
	if err != nil {
		c.Fatalf("listen %s %s: %v", network, address, err)
	}
	c.Cleanup(func() { p.Close() })
	p.SetDeadline(time.Now().Add(patience))
	return p
}

// tryListen records a Listen's result and closes the listener it got.
func (c *C) tryListen(step string, h Host, o Opts, network, address, want string) net.Listener {
	c.Helper()
	l, err := h.Listen(o, network, address)
	c.wantErr(step, err, want)
	if err == nil {
		c.Cleanup(func() { l.Close() })
	}
	return l
}

func (c *C) tryListenPacket(step string, h Host, o Opts, network, address, want string) net.PacketConn {
	c.Helper()
	p, err := h.ListenPacket(o, network, address)
	c.wantErr(step, err, want)
	if err == nil {
		c.Cleanup(func() { p.Close() })
		p.SetDeadline(time.Now().Add(patience))
	}
	return p
}

func (c *C) dialOpts(h Host, o Opts, network, address string) net.Conn {
	c.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	conn, err := h.Dial(ctx, o, network, address)
	if err != nil {
		c.Fatalf("dial %s %s: %v", network, address, err)
	}
	c.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(patience))
	return conn
}

func (c *C) dial(h Host, network, address string) net.Conn {
	c.Helper()
	return c.dialOpts(h, def, network, address)
}

// tryDial records a Dial's result.
func (c *C) tryDial(step string, h Host, o Opts, network, address, want string) net.Conn {
	c.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	conn, err := h.Dial(ctx, o, network, address)
	c.wantErr(step, err, want)
	if err == nil {
		c.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(patience))
	}
	return conn
}

func (c *C) accept(l net.Listener) net.Conn {
	c.Helper()
	type res struct {
		conn net.Conn
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		conn, err := l.Accept()
		ch <- res{conn, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			c.Fatalf("accept on %v: %v", l.Addr(), r.err)
		}
		c.Cleanup(func() { r.conn.Close() })
		r.conn.SetDeadline(time.Now().Add(patience))
		return r.conn
	case <-time.After(patience):
		c.Fatalf("accept on %v: nothing arrived in %v", l.Addr(), patience)
		return nil
	}
}

// pair dials l's address from h and returns both ends.
func (c *C) pair(h Host, l net.Listener, network, address string) (client, server net.Conn) {
	c.Helper()
	client = c.dial(h, network, address)
	return client, c.accept(l)
}

func (c *C) write(conn net.Conn, s string) {
	c.Helper()
	if _, err := conn.Write([]byte(s)); err != nil {
		c.Fatalf("write %q: %v", s, err)
	}
}

// readN reads exactly n bytes.
func (c *C) readN(conn net.Conn, n int) string {
	c.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(conn, b); err != nil {
		c.Fatalf("read %d bytes: %v", n, err)
	}
	return string(b)
}

// readAll reads to EOF and records what came and how it ended.
func (c *C) readAll(step string, conn net.Conn, want string) {
	c.Helper()
	b, err := io.ReadAll(conn)
	c.want(step, fmt.Sprintf("%q then %s", b, errClass(err)), fmt.Sprintf("%q then ok", want))
}

// readErr does one read of up to 16 bytes and records its error class.
func (c *C) readErr(step string, conn net.Conn, want string) {
	c.Helper()
	b := make([]byte, 16)
	n, err := conn.Read(b)
	got := errClass(err)
	if n > 0 {
		got = fmt.Sprintf("%q, %s", b[:n], got)
	}
	c.want(step, got, want)
}

func (c *C) writeTo(p net.PacketConn, s string, to net.Addr) {
	c.Helper()
	if _, err := p.WriteTo([]byte(s), to); err != nil {
		c.Fatalf("write to %v: %v", to, err)
	}
}

// readFrom reads one datagram into a buffer of size n and records it; want
// is the datagram, or the error class when one is expected.
func (c *C) readFrom(step string, p net.PacketConn, n int, want string) net.Addr {
	c.Helper()
	b := make([]byte, n)
	m, from, err := p.ReadFrom(b)
	if err != nil {
		c.want(step, errClass(err), want) // want names the error class
		return nil
	}
	c.want(step, fmt.Sprintf("%q", b[:m]), fmt.Sprintf("%q", want))
	return from
}

func udp(s string) *net.UDPAddr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
func tcp(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
