// Package ebpf is the helper's runtime for hooks of kind "ebpf" (Runtime,
// an attach.Runtime): BPF programs loaded with cilium/ebpf that scope to
// the target containers in the kernel and hand their events to user space
// through a BPF ring buffer, or sum them in per-CPU maps that user space
// reads.
//
// Each hook is a folder of its own (exec/, open/, tcp/, syscalltop/,
// runqlat/, oomkill/), in the layout of cilium/ebpf's examples: its C
// source, a one-line gen.go that compiles it with bpf2go against the shared
// headers of include/, the committed output (linux build tags, so building
// needs no C compiler), and a prog.Def saying how the program is loaded
// and what its records or sums become. programs (hooks_linux.go) lists
// them; TestHookDefs holds them and the catalogue together.
//
// Scoping: a task is a target's when its mount namespace is the
// namespace of one of the target's processes (stat of
// /proc/<pid>/ns/mnt), looked up in a map whose value is the index of the
// target, so every event names its target. The memory cgroup of the task
// (read with CO-RE, the inode of the container's memory cgroup directory)
// is compared as a cross-check and mismatches are counted and reported
// (Runtime.MemcgFilter makes it a second filter). See include/common.h.
// Every program is tp_btf (BTF-typed raw tracepoints: no tracefs, and
// accepted by locked-down kernels, which refuse fentry/fexit with EPERM;
// CONFIG_KPROBES may be off). The programs on sys_enter and sys_exit run a
// compare on every system call of the node; they are detached as soon as
// the session stops.
//
// Events carry the kernel's CLOCK_MONOTONIC time (bpf_ktime_get_ns), which
// the runner relates to the wall clock. Rows of the aggregating hooks
// (syscall-top, runqlat) carry the time they were read, CPU 0 and, as PID
// and Comm, the target's first process: a row sums all of the target's
// tasks.
package ebpf
