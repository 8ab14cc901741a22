package scenario

import (
	"os"
	"strings"
	"testing"
)

// The broadcast and multicast replays hold the kernel's answers as
// expectations; the engine must give every one of them (the kernel replay
// in kerneltest checks the same files against the kernel itself).
func TestGroupcastReplaysHold(t *testing.T) {
	for _, f := range []string{"broadcast-every-socket", "multicast-joined", "multicast-ipv6",
		"udp-reuseaddr-latest-bound", "bindtodevice-beats-unbound", "ipv6-scope", "multicast-all-option"} {
		path := "../testdata/replay/" + f + ".scenario"
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := Parse(path, strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		out, err := Run(sc, Options{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, o := range out {
			if o.Checked() {
				n++
				if !o.Pass {
					t.Errorf("%s:%d: %s: expected %s, got %s (%s)", path, o.Step.Line, o.Step.Text, o.Step.Expect.Result, o.Result, o.Reason)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no expectations", path)
		}
	}
}

func TestJoinParseErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"s = socket inet udp\njoin s\n", "usage: join SOCK GROUP"},
		{"s = socket inet udp\njoin s 239.1.2.3 eth0\n", "usage: join SOCK GROUP"},
		{"s = socket inet udp\njoin s 239.1.2.3 via eth0\n", "expected dev IFACE"},
		{"s = socket inet udp\njoin s notanaddr\n", "bad group"},
		{"join x 239.1.2.3\n", "unknown socket"},
		{"packet udp 192.0.2.1:1 -> 192.0.2.255:2 => a+b|c\n", "do not mix"},
		{"packet udp 192.0.2.1:1 -> 192.0.2.255:2 => a+\n", "a name is missing"},
		{"s = socket inet6 tcp\nconnect s [fe80::1%eth0]:80\n", "modelled only in bind"},
		{"s = socket inet6 tcp\nbind s [fe80::1%2]:80\n", "name the interface"},
		{"packet tcp [fe80::2%eth0]:1 -> [fe80::1]:80\n", "modelled only in bind"},
	} {
		_, err := Parse("t.scenario", strings.NewReader(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.text, err, c.want)
		}
	}
}

func TestGroupcastOnOtherProfilesIsAnError(t *testing.T) {
	for _, text := range []string{
		"os freebsd\ns = socket inet udp\njoin s 239.1.2.3 dev lo\n",
		"os windows\npacket udp 127.0.0.1:1 -> 255.255.255.255:2\n",
	} {
		sc, err := Parse("t.scenario", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Run(sc, Options{}); err == nil || !strings.Contains(err.Error(), "does not model") {
			t.Errorf("%q: got %v, want a does-not-model error", text, err)
		}
	}
}
