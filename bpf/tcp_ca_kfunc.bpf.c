// SPDX-License-Identifier: GPL-2.0
/*
 * BBR and DCTCP as struct_ops programs that delegate every op to the kernel's own implementation
 * through the kfuncs tcp_bbr.c and tcp_dctcp.c register for BPF_PROG_TYPE_STRUCT_OPS: all
 * fourteen of them are called, so the object loads only where the kernel exports each one (the
 * same set the kernel's tcp_ca_kfunc selftest needs). Two maps: so_bbr_kf behaves as "bbr",
 * so_dctcp_kf as "dctcp" (the CA state is the kernel's struct bbr / struct dctcp in icsk_ca_priv).
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

extern void bbr_init(struct sock *sk) __ksym;
extern void bbr_main(struct sock *sk, __u32 ack, int flag, const struct rate_sample *rs) __ksym;
extern __u32 bbr_sndbuf_expand(struct sock *sk) __ksym;
extern __u32 bbr_undo_cwnd(struct sock *sk) __ksym;
extern void bbr_cwnd_event(struct sock *sk, enum tcp_ca_event event) __ksym;
extern __u32 bbr_ssthresh(struct sock *sk) __ksym;
extern __u32 bbr_min_tso_segs(struct sock *sk) __ksym;
extern void bbr_set_state(struct sock *sk, __u8 new_state) __ksym;

extern void dctcp_init(struct sock *sk) __ksym;
extern void dctcp_update_alpha(struct sock *sk, __u32 flags) __ksym;
extern void dctcp_cwnd_event(struct sock *sk, enum tcp_ca_event ev) __ksym;
extern __u32 dctcp_ssthresh(struct sock *sk) __ksym;
extern __u32 dctcp_cwnd_undo(struct sock *sk) __ksym;
extern void dctcp_state(struct sock *sk, __u8 new_state) __ksym;
extern void tcp_reno_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;

/* How often each map's cong_control / in_ack_event ran (read by tests through .bss). */
__u64 so_bbr_kf_acks = 0;
__u64 so_dctcp_kf_acks = 0;

SEC("struct_ops")
void BPF_PROG(bbr_kf_init, struct sock *sk)
{
	bbr_init(sk);
}

SEC("struct_ops")
void BPF_PROG(bbr_kf_main, struct sock *sk, __u32 ack, int flag, const struct rate_sample *rs)
{
	so_bbr_kf_acks++;
	bbr_main(sk, ack, flag, rs);
}

SEC("struct_ops")
__u32 BPF_PROG(bbr_kf_sndbuf_expand, struct sock *sk)
{
	return bbr_sndbuf_expand(sk);
}

SEC("struct_ops")
__u32 BPF_PROG(bbr_kf_undo_cwnd, struct sock *sk)
{
	return bbr_undo_cwnd(sk);
}

SEC("struct_ops")
void BPF_PROG(bbr_kf_cwnd_event, struct sock *sk, enum tcp_ca_event event)
{
	bbr_cwnd_event(sk, event);
}

SEC("struct_ops")
__u32 BPF_PROG(bbr_kf_ssthresh, struct sock *sk)
{
	return bbr_ssthresh(sk);
}

SEC("struct_ops")
__u32 BPF_PROG(bbr_kf_min_tso_segs, struct sock *sk)
{
	return bbr_min_tso_segs(sk);
}

SEC("struct_ops")
void BPF_PROG(bbr_kf_set_state, struct sock *sk, __u8 new_state)
{
	bbr_set_state(sk, new_state);
}

SEC(".struct_ops")
struct tcp_congestion_ops so_bbr_kf = {
	.init = (void *)bbr_kf_init,
	.cong_control = (void *)bbr_kf_main,
	.sndbuf_expand = (void *)bbr_kf_sndbuf_expand,
	.undo_cwnd = (void *)bbr_kf_undo_cwnd,
	.cwnd_event = (void *)bbr_kf_cwnd_event,
	.ssthresh = (void *)bbr_kf_ssthresh,
	.min_tso_segs = (void *)bbr_kf_min_tso_segs,
	.set_state = (void *)bbr_kf_set_state,
	.name = "so_bbr_kf",
};

SEC("struct_ops")
void BPF_PROG(dctcp_kf_init, struct sock *sk)
{
	dctcp_init(sk);
}

SEC("struct_ops")
void BPF_PROG(dctcp_kf_in_ack_event, struct sock *sk, __u32 flags)
{
	so_dctcp_kf_acks++;
	dctcp_update_alpha(sk, flags);
}

SEC("struct_ops")
void BPF_PROG(dctcp_kf_cwnd_event, struct sock *sk, enum tcp_ca_event ev)
{
	dctcp_cwnd_event(sk, ev);
}

SEC("struct_ops")
__u32 BPF_PROG(dctcp_kf_ssthresh, struct sock *sk)
{
	return dctcp_ssthresh(sk);
}

SEC("struct_ops")
__u32 BPF_PROG(dctcp_kf_undo_cwnd, struct sock *sk)
{
	return dctcp_cwnd_undo(sk);
}

SEC("struct_ops")
void BPF_PROG(dctcp_kf_set_state, struct sock *sk, __u8 new_state)
{
	dctcp_state(sk, new_state);
}

SEC("struct_ops")
void BPF_PROG(dctcp_kf_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC(".struct_ops")
struct tcp_congestion_ops so_dctcp_kf = {
	.init = (void *)dctcp_kf_init,
	.in_ack_event = (void *)dctcp_kf_in_ack_event,
	.cwnd_event = (void *)dctcp_kf_cwnd_event,
	.ssthresh = (void *)dctcp_kf_ssthresh,
	.cong_avoid = (void *)dctcp_kf_cong_avoid,
	.undo_cwnd = (void *)dctcp_kf_undo_cwnd,
	.set_state = (void *)dctcp_kf_set_state,
	.flags = TCP_CONG_NEEDS_ECN,
	.name = "so_dctcp_kf",
};
