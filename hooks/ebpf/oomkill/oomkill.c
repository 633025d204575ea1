//go:build ignore

/*
 * oomkill: the OOM killer marked a victim in the target, or a task of the
 * target triggered it. oom:mark_victim runs in the task whose allocation
 * failed, before the victim is killed. (fentry of oom_kill_process would
 * also give the oom_control, but locked-down kernels refuse fentry.)
 */
#include "common.h"

struct oom_event {
	struct hdr h; /* the target's side: the victim, or else the trigger */
	__u32 victim_pid;
	__u32 victim_uid;
	char victim_comm[16];
	__u32 trigger_pid;
	__u32 pad;
	char trigger_comm[16];
	__s64 pages; /* victim's resident pages: anon + file + shmem */
};
const struct oom_event *unused_oom_event __attribute__((unused));

SEC("tp_btf/mark_victim")
int BPF_PROG(kt_oomkill, struct task_struct *victim, uid_t uid)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_struct *side = victim;

	int target = target_of(victim);
	if (target < 0) {
		target = target_of(t);
		side = t;
	}
	if (target < 0)
		return 0;
	struct oom_event *e = reserve(sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, side, target);
	e->victim_pid = victim->tgid;
	e->victim_uid = uid;
	bpf_probe_read_kernel_str(e->victim_comm, sizeof(e->victim_comm), victim->comm);
	e->trigger_pid = t->tgid;
	e->pad = 0;
	bpf_probe_read_kernel_str(e->trigger_comm, sizeof(e->trigger_comm), t->comm);
	/* percpu_counter.count: the sum without the per-CPU deltas not yet folded in. */
	struct mm_struct *mm = victim->mm;
	__s64 pages = 0;
	if (mm)
		pages = mm->rss_stat[MM_FILEPAGES].count + mm->rss_stat[MM_ANONPAGES].count +
			mm->rss_stat[MM_SHMEMPAGES].count;
	e->pages = pages > 0 ? pages : 0;
	submit(e);
	return 0;
}
