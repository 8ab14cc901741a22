//go:build !linux

package main

import "errors"

func newLoopbackOps() (*netOps, error) { return nil, errors.New("Linux only") }
