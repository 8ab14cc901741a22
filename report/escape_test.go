package report

import (
	"encoding/json"
	"testing"

	"github.com/socktab/socktab/live"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"/run/app.sock":      "/run/app.sock",
		"with space":         "with space",
		"a\nb":               `a\nb`,
		"\x1b[31mred\x1b[0m": `\x1b[31mred\x1b[0m`,
		"back\\slash":        `back\\slash`,
		"tab\there\r":        `tab\there\r`,
		"bell\a del\x7f":     `bell\x07 del\x7f`,
		"bad\xff\xfe utf8":   `bad\xff\xfe utf8`,
		"csi\u009b2J":        `csi\xc2\x9b2J`,
		"evil\u202etxt.exe":  `evil\u202etxt.exe`,
		"zero\u200bwidth":    `zero\u200bwidth`,
		"naïve-ünïcode-日本":   "naïve-ünïcode-日本",
		"line\u2028sep":      `line\u2028sep`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
		for _, c := range []byte(Escape(in)) {
			if c < 0x20 || c == 0x7f {
				t.Errorf("Escape(%q) lets control byte %#x through", in, c)
			}
		}
	}
	if Escape(`a\n`) == Escape("a\n") {
		t.Error("a literal backslash-n and a newline must escape differently")
	}
}

// TestJSONKeepsRawBytes: a path or command with control characters or
// invalid UTF-8 comes back byte for byte from the JSON.
func TestJSONKeepsRawBytes(t *testing.T) {
	for _, raw := range []string{"/tmp/ok.sock", "/tmp/\x1b]0;pwned\a\n.sock", "/tmp/\xff\xfe.sock"} {
		s := &live.Socket{Proto: "unix", Family: "unix", UnixType: "stream", State: "LISTEN", Path: raw, Inode: 7,
			Processes: []live.Process{{PID: 1, Command: raw[5:], FDs: []int{3}}}}
		b, err := json.Marshal(FromLive(s, true))
		if err != nil {
			t.Fatal(err)
		}
		var back Socket
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		path, cmd := *back.Local, back.Processes[0].Command
		if back.LocalBase64 != nil {
			path = string(back.LocalBase64)
		}
		if back.Processes[0].CommandBase64 != nil {
			cmd = string(back.Processes[0].CommandBase64)
		}
		if path != raw || cmd != raw[5:] {
			t.Errorf("%q: JSON %s gives back %q / %q", raw, b, path, cmd)
		}
		if (back.LocalBase64 != nil) == (raw != "/tmp/\xff\xfe.sock") {
			t.Errorf("%q: local_base64 should be set exactly when the path is not UTF-8: %s", raw, b)
		}
	}
}

func TestNullForUnknown(t *testing.T) {
	tw := &live.Socket{Proto: "tcp", Family: "inet", State: "TIME-WAIT"}
	b, _ := json.Marshal(FromLive(tw, false))
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"uid", "inode", "v6only", "processes", "unix_type", "peer_inode", "local_base64"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Errorf("%s: want null, got %v in %s", k, v, b)
		}
	}
	b, _ = json.Marshal(FromLive(tw, true))
	json.Unmarshal(b, &m)
	if ps, ok := m["processes"].([]any); !ok || len(ps) != 0 {
		t.Errorf("owners read and none found: want processes [], got %s", b)
	}
}
