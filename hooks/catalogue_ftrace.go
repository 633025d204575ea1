package hooks

import (
	"errors"
	"fmt"
	"strings"
)

// ftraceNeeds is what every ftrace hook needs. The host's PID namespace
// shows the target's processes, whose host PIDs the instance's filters
// take.
func ftraceNeeds(kernel ...string) Needs {
	return needing(Needs{HostPID: true, Kernel: append([]string{"tracefs"}, kernel...)},
		Capability{"SYS_ADMIN", "mount tracefs in the helper's own mount namespace and create the private instance `instances/kubectl-trace-<session>-…`"})
}

// trackingEvents are enabled by every ftrace hook but sched, to follow the
// target's forks, execs and exits; they are not shown.
var trackingEvents = []string{"sched:sched_process_fork", "sched:sched_process_exec", "sched:sched_process_exit"}

// ftraceHooks run in a private tracefs instance (package ftrace).
var ftraceHooks = []Descriptor{
	{
		Name:    "sched",
		Kind:    KindFtrace,
		Summary: "scheduler activity of the target: switches, wakeups, migrations, fork, exec and exit",
		Events: []string{
			"sched:sched_switch", "sched:sched_wakeup", "sched:sched_migrate_task",
			"sched:sched_process_fork", "sched:sched_process_exec", "sched:sched_process_exit",
		},
		Outputs: []string{OutputText, OutputJSON},
		Needs:   ftraceNeeds(),
	},
	{
		Name:    "syscalls",
		Kind:    KindFtrace,
		Summary: "system calls of the target, one event per completed call with its return value, error and duration",
		Events:  append([]string{"syscalls:sys_enter_<name>", "syscalls:sys_exit_<name>"}, trackingEvents...),
		Outputs: []string{OutputText, OutputJSON},
		Params: []Param{{
			Name:    "syscalls",
			Default: "all",
			Help: "comma-separated syscall names without the sys_ prefix (openat,read,write), or all; " +
				"the helper checks them against the node kernel's syscall events",
			Check: checkSyscalls,
		}},
		Fields: []Field{
			{Name: "name", Help: "the syscall's name, such as openat"},
			{Name: "ret", Help: "the return value, in decimal (hex above 4 GiB, for addresses); absent when the call did not return"},
			{Name: "errno", Help: "the error's name (ENOENT) when ret is a negative error number"},
			{Name: "duration_ns", Help: "from entry to return, in nanoseconds (the event's time is the entry's); absent when the entry was before the trace began"},
			{Name: "unfinished", Help: "true when the trace stopped, or the thread exited, while the call was still blocked"},
			{Name: "args", Help: "the arguments as the kernel prints them (pointers as addresses); absent when the entry was not seen"},
		},
		// Events come out when the call returns (exit and exit_group at
		// their entry), in the order of the returns.
		Needs: ftraceNeeds("syscall tracepoints (CONFIG_FTRACE_SYSCALLS); native syscalls only, not 32-bit compat ones"),
	},
	{
		Name:    "signals",
		Kind:    KindFtrace,
		Summary: "signals sent to and by the target (signal_generate, with the result) and delivered to it (signal_deliver)",
		Events:  append([]string{"signal:signal_generate", "signal:signal_deliver"}, trackingEvents...),
		Outputs: []string{OutputText, OutputJSON},
		Fields: []Field{
			{Name: "sig", Help: "the signal's number"},
			{Name: "signame", Help: "the signal's name, such as SIGTERM"},
			{Name: "code", Help: "si_code: 0 from kill(), -6 from tkill(), 128 from the kernel, …"},
			{Name: "errno", Help: "si_errno"},
			{Name: "sender_pid", Help: "signal_generate: the thread that was running when the signal was generated (the sender, or an interrupted thread for a kernel signal)"},
			{Name: "sender_comm", Help: "signal_generate: its name"},
			{Name: "receiver_pid", Help: "signal_generate: the thread or process the signal is sent to"},
			{Name: "receiver_comm", Help: "signal_generate: its name"},
			{Name: "group", Help: "signal_generate: 1 when sent to the whole process, 0 to one thread"},
			{Name: "result", Help: "signal_generate: delivered, ignored, already_pending, overflow_fail or lose_info"},
			{Name: "sa_handler", Help: "signal_deliver: the handler's address (0 default action, 1 ignore)"},
			{Name: "sa_flags", Help: "signal_deliver: the handler's SA_* flags, in hex"},
		},
		Needs: ftraceNeeds("signal tracepoints"),
	},
	{
		Name:    "block",
		Kind:    KindFtrace,
		Summary: "block I/O requests of the target, one event per completed request with its latency",
		Events:  append([]string{"block:block_rq_insert", "block:block_rq_issue", "block:block_rq_complete"}, trackingEvents...),
		Outputs: []string{OutputText, OutputJSON},
		Params: []Param{{
			Name: "dev",
			Help: "only requests to this device, as major:minor (254:0); every device when empty",
			Check: func(v string) error {
				if v == "" {
					return nil
				}
				maj, min, ok := strings.Cut(v, ":")
				if !ok || !isDigits(maj) || !isDigits(min) {
					return errors.New("want major:minor, such as 254:0 (see lsblk)")
				}
				return nil
			},
		}},
		Fields: []Field{
			{Name: "dev", Help: "the device, as major,minor"},
			{Name: "rwbs", Help: "the request's kind: R read, W write, D discard, F flush, S sync, M metadata, A readahead, …"},
			{Name: "sector", Help: "the first 512-byte sector"},
			{Name: "nr_sector", Help: "how many sectors"},
			{Name: "bytes", Help: "the request's size in bytes"},
			{Name: "latency_ns", Help: "from issue to the device to completion, in nanoseconds (of microsecond resolution)"},
			{Name: "queue_ns", Help: "from insertion into the I/O scheduler to issue, when it was inserted (microsecond resolution)"},
			{Name: "error", Help: "the completion's error (0 is success)"},
		},
		// A request is the target's when one of its tasks inserted or
		// issued it; the kernel's writeback threads flush buffered writes
		// in their own name.
		Needs: ftraceNeeds("block tracepoints"),
	},
	{
		Name:    "pagefaults",
		Kind:    KindFtrace,
		Summary: "page faults of the target, from user space (and from the kernel touching user memory with kernel=true); x86 only",
		Events:  append([]string{"exceptions:page_fault_user", "exceptions:page_fault_kernel"}, trackingEvents...),
		Outputs: []string{OutputText, OutputJSON},
		Params: []Param{{
			Name:    "kernel",
			Default: "false",
			Help:    "true adds faults taken in kernel mode on the target's behalf (copying to or from its memory)",
			Check:   checkBool,
		}},
		Fields: []Field{
			{Name: "address", Help: "the faulting address"},
			{Name: "ip", Help: "the instruction that faulted: an address in user space, a symbol for kernel faults"},
			{Name: "error_code", Help: "the x86 page fault error code, in hex"},
			{Name: "access", Help: "read, write or exec, from the error code"},
			{Name: "cause", Help: "not-present (a page to map) or protection (a permission fault, such as copy-on-write)"},
		},
		Needs: ftraceNeeds("x86 exceptions tracepoints"),
	},
	{
		Name:    "funcgraph",
		Kind:    KindFtrace,
		Summary: "calls of the kernel functions you name, made by the target (function tracer; entries with their caller)",
		Events:  append([]string(nil), trackingEvents...),
		Outputs: []string{OutputText, OutputJSON},
		Params: []Param{{
			Name:    "functions",
			Default: "vfs_read,vfs_write",
			Help: "comma-separated kernel function names, or globs with * (vfs_*); at most 64 functions; " +
				"the helper checks them against the node kernel's available_filter_functions",
			Check: checkFunctions,
		}},
		Fields: []Field{
			{Name: "func", Help: "the function called"},
			{Name: "caller", Help: "the function that called it"},
		},
		Needs: ftraceNeeds("function tracer (CONFIG_FUNCTION_TRACER) usable in tracefs instances; a kernel in lockdown refuses it"),
		// Without set_ftrace_pid the function tracer fires on every call
		// on every CPU, the helper's own reads of the trace (vfs_read)
		// among them: a loop that feeds itself, at a cost the whole node pays.
		NotNodeWide: "without a PID filter the function tracer would record every call of those functions on every CPU, the helper's own reads of the trace among them",
	},
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func checkBool(v string) error {
	if v != "true" && v != "false" {
		return errors.New("want true or false")
	}
	return nil
}

// isIdent reports whether s is a C identifier: what syscall and kernel
// function names are made of.
func isIdent(s string) bool {
	if s == "" || len(s) > 128 || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func checkSyscalls(v string) error {
	if v == "all" {
		return nil
	}
	names := strings.Split(v, ",")
	for _, n := range names {
		if n == "all" {
			return errors.New("all stands alone: give all, or a list of names")
		}
		if strings.HasPrefix(n, "sys_") {
			return fmt.Errorf("%q: name syscalls without the sys_ prefix (%s)", n, strings.TrimPrefix(n, "sys_"))
		}
		if !isIdent(n) || strings.ToLower(n) != n {
			return fmt.Errorf("%q is not a syscall name: want lower-case names such as openat,read,write, or all", n)
		}
	}
	return nil
}

func checkFunctions(v string) error {
	for _, n := range strings.Split(v, ",") {
		if n == "" {
			return errors.New("an empty name: want comma-separated kernel function names such as vfs_read,vfs_write")
		}
		lit := strings.ReplaceAll(n, "*", "")
		if strings.Contains(n, "*") && len(lit) < 3 {
			return fmt.Errorf("%q would trace (almost) every kernel function: a glob needs at least 3 other characters, such as vfs_*", n)
		}
		// Kernel symbols may carry compiler suffixes: foo.isra.0, bar.cold.
		for i, part := range strings.Split(lit, ".") {
			if i > 0 && isDigits(part) {
				continue
			}
			if part == "" && !strings.Contains(n, "*") || part != "" && !isIdent(part) {
				return fmt.Errorf("%q is not a kernel function name", n)
			}
		}
	}
	return nil
}
