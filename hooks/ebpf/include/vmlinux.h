/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmlinux.h, trimmed: only the kernel types and fields the programs of this
 * package read, plus the UAPI constants they use.
 *
 * Provenance: the definitions were taken from
 *
 *	bpftool btf dump file /sys/kernel/btf/vmlinux format c
 *
 * on Linux 6.18.44 (x86_64, Debian bookworm Firecracker VM, bpftool 7.1.0),
 * and cut down by hand to the members used. Every struct is compiled with
 * preserve_access_index, so the offsets here do not matter: each access is
 * a CO-RE relocation, resolved by field name against the running kernel's
 * BTF when cilium/ebpf loads the object. Members that sit in anonymous
 * structs or unions in the kernel (mm_struct.arg_start, sock_common.skc_*)
 * are declared directly; CO-RE finds them through the anonymous members.
 * The one arch-specific type, struct pt_regs (a system call's registers, as
 * tp_btf/sys_enter and sys_exit see them), is defined for the target that
 * bpf2go names (__TARGET_ARCH_x86 or __TARGET_ARCH_arm64), with the system
 * call numbers the programs use, from the kernel's syscall tables.
 *
 * It is vendored (not generated at build time) so that `go generate` gives
 * the same objects on any machine, whatever its kernel.
 */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

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
typedef unsigned int uid_t;
typedef __u64 u64;
typedef __u32 u32;

enum {
	false = 0,
	true = 1,
};

/* include/uapi/linux/bpf.h */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};

enum {
	BPF_RB_AVAIL_DATA = 0,
	BPF_RB_RING_SIZE = 1,
	BPF_RB_CONS_POS = 2,
	BPF_RB_PROD_POS = 3,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

/* include/linux/socket.h, include/net/tcp_states.h */
#define AF_INET 2
#define AF_INET6 10
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
/* include/uapi/asm-generic/fcntl.h */
#define AT_FDCWD -100
#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000
/* include/linux/sched.h */
#define TASK_RUNNING 0

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

#if defined(__TARGET_ARCH_x86)
/* arch/x86/include/asm/ptrace.h */
struct pt_regs {
	long unsigned int r10;
	long unsigned int r9;
	long unsigned int r8;
	long unsigned int dx;
	long unsigned int si;
	long unsigned int di;
	long unsigned int orig_ax;
};
#define SYSCALL_NR(regs) ((long)(regs)->orig_ax)
#define SYSCALL_ARG0(regs) ((regs)->di)
#define SYSCALL_ARG1(regs) ((regs)->si)
#define SYSCALL_ARG2(regs) ((regs)->dx)
/* At sys_exit: the return value has replaced ax, not the arguments. */
#define SYSCALL_EXIT_ARG0(regs) ((regs)->di)
/* arch/x86/entry/syscalls/syscall_64.tbl */
#define NR_open 2
#define NR_accept 43
#define NR_creat 85
#define NR_openat 257
#define NR_accept4 288
#define NR_openat2 437
#elif defined(__TARGET_ARCH_arm64)
/* arch/arm64/include/asm/ptrace.h; regs sits in an anonymous union */
struct pt_regs {
	__u64 regs[31];
	__u64 orig_x0;
	__s32 syscallno;
};
#define SYSCALL_NR(regs) ((long)(regs)->syscallno)
#define SYSCALL_ARG0(regs) ((regs)->regs[0])
#define SYSCALL_ARG1(regs) ((regs)->regs[1])
#define SYSCALL_ARG2(regs) ((regs)->regs[2])
/* At sys_exit the return value has replaced x0; the entry saved it in orig_x0. */
#define SYSCALL_EXIT_ARG0(regs) ((regs)->orig_x0)
/* include/uapi/asm-generic/unistd.h: no open, no creat */
#define NR_open -1
#define NR_creat -1
#define NR_openat 56
#define NR_accept 202
#define NR_accept4 242
#define NR_openat2 437
#else
#error "bpf2go -target amd64 or arm64: the programs read system call registers"
#endif

struct percpu_counter {
	__s64 count;
};

struct socket {
	struct sock *sk;
};

struct file {
	void *private_data;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

/* Indexed with bpf_core_enum_value, so the kernel's value is used. */
enum cgroup_subsys_id {
	cpuset_cgrp_id = 0,
	cpu_cgrp_id = 1,
	cpuacct_cgrp_id = 2,
	io_cgrp_id = 3,
	memory_cgrp_id = 4,
	CGROUP_SUBSYS_COUNT = 12,
};

struct ns_common {
	unsigned int inum;
};

struct mnt_namespace {
	struct ns_common ns;
};

struct nsproxy {
	struct mnt_namespace *mnt_ns;
};

struct kernfs_node {
	u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct cgroup_subsys_state {
	struct cgroup *cgroup;
};

struct css_set {
	struct cgroup_subsys_state *subsys[12];
};

/* include/linux/mm_types_task.h */
enum {
	MM_FILEPAGES = 0,
	MM_ANONPAGES = 1,
	MM_SWAPENTS = 2,
	MM_SHMEMPAGES = 3,
};

struct mm_struct {
	long unsigned int arg_start;
	long unsigned int arg_end;
	struct percpu_counter rss_stat[4];
};

struct task_struct {
	unsigned int __state;
	struct mm_struct *mm;
	pid_t pid;
	pid_t tgid;
	struct task_struct *real_parent;
	char comm[16];
	struct nsproxy *nsproxy;
	struct css_set *cgroups;
	struct files_struct *files;
};

struct linux_binprm {
	const char *filename;
};

struct open_how {
	__u64 flags;
	__u64 mode;
	__u64 resolve;
};

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
};

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	short unsigned int skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
};

struct sock {
	struct sock_common __sk_common;
};


#pragma clang attribute pop

#endif /* __VMLINUX_H__ */
