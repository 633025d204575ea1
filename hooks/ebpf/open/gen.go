// Package open is the eBPF hook open: every file the target opens, from the
// sys_exit of open, creat, openat and openat2, where the arguments are still
// in the registers. Its program is open.c, compiled by bpf2go into the
// committed bpf_*_bpfel.{go,o} (make generate); open.go says how the runtime
// (package ebpf) loads it and reads it.
package open

//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror -I../include" -tags linux -target amd64,arm64 -type open_event bpf open.c
