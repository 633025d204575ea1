//go:build ignore

/*
 * tcp: the target's TCP connections.
 *   connect: inet_sock_set_state to SYN_SENT runs in the connecting task
 *     (inside connect()): the socket is remembered with the task; the
 *     event is emitted when it reaches ESTABLISHED, when both ports are
 *     known (that transition may run in softirq, so it is attributed
 *     through the map, not the current task).
 *   accept: tp_btf/sys_exit of accept and accept4, in the accepting task:
 *     the new socket is found from the returned fd.
 *   close: inet_sock_set_state to TCP_CLOSE of a remembered socket, in
 *     any context, with the connection's duration.
 * fentry/fexit of tcp_v4_connect or inet_csk_accept would be narrower, but
 * locked-down kernels refuse fentry programs (EPERM).
 */
#define KT_TARGET_CACHE
#include "common.h"
#include <bpf/bpf_endian.h>

#define KIND_CONNECT 1
#define KIND_ACCEPT 2
#define KIND_CLOSE 3

/* A connection's addresses; the local port is gone by TCP_CLOSE. */
struct tuple {
	__u16 family;
	__u16 sport;    /* local, host order */
	__u16 dport;    /* remote, host order */
	__u16 pad;
	__u8 saddr[16]; /* local; IPv4 in the first 4 bytes */
	__u8 daddr[16]; /* remote */
};

struct sockinfo {
	__u64 start;
	__u32 pid;
	__u32 tid;
	__u32 target;
	__u32 have_tuple; /* tuple was read once the connection was up */
	char comm[16];
	struct tuple tuple;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* struct sock * */
	__type(value, struct sockinfo);
} socks SEC(".maps");

struct tcp_event {
	struct hdr h;
	__u32 kind;
	__u32 pad;
	__u64 duration_ns; /* close: since connect or accept */
	struct tuple tuple;
};
const struct tcp_event *unused_tcp_event __attribute__((unused));

/* read_tuple reads with CO-RE probes: sk may come from the fd table. */
static __always_inline void read_tuple(struct tuple *tp, struct sock *sk)
{
	tp->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	tp->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	tp->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	tp->pad = 0;
	__builtin_memset(tp->saddr, 0, 16);
	__builtin_memset(tp->daddr, 0, 16);
	if (tp->family == AF_INET6) {
		bpf_core_read(tp->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(tp->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	} else {
		bpf_core_read(tp->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(tp->daddr, 4, &sk->__sk_common.skc_daddr);
	}
}

/* emit reports si's connection; si->tuple must be filled in. */
static __always_inline void emit(struct sockinfo *si, __u32 kind, __u64 now)
{
	struct tcp_event *e = reserve(sizeof(*e));
	if (!e)
		return;
	e->h.ts = now;
	e->h.pid = si->pid;
	e->h.tid = si->tid;
	e->h.target = si->target;
	e->h.cpu = bpf_get_smp_processor_id();
	__builtin_memcpy(e->h.comm, si->comm, sizeof(e->h.comm));
	e->kind = kind;
	e->pad = 0;
	e->duration_ns = kind == KIND_CLOSE ? now - si->start : 0;
	__builtin_memcpy(&e->tuple, &si->tuple, sizeof(e->tuple));
	submit(e);
}

/* remember ties sk to t, the current task, of target (si->tuple and have_tuple are the caller's). */
static __always_inline int remember(struct sock *sk, struct sockinfo *si, struct task_struct *t, int target)
{
	si->start = bpf_ktime_get_ns();
	si->pid = t->tgid;
	si->tid = t->pid;
	si->target = target;
	bpf_get_current_comm(si->comm, sizeof(si->comm));
	__u64 key = (__u64)sk;
	if (bpf_map_update_elem(&socks, &key, si, BPF_ANY)) {
		count(COUNTER_DROPPED);
		return -1;
	}
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(kt_tcp_state, struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;
	struct sockinfo *si;

	if (newstate == TCP_SYN_SENT) {
		struct task_struct *t = bpf_get_current_task_btf();
		int target = cached_target_of(t);
		if (target >= 0) {
			struct sockinfo n = {};
			remember(sk, &n, t, target);
		}
		return 0;
	}
	if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_SENT) {
		si = bpf_map_lookup_elem(&socks, &key);
		if (si) {
			read_tuple(&si->tuple, sk);
			si->have_tuple = 1;
			emit(si, KIND_CONNECT, bpf_ktime_get_ns());
		}
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;
	si = bpf_map_lookup_elem(&socks, &key);
	if (!si)
		return 0;
	if (!si->have_tuple)
		read_tuple(&si->tuple, sk); /* never established: no local port */
	emit(si, KIND_CLOSE, bpf_ktime_get_ns());
	bpf_map_delete_elem(&socks, &key);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(kt_tcp_accept, struct pt_regs *regs, long ret)
{
	long nr = SYSCALL_NR(regs);
	if ((nr != NR_accept && nr != NR_accept4) || ret < 0)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	int target = cached_target_of(t);
	if (target < 0)
		return 0;
	/* The accepted socket: current->files->fdt->fd[ret]->private_data->sk. */
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	if (!fdt || ret >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_core_read(&f, sizeof(f), &fds[ret]);
	if (!f)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return 0;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	struct sockinfo si = {};
	read_tuple(&si.tuple, sk);
	si.have_tuple = 1;
	if (remember(sk, &si, t, target) == 0)
		emit(&si, KIND_ACCEPT, si.start);
	return 0;
}
