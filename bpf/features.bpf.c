// SPDX-License-Identifier: GPL-2.0
/*
 * A loader feature tour in one object: subprograms in .text (BPF-to-BPF calls), global
 * data in .data, .rodata and .bss, an ARRAY and a HASH map defined in .maps, a __kconfig
 * extern, a kfunc call, an optional (`?`) program and an optional struct_ops map, a
 * `.struct_ops.link` map, and a non-struct_ops program section.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

extern unsigned long CONFIG_HZ __kconfig;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} feat_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} feat_hash SEC(".maps");

int feat_data = 7;
const volatile int feat_rodata = 3;
__u64 feat_bss;

/* Kept out of line so the object has .text subprograms and R_BPF_64_32 calls. */
static __noinline __u32 feat_halve(__u32 v)
{
	return max(v >> 1, 2U) + feat_rodata - 3;
}

static __noinline void feat_count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&feat_array, &slot);

	if (v)
		*v += 1;
	feat_bss += CONFIG_HZ;
}

SEC("struct_ops/feat_ssthresh")
__u32 BPF_PROG(feat_ssthresh, struct sock *sk)
{
	const struct tcp_sock *tp = tcp_sk(sk);
	__u32 key = tp->snd_cwnd, *seen;

	feat_count(0);
	seen = bpf_map_lookup_elem(&feat_hash, &key);
	if (!seen)
		bpf_map_update_elem(&feat_hash, &key, &key, BPF_ANY);
	return feat_halve(tp->snd_cwnd) + feat_data - 7;
}

SEC("struct_ops/feat_cong_avoid")
void BPF_PROG(feat_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = tcp_sk(sk);

	feat_count(1);
	if (tcp_in_slow_start(tp))
		acked = tcp_slow_start(tp, acked);
	if (acked)
		tcp_cong_avoid_ai(tp, tp->snd_cwnd, acked);
}

SEC("struct_ops/feat_undo_cwnd")
__u32 BPF_PROG(feat_undo_cwnd, struct sock *sk)
{
	feat_count(2);
	return tcp_reno_undo_cwnd(sk);
}

/* Not referenced by any map and optional: stays unloaded. */
SEC("?struct_ops/feat_spare")
__u32 BPF_PROG(feat_spare, struct sock *sk)
{
	return 2;
}

SEC("syscall")
int feat_syscall(void *ctx)
{
	feat_data++;
	return 0;
}

SEC(".struct_ops.link")
struct tcp_congestion_ops so_feat = {
	.ssthresh = (void *)feat_ssthresh,
	.cong_avoid = (void *)feat_cong_avoid,
	.undo_cwnd = (void *)feat_undo_cwnd,
	.name = "so_feat",
};

/* Optional map: not created unless the user turns autocreate on. */
SEC("?.struct_ops")
struct tcp_congestion_ops so_feat_opt = {
	.ssthresh = (void *)feat_ssthresh,
	.cong_avoid = (void *)feat_cong_avoid,
	.undo_cwnd = (void *)feat_undo_cwnd,
	.name = "so_feat_opt",
};
