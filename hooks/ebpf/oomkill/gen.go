// Package oomkill is the eBPF hook oomkill: the OOM kills of the target's
// tasks, or triggered by them, from mark_victim. Its program is oomkill.c,
// compiled by bpf2go into the committed bpf_*_bpfel.{go,o} (make generate);
// oomkill.go says how the runtime (package ebpf) loads it and reads it.
package oomkill

//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror -I../include" -tags linux -target amd64,arm64 -type oom_event bpf oomkill.c
