// SPDX-License-Identifier: GPL-2.0
/*
 * NewReno that counts every call the stack makes into it, per socket: a hash map keyed by the
 * socket's address, the callback and its argument (the event of cwnd_event, the state of
 * set_state, the flags of in_ack_event). Both ends of a connection run their congestion control,
 * so a transfer between two sockets using it fills the map from both: the sender with ssthresh,
 * cong_avoid and CA_EVENT_TX_START, the receiver with init, release, in_ack_event on slow-path
 * segments and, as it needs ECN, CA_EVENT_ECN_IS_CE / ECN_NO_CE for every data segment.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

enum so_count_op {
	SO_COUNT_INIT = 1,
	SO_COUNT_RELEASE,
	SO_COUNT_SSTHRESH,
	SO_COUNT_CONG_AVOID,
	SO_COUNT_SET_STATE,
	SO_COUNT_CWND_EVENT,
	SO_COUNT_IN_ACK_EVENT,
	SO_COUNT_PKTS_ACKED,
	SO_COUNT_UNDO_CWND,
};

struct so_count_key {
	__u64 sk;
	__u32 op;
	__u32 arg;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct so_count_key);
	__type(value, __u64);
} so_count_calls SEC(".maps");

static __always_inline void so_count_call(const struct sock *sk, __u32 op, __u32 arg)
{
	struct so_count_key key = {};
	__u64 one = 1, *n;

	key.sk = (__u64)sk;
	key.op = op;
	key.arg = arg;
	n = bpf_map_lookup_elem(&so_count_calls, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&so_count_calls, &key, &one, BPF_NOEXIST);
}

SEC("struct_ops/so_count_init")
void BPF_PROG(so_count_init, struct sock *sk)
{
	so_count_call(sk, SO_COUNT_INIT, 0);
}

SEC("struct_ops/so_count_release")
void BPF_PROG(so_count_release, struct sock *sk)
{
	so_count_call(sk, SO_COUNT_RELEASE, 0);
}

SEC("struct_ops/so_count_ssthresh")
__u32 BPF_PROG(so_count_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);

	so_count_call(sk, SO_COUNT_SSTHRESH, 0);
	return max(tp->snd_cwnd >> 1U, 2U);
}

SEC("struct_ops/so_count_cong_avoid")
void BPF_PROG(so_count_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = tcp_sk(sk);

	so_count_call(sk, SO_COUNT_CONG_AVOID, 0);
	if (!tcp_is_cwnd_limited(sk))
		return;
	if (tcp_in_slow_start(tp)) {
		acked = tcp_slow_start(tp, acked);
		if (!acked)
			return;
	}
	tcp_cong_avoid_ai(tp, tp->snd_cwnd, acked);
}

SEC("struct_ops/so_count_set_state")
void BPF_PROG(so_count_set_state, struct sock *sk, __u8 new_state)
{
	so_count_call(sk, SO_COUNT_SET_STATE, new_state);
}

SEC("struct_ops/so_count_cwnd_event")
void BPF_PROG(so_count_cwnd_event, struct sock *sk, enum tcp_ca_event ev)
{
	so_count_call(sk, SO_COUNT_CWND_EVENT, ev);
}

SEC("struct_ops/so_count_in_ack_event")
void BPF_PROG(so_count_in_ack_event, struct sock *sk, __u32 flags)
{
	so_count_call(sk, SO_COUNT_IN_ACK_EVENT, flags);
}

SEC("struct_ops/so_count_pkts_acked")
void BPF_PROG(so_count_pkts_acked, struct sock *sk, const struct ack_sample *sample)
{
	so_count_call(sk, SO_COUNT_PKTS_ACKED, 0);
}

SEC("struct_ops/so_count_undo_cwnd")
__u32 BPF_PROG(so_count_undo_cwnd, struct sock *sk)
{
	so_count_call(sk, SO_COUNT_UNDO_CWND, 0);
	return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops")
struct tcp_congestion_ops so_count = {
	.init = (void *)so_count_init,
	.release = (void *)so_count_release,
	.ssthresh = (void *)so_count_ssthresh,
	.cong_avoid = (void *)so_count_cong_avoid,
	.set_state = (void *)so_count_set_state,
	.cwnd_event = (void *)so_count_cwnd_event,
	.in_ack_event = (void *)so_count_in_ack_event,
	.pkts_acked = (void *)so_count_pkts_acked,
	.undo_cwnd = (void *)so_count_undo_cwnd,
	.flags = TCP_CONG_NEEDS_ECN,
	.name = "so_count",
};
