package engine

// Close is close(2). A TCP socket that closes first keeps its port and
// 4-tuple: FIN_WAIT2 until the peer closes, then TIME_WAIT for 60 s
// (tcp_close, tcp_time_wait). The side that closes second leaves at once.
func (h *Host) Close(s *Socket) Result {
	if r, ok := h.check(s); !ok {
		return r
	}
	s.flags |= fClosed
	switch s.proto {
	case UnixStream, UnixDgram:
		h.unix.close(s)
		h.gone(s)
		return Result{Rule: ruleClosedOK}
	case UDP:
		t := h.udp
		if s.flags&fHasPort != 0 {
			if s.state == Established {
				t.unhashConnected(s)
			} else {
				t.unhashListener(s)
			}
			t.removeOwner(s)
		}
		h.gone(s)
		return Result{Rule: ruleClosedOK}
	}
	t := h.tcp
	switch s.state {
	case Listen:
		t.unhashListener(s)
		t.removeOwner(s)
		for _, c := range s.Queue() {
			c.flags |= fClosed
			h.resetPeer(c)
			t.drop(c) // unaccepted children are reset (inet_csk_listen_stop)
		}
		if m := s.peek(); m != nil {
			m.queue = nil
		}
		h.gone(s)
	case Established:
		now := h.net.now
		t.unhashFlow(s)
		p := s.peerSock()
		if p != nil && !p.Closed() {
			t.restate(s, FinWait2)
		} else {
			t.restate(s, TimeWait) // an outside peer is assumed to close at once
		}
		if s.state == FinWait2 {
			p.host().setState(p, CloseWait)
		}
		s.x().until = now + h.prof.TimeWait
		t.hashFlow(s)
		t.addTimeWait(s)
	case SynSent:
		t.drop(s)
	case FinWait2, TimeWait:
		// After shutdown(SHUT_WR) the socket was still the user's; now it is
		// an orphan that keeps its 4-tuple for the rest of its timer. Its
		// holder class changes with fClosed, so it leaves under the old one.
		s.flags &^= fClosed
		t.unhashFlow(s)
		t.reown(s, func() { s.flags |= fClosed })
		if s.state == FinWait2 || s.Expires() == 0 {
			s.x().until = h.net.now + h.prof.TimeWait
		}
		t.hashFlow(s)
		t.addTimeWait(s)
	case CloseWait:
		if p := s.peerSock(); p != nil && p.state == FinWait2 {
			lastFIN(p)
			// Both ends are done with each other: the TIME_WAIT end must
			// not keep this one (and its listener) in memory for 60 s.
			p.ext.peer, s.ext.peer = nil, nil
		}
		t.drop(s)
	default:
		if s.flags&fHasPort != 0 {
			t.removeOwner(s)
		}
		h.gone(s)
	}
	return Result{Rule: ruleClosedOK}
}

// peerSock is the simulated other end of a connection, if any.
func (s *Socket) peerSock() *Socket {
	if s.ext == nil {
		return nil
	}
	return s.ext.peer
}

// host finds the host that holds s (only used for simulated peers).
func (s *Socket) host() *Host {
	if s.ext != nil && s.ext.owner != nil {
		return s.ext.owner
	}
	return nil
}

func (h *Host) setState(s *Socket, st State) {
	t := h.table(s.proto)
	in := s.flags & (fInFlows | fInTWs)
	// The bind rules read the state only through its kind (ESTABLISHED to
	// CLOSE_WAIT, an orphan's FIN_WAIT2 to TIME_WAIT keep their class).
	t.restate(s, st)
	// A connection moves between the two maps only when its kind does
	// (to or from an orphan's TIME_WAIT); its key stays the same.
	if s.proto == TCP && in != 0 && in != t.hashedIn(s) {
		t.unhashFlow(s)
		t.hashFlow(s)
	}
}

// resetPeer tells the other end of c that c was reset: it drops to CLOSE
// and gives back a port connect() chose; an orphan (its user closed it
// first, it waits in FIN_WAIT2) is killed and frees its port at once
// (tcp_timewait_state_process, substate TCP_FIN_WAIT2: an in-window RST
// goes to kill; a full FIN_WAIT2 socket: tcp_reset → tcp_done).
func (h *Host) resetPeer(c *Socket) {
	p := c.peerSock()
	if p == nil {
		return
	}
	ph := p.host()
	if ph == nil {
		return
	}
	if p.Closed() {
		ph.tcp.drop(p)
		return
	}
	ph.dropToClose(p)
}

