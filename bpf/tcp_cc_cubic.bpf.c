// SPDX-License-Identifier: GPL-2.0
/*
 * CUBIC driven from cong_control, the way a CA that owns the whole per-ACK decision does it: in
 * CWR or Recovery it runs its own Proportional Rate Reduction from tp->prr_delivered and
 * tp->prr_out (which it may read but not write), otherwise it grows cwnd with the kernel's
 * cubictcp_cong_avoid, and it sets sk_pacing_rate itself. Everything else is the kernel's CUBIC
 * through its kfuncs.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

#define FLAG_DATA_ACKED 0x04
#define FLAG_SND_UNA_ADVANCED 0x400
#define USEC_PER_SEC 1000000ULL

extern void cubictcp_init(struct sock *sk) __ksym;
extern __u32 cubictcp_recalc_ssthresh(struct sock *sk) __ksym;
extern void cubictcp_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;
extern void cubictcp_state(struct sock *sk, __u8 new_state) __ksym;
extern void cubictcp_cwnd_event(struct sock *sk, enum tcp_ca_event event) __ksym;
extern void cubictcp_acked(struct sock *sk, const struct ack_sample *sample) __ksym;

static __always_inline __u32 packets_in_flight(const struct tcp_sock *tp)
{
	return tp->packets_out - (tp->sacked_out + tp->lost_out) + tp->retrans_out;
}

/* PRR (RFC 6937) as tcp_cwnd_reduction computes it, from what the kernel keeps in tcp_sock. */
static __always_inline void prr_reduction(struct sock *sk, int newly_acked_sacked, int newly_lost, int flag)
{
	struct tcp_sock *tp = tcp_sk(sk);
	__u32 in_flight = packets_in_flight(tp);
	int delta = (int)tp->snd_ssthresh - (int)in_flight;
	__u32 prr_delivered;
	int sndcnt;

	if (newly_acked_sacked <= 0 || !tp->prior_cwnd)
		return;
	prr_delivered = tp->prr_delivered + newly_acked_sacked;
	if (delta < 0) {
		__u64 dividend = (__u64)tp->snd_ssthresh * prr_delivered + tp->prior_cwnd - 1;

		sndcnt = (int)(dividend / tp->prior_cwnd) - (int)tp->prr_out;
	} else {
		sndcnt = max((int)(prr_delivered - tp->prr_out), newly_acked_sacked);
		if (flag & FLAG_SND_UNA_ADVANCED && !newly_lost)
			sndcnt++;
		sndcnt = min(delta, sndcnt);
	}
	/* Force a fast retransmit upon entering fast recovery */
	sndcnt = max(sndcnt, tp->prr_out ? 0 : 1);
	tp->snd_cwnd = in_flight + sndcnt;
}

/* tcp_update_pacing_rate: 200% of cwnd/srtt in slow start, 120% after. */
static __always_inline void update_pacing_rate(struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	__u64 rate = (__u64)tp->mss_cache * ((USEC_PER_SEC / 100) << 3);

	rate *= tp->snd_cwnd < tp->snd_ssthresh / 2 ? 200 : 120;
	rate *= max(tp->snd_cwnd, tp->packets_out);
	if (tp->srtt_us)
		rate /= tp->srtt_us;
	sk->sk_pacing_rate = min(rate, sk->sk_max_pacing_rate);
}

SEC("struct_ops")
void BPF_PROG(cc_cubic_cong_control, struct sock *sk, __u32 ack, int flag, const struct rate_sample *rs)
{
	struct tcp_sock *tp = tcp_sk(sk);
	__u8 state = BPF_CORE_READ_BITFIELD(inet_csk(sk), icsk_ca_state);

	if (state == TCP_CA_CWR || state == TCP_CA_Recovery)
		prr_reduction(sk, rs->acked_sacked, rs->losses, flag);
	else if (flag & FLAG_DATA_ACKED)
		cubictcp_cong_avoid(sk, ack, rs->acked_sacked);
	tp->snd_cwnd_stamp = bpf_jiffies64();
	update_pacing_rate(sk);
}

SEC("struct_ops")
void BPF_PROG(cc_cubic_init, struct sock *sk)
{
	cubictcp_init(sk);
}

SEC("struct_ops")
__u32 BPF_PROG(cc_cubic_ssthresh, struct sock *sk)
{
	return cubictcp_recalc_ssthresh(sk);
}

SEC("struct_ops")
void BPF_PROG(cc_cubic_set_state, struct sock *sk, __u8 new_state)
{
	cubictcp_state(sk, new_state);
}

SEC("struct_ops")
void BPF_PROG(cc_cubic_cwnd_event, struct sock *sk, enum tcp_ca_event event)
{
	cubictcp_cwnd_event(sk, event);
}

SEC("struct_ops")
void BPF_PROG(cc_cubic_pkts_acked, struct sock *sk, const struct ack_sample *sample)
{
	cubictcp_acked(sk, sample);
}

SEC("struct_ops")
__u32 BPF_PROG(cc_cubic_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops")
struct tcp_congestion_ops so_cc_cubic = {
	.init = (void *)cc_cubic_init,
	.ssthresh = (void *)cc_cubic_ssthresh,
	.cong_control = (void *)cc_cubic_cong_control,
	.set_state = (void *)cc_cubic_set_state,
	.cwnd_event = (void *)cc_cubic_cwnd_event,
	.pkts_acked = (void *)cc_cubic_pkts_acked,
	.undo_cwnd = (void *)cc_cubic_undo_cwnd,
	.name = "so_cc_cubic",
};
