//go:build !linux

package main

import "errors"

func newKernel(cfg Config) (impl, error) { return nil, errors.New("Linux only") }
