// Package runqlat is the eBPF hook runqlat: the run-queue latency of the
// target's tasks as a log2 histogram, summed in the kernel from
// sched_wakeup, sched_wakeup_new and sched_switch. Its program is runqlat.c,
// compiled by bpf2go into the committed bpf_*_bpfel.{go,o} (make generate);
// runqlat.go says how the runtime (package ebpf) loads it and reads it.
package runqlat

//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror -I../include" -tags linux -target amd64,arm64 bpf runqlat.c
