//go:build linux

package live

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestRecordTestdata re-records testdata/ from the fixture namespace:
// /proc/net tables, the namespace's sysctls and raw sock_diag dumps. It
// runs only with SOCKTAB_RECORD=1 (as root); the unit tests then check the
// recorded files against values checked by hand, so re-recording means
// re-checking those values.
func TestRecordTestdata(t *testing.T) {
	if os.Getenv("SOCKTAB_RECORD") != "1" {
		t.Skip("set SOCKTAB_RECORD=1 to re-record testdata/")
	}
	ns := newTestNS(t)
	ns.sh(t, "echo '20000 30000' > /proc/sys/net/ipv4/ip_local_port_range; "+
		"echo '8080,9000-9002' > /proc/sys/net/ipv4/ip_local_reserved_ports; "+
		"echo 0 > /proc/sys/net/ipv4/tcp_tw_reuse; echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind")
	fx := buildFixture(t, ns)
	readSettled(t, NetnsTarget{Name: ns.name}, Options{})
	_ = fx
	files := map[string][]byte{}
	ns.do(t, func() error {
		for _, f := range []string{"tcp", "tcp6", "udp", "udp6", "unix"} {
			b, err := os.ReadFile("/proc/thread-self/net/" + f)
			if err != nil {
				return err
			}
			files["proc/net/"+f] = b
		}
		for _, f := range []string{"ipv4/ip_local_port_range", "ipv4/ip_local_reserved_ports",
			"ipv4/ip_unprivileged_port_start", "ipv6/bindv6only", "ipv4/tcp_tw_reuse",
			"ipv4/ip_nonlocal_bind", "ipv6/ip_nonlocal_bind"} {
			b, err := os.ReadFile("/proc/sys/net/" + f)
			if err != nil {
				return err
			}
			files["proc/sys/net/"+f] = b
		}
		d, err := dialDiag()
		if err != nil {
			return err
		}
		defer d.Close()
		for name, req := range map[string][]byte{
			"netlink/tcp4.bin": inetDiagReq(unix.AF_INET, unix.IPPROTO_TCP, ^uint32(0)),
			"netlink/tcp6.bin": inetDiagReq(unix.AF_INET6, unix.IPPROTO_TCP, ^uint32(0)),
			"netlink/udp6.bin": inetDiagReq(unix.AF_INET6, unix.IPPROTO_UDP, ^uint32(0)),
			"netlink/unix.bin": unixDiagReq(^uint32(0)),
		} {
			if _, err := d.c.Send(netlink.Message{
				Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request | netlink.Dump},
				Data:   req,
			}); err != nil {
				return err
			}
			var out []byte
			for m, err := range d.c.ReceiveIter() {
				if err != nil {
					return err
				}
				b, err := m.MarshalBinary()
				if err != nil {
					return err
				}
				out = append(out, b...)
			}
			files[name] = out
		}
		return nil
	})
	for name, b := range files {
		p := filepath.Join("testdata", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("recorded %d files; fixture: %d sockets", len(files), len(fx.want))
	for _, s := range fx.want {
		t.Log(key(s, false))
	}
}
