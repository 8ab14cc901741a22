//go:build linux

package main

// The loopback column of the network table: package net's real sockets on
// lo inside a network namespace made for the run, so the run leaves no
// TIME_WAIT behind in anyone else's table. Sockets are made on a thread
// that entered the namespace and never leaves it; once made they work from
// any goroutine.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

func newLoopbackOps() (*netOps, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root for a network namespace")
	}
	name := fmt.Sprintf("socktab-netbench-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add: %s", strings.TrimSpace(string(out)))
	}
	del := func() { exec.Command("ip", "netns", "delete", name).Run() }
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		del()
		return nil, fmt.Errorf("lo up: %s", strings.TrimSpace(string(out)))
	}
	req := make(chan func())
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		started <- err
		if err != nil {
			return
		}
		for f := range req {
			f()
		}
	}()
	if err := <-started; err != nil {
		del()
		return nil, fmt.Errorf("setns: %v", err)
	}
	run := func(f func()) {
		done := make(chan any)
		req <- func() {
			defer func() { done <- recover() }()
			f()
		}
		if p := <-done; p != nil {
			panic(p)
		}
	}
	return &netOps{
		name:         "loopback",
		server:       "127.0.0.1",
		listen:       net.Listen,
		listenPacket: net.ListenPacket,
		dial:         net.Dial,
		run:          run,
		close:        func() { close(req); del() },
	}, nil
}
