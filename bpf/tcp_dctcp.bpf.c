// SPDX-License-Identifier: GPL-2.0
/*
 * DCTCP-style congestion control (RFC 8257): once per window of data, alpha moves towards
 * the fraction F of delivered packets that carried CE: alpha = (1 - g) * alpha + g * F with
 * g = 1/16. On congestion the window shrinks by alpha / 2 instead of by half. alpha is
 * scaled by 1024. Below ssthresh and between marks it grows like Reno.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

#define DCTCP_MAX_ALPHA 1024U
#define DCTCP_SHIFT_G 4 /* g = 1/16 */

struct so_dctcp {
	__u32 old_delivered;
	__u32 old_delivered_ce;
	__u32 next_seq; /* end of the current observation window */
	__u32 alpha;
	__u32 loss_cwnd;
	__u32 ce_state; /* receiving side: 1 while the last data segment carried CE */
	__u32 prior_rcv_nxt; /* receiving side: rcv_nxt when the CE state was last seen */
};

/* Initial alpha: start cautious (full reduction on the first mark), as DCTCP does. */
const volatile __u32 so_dctcp_alpha_on_init = DCTCP_MAX_ALPHA;
__u32 so_dctcp_alpha_updates = 0;

static __always_inline void dctcp_reset_window(const struct tcp_sock *tp, struct so_dctcp *ca)
{
	ca->next_seq = tp->snd_nxt;
	ca->old_delivered = tp->delivered;
	ca->old_delivered_ce = tp->delivered_ce;
}

SEC("struct_ops/so_dctcp_init")
void BPF_PROG(so_dctcp_init, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	struct so_dctcp *ca = inet_csk_ca(sk);

	ca->alpha = min(so_dctcp_alpha_on_init, DCTCP_MAX_ALPHA);
	ca->loss_cwnd = 0;
	ca->ce_state = 0;
	ca->prior_rcv_nxt = tp->rcv_nxt;
	dctcp_reset_window(tp, ca);
}

SEC("struct_ops/so_dctcp_ssthresh")
__u32 BPF_PROG(so_dctcp_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	struct so_dctcp *ca = inet_csk_ca(sk);
	__u32 cwnd = tp->snd_cwnd;

	ca->loss_cwnd = cwnd;
	/* cwnd * (1 - alpha / 2), alpha in 1/1024 units. */
	return max(cwnd - ((cwnd * ca->alpha) >> 11U), 2U);
}

SEC("struct_ops/so_dctcp_in_ack_event")
void BPF_PROG(so_dctcp_in_ack_event, struct sock *sk, __u32 flags)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	struct so_dctcp *ca = inet_csk_ca(sk);
	__u32 delivered, delivered_ce, alpha;

	/* Update once per window: when snd_una passes the recorded snd_nxt. */
	if ((__s32)(tp->snd_una - ca->next_seq) < 0)
		return;
	delivered = tp->delivered - ca->old_delivered;
	delivered_ce = tp->delivered_ce - ca->old_delivered_ce;
	alpha = ca->alpha;
	alpha -= min(alpha, alpha >> DCTCP_SHIFT_G);
	if (delivered_ce) {
		if (!delivered)
			delivered = 1;
		alpha += (delivered_ce << (10U - DCTCP_SHIFT_G)) / delivered;
	}
	ca->alpha = min(alpha, DCTCP_MAX_ALPHA);
	so_dctcp_alpha_updates++;
	dctcp_reset_window(tp, ca);
}

static __always_inline void dctcp_echo(struct tcp_sock *tp, __u32 ce_state)
{
	if (ce_state)
		tp->ecn_flags |= TCP_ECN_DEMAND_CWR;
	else
		tp->ecn_flags &= ~TCP_ECN_DEMAND_CWR;
}

/*
 * The receiving side echoes each segment's CE state in ECE (not RFC 3168's latch until CWR). A
 * change of state is ACKed at once; if a delayed ACK is pending, the data it covers is ACKed first
 * with the state it arrived in, so every ACK reports the marks of exactly the segments it covers.
 */
SEC("struct_ops/so_dctcp_cwnd_event")
void BPF_PROG(so_dctcp_cwnd_event, struct sock *sk, enum tcp_ca_event ev)
{
	struct tcp_sock *tp = tcp_sk(sk);
	struct so_dctcp *ca = inet_csk_ca(sk);
	__u32 ce;

	if (ev != CA_EVENT_ECN_IS_CE && ev != CA_EVENT_ECN_NO_CE)
		return;
	ce = ev == CA_EVENT_ECN_IS_CE;
	if (ca->ce_state != ce) {
		if (inet_csk(sk)->icsk_ack.pending & ICSK_ACK_TIMER) {
#ifdef SO_DCTCP_ECHO_STATE
			/* obj/tcp_dctcp_echo_state.bpf.o: the same from the state itself. */
			dctcp_echo(tp, ca->ce_state);
#else
			/* The prior state: ce_state is 0 or 1 and differs from ce. */
			dctcp_echo(tp, !ce);
#endif
			bpf_tcp_send_ack(sk, ca->prior_rcv_nxt);
		}
		inet_csk(sk)->icsk_ack.pending |= ICSK_ACK_NOW;
	}
	ca->prior_rcv_nxt = tp->rcv_nxt;
	ca->ce_state = ce;
	dctcp_echo(tp, ce);
}

SEC("struct_ops/so_dctcp_state")
void BPF_PROG(so_dctcp_state, struct sock *sk, __u8 new_state)
{
	struct tcp_sock *tp = tcp_sk(sk);
	struct so_dctcp *ca = inet_csk_ca(sk);

	/* A real loss halves the window like Reno, whatever alpha says. */
	if (new_state == TCP_CA_Loss) {
		ca->loss_cwnd = tp->snd_cwnd;
		tp->snd_ssthresh = max(tp->snd_cwnd >> 1U, 2U);
	}
}

SEC("struct_ops/so_dctcp_cong_avoid")
void BPF_PROG(so_dctcp_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
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

SEC("struct_ops/so_dctcp_undo_cwnd")
__u32 BPF_PROG(so_dctcp_undo_cwnd, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	const struct so_dctcp *ca = inet_csk_ca(sk);

	return max(tp->snd_cwnd, ca->loss_cwnd);
}

SEC(".struct_ops")
struct tcp_congestion_ops so_dctcp = {
	.init = (void *)so_dctcp_init,
	.in_ack_event = (void *)so_dctcp_in_ack_event,
	.cwnd_event = (void *)so_dctcp_cwnd_event,
	.ssthresh = (void *)so_dctcp_ssthresh,
	.cong_avoid = (void *)so_dctcp_cong_avoid,
	.undo_cwnd = (void *)so_dctcp_undo_cwnd,
	.set_state = (void *)so_dctcp_state,
	.flags = TCP_CONG_NEEDS_ECN,
	.name = "so_dctcp",
};