// lastFIN is the second FIN reaching p, the simulated end in FIN_WAIT2:
// it goes TIME_WAIT, its timer restarting from now (tcp_time_wait).
func lastFIN(p *Socket) {
	ph := p.host()
	ph.setState(p, TimeWait)
	ph.tcp.retime(p, ph.net.now+ph.prof.TimeWait)
}

// dropToClose is tcp_done for a connection that stays its user's: out of
// the connection maps, CLOSE, and a port connect() chose goes back.
func (h *Host) dropToClose(s *Socket) {
	t := h.tcp
	t.unhashFlow(s)
	if s.flags&fConnectBind != 0 {
		t.removeDest(s)
	}
	h.connectFailed(s)
	s.flags |= fWasConnected
	if s.ext != nil {
		s.ext.peer = nil
	}
}

// resetByPeer is a RST from the other end arriving on connection c
// (tcp_reset → tcp_done): it drops to CLOSE and gives back a port connect()
// chose. Unlike Reset, a connection still waiting for accept() stays in the
// queue, as in the kernel (accept hands it out; reads then fail); an
// orphan leaves every table.
func (h *Host) resetByPeer(c *Socket) {
	if c.Closed() {
		h.tcp.drop(c)
		return
	}
	h.dropToClose(c)
}

// drop removes a TCP connection from every table.
func (t *table) drop(s *Socket) {
	if s.state == Gone {
		return
	}
	t.unhashFlow(s)
	if s.flags&fConnectBind != 0 {
		t.removeDest(s)
	}
	if s.flags&fHasPort != 0 {
		t.removeOwner(s)
	}
	t.h.gone(s)
}

func (h *Host) gone(s *Socket) {
	h.leaveAll(s)
	s.state = Gone
	h.unregister(s)
}

// Shutdown is shutdown(SHUT_WR) on a connected TCP socket: it sends its FIN
// first, so it is the end that holds TIME_WAIT later (tcp_shutdown,
// tcp_close_state). After the peer's FIN (CLOSE_WAIT) our FIN ends the
// connection: the peer holds TIME_WAIT and this socket drops to CLOSE.
func (h *Host) Shutdown(s *Socket) Result {
	if r, ok := h.check(s); !ok {
		return r
	}
	if s.proto != TCP {
		return Result{Rule: ruleShutdown} // nothing in the tables changes for UDP and unix
	}
	p := s.peerSock()
	switch s.state {
	case Established:
		h.setState(s, FinWait2)
		if p != nil && !p.Closed() && p.state == Established {
			p.host().setState(p, CloseWait)
		}
	case CloseWait:
		if p != nil && p.state == FinWait2 {
			lastFIN(p)
		}
		h.dropToClose(s) // LAST_ACK, then CLOSE: the port a connect() chose goes back
	case FinWait2, TimeWait:
	default:
		return fail(ENOTCONN, ruleNotConnected)
	}
	return Result{Rule: ruleShutdown}
}

// Abort is close(2) that resets the connection instead of closing it:
// SO_LINGER with a zero timeout, or unread data in the receive queue
// (tcp_close sends a RST and goes straight to CLOSE, no TIME_WAIT). The
// peer, when simulated, is reset too; a connection still in a listener's
// accept queue leaves it. Other sockets are closed as by Close.
func (h *Host) Abort(s *Socket) Result {
	if r, ok := h.check(s); !ok {
		return r
	}
	if s.proto != TCP || (s.state != Established && s.state != CloseWait && s.state != FinWait2 && s.state != SynSent) {
		return h.Close(s)
	}
	h.resetPeer(s)
	if l := s.Parent(); l != nil && l.peek() != nil {
		l.ext.more.queue = removeFrom(l.ext.more.queue, s)
	}
	h.tcp.drop(s) // before fClosed: the holder class is the one it joined with
	s.flags |= fClosed
	return Result{Rule: ruleAborted}
}

// Reset is a RST arriving on connection s (its peer wrote to a socket that
// was gone, or a middlebox reset it): s drops to CLOSE and stays the user's
// until closed; a closed peer still waiting in FIN_WAIT2 leaves at once.
func (h *Host) Reset(s *Socket) Result {
	if r, ok := h.check(s); !ok {
		return r
	}
	if s.proto != TCP || s.state == Closed || s.state == Listen {
		return fail(ENOTCONN, ruleNotConnected)
	}
	if p := s.peerSock(); p != nil && p.Closed() && p.state != Gone {
		if ph := p.host(); ph != nil {
			ph.tcp.drop(p)
		}
	}
	if l := s.Parent(); l != nil && l.peek() != nil {
		l.ext.more.queue = removeFrom(l.ext.more.queue, s)
	}
	h.dropToClose(s)
	return Result{Rule: ruleReset}
}
