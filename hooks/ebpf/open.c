//go:build ignore

/*
 * open: every open of the target's tasks, with its result: open, creat,
 * openat and openat2, from tp_btf/sys_enter (arguments, kept per thread)
 * and tp_btf/sys_exit (result, path, event). fentry/fexit of
 * do_sys_openat2 would need no state, but kernels that are locked down
 * refuse fentry programs (EPERM), and the per-syscall tracepoints
 * (syscalls:sys_enter_openat) need tracefs; the raw syscall tracepoints
 * need neither. Every other system call returns after a compare.
 */
#include "common.h"

#define PATH_LEN 256

struct open_args {
	__u64 filename; /* user pointer */
	__u64 flags;
	__s32 dfd;
	__u32 target;
};

/*
 * A plain hash, not an LRU: an LRU evicts entries before it is full (its
 * free lists are per CPU), which lost opens without a trace. A full hash
 * fails the update instead, and that is counted.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* thread id */
	__type(value, struct open_args);
} opening SEC(".maps");

struct open_event {
	struct hdr h;
	__s64 ret;
	__u64 flags;
	__s32 dfd;
	__u32 path_len; /* bytes copied, with the NUL; 0 if the path was unreadable */
	char path[PATH_LEN];
};
const struct open_event *unused_open_event __attribute__((unused));

static __always_inline bool is_open(long nr)
{
	return nr == NR_openat || nr == NR_openat2 || nr == NR_open || nr == NR_creat;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(kt_open_enter, struct pt_regs *regs, long id)
{
	if (!is_open(id))
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	int target = target_of(t);
	if (target < 0)
		return 0;
	struct open_args a = {.target = target};
	if (id == NR_open || id == NR_creat) {
		a.dfd = AT_FDCWD;
		a.filename = SYSCALL_ARG0(regs);
		a.flags = id == NR_creat ? O_CREAT | O_WRONLY | O_TRUNC : SYSCALL_ARG1(regs);
	} else {
		a.dfd = (__s32)SYSCALL_ARG0(regs);
		a.filename = SYSCALL_ARG1(regs);
		if (id == NR_openat2) {
			struct open_how *how = (struct open_how *)SYSCALL_ARG2(regs);
			bpf_probe_read_user(&a.flags, sizeof(a.flags), &how->flags);
		} else {
			a.flags = SYSCALL_ARG2(regs);
		}
	}
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&opening, &tid, &a, BPF_ANY))
		count(COUNTER_DROPPED);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(kt_open_exit, struct pt_regs *regs, long ret)
{
	if (!is_open(SYSCALL_NR(regs)))
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args *a = bpf_map_lookup_elem(&opening, &tid);
	if (!a) {
		/* A target's open whose entry is missing is an event lost, never
		 * a silent gap (a thread that joined the target mid-call aside). */
		if (target_of(bpf_get_current_task_btf()) >= 0)
			count(COUNTER_DROPPED);
		return 0;
	}
	struct open_event *e = reserve(sizeof(*e));
	if (e) {
		fill_hdr(&e->h, bpf_get_current_task_btf(), a->target);
		e->ret = ret;
		e->flags = a->flags;
		e->dfd = a->dfd;
		long n = bpf_probe_read_user_str(e->path, sizeof(e->path), (void *)a->filename);
		e->path_len = n > 0 ? n : 0;
		submit(e);
	}
	bpf_map_delete_elem(&opening, &tid);
	return 0;
}
