// Package exec is the eBPF hook exec: every program the target executes,
// with its arguments, from sched_process_exec. Its program is exec.c,
// compiled by bpf2go into the committed bpf_*_bpfel.{go,o} (make generate);
// exec.go says how the runtime (package ebpf) loads it and reads it.
package exec

//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror -I../include" -tags linux -target amd64,arm64 -type exec_event bpf exec.c
