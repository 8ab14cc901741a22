package scenario

import (
	"errors"
	"strings"
	"testing"
)

func TestParseErrorsNameLineAndColumn(t *testing.T) {
	cases := []struct{ src, want string }{
		{"s1 = socket inet tcp\nbind s2 1.2.3.4:80\n", "f:2:6: unknown socket \"s2\""},
		{"s1 = socket inet tcp\nbind s1 1.2.3.4\n", "f:2:9: address \"1.2.3.4\" needs a port"},
		{"s1 = socket inet tcp\nbind s1 [::1]:80 => WAT\n", "f:2:21: unknown result \"WAT\""},
		{"s1 = socket inet sctp\n", "f:1:18: unknown type \"sctp\""},
		{"frobnicate\n", "f:1:1: unknown statement \"frobnicate\""},
		{"s1 = socket inet tcp\nsetsockopt s1 SO_REUSEADDR 2\n", "f:2:28: SO_REUSEADDR takes 0 or 1"},
		{"packet tcp 1.2.3.4:1 => 1.2.3.4:2\n", "f:1:1: usage: packet"},
		{"packet tcp 1.2.3.4:1 -> [::1]:2\n", "f:1:25: source and destination must both be IPv4 or both IPv6"},
		{"repeat 0 s = socket inet tcp\n", "f:1:8: repeat count \"0\""},
		{"advance soon\n", "f:1:9: bad duration \"soon\""},
		{"s1 = socket inet tcp\nbind s1 1.2.3.4:80 =>\n", "f:2:20: expected a result after =>"},
		{"sysctl net.ipv4.nope 1\n", "f:1:8: unknown sysctl"},
	}
	for _, c := range cases {
		_, err := Parse("f", strings.NewReader(c.src))
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("%q: want *Error, got %v", c.src, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got %s\nwant %s...", c.src, err, c.want)
		}
	}
}

func TestRepeatExpandsIndex(t *testing.T) {
	sc, err := Parse("f", strings.NewReader("repeat 3 c{i} = socket inet tcp => ok\nrepeat 3 close c{i}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Steps) != 6 || sc.Steps[2].Assign != "c3" || sc.Steps[5].Sock != "c3" || sc.Steps[1].Line != 1 {
		t.Fatalf("bad expansion: %+v", sc.Steps)
	}
}

func TestRunReportsOutcomes(t *testing.T) {
	src := `a = socket inet tcp
bind a 127.0.0.1:80 => ok
listen a => ok
b = socket inet tcp
bind b 0.0.0.0:80 => EADDRINUSE
packet tcp 127.0.0.1:5 -> 127.0.0.1:80 => a
packet udp 127.0.0.1:5 -> 127.0.0.1:80 => rst
`
	sc, err := Parse("f", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	outs, err := Run(sc, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	fails := 0
	for _, o := range outs {
		if o.Checked() && !o.Pass {
			fails++
			if o.Step.Line != 7 || o.Result != "icmp-port-unreachable" {
				t.Errorf("unexpected mismatch at line %d: %s", o.Step.Line, o.Result)
			}
		}
	}
	if fails != 1 {
		t.Fatalf("want exactly the wrong expectation on line 7 to fail, got %d failures", fails)
	}
	if !strings.Contains(outs[4].Reason, "a (inet tcp 127.0.0.1:80 LISTEN") {
		t.Errorf("conflict reason does not name the holder: %s", outs[4].Reason)
	}
}

func TestRunErrorsAreFileLine(t *testing.T) {
	sc, err := Parse("f", strings.NewReader("iface eth0 192.0.2.1/24\nroute default eth9\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(sc, Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "f:2:15: no interface") { // the column of eth9
		t.Fatalf("got %v", err)
	}
}

// FuzzParse: any input parses to steps or an *Error, never a panic, and the
// steps run without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"s = socket inet6 tcp\nsetsockopt s IPV6_V6ONLY 1\nbind s [::]:80 => ok\nlisten s\n",
		"repeat 4 c{i} = socket inet udp\nrepeat 4 connect c{i} 127.0.0.1:53\n",
		"u = socket unix stream\nbind u /a => ok\nunlink /a\npacket udp 1.2.3.4:1 -> 127.0.0.1:2 => drop\n",
		"os linux\nhost a\niface eth0 192.0.2.1/24\nroute default eth0\nsysctl net.ipv4.ip_local_port_range 40000 40001\nadvance 61s\n",
		"x = socket inet tcp\nsetsockopt x IP_LOCAL_PORT_RANGE 40000 40010\nsetsockopt x SO_BINDTODEVICE lo\nconnect x 127.0.0.1:1\nclose x\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		sc, err := Parse("fuzz", strings.NewReader(src))
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("non-positional error %v", err)
			}
			return
		}
		if len(sc.Steps) > 5000 {
			return
		}
		Run(sc, Options{Seed: 1})
	})
}
