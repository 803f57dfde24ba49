// SPDX-License-Identifier: GPL-2.0
/*
 * CUBIC (RFC 9438) as a struct_ops congestion control, written from the algorithm of
 * Linux's net/ipv4/tcp_cubic.c with its default module parameters: BIC-scaled fixed-point
 * cubic growth with the table-driven cube root, fast convergence, TCP friendliness and
 * HyStart (ACK train and delay increase). The state is struct bpf_bictcp in icsk_ca_priv with
 * the kernel's layout, so this program and the built-in CUBIC produce the same bytes and
 * the same trace. Time: tcp_jiffies32 is bpf_jiffies64() truncated, CONFIG_HZ comes from
 * .kconfig, and HyStart's microsecond clock is tp->tcp_mstamp, as bictcp_clock_us() reads.
 * All programs share one `struct_ops` section and the map lives in `.struct_ops.link`.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

extern unsigned long CONFIG_HZ __kconfig;
#define HZ CONFIG_HZ

#define BICTCP_BETA_SCALE 1024U /* scale factor of beta */
#define BICTCP_HZ 10 /* BIC HZ 2^10 = 1024 */

#define HYSTART_ACK_TRAIN 0x1
#define HYSTART_DELAY 0x2
#define HYSTART_MIN_SAMPLES 8
#define HYSTART_DELAY_MIN 4000U /* 4 ms */
#define HYSTART_DELAY_MAX 16000U /* 16 ms */
#define HYSTART_DELAY_THRESH(x) min(max((x), HYSTART_DELAY_MIN), HYSTART_DELAY_MAX)
#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL

/* The module parameters, at tcp_cubic's defaults. */
#define fast_convergence 1
#define beta 717U /* 717/1024 = 0.7 */
#define initial_ssthresh 0U
#define bic_scale 41U
#define tcp_friendliness 1
#define hystart 1
#define hystart_detect (HYSTART_ACK_TRAIN | HYSTART_DELAY)
#define hystart_low_window 16U
#define hystart_ack_delta_us 2000

/* What cubictcp_register() precomputes from the parameters. */
#define beta_scale (8U * (BICTCP_BETA_SCALE + beta) / 3U / (BICTCP_BETA_SCALE - beta))
#define cube_rtt_scale (bic_scale * 10U) /* 1024*c/rtt */
/* K = cubic_root((wmax - cwnd) * rtt / c) in bictcp_HZ units, for rtt = 100 ms */
#define cube_factor ((1ULL << (10 + 3 * BICTCP_HZ)) / (bic_scale * 10ULL))

#define tcp_jiffies32 ((__u32)bpf_jiffies64())
#define after(seq2, seq1) ((__s32)((seq1) - (seq2)) < 0)

/* struct bictcp (renamed: vmlinux.h has its own), the kernel's layout, 60 bytes of icsk_ca_priv. */
struct bpf_bictcp {
	__u32 cnt; /* increase cwnd by 1 after ACKs */
	__u32 last_max_cwnd; /* last maximum snd_cwnd */
	__u32 last_cwnd; /* the last snd_cwnd */
	__u32 last_time; /* time when updated last_cwnd */
	__u32 bic_origin_point; /* origin point of bic function */
	__u32 bic_K; /* time to origin point from the beginning of the current epoch */
	__u32 delay_min; /* min delay (usec) */
	__u32 epoch_start; /* beginning of an epoch */
	__u32 ack_cnt; /* number of acks */
	__u32 tcp_cwnd; /* estimated tcp cwnd */
	__u16 unused;
	__u8 sample_cnt; /* number of samples to decide curr_rtt */
	__u8 found; /* the exit point is found? */
	__u32 round_start; /* beginning of each round */
	__u32 end_seq; /* end_seq of the round */
	__u32 last_ack; /* last time when the ACK spacing is close */
	__u32 curr_rtt; /* the minimum rtt of current round */
};

/* Read by tests through the .bss view: counts of init and release-like events. */
__u64 so_cubic_inits = 0;
__u64 so_cubic_acked_calls = 0;

/* cbrt(x) MSB values for x MSB values in [0..63], precomputed as tcp_cubic does. */
static const __u8 cubic_v[64] = {
	/* 0x00 */ 0, 54, 54, 54, 118, 118, 118, 118,
	/* 0x08 */ 123, 129, 134, 138, 143, 147, 151, 156,
	/* 0x10 */ 157, 161, 164, 168, 170, 173, 176, 179,
	/* 0x18 */ 181, 185, 187, 190, 192, 194, 197, 199,
	/* 0x20 */ 200, 202, 204, 206, 209, 211, 213, 215,
	/* 0x28 */ 217, 219, 221, 222, 224, 225, 227, 229,
	/* 0x30 */ 231, 232, 234, 236, 237, 239, 240, 242,
	/* 0x38 */ 244, 245, 246, 248, 250, 251, 252, 254,
};

