/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * common.h: what every program of package ebpf shares: the in-kernel target
 * filter, the loss counters and the ring buffer with batched wake-ups.
 *
 * Target filter. A task belongs to target i when its mount namespace
 * (task->nsproxy->mnt_ns->ns.inum) is a key of target_mntns with target i;
 * user space fills the map from stat(/proc/<pid>/ns/mnt) of each resolved
 * target. Every container has a mount namespace of its own, whatever the
 * cgroup layout, and `kubectl exec` joins it. The memory cgroup
 * (task->cgroups->subsys[memory_cgrp_id]->cgroup->kn->id, the inode of the
 * container's memory cgroup directory, right on cgroup v1 and v2) is the
 * cross-check: a task of the target's mount namespace outside the target's
 * memory cgroup (the memcg of the same map value; 0 when user space found
 * none) is counted (COUNTER_MEMCG_MISMATCH), and dropped when memcg_filter
 * is set. One map lookup does both. bpf_get_current_cgroup_id() is not used: on v1 and
 * hybrid nodes it returns the root of the (empty) v2 hierarchy for every
 * task.
 *
 * Both are checked every time target_of runs. exec and tcp's accept call
 * it on every event. open (cached_target_of) and syscall-top's latency
 * mode remember a target task's target in task storage and call target_of
 * again only when the task's mount namespace or the set of targets
 * (target_gen) changed. There a task that moves to another memory cgroup
 * later keeps its verdict, and COUNTER_MEMCG_MISMATCH counts lookups of
 * tasks, not events.
 *
 * Node-wide sessions set match_all: every task is target 0, with neither
 * the mount namespace lookup nor the memory cgroup cross-check.
 */
#ifndef __KT_COMMON_H__
#define __KT_COMMON_H__

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space before load (CollectionSpec.Variables). */
/* memcg_check: compare the memory cgroup with target_memcg (every target has one). */
volatile const __u32 memcg_check = 0;
/* memcg_filter: drop, not only count, events whose memory cgroup is not the target's. */
volatile const __u32 memcg_filter = 0;
/* match_all: every task of the node is target 0 (node-wide tracing). */
volatile const __u32 match_all = 0;
/* Submit with BPF_RB_NO_WAKEUP until this many bytes wait in the ring; the reader polls. */
volatile const __u32 wakeup_bytes = 256 << 10;

#define MAX_TARGETS 64

/* Go: targetValue. */
struct target_value {
	__u32 target; /* target index */
	__u32 pad;
	__u64 memcg; /* the target's memory cgroup id (kernfs node id = directory inode); 0: unknown */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* mount namespace inode */
	__type(value, struct target_value);
} target_mntns SEC(".maps");

#define COUNTER_LOST 0           /* records the ring buffer had no room for */
#define COUNTER_MEMCG_MISMATCH 1 /* target mntns, but another memory cgroup */
#define COUNTER_DROPPED 2        /* in-kernel state that did not fit a map */
#define NR_COUNTERS 3

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);
	if (v)
		(*v)++;
}

/*
 * task_memcg: direct loads through BTF pointers (a fault reads as 0), not
 * bpf_probe_read_kernel calls: it runs whenever the filter does.
 */
static __always_inline __u64 task_memcg(struct task_struct *t)
{
	int idx = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css;

	if (idx < 0 || idx >= 16)
		return 0;
	css = t->cgroups->subsys[idx];
	if (!css)
		return 0;
	return css->cgroup->kn->id;
}

/* target_of returns the index of the target t belongs to, or -1. */
static __always_inline int target_of(struct task_struct *t)
{
	if (match_all)
		return 0;
	/* Direct loads (BTF pointers, faults read as 0): the hot path. */
	__u32 ns = t->nsproxy->mnt_ns->ns.inum;
	struct target_value *v = bpf_map_lookup_elem(&target_mntns, &ns);

	if (!v)
		return -1;
	if (memcg_check && (!v->memcg || task_memcg(t) != v->memcg)) {
		count(COUNTER_MEMCG_MISMATCH);
		if (memcg_filter)
			return -1;
	}
	return (int)v->target;
}

