package hooks

import (
	"errors"
	"strconv"
	"time"
)

// ebpfNeeds is what every eBPF hook needs. The programs filter in the
// kernel on the target's mount namespace (read from /proc/<pid>/ns/mnt of
// its processes), so the helper must see the node's processes.
func ebpfNeeds(kernel ...string) Needs {
	n := Needs{
		HostPID: true,
		// bpf, btf (/sys/kernel/btf/vmlinux: CO-RE and tp_btf programs),
		// plus what the hook uses. Every hook attaches tp_btf programs
		// only: no tracefs, and no fentry/fexit or kprobes, which a
		// locked-down kernel refuses. Linux 5.11+ (ring buffer,
		// bpf_get_current_task_btf); runqlat 5.18+ (sched_switch's
		// prev_state); oomkill needs mark_victim to pass the task (6.18
		// does).
		Kernel: append([]string{"bpf", "btf"}, kernel...),
	}
	// No SYS_RESOURCE: the hooks need BTF and tp_btf, so kernels from 5.11
	// on, which charge BPF maps to the memory cgroup instead of
	// RLIMIT_MEMLOCK. Asking for it breaks nodes whose bounding set lacks
	// it (runc: "unable to apply caps").
	return needing(n,
		Capability{"BPF", "create maps and load programs (Linux 5.8+)"},
		Capability{"PERFMON", "load and attach tracing programs (tp_btf) and read kernel memory from them"},
		Capability{"SYS_PTRACE", "stat `/proc/<pid>/ns/mnt` of the target's processes (ptrace read access), to filter by its mount namespace"},
	)
}

// checkInterval accepts a Go duration >= 0 (0: only at the end).
func checkInterval(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return errors.New("want a duration such as 1s, 500ms or 0 (only at the end)")
	}
	if d > 0 && d < 100*time.Millisecond {
		return errors.New("want at least 100ms, or 0 (only at the end)")
	}
	return nil
}

// checkTop accepts a row count from 1 to 500.
func checkTop(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return errors.New("want a number of rows from 1 to 500")
	}
	return nil
}

// ebpfHooks are loaded with cilium/ebpf and filter in the kernel (package ebpf).
var ebpfHooks = []Descriptor{
	{
		Name:    "exec",
		Kind:    KindEBPF,
		Summary: "every program the target executes, with its arguments",
		Events:  []string{"tp_btf/sched_process_exec"},
		Outputs: []string{OutputText, OutputJSON},
		Fields: []Field{
			{Name: "pid", Help: "process id (host pid namespace)"},
			{Name: "ppid", Help: "parent's process id"},
			{Name: "uid", Help: "real user id (host user namespace)"},
			{Name: "filename", Help: "path given to execve"},
			{Name: "argv", Help: `arguments, separated by blanks, quoted when they need it; " ..." at the end when cut (512 bytes, 32 arguments)`},
		},
		Needs: ebpfNeeds("ringbuf", "tp_btf"),
	},
	{
		Name:    "open",
		Kind:    KindEBPF,
		Summary: "every file the target opens (open, creat, openat, openat2), with flags and result",
		Events:  []string{"tp_btf/sys_exit"},
		Outputs: []string{OutputText, OutputJSON},
		Fields: []Field{
			{Name: "path", Help: "path as given (relative paths are relative to the task's directory or dfd), at most 255 bytes"},
			{Name: "flags", Help: "open flags, such as O_RDONLY|O_CLOEXEC"},
			{Name: "result", Help: "file descriptor, or the negative errno"},
			{Name: "error", Help: "errno name, such as ENOENT; only when result < 0"},
		},
		Needs: ebpfNeeds("ringbuf", "tp_btf"),
	},
	{
		Name:    "tcp",
		Kind:    KindEBPF,
		Summary: "TCP connections of the target: connect (once established), accept and close, with the duration on close",
		Events:  []string{"tp_btf/inet_sock_set_state", "tp_btf/sys_exit"},
		Outputs: []string{OutputText, OutputJSON},
		Fields: []Field{
			{Name: "family", Help: "ipv4 or ipv6"},
			{Name: "saddr", Help: "local address"},
			{Name: "sport", Help: "local port"},
			{Name: "daddr", Help: "remote address"},
			{Name: "dport", Help: "remote port"},
			{Name: "duration_us", Help: "close only: microseconds since the connect or accept (connections opened before the session are not reported)"},
		},
		Needs: ebpfNeeds("ringbuf", "tp_btf"),
	},
	{
		Name:    "syscall-top",
		Kind:    KindEBPF,
		Summary: "the target's most frequent system calls with their latency, summed in the kernel",
		Events:  []string{"tp_btf/sys_enter", "tp_btf/sys_exit"},
		Outputs: []string{OutputText, OutputJSON},
		Params: []Param{
			{Name: "interval", Default: "1s", Help: "print the rows of each interval this long; 0 prints once, at the end", Check: checkInterval},
			{Name: "top", Default: "10", Help: "rows per target and interval, the most frequent first", Check: checkTop},
			{Name: "latency", Default: "true", Help: "time every call (a program on entry and one on exit); false only counts the calls (one program on entry, about half the overhead per call)", Check: checkBool},
		},
		Fields: []Field{
			{Name: "syscall", Help: "system call name (syscall_<nr> when unknown)"},
			{Name: "nr", Help: "system call number of the node's architecture"},
			{Name: "count", Help: "calls completed in the interval (with latency=false: calls entered)"},
			{Name: "total_ns", Help: "time spent in those calls, nanoseconds; not with latency=false"},
			{Name: "avg_ns", Help: "total_ns / count; not with latency=false"},
		},
		View:  &View{Form: ViewTable, Key: "syscall", Count: "count", Total: "total_ns", Interval: "interval"},
		Needs: ebpfNeeds("tp_btf"),
	},
	{
		Name:    "runqlat",
		Kind:    KindEBPF,
		Summary: "run-queue latency of the target's tasks as a log2 histogram, summed in the kernel",
		Events:  []string{"tp_btf/sched_wakeup", "tp_btf/sched_wakeup_new", "tp_btf/sched_switch"},
		Outputs: []string{OutputText, OutputJSON},
		Params: []Param{
			{Name: "interval", Default: "0", Help: "print the histogram of each interval this long; 0 prints once, at the end", Check: checkInterval},
		},
		Fields: []Field{
			{Name: "usecs_lo", Help: "the bucket's lowest wait, microseconds"},
			{Name: "usecs_hi", Help: "the bucket's highest wait, microseconds"},
			{Name: "count", Help: "waits in the bucket during the interval"},
		},
		View:  &View{Form: ViewHistogram, Count: "count", Low: "usecs_lo", High: "usecs_hi", Unit: "usecs", Interval: "interval"},
		Needs: ebpfNeeds("tp_btf"),
	},
	{
		Name:    "oomkill",
		Kind:    KindEBPF,
		Summary: "OOM kills of the target's tasks (or triggered by them): victim, trigger and the victim's resident pages",
		Events:  []string{"tp_btf/mark_victim"},
		Outputs: []string{OutputText, OutputJSON},
		Fields: []Field{
			{Name: "victim_pid", Help: "process the OOM killer chose"},
			{Name: "victim_comm", Help: "its command name"},
			{Name: "victim_uid", Help: "its user id"},
			{Name: "trigger_pid", Help: "process whose allocation failed"},
			{Name: "trigger_comm", Help: "its command name"},
			{Name: "pages", Help: "the victim's resident pages (anon, file and shmem; approximate)"},
		},
		Needs: ebpfNeeds("ringbuf", "tp_btf"),
	},
}