/* fls64(): the 1-based index of the most significant set bit, 0 for 0; a fixed binary search. */
static __always_inline __u32 fls64(__u64 x)
{
	__u32 n = 64;

	if (!x)
		return 0;
	if (!(x & 0xffffffff00000000ULL)) {
		x <<= 32;
		n -= 32;
	}
	if (!(x & 0xffff000000000000ULL)) {
		x <<= 16;
		n -= 16;
	}
	if (!(x & 0xff00000000000000ULL)) {
		x <<= 8;
		n -= 8;
	}
	if (!(x & 0xf000000000000000ULL)) {
		x <<= 4;
		n -= 4;
	}
	if (!(x & 0xc000000000000000ULL)) {
		x <<= 2;
		n -= 2;
	}
	if (!(x & 0x8000000000000000ULL))
		n -= 1;
	return n;
}

/*
 * cbrt(a): a table lookup on the top bits, then one Newton-Raphson step
 * x' = (2x + a/x^2) / 3, with x^2 taken as x*(x-1) and 1/3 as 341/1024.
 */
static __always_inline __u32 cubic_root(__u64 a)
{
	__u32 x, b, shift;

	b = fls64(a);
	if (b < 7) /* a in [0..63] */
		return ((__u32)cubic_v[(__u32)a & 63] + 35) >> 6;

	b = ((b * 84) >> 8) - 1;
	shift = (a >> (b * 3)) & 63; /* always below 64: the mask only bounds the index */

	x = ((__u32)(((__u32)cubic_v[shift] + 10) << b)) >> 6;
	x = (2 * x + (__u32)(a / ((__u64)x * (__u64)(x - 1))));
	x = ((x * 341) >> 10);
	return x;
}

/* usecs_to_jiffies() rounds up. */
static __always_inline __u64 usecs_to_jiffies(__u32 us)
{
	return ((__u64)us * HZ + USEC_PER_SEC - 1) / USEC_PER_SEC;
}

static __always_inline void bictcp_reset(struct bpf_bictcp *ca)
{
	__builtin_memset(ca, 0, offsetof(struct bpf_bictcp, unused));
	ca->found = 0;
}

static __always_inline __u32 bictcp_clock_us(const struct sock *sk)
{
	return (__u32)tcp_sk(sk)->tcp_mstamp;
}

static __always_inline void bictcp_hystart_reset(struct sock *sk)
{
	struct tcp_sock *tp = tcp_sk(sk);
	struct bpf_bictcp *ca = inet_csk_ca(sk);

	ca->round_start = ca->last_ack = bictcp_clock_us(sk);
	ca->end_seq = tp->snd_nxt;
	ca->curr_rtt = ~0U;
	ca->sample_cnt = 0;
}