/* include/uapi/linux/bpf.h: the task storage constants, which the trimmed
 * vmlinux.h leaves out. */
#define BPF_MAP_TYPE_TASK_STORAGE 29
#define BPF_F_NO_PREALLOC (1U << 0)
#define BPF_LOCAL_STORAGE_GET_F_CREATE (1ULL << 0)

/* Bumped by user space (Session.bumpTargetGen) whenever a target is added
 * or removed: the targets remembered in task storage are then looked up
 * again. */
volatile __u32 target_gen = 0;

#ifdef KT_TARGET_CACHE
/* A target task's target, and what it was decided on. */
struct target_cache {
	__s32 target;
	__u32 mntns;
	__u32 gen;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct target_cache);
} target_cache SEC(".maps");

/*
 * cached_target_of is target_of for a program that runs on many events of
 * the same tasks: a task storage lookup (the kernel caches the slot) and
 * two compares instead of the hash lookup and the memory cgroup walk. Only
 * target tasks get storage: the others pay target_of every time, as before,
 * and allocate nothing. A task whose storage cannot be created is still
 * traced, through target_of on each event.
 */
static __always_inline int cached_target_of(struct task_struct *t)
{
	if (match_all)
		return 0;
	struct target_cache *c = bpf_task_storage_get(&target_cache, t, 0, 0);
	__u32 ns = t->nsproxy->mnt_ns->ns.inum;
	__u32 gen = target_gen;

	if (c && c->mntns == ns && c->gen == gen)
		return c->target;
	int target = target_of(t);
	if (!c) {
		if (target < 0)
			return target;
		c = bpf_task_storage_get(&target_cache, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!c)
			return target;
	}
	c->target = target;
	c->mntns = ns;
	c->gen = gen;
	return target;
}
#endif

/* Header of every ring buffer record; Go: decodeHeader. */
struct hdr {
	__u64 ts;     /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u32 pid;    /* thread group id (user space's pid) */
	__u32 tid;    /* thread id */
	__u32 target; /* index of the target */
	__u32 cpu;
	char comm[16];
};

static __always_inline void fill_hdr_ids(struct hdr *h, struct task_struct *t, int target)
{
	h->ts = bpf_ktime_get_ns();
	h->pid = t->tgid;
	h->tid = t->pid;
	h->target = target;
	h->cpu = bpf_get_smp_processor_id();
}

/* fill_hdr describes any task t. */
static __always_inline void fill_hdr(struct hdr *h, struct task_struct *t, int target)
{
	fill_hdr_ids(h, t, target);
	bpf_probe_read_kernel_str(h->comm, sizeof(h->comm), t->comm);
}

/* fill_hdr_current describes t, the current task: its comm is two direct
 * loads (a BTF pointer), no helper call; the kernel keeps comm NUL-padded.
 * A rename racing with it (another thread of the process writing its
 * /proc/.../comm) can mix the two names, as bpf_get_current_comm can. */
static __always_inline void fill_hdr_current(struct hdr *h, struct task_struct *t, int target)
{
	const __u64 *c = (const __u64 *)t->comm;
	__u64 *d = (__u64 *)h->comm; /* at offset 24 of struct hdr */

	fill_hdr_ids(h, t, target);
	d[0] = c[0];
	d[1] = c[1];
}

#ifndef KT_NO_EVENTS
/* Sized by user space (Options.RingBytes) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

/* reserve returns room for one record, or NULL after counting it lost. */
static __always_inline void *reserve(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e)
		count(COUNTER_LOST);
	return e;
}

/* submit wakes the reader only once wakeup_bytes wait; it polls for less. */
static __always_inline void submit(void *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = 0;
	bpf_ringbuf_submit(e, flags);
}

/* output copies size bytes of e into the ring, for records whose length
 * varies (reserve takes a constant size), counting it lost when full. */
static __always_inline void output(void *e, __u64 size)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = 0;
	if (bpf_ringbuf_output(&events, e, size, flags))
		count(COUNTER_LOST);
}
#endif

#endif /* __KT_COMMON_H__ */
