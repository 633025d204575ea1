// Package syscalltop is the eBPF hook syscall-top: the target's most
// frequent system calls with their latency, summed in the kernel from
// sys_enter and sys_exit (the entry time in task storage), or with
// latency=false counted from sys_enter alone. Its program is syscalltop.c,
// compiled by bpf2go into the committed bpf_*_bpfel.{go,o} (make generate);
// syscalltop.go says how the runtime (package ebpf) loads it and reads it.
package syscalltop

//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror -I../include" -tags linux -target amd64,arm64 -type sysstat bpf syscalltop.c
//go:generate go run ./internal/gensyscalls -o syscallnames.go
