//go:build ignore

/*
 * syscall-top: count and latency of the target's system calls, summed in
 * the kernel per target and syscall number in a per-CPU array; user space
 * reads it every interval. Nothing goes through a ring buffer.
 */
#define KT_NO_EVENTS
#include "common.h"

#define NR_SYSCALLS 1024 /* slots per target; Go: syscallSlots */

struct start {
	__u64 ts;
	__u32 nr;
	__u32 target;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* thread id */
	__type(value, struct start);
} inflight SEC(".maps");

struct sysstat {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
};

/* Sized by user space: targets * NR_SYSCALLS. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_SYSCALLS);
	__type(key, __u32); /* target * NR_SYSCALLS + nr */
	__type(value, struct sysstat);
} stats SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(kt_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *t = bpf_get_current_task_btf();
	int target = target_of(t);
	if (target < 0 || id < 0 || id >= NR_SYSCALLS)
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct start s = {.ts = bpf_ktime_get_ns(), .nr = id, .target = target};
	bpf_map_update_elem(&inflight, &tid, &s, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(kt_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct start *s = bpf_map_lookup_elem(&inflight, &tid);
	if (!s)
		return 0;
	__u64 d = bpf_ktime_get_ns() - s->ts;
	__u32 key = s->target * NR_SYSCALLS + (s->nr & (NR_SYSCALLS - 1));
	bpf_map_delete_elem(&inflight, &tid);
	struct sysstat *v = bpf_map_lookup_elem(&stats, &key);
	if (!v) {
		count(COUNTER_DROPPED);
		return 0;
	}
	v->count++;
	v->total_ns += d;
	if (d > v->max_ns)
		v->max_ns = d;
	return 0;
}
