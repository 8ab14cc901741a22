package conformance

// The memnet network: hosts a and b as the kernel network has them, on one
// in-memory network with the Linux profile.

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/socktab/socktab/memnet"
)

func init() {
	networks = append([]network{{name: "memnet", make: newMemnet, gaps: memnetGaps}}, networks...)
}

// memnetGaps are the behaviours where memnet disagrees with the kernel,
// each with what differs; they are skipped on memnet and listed in the
// README until fixed. None today.
var memnetGaps = map[string]string{}

type memNet struct {
	n     *memnet.Network
	hosts map[string]*memHost
}

type memHost struct{ h *memnet.Host }

func (n *memNet) Host(name string) Host { return n.hosts[name] }

func (n *memNet) Partition(cut bool) error {
	if cut {
		n.n.Partition(n.hosts["a"].h, n.hosts["b"].h)
	} else {
		n.n.Heal(n.hosts["a"].h, n.hosts["b"].h)
	}
	return nil
}

func newMemnet(t *testing.T) (Net, error) {
	n := memnet.New(memnet.Options{OS: "linux"})
	a := n.Host("a", "192.0.2.1/24", "2001:db8::1/64")
	b := n.Host("b", "192.0.2.2/24", "2001:db8::2/64")
	for _, h := range []*memnet.Host{a, b} {
		if err := h.Err(); err != nil {
			return nil, err
		}
	}
	return &memNet{n: n, hosts: map[string]*memHost{"a": {a}, "b": {b}}}, nil
}

func sockOpts(o Opts) memnet.SockOpts {
	return memnet.SockOpts{ReuseAddr: o.ReuseAddr, ReusePort: o.ReusePort, V6Only: o.V6Only}
}

func (m *memHost) Listen(o Opts, network, address string) (net.Listener, error) {
	return m.h.ListenConfig(sockOpts(o)).Listen(context.Background(), network, address)
}

func (m *memHost) ListenPacket(o Opts, network, address string) (net.PacketConn, error) {
	return m.h.ListenConfig(sockOpts(o)).ListenPacket(context.Background(), network, address)
}

func (m *memHost) Dial(ctx context.Context, o Opts, network, address string) (net.Conn, error) {
	d := m.h.Dialer(sockOpts(o))
	d.LocalAddr = o.LocalAddr
	return d.DialContext(ctx, network, address)
}

func (m *memHost) SetPortRange(lo, hi int) error {
	return m.h.Sysctl("net.ipv4.ip_local_port_range", fmt.Sprintf("%d %d", lo, hi))
}

func (m *memHost) Path(name string) string { return "/run/socktab-conf/" + name }

func (m *memHost) Remove(path string) error { return m.h.Remove(path) }
