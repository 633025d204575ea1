//go:build ignore

/*
 * runqlat: how long the target's tasks wait on a run queue, from wakeup (or
 * preemption) to running, as a log2 histogram in microseconds per target,
 * summed in the kernel in a per-CPU array.
 */
#define KT_NO_EVENTS
#include "common.h"

#define NR_SLOTS 32 /* per target; Go: runqSlots */

struct queued {
	__u64 ts;
	__u32 target;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* thread id */
	__type(value, struct queued);
} queued_at SEC(".maps");

/* Sized by user space: targets * NR_SLOTS. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_SLOTS);
	__type(key, __u32); /* target * NR_SLOTS + log2(usecs) */
	__type(value, __u64);
} hist SEC(".maps");

static __always_inline void enqueue(struct task_struct *p)
{
	int target = target_of(p);
	if (target < 0)
		return;
	__u32 tid = p->pid;
	struct queued q = {.ts = bpf_ktime_get_ns(), .target = target};
	bpf_map_update_elem(&queued_at, &tid, &q, BPF_ANY);
}

static __always_inline __u32 log2l(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xFFFFFFFF) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(kt_rq_wakeup, struct task_struct *p)
{
	enqueue(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(kt_rq_wakeup_new, struct task_struct *p)
{
	enqueue(p);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(kt_rq_switch, bool preempt, struct task_struct *prev, struct task_struct *next, unsigned int prev_state)
{
	/* Preempted while runnable: back on the queue now. */
	if (prev_state == TASK_RUNNING)
		enqueue(prev);

	__u32 tid = next->pid;
	if (tid == 0)
		return 0;
	struct queued *q = bpf_map_lookup_elem(&queued_at, &tid);
	if (!q)
		return 0;
	__u64 us = (bpf_ktime_get_ns() - q->ts) / 1000;
	__u32 slot = log2l(us);
	if (slot >= NR_SLOTS)
		slot = NR_SLOTS - 1;
	__u32 key = q->target * NR_SLOTS + slot;
	bpf_map_delete_elem(&queued_at, &tid);
	__u64 *v = bpf_map_lookup_elem(&hist, &key);
	if (v)
		(*v)++;
	else
		count(COUNTER_DROPPED);
	return 0;
}
