// SPDX-License-Identifier: GPL-2.0
/*
 * CUBIC (RFC 9438) as a struct_ops congestion control, HyStart left out. The window grows
 * as W(t) = C*(t-K)^3 + W_max with C = 0.4 and beta = 0.7, with the TCP-friendly region
 * estimate. Time is in jiffies; HZ comes from the kernel config through a __kconfig extern.
 * All programs share one `struct_ops` section and the map lives in `.struct_ops.link`.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

extern unsigned long CONFIG_HZ __kconfig;
#define HZ CONFIG_HZ

#define BETA_SCALE 1024U /* beta is a fraction of 1024 */
#define BETA 717U /* 0.7 */
#define CUBE_HZ 10 /* t is in 2^-10 seconds inside the cube */
#define CUBE_C_SCALED 410ULL /* C = 0.4 = 410 / 1024, times the 2^10 time unit */
/* K = cbrt(W_max - cwnd) / C in 2^-10 s: the factor brings (W_max - cwnd) to that scale. */
#define CUBE_FACTOR ((1ULL << (10 + 3 * CUBE_HZ)) / CUBE_C_SCALED)
/* Additive increase the TCP-friendly (Reno) estimate would make with beta = 0.7. */
#define FRIENDLY_SCALE (8U * (BETA_SCALE + BETA) / 3U / (BETA_SCALE - BETA))
#define CBRT_MAX 2642245ULL /* largest x with x^3 < 2^64 */

struct so_cubic {
	__u32 cnt; /* increase cwnd by 1 after cnt ACKs */
	__u32 last_max_cwnd; /* W_max before the last reduction */
	__u32 last_cwnd;
	__u32 last_time; /* jiffies of the last update */
	__u32 origin_point; /* W at the plateau of the curve */
	__u32 k; /* time to reach origin_point, 2^-10 s */
	__u32 delay_min; /* smallest RTT seen, usec */
	__u32 epoch_start; /* jiffies when this epoch began, 0 = none */
	__u32 ack_cnt;
	__u32 tcp_cwnd; /* the Reno-equivalent window */
};

/* Read by tests through the .bss view: proves pkts_acked ran. */
__u32 so_cubic_acked_called = 0;

/* Integer cube root by bit-wise search: 22 fixed steps, no data-dependent loop. */
static __always_inline __u32 cubic_root(__u64 a)
{
	__u64 r = 0;
	int b;

#pragma unroll
	for (b = 21; b >= 0; b--) {
		__u64 t = r | (1ULL << b);

		if (t <= CBRT_MAX && t * t * t <= a)
			r = t;
	}
	return (__u32)r;
}

static __always_inline __u32 now_jiffies(void)
{
	return (__u32)bpf_jiffies64();
}

static __always_inline void cubic_reset(struct so_cubic *ca)
{
	__builtin_memset(ca, 0, sizeof(*ca));
}

static __always_inline void cubic_update(struct so_cubic *ca, __u32 cwnd, __u32 acked)
{
	__u32 now = now_jiffies();
	__u64 t, offs, delta;
	__u32 target, n, step;

	ca->ack_cnt += acked;
	if (ca->last_cwnd == cwnd && (__s32)(now - ca->last_time) <= (__s32)(HZ / 32))
		return;
	ca->last_cwnd = cwnd;
	ca->last_time = now;

	if (ca->epoch_start == 0) {
		ca->epoch_start = now ? now : 1;
		ca->ack_cnt = acked;
		ca->tcp_cwnd = cwnd;
		if (ca->last_max_cwnd <= cwnd) {
			ca->k = 0;
			ca->origin_point = cwnd;
		} else {
			ca->k = cubic_root(CUBE_FACTOR * (ca->last_max_cwnd - cwnd));
			ca->origin_point = ca->last_max_cwnd;
		}
	}

	/* Elapsed time plus one minimum RTT, in 2^-10 s. */
	t = (__u64)(__s32)(now - ca->epoch_start) * 1000000ULL / HZ + ca->delay_min;
	t = (t << CUBE_HZ) / 1000000ULL;
	offs = t < ca->k ? ca->k - t : t - ca->k;
	delta = (CUBE_C_SCALED * offs * offs * offs) >> (10 + 3 * CUBE_HZ);
	target = t < ca->k ? ca->origin_point - (__u32)delta : ca->origin_point + (__u32)delta;

	ca->cnt = target > cwnd ? cwnd / (target - cwnd) : 100 * cwnd;
	if (ca->last_max_cwnd == 0 && ca->cnt > 20)
		ca->cnt = 20;

	/* TCP-friendly region: never grow slower than Reno would. */
	step = (cwnd * FRIENDLY_SCALE) >> 3;
	if (step) {
		n = ca->ack_cnt / step;
		ca->ack_cnt -= n * step;
		ca->tcp_cwnd += n;
	}
	if (ca->tcp_cwnd > cwnd) {
		__u32 max_cnt = cwnd / (ca->tcp_cwnd - cwnd);

		if (ca->cnt > max_cnt)
			ca->cnt = max_cnt;
	}
	if (ca->cnt < 2)
		ca->cnt = 2;
}

