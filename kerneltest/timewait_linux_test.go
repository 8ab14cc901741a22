//go:build linux

package kerneltest

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestWithoutDevice(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1%eth0:5002":     "192.0.2.1:5002",
		"[2001:db8::1]%eth0:5002": "[2001:db8::1]:5002",
		"[fe80::1%eth0]:5002":     "[fe80::1]:5002",
		"192.0.2.1:5001":          "192.0.2.1:5001",
		"*":                       "*",
		"0.0.0.0%lo:80":           "0.0.0.0:80",
	} {
		if got := withoutDevice(in); got != want {
			t.Errorf("withoutDevice(%q) = %q, want %q", in, got, want)
		}
	}
}

// inodeListed must see a live socket, or closeSock's wait would be empty.
func TestInodeListed(t *testing.T) {
	for _, c := range []struct {
		dom, typ int
		tables   []string
	}{
		{unix.AF_INET, unix.SOCK_STREAM, []string{"tcp", "tcp6"}},
		{unix.AF_INET6, unix.SOCK_DGRAM, []string{"udp", "udp6"}},
		{unix.AF_UNIX, unix.SOCK_STREAM, []string{"unix"}},
	} {
		fd, err := unix.Socket(c.dom, c.typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if c.dom == unix.AF_INET {
			unix.Listen(fd, 1) // autobinds: now listed
		} else if c.dom == unix.AF_INET6 {
			unix.Bind(fd, &unix.SockaddrInet6{Addr: [16]byte{15: 1}})
		} else {
			unix.Bind(fd, &unix.SockaddrUnix{Name: "@socktab-inode-test"})
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		if !inodeListed(st.Ino, c.tables...) {
			t.Errorf("%v: inode %d of a live socket not listed", c.tables, st.Ino)
		}
		closeFD(fd)
		if inodeListed(st.Ino, c.tables...) {
			t.Errorf("%v: inode %d still listed after close", c.tables, st.Ino)
		}
	}
}
