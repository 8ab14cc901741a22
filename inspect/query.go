package inspect

import (
	"fmt"
	"net/netip"

	"github.com/socktab/socktab/engine"
)

// Who says which live socket would receive a packet from src to dst.
func (t *Table) Who(proto engine.Proto, src, dst netip.AddrPort) engine.Delivery {
	return t.WhoOn(proto, src, dst, 0)
}

// WhoOn is Who for a packet arriving on the interface with kernel index
// dev (0: the one that carries dst; for a broadcast or multicast, see
// engine.Packet).
func (t *Table) WhoOn(proto engine.Proto, src, dst netip.AddrPort, dev int) engine.Delivery {
	return t.Host.Lookup(synPacket(proto, src, dst, dev))
}

// synPacket is the packet a who question asks about: for TCP a SYN.
func synPacket(proto engine.Proto, src, dst netip.AddrPort, dev int) engine.Packet {
	return engine.Packet{Proto: proto, Src: src, Dst: dst, Flags: engine.FlagSYN, Dev: dev}
}

// DefaultSource is the source assumed when none is given: loopback for a
// loopback destination, else an outside (documentation) address.
func DefaultSource(dst netip.Addr) netip.AddrPort {
	switch {
	case dst.Unmap().IsLoopback() && dst.Unmap().Is4():
		return netip.MustParseAddrPort("127.0.0.1:54321")
	case dst.IsLoopback():
		return netip.MustParseAddrPort("[::1]:54321")
	case dst.Unmap().Is4():
		return netip.MustParseAddrPort("203.0.113.254:54321")
	}
	return netip.MustParseAddrPort("[2001:db8:ffff::254]:54321")
}

// BindRequest is a bind to try against the live table.
type BindRequest struct {
	Proto                        engine.Proto
	Addr                         netip.AddrPort
	ReuseAddr, ReusePort, V6Only bool
	UID                          uint32
}

// CheckBind runs the bind through the engine on the loaded table and
// returns the result; Other is the blocking socket, if any.
func (t *Table) CheckBind(r BindRequest) (engine.Result, error) {
	fam := engine.Inet
	if r.Addr.Addr().Is6() {
		fam = engine.Inet6
	}
	s, res := t.Host.NewSocket(fam, r.Proto, r.UID)
	if res.Err != engine.OK {
		return res, fmt.Errorf("socket: %s", res.Err)
	}
	defer t.Host.Close(s)
	if r.ReuseAddr {
		t.Host.SetReuseAddr(s, true)
	}
	if r.ReusePort {
		t.Host.SetReusePort(s, true)
	}
	if fam == engine.Inet6 {
		t.Host.SetV6Only(s, r.V6Only)
	}
	return t.Host.BindAs(s, r.Addr, r.UID), nil
}

// Explain turns a failed bind into one sentence naming the holder.
func (t *Table) Explain(r BindRequest, res engine.Result) string {
	o := res.Other
	if o == nil {
		return string(res.Rule)
	}
	holder := fmt.Sprintf("%s %s", o.Proto(), fmtAP(o.Local()))
	if o.Remote().IsValid() {
		holder += " -> " + fmtAP(o.Remote())
	}
	who := Owners(t.Live(o))
	switch {
	case o.State() == engine.TimeWait || o.State() == engine.FinWait2:
		return fmt.Sprintf("%s is in %s from an earlier connection (%s); SO_REUSEADDR on both the old listener and the new socket would allow it, or wait up to 60 s", holder, o.State(), who)
	case o.Family() == engine.Inet6 && o.Local().Addr().IsUnspecified() && !o.V6Only() && r.Addr.Addr().Unmap().Is4():
		return fmt.Sprintf("[::]:%d is dual-stack and overlaps %s held by %s; IPV6_V6ONLY on it would free IPv4", o.Local().Port(), fmtAP(r.Addr), who)
	case o.State() == engine.Listen:
		return fmt.Sprintf("%s is listening (%s): %s", holder, who, res.Rule)
	}
	state := o.State().String()
	if ls := t.Live(o); ls != nil {
		state = ls.State // ss's names: an unconnected UDP socket is UNCONN
	}
	return fmt.Sprintf("%s %s (%s): %s", holder, state, who, res.Rule)
}

func fmtAP(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return "*"
	}
	return ap.String()
}
