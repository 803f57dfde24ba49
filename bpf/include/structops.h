/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Minimal helpers shared by the structops BPF programs. SEC, BPF_PROG, __ksym, __kconfig
 * and BPF_CORE_READ come from libbpf's installed headers; this file adds the few TCP
 * conveniences the congestion-control programs need, written against vmlinux.h types so
 * every field access is a CO-RE relocation.
 */
#ifndef __STRUCTOPS_H
#define __STRUCTOPS_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#ifndef min
#define min(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef max
#define max(a, b) ((a) > (b) ? (a) : (b))
#endif

#define TCP_INFINITE_SSTHRESH 0x7fffffff
#define TCP_ECN_OK 1
#define TCP_ECN_QUEUE_CWR 2
#define TCP_ECN_DEMAND_CWR 4
#define TCP_CONG_NEEDS_ECN 0x2

static __always_inline struct tcp_sock *tcp_sk(const struct sock *sk)
{
	return (struct tcp_sock *)sk;
}

static __always_inline struct inet_connection_sock *inet_csk(const struct sock *sk)
{
	return (struct inet_connection_sock *)sk;
}

/* The congestion-control private area: icsk_ca_priv, as the kernel's inet_csk_ca(). */
static __always_inline void *inet_csk_ca(const struct sock *sk)
{
	return (void *)inet_csk(sk)->icsk_ca_priv;
}

static __always_inline int tcp_in_slow_start(const struct tcp_sock *tp)
{
	return tp->snd_cwnd < tp->snd_ssthresh;
}

/* tcp_is_cwnd_limited(): is_cwnd_limited is a bitfield, hence the CO-RE bitfield read. */
static __always_inline int tcp_is_cwnd_limited(const struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);

	if (tcp_in_slow_start(tp))
		return tp->snd_cwnd < 2 * tp->max_packets_out;
	return !!BPF_CORE_READ_BITFIELD(tp, is_cwnd_limited);
}

/* The kfuncs net/ipv4/bpf_tcp_ca.c exposes to struct_ops programs. */
extern __u32 tcp_slow_start(struct tcp_sock *tp, __u32 acked) __ksym;
extern void tcp_cong_avoid_ai(struct tcp_sock *tp, __u32 w, __u32 acked) __ksym;
extern __u32 tcp_reno_undo_cwnd(struct sock *sk) __ksym;

#endif /* __STRUCTOPS_H */
