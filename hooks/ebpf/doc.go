// Package ebpf is the helper's runtime for hooks of kind "ebpf": BPF
// programs, compiled from the C sources next to this file by bpf2go (see
// gen.go) and loaded with cilium/ebpf, that scope to the target containers
// in the kernel and hand their events to user space through a BPF ring
// buffer, or sum them in per-CPU maps that user space reads.
//
// Scoping: a task is a target's when its mount namespace is the
// namespace of one of the target's processes (stat of
// /proc/<pid>/ns/mnt), looked up in a map whose value is the index of the
// target, so every event names its target. The memory cgroup of the task
// (read with CO-RE, the inode of the container's memory cgroup directory)
// is compared as a cross-check and mismatches are counted and reported
// (Options.MemcgFilter makes it a second filter). See include/common.h.
//
// Hooks (Open's Options.Hook), all tp_btf programs (BTF-typed raw
// tracepoints: no tracefs, and accepted by locked-down kernels, which
// refuse fentry/fexit with EPERM; CONFIG_KPROBES may be off):
//   - exec: sched_process_exec, with the new argv;
//   - open: sys_exit of open, creat, openat and openat2 (the arguments
//     are still in the registers there);
//   - tcp: inet_sock_set_state (connect, close) and sys_exit of accept
//     and accept4;
//   - syscall-top: sys_enter and sys_exit (the entry time in task
//     storage), summed in the kernel; with latency=false sys_enter only;
//   - runqlat: sched_wakeup, sched_wakeup_new, sched_switch, a log2
//     histogram summed in the kernel;
//   - oomkill: mark_victim.
//
// The hooks on sys_enter and sys_exit run a compare on every system call
// of the node; they are detached as soon as the session stops. open and
// tcp remember a target task's target in task storage (see common.h).
//
// Events carry the kernel's CLOCK_MONOTONIC time (the clock the ftrace
// hooks use too). Rows of the aggregating hooks (syscall-top, runqlat)
// carry the time they were read, CPU 0 and, as PID and Comm, the target's
// first process: a row sums all of the target's tasks.
//
// Formatting (the details line and Event.Fields) is plain Go; loading and
// streaming (Open, Session) is Linux only.
package ebpf
