//go:build ignore

/*
 * syscall-top: count and latency of the target's system calls, summed in
 * the kernel per target and syscall number in a per-CPU array; user space
 * reads it every interval. Nothing goes through a ring buffer.
 *
 * Two modes; user space loads the programs of one (Go: syscallTopPrograms).
 * Count only (kt_sys_count): one program on entry that increments the
 * call's slot, no per-call state. Latency (kt_sys_enter, kt_sys_exit): the
 * entry time waits in the task's own storage until the exit. The storage
 * is created only for target tasks, so the exit program needs no filter:
 * everyone else has none. It also remembers the task's target, so the
 * filter (and its memory cgroup cross-check) runs when the task is first
 * seen, and again only when its mount namespace or the target set
 * (target_gen) changed.
 */
#define KT_NO_EVENTS
#include "common.h"

#define NR_SYSCALLS 1024 /* slots per target; Go: syscallSlots */

struct sysstat {
	__u64 count;
	__u64 total_ns;
};

/* Sized by user space: targets * NR_SYSCALLS. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_SYSCALLS);
	__type(key, __u32); /* target * NR_SYSCALLS + nr */
	__type(value, struct sysstat);
} stats SEC(".maps");

/* slot returns the call's sums, or NULL after counting it dropped: a
 * number past NR_SYSCALLS (x32, or a bogus number) or a target past the
 * map's size. */
static __always_inline struct sysstat *slot(int target, long id)
{
	if ((unsigned long)id >= NR_SYSCALLS) {
		count(COUNTER_DROPPED);
		return NULL;
	}
	__u32 key = (__u32)target * NR_SYSCALLS + (__u32)id;
	struct sysstat *v = bpf_map_lookup_elem(&stats, &key);
	if (!v)
		count(COUNTER_DROPPED);
	return v;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(kt_sys_count, struct pt_regs *regs, long id)
{
	int target = target_of(bpf_get_current_task_btf());
	if (target < 0)
		return 0;
	struct sysstat *v = slot(target, id);
	if (v)
		v->count++;
	return 0;
}

struct task_state {
	__u64 ts;     /* entry time of the call in flight; 0: none */
	__u32 nr;     /* its number */
	__s32 target; /* the task's target; -1: none */
	__u32 mntns;  /* the mount namespace target was decided on */
	__u32 gen;    /* and target_gen then */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_state);
} tstate SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(kt_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct task_state *s = bpf_task_storage_get(&tstate, t, 0, 0);
	__u32 ns = t->nsproxy->mnt_ns->ns.inum;
	__u32 gen = target_gen;

	if (!s || s->mntns != ns || s->gen != gen) {
		int target = target_of(t);
		if (!s) {
			if (target < 0)
				return 0;
			s = bpf_task_storage_get(&tstate, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (!s) {
				count(COUNTER_DROPPED);
				return 0;
			}
		}
		s->target = target;
		s->mntns = ns;
		s->gen = gen;
	}
	if (s->target < 0) {
		s->ts = 0;
		return 0;
	}
	s->nr = id;
	s->ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(kt_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_state *s = bpf_task_storage_get(&tstate, bpf_get_current_task_btf(), 0, 0);
	if (!s || !s->ts)
		return 0;
	__u64 d = bpf_ktime_get_ns() - s->ts;
	s->ts = 0;
	struct sysstat *v = slot(s->target, (long)(__s32)s->nr);
	if (!v)
		return 0;
	v->count++;
	v->total_ns += d;
	return 0;
}
