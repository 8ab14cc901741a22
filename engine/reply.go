package engine

import "net/netip"

// AnswerLost reports whether this host's answer to the TCP SYN p, whose
// Lookup gave d, can never get back to p's source: the connect then hears
// nothing (no SYN-ACK, no RST) and times out. Found against the kernel:
//   - a listener bound to a device answers through that device (the request
//     takes the listener's device, inet_request_bound_dev_if, and the
//     SYN-ACK's route has it as oif: inet_csk_route_req,
//     inet6_csk_route_req); the listener drops the SYN (ListenDrops);
//   - the RST to an IPv6 loopback source leaves strictly through the
//     interface the SYN arrived on (tcp_v6_send_response: rt6_need_strict),
//     and a SYN from ::1 to an address of another device arrives there.
//
// A reply with a fixed device reaches a local address only if that device
// carries it, or, for IPv4, through lo (whatever leaves by lo comes back to
// this host; IPv6 routes with a strict oif and finds no such route). A
// foreign source is answered through the interface its SYN came in on.
func (h *Host) AnswerLost(p Packet, d Delivery) bool {
	if p.Proto != TCP || p.Flags&(FlagSYN|FlagACK|FlagRST) != FlagSYN {
		return false
	}
	src := p.Src.Addr().WithZone("").Unmap()
	if !h.isLocal(src) {
		return false
	}
	var oif int32
	switch {
	case d.Verdict == Deliver && d.Socket != nil && d.Socket.state == Listen:
		oif = d.Socket.device()
	case d.Verdict == RST && src.Is6() && src.IsLoopback():
		p.Dst = netip.AddrPortFrom(p.Dst.Addr().WithZone("").Unmap(), p.Dst.Port())
		oif = h.ingress(p)
	}
	out := h.ifaceByIndex(int(oif))
	if out == nil {
		return false
	}
	return !carries(out, src) && !(src.Is4() && out.Loopback)
}
