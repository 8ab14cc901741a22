//go:build linux

package inspect

import (
	"os"
	"testing"

	"github.com/socktab/socktab/engine"
	"github.com/socktab/socktab/live"
)

// TestIssue10OptionDefects replays, on the real kernel, each setup where
// socktab used to guess the holders' options and answer EADDRINUSE while
// the kernel let the bind succeed. With the options read (BPF, or the
// owners' descriptors) the answer must be the kernel's; without BPF, the
// TIME-WAIT case must say depends; and the old guesses ("guess") must be
// the wrong answer they were, so the setups still show the defect.
func TestIssue10OptionDefects(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("must run as root in CI")
		}
		t.Skip("SKIPPED: needs root (network namespaces, BPF)")
	}
	cases := []struct {
		name   string
		plant  []childReq
		q      BindRequest
		fdWant Answer
	}{
		{"restart with SO_REUSEADDR over its own TIME-WAIT",
			[]childReq{{Op: "tw", Proto: "tcp", Addr: "127.0.0.1:7201", ReuseAddr: true}},
			BindRequest{Proto: engine.TCP, Addr: ap("127.0.0.1:7201"), ReuseAddr: true}, AnswerDepends},
		{"--reuseport beside one SO_REUSEPORT listener",
			[]childReq{{Op: "sock", Proto: "tcp", Addr: "0.0.0.0:7202", ReusePort: true, Listen: true}},
			BindRequest{Proto: engine.TCP, Addr: ap("0.0.0.0:7202"), ReusePort: true}, AnswerOK},
		{"reuseport pair on different addresses",
			[]childReq{{Op: "sock", Proto: "tcp", Addr: "127.0.0.1:7203", ReusePort: true, Listen: true},
				{Op: "sock", Proto: "tcp", Addr: "0.0.0.0:7203", ReusePort: true, Listen: true}},
			BindRequest{Proto: engine.TCP, Addr: ap("127.0.0.1:7203"), ReusePort: true}, AnswerOK},
		{"[::] and 0.0.0.0 reuseport listeners",
			[]childReq{{Op: "sock", Proto: "tcp", Addr: "[::]:7204", ReusePort: true, Listen: true},
				{Op: "sock", Proto: "tcp", Addr: "0.0.0.0:7204", ReusePort: true, Listen: true}},
			BindRequest{Proto: engine.TCP, Addr: ap("0.0.0.0:7204"), ReusePort: true}, AnswerOK},
		{"single UDP socket with SO_REUSEADDR",
			[]childReq{{Op: "sock", Proto: "udp", Addr: "0.0.0.0:7205", ReuseAddr: true}},
			BindRequest{Proto: engine.UDP, Addr: ap("0.0.0.0:7205"), ReuseAddr: true}, AnswerOK},
		{"two client sockets bound with SO_REUSEADDR",
			[]childReq{{Op: "sock", Proto: "tcp", Addr: "127.0.0.1:7206", ReuseAddr: true}},
			BindRequest{Proto: engine.TCP, Addr: ap("127.0.0.1:7206"), ReuseAddr: true}, AnswerOK},
	}
	n := newDiffNet(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range c.plant {
				if r := n.root.ask(t, p); r.Err != "" {
					t.Fatalf("planting %+v: %s", p, r.Err)
				}
			}
			n.settle(t)
			q := question{bind: true, proto: c.q.Proto, req: c.q}
			bpf := n.socktab(t, q, live.OptsBPF)
			fd := n.socktab(t, q, live.OptsFD)
			guess := n.socktab(t, q, "guess")
			k := n.kernel(t, q, "")
			if k.errno != "" {
				t.Fatalf("the kernel refused the bind (%s): the setup no longer shows the defect", k.errno)
			}
			if bpf.answer != AnswerOK || bpf.errno != "" {
				t.Errorf("with BPF: %s %s %v, the kernel: ok", bpf.answer, bpf.errno, bpf.unknowns)
			}
			if fd.answer != c.fdWant {
				t.Errorf("with descriptors: %s %s %v, want %s", fd.answer, fd.errno, fd.unknowns, c.fdWant)
			}
			if guess.answer != AnswerFails {
				t.Logf("note: the old guesses now answer %s here", guess.answer)
			}
		})
	}
}
