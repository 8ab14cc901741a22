package engine

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// restate is what the engine did before it: reown around a change of state
// that changes the holder's kind, a plain assignment when the kind stays
// (ESTABLISHED to CLOSE_WAIT). Two hosts built by the same random binds,
// listens and closes, one moved by restate and the other the old way,
// hold the same classes (in the same order), counts and caches in every
// port's bucket after each move.
func TestRestateIsReown(t *testing.T) {
	states := []State{Closed, SynSent, Established, CloseWait, FinWait2, TimeWait, Listen}
	rng := uint64(11)
	next := func(n int) int { rng = rng*6364136223846793005 + 1442695040888963407; return int(rng>>33) % n }
	for round := range 200 {
		var hs [2]*Host
		var socks [2][]*Socket
		ops := make([]int, 30)
		for i := range ops {
			ops[i] = next(1 << 20)
		}
		for k := range hs {
			h := NewNetwork(Linux, 1).AddHost("h")
			h.AddIface("eth0", netip.MustParsePrefix("192.0.2.1/24"))
			for _, op := range ops {
				s, _ := h.NewSocket(Inet, TCP, uint32(op%2))
				if op&4 != 0 {
					h.SetReuseAddr(s, true)
				}
				if op&8 != 0 {
					h.SetReusePort(s, true)
				}
				addr := []string{"0.0.0.0", "192.0.2.1", "127.0.0.1"}[op>>4%3]
				h.Bind(s, netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(7000+op>>6%3)))
				if op&16 != 0 {
					h.Listen(s)
				}
				if op&32 != 0 {
					h.Close(s)
				}
				socks[k] = append(socks[k], s)
			}
			hs[k] = h
		}
		for move := range 20 {
			i, st := next(len(ops)), states[next(len(states))]
			s0, s1 := socks[0][i], socks[1][i]
			if s0.state == Gone {
				continue
			}
			hs[0].tcp.restate(s0, st)
			if s1.flags&fHasPort != 0 && kindOf(st, s1.Closed()) != s1.kind() {
				hs[1].tcp.reown(s1, func() { s1.state = st })
			} else {
				s1.state = st
			}
			if a, b := dumpBuckets(hs[0].tcp), dumpBuckets(hs[1].tcp); a != b {
				al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
				for j := range min(len(al), len(bl)) {
					if al[j] != bl[j] {
						t.Fatalf("round %d move %d (socket %d to %v):\nrestate %s\nreown   %s", round, move, i, st, al[j], bl[j])
					}
				}
				t.Fatalf("round %d move %d: %d ports after restate, %d after reown", round, move, len(al), len(bl))
			}
		}
	}
}

// dumpBuckets writes every port's bucket, holders named by their place in
// their host's socket list.
func dumpBuckets(t *table) string {
	cls := func(cs classes) string {
		var out []string
		for _, c := range cs {
			rep := -1
			if c.rep != nil {
				rep = int(c.rep.idx)
			}
			out = append(out, fmt.Sprintf("%+v n=%d rep=%d", c.a, c.n, rep))
		}
		return fmt.Sprint(out)
	}
	var out string
	for p := range 1 << 16 {
		b := t.ports.get(uint16(p))
		if b == nil {
			continue
		}
		out += fmt.Sprintf("port %d owners=%d explicit=%d fast=%+v all=%s", p, b.owners, b.explicit, b.fast, cls(b.all))
		if b.hasFirst {
			out += fmt.Sprintf(" first=%v %s", b.first, cls(b.firstCls))
		}
		keys := make([]addrKey, 0, len(b.byAddr))
		for k := range b.byAddr {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y addrKey) int { return slices.Compare(x[:], y[:]) })
		for _, k := range keys {
			out += fmt.Sprintf(" %v %s", k, cls(*b.byAddr[k]))
		}
		out += "\n"
	}
	return out
}