SEC("struct_ops")
void BPF_PROG(so_cubic_init, struct sock *sk)
{
	cubic_reset(inet_csk_ca(sk));
}

SEC("struct_ops")
void BPF_PROG(so_cubic_cwnd_event, struct sock *sk, enum tcp_ca_event event)
{
	struct so_cubic *ca = inet_csk_ca(sk);

	/* After an idle period the curve restarts instead of jumping ahead. */
	if (event == CA_EVENT_TX_START)
		ca->epoch_start = 0;
}

SEC("struct_ops")
void BPF_PROG(so_cubic_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = tcp_sk(sk);
	struct so_cubic *ca = inet_csk_ca(sk);

	if (!tcp_is_cwnd_limited(sk))
		return;
	if (tcp_in_slow_start(tp)) {
		acked = tcp_slow_start(tp, acked);
		if (!acked)
			return;
	}
	cubic_update(ca, tp->snd_cwnd, acked);
	tcp_cong_avoid_ai(tp, ca->cnt, acked);
}

SEC("struct_ops")
__u32 BPF_PROG(so_cubic_recalc_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	struct so_cubic *ca = inet_csk_ca(sk);
	__u32 cwnd = tp->snd_cwnd;

	ca->epoch_start = 0;
	/* Fast convergence: release bandwidth sooner when W_max keeps shrinking. */
	if (cwnd < ca->last_max_cwnd)
		ca->last_max_cwnd = (cwnd * (BETA_SCALE + BETA)) / (2 * BETA_SCALE);
	else
		ca->last_max_cwnd = cwnd;
	return max((cwnd * BETA) / BETA_SCALE, 2U);
}

SEC("struct_ops")
void BPF_PROG(so_cubic_state, struct sock *sk, __u8 new_state)
{
	if (new_state == TCP_CA_Loss)
		cubic_reset(inet_csk_ca(sk));
}

SEC("struct_ops")
void BPF_PROG(so_cubic_acked, struct sock *sk, const struct ack_sample *sample)
{
	struct so_cubic *ca = inet_csk_ca(sk);
	__s32 rtt = sample->rtt_us;

	so_cubic_acked_called = 1;
	if (rtt < 0)
		return;
	if (ca->delay_min == 0 || ca->delay_min > (__u32)rtt)
		ca->delay_min = rtt ? rtt : 1;
}

SEC("struct_ops")
__u32 BPF_PROG(so_cubic_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops.link")
struct tcp_congestion_ops so_cubic = {
	.init = (void *)so_cubic_init,
	.ssthresh = (void *)so_cubic_recalc_ssthresh,
	.cong_avoid = (void *)so_cubic_cong_avoid,
	.set_state = (void *)so_cubic_state,
	.undo_cwnd = (void *)so_cubic_undo_cwnd,
	.cwnd_event = (void *)so_cubic_cwnd_event,
	.pkts_acked = (void *)so_cubic_acked,
	.name = "so_cubic",
};
