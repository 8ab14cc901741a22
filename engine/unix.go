package engine

// unixTable is the AF_UNIX namespace of a host: filesystem paths, which
// outlive their socket until unlinked, and abstract names ("@name"), which
// vanish with it. Neither touches any port.
type unixTable struct {
	files    map[string]*Socket      // path → the socket bound there (nil: a stale file)
	abstract map[abstractKey]*Socket // per socket type (unix_find_socket_byname compares the type)
}

type abstractKey struct {
	name  string
	proto Proto
}

func newUnixTable() *unixTable {
	return &unixTable{files: map[string]*Socket{}, abstract: map[abstractKey]*Socket{}}
}

func isAbstract(path string) bool { return len(path) > 0 && path[0] == '@' }

// sunPathLen is the size of sockaddr_un's sun_path. unix_validate_addr
// (net/unix/af_unix.c) refuses an address longer than struct sockaddr_un
// with EINVAL; a filesystem path may fill all 108 bytes without a NUL, and
// an abstract name ("@name" here, the '@' standing for the leading NUL)
// counts its NUL among them.
const sunPathLen = 108

// BindUnix binds an AF_UNIX socket to a path or an abstract "@name"
// (unix_bind: EADDRINUSE when the file exists, EINVAL when already bound).
func (h *Host) BindUnix(s *Socket, path string) Result {
	if r, ok := h.check(s); !ok {
		return r
	}
	if s.fam != Unix {
		return fail(EAFNOSUPPORT, ruleWrongFamily) // a sockaddr_un given to an inet socket
	}
	if len(path) > sunPathLen {
		return fail(EINVAL, ruleUnixPathTooLong)
	}
	u := h.unix
	if o, ok := u.files[path]; ok && !isAbstract(path) {
		// unix_bind_bsd creates the file first: an existing path wins
		// over "already bound".
		return failWith(EADDRINUSE, ruleUnixInUse, o)
	}
	if s.Path() != "" {
		return fail(EINVAL, ruleAlreadyBound)
	}
	if isAbstract(path) {
		if o := u.abstract[abstractKey{path, s.proto}]; o != nil {
			return failWith(EADDRINUSE, ruleUnixAbstractUse, o)
		}
		u.abstract[abstractKey{path, s.proto}] = s
	} else {
		if o, ok := u.files[path]; ok {
			return failWith(EADDRINUSE, ruleUnixInUse, o)
		}
		u.files[path] = s
	}
	s.more().path = path
	return Result{Rule: ruleBound}
}

// Unlink removes a path from the host's files.
func (h *Host) Unlink(path string) Result {
	if _, ok := h.unix.files[path]; !ok || isAbstract(path) {
		return fail(ENOENT, ruleUnixNoEntry)
	}
	delete(h.unix.files, path)
	return Result{Rule: ruleUnlinked}
}

// ConnectUnix connects to a path or abstract name: ENOENT when no file,
// ECONNREFUSED when nobody listens there (unix_find_other,
// unix_stream_connect), EPROTOTYPE-like mismatches as ECONNREFUSED.
func (h *Host) ConnectUnix(s *Socket, path string) Result {
	if r, ok := h.check(s); !ok {
		return r
	}
	if s.fam != Unix {
		return fail(EAFNOSUPPORT, ruleWrongFamily) // a sockaddr_un given to an inet socket
	}
	if len(path) > sunPathLen {
		return fail(EINVAL, ruleUnixPathTooLong)
	}
	var o *Socket
	if isAbstract(path) {
		o = h.unix.abstract[abstractKey{path, s.proto}]
		if o == nil {
			return fail(ECONNREFUSED, ruleUnixNotSocket)
		}
	} else {
		var ok bool
		o, ok = h.unix.files[path]
		if !ok {
			return fail(ENOENT, ruleUnixNoEntry)
		}
		if o == nil {
			return fail(ECONNREFUSED, ruleUnixNotSocket)
		}
	}
	if o.proto != s.proto {
		return failWith(EPROTOTYPE, ruleUnixProtoType, o)
	}
	if s.proto == UnixStream {
		// unix_stream_connect finds the peer before it looks at its own
		// state.
		if o.state != Listen {
			return failWith(ECONNREFUSED, ruleUnixNotSocket, o)
		}
		switch s.state {
		case Established:
			return fail(EISCONN, ruleIsConn)
		case Listen:
			return fail(EINVAL, ruleConnListening)
		}
		c := &Socket{fam: Unix, proto: UnixStream, uid: o.uid, state: Established, ext: &sockExt{parent: o}}
		c.more().path = path
		c.ext.peer = s
		h.register(c)
		o.more().queue = append(o.more().queue, c)
		s.x().peer = c
	}
	s.state = Established
	return Result{Rule: ruleConnected, Other: o}
}

// close leaves a stale file behind for a path (unix_release does not
// unlink), and frees an abstract name.
func (u *unixTable) close(s *Socket) {
	p := s.Path()
	if p == "" || s.Parent() != nil {
		return
	}
	if isAbstract(p) {
		if k := (abstractKey{p, s.proto}); u.abstract[k] == s {
			delete(u.abstract, k)
		}
		return
	}
	if u.files[p] == s {
		u.files[p] = nil
	}
}

// UnixSocketAt is the socket a datagram sent to path (or "@name") reaches,
// as unix_dgram_sendmsg finds it: ENOENT when no such file, ECONNREFUSED
// when the file has no socket (stale), EPROTOTYPE when its type differs.
func (h *Host) UnixSocketAt(path string, p Proto) (*Socket, Result) {
	var o *Socket
	if isAbstract(path) {
		o = h.unix.abstract[abstractKey{path, p}]
		if o == nil {
			return nil, fail(ECONNREFUSED, ruleUnixNotSocket)
		}
	} else {
		var ok bool
		if o, ok = h.unix.files[path]; !ok {
			return nil, fail(ENOENT, ruleUnixNoEntry)
		}
		if o == nil {
			return nil, fail(ECONNREFUSED, ruleUnixNotSocket)
		}
	}
	if o.proto != p {
		return nil, failWith(EPROTOTYPE, ruleUnixProtoType, o)
	}
	return o, Result{Rule: ruleConnected, Other: o}
}
