// SPDX-License-Identifier: GPL-2.0
/*
 * NewReno (RFC 5681) as a struct_ops congestion control: halve on loss, slow start below
 * ssthresh, one segment per RTT above it. One section per program and a plain
 * `.struct_ops` map, the layout Debian's bpftool can register.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

SEC("struct_ops/so_reno_ssthresh")
__u32 BPF_PROG(so_reno_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);

	return max(tp->snd_cwnd >> 1U, 2U);
}

SEC("struct_ops/so_reno_cong_avoid")
void BPF_PROG(so_reno_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = tcp_sk(sk);

	if (!tcp_is_cwnd_limited(sk))
		return;
	if (tcp_in_slow_start(tp)) {
		acked = tcp_slow_start(tp, acked);
		if (!acked)
			return;
	}
	tcp_cong_avoid_ai(tp, tp->snd_cwnd, acked);
}

SEC("struct_ops/so_reno_undo_cwnd")
__u32 BPF_PROG(so_reno_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

#ifdef SO_CC_LINK
/*
 * The live-switch variant (obj/tcp_reno_link.bpf.o, built with -DSO_CC_LINK): the map is a
 * `.struct_ops.link` under the CA name "so_cc" that tcp_cubic_link.bpf.o shares, so
 * BPF_LINK_UPDATE can replace one with the other; init and release count in .bss.
 */
__u64 so_cc_inits = 0;
__u64 so_cc_releases = 0;

SEC("struct_ops/so_reno_init")
void BPF_PROG(so_reno_init, struct sock *sk)
{
	so_cc_inits++;
}

SEC("struct_ops/so_reno_release")
void BPF_PROG(so_reno_release, struct sock *sk)
{
	so_cc_releases++;
}

SEC(".struct_ops.link")
struct tcp_congestion_ops so_reno = {
	.init = (void *)so_reno_init,
	.release = (void *)so_reno_release,
	.ssthresh = (void *)so_reno_ssthresh,
	.cong_avoid = (void *)so_reno_cong_avoid,
	.undo_cwnd = (void *)so_reno_undo_cwnd,
	.name = "so_cc",
};
#else
SEC(".struct_ops")
struct tcp_congestion_ops so_reno = {
	.ssthresh = (void *)so_reno_ssthresh,
	.cong_avoid = (void *)so_reno_cong_avoid,
	.undo_cwnd = (void *)so_reno_undo_cwnd,
	.name = "so_reno",
};
#endif
