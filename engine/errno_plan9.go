package engine

// Plan 9 has no errno numbers: an Error unwraps to nothing.
func (e Errno) sys() error { return nil }
