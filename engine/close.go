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
		if s.ext != nil {
			s.ext.queue = nil
		}
		h.gone(s)
	case Established:
		now := h.net.now
		t.unhashFlow(s)
		p := s.peerSock()
		t.reown(s, func() {
			if p != nil && !p.Closed() {
				s.state = FinWait2
			} else {
				s.state = TimeWait // an outside peer is assumed to close at once
			}
		})
		if s.state == FinWait2 {
			p.host().setState(p, CloseWait)
		}
		s.x().until = now + timeWaitLen
		t.hashFlow(s)
		t.tw = append(t.tw, s)
	case SynSent:
		t.drop(s)
	case CloseWait:
		if p := s.peerSock(); p != nil && p.state == FinWait2 {
			ph := p.host()
			ph.setState(p, TimeWait)
			p.x().until = h.net.now + timeWaitLen
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
	flow := s.proto == TCP && t.flowAt(flowKeyOf(s)) == s
	if flow {
		t.unhashFlow(s)
	}
	if s.flags&fHasPort != 0 {
		t.reown(s, func() { s.state = st })
	} else {
		s.state = st
	}
	if flow {
		t.hashFlow(s)
	}
}

// resetPeer tells the other end of c that c was reset: it drops to CLOSE
// and gives back a port connect() chose.
func (h *Host) resetPeer(c *Socket) {
	p := c.peerSock()
	if p == nil || p.Closed() {
		return
	}
	ph := p.host()
	if ph == nil {
		return
	}
	t := ph.tcp
	t.unhashFlow(p)
	if p.flags&fConnectBind != 0 {
		t.removeDest(p)
	}
	ph.connectFailed(p) // tcp_done: CLOSE, and a port connect() chose goes back
	p.flags |= fWasConnected
	p.ext.peer = nil
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
