//go:build linux

package kerneltest

import "testing"

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
