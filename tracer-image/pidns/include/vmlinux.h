/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmlinux.h, trimmed for package pidns: only the kernel types and fields
 * pidns.c reads. Taken from `bpftool btf dump file /sys/kernel/btf/vmlinux
 * format c` on Linux 6.18 (x86_64) and cut down by hand. Every struct is
 * compiled with preserve_access_index: each access is a CO-RE relocation,
 * resolved by field name against the running kernel's BTF at load, so the
 * offsets here do not matter. Vendored so that `go generate` gives the same
 * object on any machine. The BPF program reads no registers, so nothing
 * here is architecture-specific.
 */
#ifndef __PIDNS_VMLINUX_H__
#define __PIDNS_VMLINUX_H__

typedef unsigned char __u8;
typedef short int __s16;
typedef short unsigned int __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long int __s64;
typedef long long unsigned int __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
typedef int pid_t;
typedef __u64 u64;
typedef __u32 u32;

enum {
	false = 0,
	true = 1,
};

/* include/uapi/linux/bpf.h */
enum bpf_map_type {
	BPF_MAP_TYPE_ARRAY = 2,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct ns_common {
	unsigned int inum;
};

struct pid_namespace {
	struct ns_common ns;
};

/* include/linux/pid.h */
struct upid {
	int nr;
	struct pid_namespace *ns;
};

struct pid {
	unsigned int level;
	struct upid numbers[];
};

struct task_struct {
	pid_t pid;
	pid_t tgid;
	struct pid *thread_pid;
};

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	u64 session_id;
	u64 seq_num;
};

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
};

#pragma clang attribute pop

#endif /* __PIDNS_VMLINUX_H__ */
