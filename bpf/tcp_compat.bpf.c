// SPDX-License-Identifier: GPL-2.0
/*
 * NewReno written the way congestion controls for a real kernel are: per-socket state in a
 * BPF_MAP_TYPE_SK_STORAGE map, the icsk_ack.pending bits by their enum inet_csk_ack_state_t
 * names, ECN by tcp_sock's ecn_flags. It only uses names a vmlinux.h of the host kernel provides,
 * so it compiles unchanged against the simulated kernel's (obj/sim/tcp_compat.bpf.o) too.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

struct so_compat_stats {
	__u64 acks;
	__u64 losses;
	__u64 delayed_ack_pending;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct so_compat_stats);
} so_compat_sk_stats SEC(".maps");

extern void tcp_reno_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;

SEC("struct_ops")
void BPF_PROG(so_compat_init, struct sock *sk)
{
	bpf_sk_storage_get(&so_compat_sk_stats, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
}

SEC("struct_ops")
__u32 BPF_PROG(so_compat_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	struct so_compat_stats *st = bpf_sk_storage_get(&so_compat_sk_stats, sk, 0, 0);

	if (st)
		st->losses++;
	return max(tp->snd_cwnd >> 1U, 2U);
}

SEC("struct_ops")
void BPF_PROG(so_compat_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct so_compat_stats *st = bpf_sk_storage_get(&so_compat_sk_stats, sk, 0, 0);

	if (st) {
		st->acks++;
		if (inet_csk(sk)->icsk_ack.pending & (ICSK_ACK_TIMER | ICSK_ACK_SCHED))
			st->delayed_ack_pending++;
	}
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops")
__u32 BPF_PROG(so_compat_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops")
struct tcp_congestion_ops so_compat = {
	.init = (void *)so_compat_init,
	.ssthresh = (void *)so_compat_ssthresh,
	.cong_avoid = (void *)so_compat_cong_avoid,
	.undo_cwnd = (void *)so_compat_undo_cwnd,
	.name = "so_compat",
};
