//go:build ignore

/*
 * open: every open of the target's tasks, with its result: open, creat,
 * openat and openat2, from tp_btf/sys_exit alone. At the exit the
 * syscall's registers still hold its arguments (x86: only ax took the
 * return value; arm64: orig_x0 kept x0), and the path is read from user
 * memory there, as it always was, so an entry program and per-thread
 * state would only cost: a second program on every system call of the
 * node, and a map update and delete per open. fentry/fexit of
 * do_sys_openat2 would need no registers, but kernels that are locked
 * down refuse fentry programs (EPERM), and the per-syscall tracepoints
 * (syscalls:sys_exit_openat) need tracefs; the raw syscall tracepoint
 * needs neither. Every other system call returns after a compare.
 */
#define KT_TARGET_CACHE
#include "common.h"

#define PATH_LEN 256

struct open_event {
	struct hdr h;
	__s64 ret;
	__u64 flags;
	__s32 dfd;
	__u32 path_len; /* bytes copied, with the NUL; 0 if the path was unreadable */
	char path[PATH_LEN]; /* the record ends after path_len bytes of it */
};
const struct open_event *unused_open_event __attribute__((unused));

/*
 * The event is built here and copied into the ring cut after the path's
 * NUL: an open of /dev/null takes 80 bytes of ring, not 320. Per CPU, and a
 * program does not nest in itself on a CPU (the kernel's recursion guard).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct open_event);
} open_scratch SEC(".maps");

static __always_inline bool is_open(long nr)
{
	return nr == NR_openat || nr == NR_openat2 || nr == NR_open || nr == NR_creat;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(kt_open, struct pt_regs *regs, long ret)
{
	long id = SYSCALL_NR(regs);
	if (!is_open(id))
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	int target = cached_target_of(t);
	if (target < 0)
		return 0;
	__u32 zero = 0;
	struct open_event *e = bpf_map_lookup_elem(&open_scratch, &zero);
	if (!e)
		return 0;
	fill_hdr_current(&e->h, t, target);
	e->ret = ret;
	__u64 filename;
	if (id == NR_open || id == NR_creat) {
		e->dfd = AT_FDCWD;
		filename = SYSCALL_EXIT_ARG0(regs);
		e->flags = id == NR_creat ? O_CREAT | O_WRONLY | O_TRUNC : SYSCALL_ARG1(regs);
	} else {
		e->dfd = (__s32)SYSCALL_EXIT_ARG0(regs);
		filename = SYSCALL_ARG1(regs);
		e->flags = 0;
		if (id == NR_openat2) {
			struct open_how *how = (struct open_how *)SYSCALL_ARG2(regs);
			bpf_probe_read_user(&e->flags, sizeof(e->flags), &how->flags);
		} else {
			e->flags = SYSCALL_ARG2(regs);
		}
	}
	long n = bpf_probe_read_user_str(e->path, sizeof(e->path), (void *)filename);
	__u32 len = n > 0 ? n : 0;
	if (len > PATH_LEN)
		len = PATH_LEN;
	e->path_len = len;
	output(e, offsetof(struct open_event, path) + len);
	return 0;
}
