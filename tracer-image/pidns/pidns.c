//go:build ignore

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pidns.c: a task iterator (iter/task) that writes, for every task of the
 * node, its global (initial pid namespace) thread and thread group ids and
 * its thread id in one other pid namespace, named by the inode of its nsfs
 * file (stat /proc/<pid>/ns/pid), which user space puts in config[0].
 *
 * A task's struct pid holds its id at every level from the initial
 * namespace (0) to the namespace it was created in (pid->level):
 * numbers[i].nr in numbers[i].ns. The task is visible in the namespace at
 * level i when numbers[i].ns is that namespace; elsewhere it has no id
 * there and nr is 0.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* include/linux/pid_namespace.h: MAX_PID_NS_LEVEL */
#define MAX_LEVELS 32

struct task_ids {
	__u32 tid;   /* global thread id (task->pid) */
	__u32 tgid;  /* global thread group id (task->tgid) */
	__u32 nr;    /* thread id in the namespace config[0], 0 if not visible there */
	__u32 level; /* level of that namespace, or of the task's own namespace when nr is 0 */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32); /* pid namespace inode */
} config SEC(".maps");

SEC("iter/task")
int dump_task_ids(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct task_ids out = {};
	__u32 zero = 0, *want;
	struct pid *pid;
	unsigned int level;
	void *numbers;
	__u64 stride;

	if (!task)
		return 0;
	want = bpf_map_lookup_elem(&config, &zero);
	if (!want)
		return 0;
	out.tid = BPF_CORE_READ(task, pid);
	out.tgid = BPF_CORE_READ(task, tgid);
	pid = BPF_CORE_READ(task, thread_pid);
	if (!pid)
		return 0;
	level = BPF_CORE_READ(pid, level);
	out.level = level;
	numbers = (void *)pid + bpf_core_field_offset(struct pid, numbers);
	stride = bpf_core_type_size(struct upid);
	for (__u32 i = 0; i < MAX_LEVELS; i++) {
		struct pid_namespace *ns = NULL;
		void *up = numbers + i * stride;
		unsigned int inum = 0;

		if (i > level)
			break;
		if (bpf_probe_read_kernel(&ns, sizeof(ns), up + bpf_core_field_offset(struct upid, ns)))
			break;
		if (!ns)
			break;
		inum = BPF_CORE_READ(ns, ns.inum);
		if (inum == *want) {
			int nr = 0;

			bpf_probe_read_kernel(&nr, sizeof(nr), up + bpf_core_field_offset(struct upid, nr));
			out.nr = nr;
			out.level = i;
			break;
		}
	}
	bpf_seq_write(seq, &out, sizeof(out));
	return 0;
}
