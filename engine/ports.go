package engine

import (
	"math/bits"
	"net/netip"
)

// localRange is inet_sk_get_local_port_range: the netns range, narrowed by
// the socket's IP_LOCAL_PORT_RANGE where each bound lies inside it (a bound
// outside is ignored, not clamped). perSocket reports whether the socket
// set the option at all.
func (h *Host) localRange(s *Socket) (lo, hi int, perSocket bool) {
	lo, hi = h.Sysctl.PortLow, h.Sysctl.PortHigh
	m := s.peek()
	if m == nil || (m.portLo == 0 && m.portHi == 0) {
		return lo, hi, false
	}
	if l := int(m.portLo); l != 0 && l >= lo && l <= hi {
		lo = l
	}
	if u := int(m.portHi); u != 0 && u >= lo && u <= hi {
		hi = u
	}
	return lo, hi, true
}

func (t *table) rand() uint64 {
	t.rng += 0x9e3779b97f4a7c15
	return mix64(t.rng)
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

func hashAddr(h uint64, a netip.Addr) uint64 {
	b := a.Unmap().As16()
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
		uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	return mix64(mix64(h^hi) ^ lo)
}

// pickBindPort is the port-0 search of bind() and listen().
func (t *table) pickBindPort(s *Socket) (uint16, bool) {
	if t.proto == UDP {
		return t.pickUDPPort(s)
	}
	return t.pickTCPPort(s)
}

// pickTCPPort follows inet_csk_find_open_port: a random odd offset from
// low, every other port, then the other parity; SO_REUSEADDR sockets try
// the lower half of the range first; a port is usable when nobody holds it
// or no holder conflicts under the strict rule (never shared); with
// ip_autobind_reuse a second round relaxes SO_REUSEADDR sharing.
func (t *table) pickTCPPort(s *Socket) (uint16, bool) {
	lo0, hi0, _ := t.h.localRange(s)
	sa := attrsOf(s)
	addr := s.local.Addr()
	m := modeAuto
	for {
		half := 0
		if s.ReuseAddr() && t.h.prof.ParityPorts {
			half = 1 // Linux: SO_REUSEADDR sockets search the lower half first
		}
		for {
			low, high := lo0, hi0+1
			if high-low < 4 {
				half = 0
			}
			if half != 0 {
				mid := low + (((high - low) >> 2) << 1)
				if half == 1 {
					high = mid
				} else {
					low = mid
				}
			}
			remaining := high - low
			if remaining > 1 {
				remaining &^= 1
			}
			parity := t.h.prof.ParityPorts
			offset := 0
			if remaining > 0 {
				offset = int(t.rand() % uint64(remaining))
			}
			step := 1
			if parity {
				offset |= 1
				step = 2
			}
			for pass := 0; pass < 2 && remaining > 0; pass++ {
				for i := 0; i < remaining; i += step {
					p := uint16(low + (offset+i)%remaining)
					if t.h.Sysctl.Reserved.has(p) {
						continue
					}
					if !t.used.has(p) {
						return p, true
					}
					if _, e := t.conflict(s, sa, addr, p, m); e == OK {
						return p, true
					}
				}
				if !parity {
					break
				}
				offset--
			}
			if half == 1 {
				half = 2
				continue
			}
			break
		}
		if t.h.Sysctl.AutobindReuse && m == modeAuto {
			m = modeAutoRelax
			continue
		}
		return 0, false
	}
}

// pickUDPPort follows udp_lib_get_port for port 0: a random start, no
// parity, the first port in range that is not reserved and not in conflict.
func (t *table) pickUDPPort(s *Socket) (uint16, bool) {
	low, high, _ := t.h.localRange(s)
	remaining := high - low + 1
	if remaining <= 0 {
		return 0, false
	}
	sa := attrsOf(s)
	start := int(t.rand() % uint64(remaining))
	for i := 0; i < remaining; i++ {
		p := uint16(low + (start+i)%remaining)
		if t.h.Sysctl.Reserved.has(p) {
			continue
		}
		if !t.used.has(p) {
			return p, true
		}
		if _, e := t.conflict(s, sa, s.local.Addr(), p, modeAuto); e == OK {
			return p, true
		}
	}
	return 0, false
}

// destKey is a connect() destination as seen from one source address.
type destKey struct {
	src, dst netip.Addr
	dport    uint16
}

// destPorts is the set of local ports connect() sockets use toward one
// destination: a short list while small, a bitmap beyond, so the search at
// any occupancy costs a word scan of the range, not a probe per port.
type destPorts struct {
	small []uint16
	bits  *bitmap
	n     int
}

const destSmallMax = 32

func (d *destPorts) add(p uint16) {
	d.n++
	if d.bits != nil {
		d.bits.set(p)
		return
	}
	d.small = append(d.small, p)
	if len(d.small) > destSmallMax {
		d.bits = new(bitmap)
		for _, q := range d.small {
			d.bits.set(q)
		}
		d.small = nil
	}
}

func (d *destPorts) remove(p uint16) {
	d.n--
	if d.bits != nil {
		d.bits.clear(p)
		return
	}
	for i, q := range d.small {
		if q == p {
			d.small[i] = d.small[len(d.small)-1]
			d.small = d.small[:len(d.small)-1]
			return
		}
	}
}

func (d *destPorts) has(p uint16) bool {
	if d == nil {
		return false
	}
	if d.bits != nil {
		return d.bits.has(p)
	}
	for _, q := range d.small {
		if q == p {
			return true
		}
	}
	return false
}

func (d *destPorts) word(w int) uint64 {
	if d == nil || d.bits == nil {
		return 0
	}
	return d.bits[w]
}

func (t *table) destOf(s *Socket) destKey {
	return destKey{src: s.local.Addr().Unmap(), dst: s.remote.Addr().Unmap(), dport: s.remote.Port()}
}

func (t *table) addDest(s *Socket) {
	k := t.destOf(s)
	d := t.dests[k]
	if d == nil {
		d = &destPorts{}
		t.dests[k] = d
	}
	d.add(s.local.Port())
}

func (t *table) removeDest(s *Socket) {
	k := t.destOf(s)
	if d := t.dests[k]; d != nil {
		d.remove(s.local.Port())
		if d.n == 0 {
			delete(t.dests, k)
		}
	}
}

// scan returns the first port p in [from, to) whose bit in free(word) is
// set and for which ok(p) holds; parity is -1 for any, else 0/1 to keep
// only even/odd ports.
func scan(from, to int, parity int, blocked func(w int) uint64, ok func(p uint16) bool) (uint16, bool) {
	for w := from >> 6; w<<6 < to; w++ {
		free := ^blocked(w)
		if parity == 0 {
			free &= 0x5555555555555555
		} else if parity == 1 {
			free &= 0xaaaaaaaaaaaaaaaa
		}
		base := w << 6
		if base < from {
			free &= ^uint64(0) << uint(from-base)
		}
		if base+64 > to {
			free &= ^uint64(0) >> uint(base+64-to)
		}
		for free != 0 {
			p := base + bits.TrailingZeros64(free)
			if ok(uint16(p)) {
				return uint16(p), true
			}
			free &= free - 1
		}
	}
	return 0, false
}

// perturbTable is RFC 6056 algorithm 4's table_perturb, 2^16 slots as
// Linux's (INET_TABLE_PERTURB_SIZE), kept sparse in pages: a connect reads
// and writes one slot, where a map of the same slots cost two hashed
// probes.
type perturbTable struct{ pages[perturbSlot] }

type perturbSlot struct {
	v       uint32
	written bool
}

// get is slot i and whether it was ever written; a nil table has none.
func (pt *perturbTable) get(i uint16) (uint32, bool) {
	if pt == nil {
		return 0, false
	}
	s := pt.pages.get(i)
	return s.v, s.written
}

func (pt *perturbTable) put(i uint16, v uint32) { pt.set(i, perturbSlot{v, true}) }
