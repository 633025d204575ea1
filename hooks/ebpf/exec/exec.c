//go:build ignore

/* exec: every execve of the target's tasks, with the new argv. */
#include "common.h"

#define FILENAME_LEN 256
#define ARGS_LEN 512

struct exec_event {
	struct hdr h;
	__u32 ppid;
	__u32 uid;
	__u32 args_len;  /* bytes of args used */
	__u32 truncated; /* argv was longer than ARGS_LEN */
	char filename[FILENAME_LEN];
	char args[ARGS_LEN]; /* NUL-separated, as on the new stack */
};
const struct exec_event *unused_exec_event __attribute__((unused));

SEC("tp_btf/sched_process_exec")
int BPF_PROG(kt_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	int target = target_of(p);
	if (target < 0)
		return 0;
	struct exec_event *e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr_current(&e->h, p, target); /* p is current: it runs the exec */
	e->ppid = p->real_parent->tgid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), bprm->filename);

	unsigned long start = p->mm->arg_start, end = p->mm->arg_end;
	__u64 len = end > start ? end - start : 0;
	e->truncated = 0;
	if (len > ARGS_LEN) {
		len = ARGS_LEN;
		e->truncated = 1;
	}
	e->args_len = 0;
	if (len > 0 && bpf_probe_read_user(e->args, len, (void *)start) == 0)
		e->args_len = len;
	submit(e);
	return 0;
}
