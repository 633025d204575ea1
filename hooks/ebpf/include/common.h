/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * common.h: what every program of package ebpf shares: the in-kernel target
 * filter, the loss counters and the ring buffer with batched wake-ups.
 *
 * Target filter. A task belongs to target i when its mount namespace
 * (task->nsproxy->mnt_ns->ns.inum) is a key of target_mntns with value i;
 * user space fills the map from stat(/proc/<pid>/ns/mnt) of each resolved
 * target. Every container has a mount namespace of its own, whatever the
 * cgroup layout, and `kubectl exec` joins it. The memory cgroup
 * (task->cgroups->subsys[memory_cgrp_id]->cgroup->kn->id, the inode of the
 * container's memory cgroup directory, right on cgroup v1 and v2) is the
 * cross-check: a task of the target's mount namespace outside the target's
 * memory cgroup is counted (COUNTER_MEMCG_MISMATCH), and dropped when
 * memcg_filter is set. bpf_get_current_cgroup_id() is not used: on v1 and
 * hybrid nodes it returns the root of the (empty) v2 hierarchy for every
 * task.
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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);   /* mount namespace inode */
	__type(value, __u32); /* target index */
} target_mntns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);   /* memory cgroup id (kernfs node id = directory inode) */
	__type(value, __u32); /* target index */
} target_memcg SEC(".maps");

#define COUNTER_LOST 0           /* ring buffer reservations that failed */
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

static __always_inline __u64 task_memcg(struct task_struct *t)
{
	int idx = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct css_set *cs = BPF_CORE_READ(t, cgroups);
	struct cgroup_subsys_state *css = NULL;

	if (!cs || idx < 0 || idx >= 16)
		return 0;
	bpf_core_read(&css, sizeof(css), &cs->subsys[idx]);
	if (!css)
		return 0;
	return BPF_CORE_READ(css, cgroup, kn, id);
}

/* target_of returns the index of the target t belongs to, or -1. */
static __always_inline int target_of(struct task_struct *t)
{
	if (match_all)
		return 0;
	/* Direct loads (BTF pointers, faults read as 0): the hot path. */
	__u32 ns = t->nsproxy->mnt_ns->ns.inum;
	__u32 *idx = bpf_map_lookup_elem(&target_mntns, &ns);

	if (!idx)
		return -1;
	if (memcg_check) {
		__u64 cg = task_memcg(t);
		__u32 *cidx = bpf_map_lookup_elem(&target_memcg, &cg);
		if (!cidx || *cidx != *idx) {
			count(COUNTER_MEMCG_MISMATCH);
			if (memcg_filter)
				return -1;
		}
	}
	return (int)*idx;
}

/* Header of every ring buffer record; Go: decodeHeader. */
struct hdr {
	__u64 ts;     /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u32 pid;    /* thread group id (user space's pid) */
	__u32 tid;    /* thread id */
	__u32 target; /* index of the target */
	__u32 cpu;
	char comm[16];
};

static __always_inline void fill_hdr(struct hdr *h, struct task_struct *t, int target)
{
	h->ts = bpf_ktime_get_ns();
	h->pid = t->tgid;
	h->tid = t->pid;
	h->target = target;
	h->cpu = bpf_get_smp_processor_id();
	bpf_probe_read_kernel_str(h->comm, sizeof(h->comm), t->comm);
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
#endif

#endif /* __KT_COMMON_H__ */