/* Compute the congestion window increment: ca->cnt ACKs per segment of growth. */
static __always_inline void bictcp_update(struct bpf_bictcp *ca, __u32 cwnd, __u32 acked)
{
	__u32 delta, bic_target, max_cnt, now = tcp_jiffies32;
	__u64 offs, t;

	ca->ack_cnt += acked; /* count the number of ACKed packets */

	if (ca->last_cwnd == cwnd && (__s32)(now - ca->last_time) <= (__s32)(HZ / 32))
		return;

	/*
	 * The CUBIC function can update ca->cnt at most once per jiffy. On all cwnd
	 * reduction events epoch_start is set to 0, which forces a recalculation.
	 */
	if (!(ca->epoch_start && now == ca->last_time)) {
		ca->last_cwnd = cwnd;
		ca->last_time = now;

		if (ca->epoch_start == 0) {
			ca->epoch_start = now; /* record beginning */
			ca->ack_cnt = acked; /* start counting */
			ca->tcp_cwnd = cwnd; /* sync with cubic */

			if (ca->last_max_cwnd <= cwnd) {
				ca->bic_K = 0;
				ca->bic_origin_point = cwnd;
			} else {
				ca->bic_K = cubic_root(cube_factor * (ca->last_max_cwnd - cwnd));
				ca->bic_origin_point = ca->last_max_cwnd;
			}
		}

		/* t = now - epoch_start + delay_min, from jiffies to bictcp_HZ units */
		t = (__s32)(now - ca->epoch_start);
		t += usecs_to_jiffies(ca->delay_min);
		t <<= BICTCP_HZ;
		t /= HZ;

		if (t < ca->bic_K) /* t - K */
			offs = ca->bic_K - t;
		else
			offs = t - ca->bic_K;

		/* c/rtt * (t-K)^3 */
		delta = (cube_rtt_scale * offs * offs * offs) >> (10 + 3 * BICTCP_HZ);
		if (t < ca->bic_K) /* below origin */
			bic_target = ca->bic_origin_point - delta;
		else /* above origin */
			bic_target = ca->bic_origin_point + delta;

		if (bic_target > cwnd)
			ca->cnt = cwnd / (bic_target - cwnd);
		else
			ca->cnt = 100 * cwnd; /* very small increment */

		/* The initial growth may be too conservative while the bandwidth is unknown. */
		if (ca->last_max_cwnd == 0 && ca->cnt > 20)
			ca->cnt = 20; /* increase cwnd 5% per RTT */
	}

	/* TCP friendliness: never grow slower than Reno would. */
	if (tcp_friendliness) {
		delta = (cwnd * beta_scale) >> 3;
		/* while (ack_cnt > delta) { ack_cnt -= delta; tcp_cwnd++; } in closed form */
		if (delta && ca->ack_cnt > delta) {
			__u32 n = (ca->ack_cnt - 1) / delta;

			ca->ack_cnt -= n * delta;
			ca->tcp_cwnd += n;
		}
		if (ca->tcp_cwnd > cwnd) { /* if bic is slower than tcp */
			max_cnt = cwnd / (ca->tcp_cwnd - cwnd);
			if (ca->cnt > max_cnt)
				ca->cnt = max_cnt;
		}
	}

	/* At most 1 segment per 2 ACKed: cwnd grows at most 1.5x per RTT. */
	ca->cnt = max(ca->cnt, 2U);
}

/* Pacing may delay ACKs: allow for 4 GSO packets at the pacing rate, at most 1 ms. */
static __always_inline __u32 hystart_ack_delay(const struct sock *sk)
{
	__u64 rate = sk->sk_pacing_rate;

	if (!rate)
		return 0;
	return min(USEC_PER_MSEC, (__u64)sk->sk_gso_max_size * 4 * USEC_PER_SEC / rate);
}

static __always_inline void hystart_update(struct sock *sk, __u32 delay)
{
	struct tcp_sock *tp = tcp_sk(sk);
	struct bpf_bictcp *ca = inet_csk_ca(sk);
	__u32 threshold;

	if (after(tp->snd_una, ca->end_seq))
		bictcp_hystart_reset(sk);

	/* HyStart triggers when cwnd is larger than some threshold */
	if (tp->snd_cwnd < hystart_low_window)
		return;

	if (hystart_detect & HYSTART_ACK_TRAIN) {
		__u32 now = bictcp_clock_us(sk);

		/* first detection parameter: ACK-train detection */
		if ((__s32)(now - ca->last_ack) <= hystart_ack_delta_us) {
			ca->last_ack = now;

			threshold = ca->delay_min + hystart_ack_delay(sk);
			/* Pacing might have delayed packets up to RTT/2 during slow start. */
			if (sk->sk_pacing_status == SK_PACING_NONE)
				threshold >>= 1;

			/* as in Linux, an s32 compared with a u32 threshold: unsigned */
			if ((__s32)(now - ca->round_start) > threshold) {
				ca->found = 1;
				tp->snd_ssthresh = tp->snd_cwnd;
			}
		}
	}

	if (hystart_detect & HYSTART_DELAY) {
		/* obtain the minimum delay of more than sampling packets */
		if (ca->curr_rtt > delay)
			ca->curr_rtt = delay;
		if (ca->sample_cnt < HYSTART_MIN_SAMPLES) {
			ca->sample_cnt++;
		} else if (ca->curr_rtt > ca->delay_min + HYSTART_DELAY_THRESH(ca->delay_min >> 3)) {
			ca->found = 1;
			tp->snd_ssthresh = tp->snd_cwnd;
		}
	}
}

SEC("struct_ops")
void BPF_PROG(so_cubic_init, struct sock *sk)
{
	struct bpf_bictcp *ca = inet_csk_ca(sk);

	so_cubic_inits++;
	bictcp_reset(ca);
	if (hystart)
		bictcp_hystart_reset(sk);
	if (!hystart && initial_ssthresh)
		tcp_sk(sk)->snd_ssthresh = initial_ssthresh;
}

