package live

// The BPF socket iterator's object files are generated from bpf/sockopts.c
// and committed, so building socktab needs no clang.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -tags linux -target bpfel,bpfeb -output-stem sockopts sockopts bpf/sockopts.c -- -O2 -Wall -Werror -I/usr/include/bpf