SEC("struct_ops")
void BPF_PROG(so_cubic_cwnd_event, struct sock *sk, enum tcp_ca_event event)
{
	if (event == CA_EVENT_TX_START) {
		struct bpf_bictcp *ca = inet_csk_ca(sk);
		__u32 now = tcp_jiffies32;
		__s32 delta = now - tcp_sk(sk)->lsndtime;

		/* We were application limited (idle) for a while: shift epoch_start to keep
		 * cwnd growth on the cubic curve.
		 */
		if (ca->epoch_start && delta > 0) {
			ca->epoch_start += delta;
			if (after(ca->epoch_start, now))
				ca->epoch_start = now;
		}
	}
}

SEC("struct_ops")
void BPF_PROG(so_cubic_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = tcp_sk(sk);
	struct bpf_bictcp *ca = inet_csk_ca(sk);

	if (!tcp_is_cwnd_limited(sk))
		return;
	if (tcp_in_slow_start(tp)) {
		acked = tcp_slow_start(tp, acked);
		if (!acked)
			return;
	}
	bictcp_update(ca, tp->snd_cwnd, acked);
	tcp_cong_avoid_ai(tp, ca->cnt, acked);
}

SEC("struct_ops")
__u32 BPF_PROG(so_cubic_recalc_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	struct bpf_bictcp *ca = inet_csk_ca(sk);
	__u32 cwnd = tp->snd_cwnd;

	ca->epoch_start = 0; /* end of epoch */

	/* Wmax and fast convergence */
	if (cwnd < ca->last_max_cwnd && fast_convergence)
		ca->last_max_cwnd = (cwnd * (BICTCP_BETA_SCALE + beta)) / (2 * BICTCP_BETA_SCALE);
	else
		ca->last_max_cwnd = cwnd;
	return max((cwnd * beta) / BICTCP_BETA_SCALE, 2U);
}

SEC("struct_ops")
void BPF_PROG(so_cubic_state, struct sock *sk, __u8 new_state)
{
	if (new_state == TCP_CA_Loss) {
		bictcp_reset(inet_csk_ca(sk));
		bictcp_hystart_reset(sk);
	}
}

SEC("struct_ops")
void BPF_PROG(so_cubic_acked, struct sock *sk, const struct ack_sample *sample)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	struct bpf_bictcp *ca = inet_csk_ca(sk);
	__u32 delay;

	so_cubic_acked_calls++;
	/* Some calls are for duplicates without timestamps */
	if (sample->rtt_us < 0)
		return;

	/* Discard delay samples right after fast recovery */
	if (ca->epoch_start && (__s32)(tcp_jiffies32 - ca->epoch_start) < (__s32)HZ)
		return;

	delay = sample->rtt_us;
	if (delay == 0)
		delay = 1;

	/* first time call or link delay decreases */
	if (ca->delay_min == 0 || ca->delay_min > delay)
		ca->delay_min = delay;

	if (!ca->found && tcp_in_slow_start(tp) && hystart)
		hystart_update(sk, delay);
}

SEC("struct_ops")
__u32 BPF_PROG(so_cubic_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

#ifdef SO_CC_LINK
/*
 * The live-switch variant (obj/tcp_cubic_link.bpf.o, built with -DSO_CC_LINK): the CA is named
 * "so_cc" like tcp_reno_link.bpf.o's, so BPF_LINK_UPDATE switches between them; release counts.
 */
__u64 so_cc_releases = 0;

SEC("struct_ops")
void BPF_PROG(so_cubic_release, struct sock *sk)
{
	so_cc_releases++;
}
#define SO_CUBIC_NAME "so_cc"
#else
#define SO_CUBIC_NAME "so_cubic"
#endif

SEC(".struct_ops.link")
struct tcp_congestion_ops so_cubic = {
#ifdef SO_CC_LINK
	.release = (void *)so_cubic_release,
#endif
	.init = (void *)so_cubic_init,
	.ssthresh = (void *)so_cubic_recalc_ssthresh,
	.cong_avoid = (void *)so_cubic_cong_avoid,
	.set_state = (void *)so_cubic_state,
	.undo_cwnd = (void *)so_cubic_undo_cwnd,
	.cwnd_event = (void *)so_cubic_cwnd_event,
	.pkts_acked = (void *)so_cubic_acked,
	.name = SO_CUBIC_NAME,
};
