// SPDX-License-Identifier: GPL-2.0
/*
 * Maps of every shape `bpftool map dump` prints differently, kept alive by a plain `.struct_ops`
 * map (the layout Debian's bpftool can register): global data with a u64 past 2^53, a struct, an
 * array and a string; ARRAY and HASH with BTF keys and values; PERCPU_ARRAY and PERCPU_HASH
 * (one value per CPU); a HASH without BTF types (hex rows). The programs only count calls.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

struct so_pair {
	__u64 big;
	__s32 neg;
	char tag[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct so_pair);
} so_arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, struct so_pair);
	__type(value, __u64);
} so_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct so_pair);
} so_pcpu_arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} so_pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__uint(key_size, 4);
	__uint(value_size, 20);
} so_raw SEC(".maps");

__u64 so_calls = 0;
__u64 so_big = 0xfedcba9876543210ULL;
struct so_pair so_pair = { .big = 1ULL << 60, .neg = -5, .tag = "pair" };
const volatile short so_ro[3] = { -1, 2, 3 };
const volatile char so_name[8] = "cli";

SEC("struct_ops/so_cli_ssthresh")
__u32 BPF_PROG(so_cli_ssthresh, struct sock *sk)
{
	__u32 zero = 0;
	struct so_pair *p;

	so_calls++;
	/* Each map is used, so the programs keep it alive after bpftool exits. */
	p = bpf_map_lookup_elem(&so_arr, &zero);
	if (p)
		p->big += so_big;
	if (bpf_map_lookup_elem(&so_hash, &so_pair))
		so_pair.neg--;
	p = bpf_map_lookup_elem(&so_pcpu_arr, &zero);
	if (p)
		p->neg += so_ro[0] + so_name[0];
	if (bpf_map_lookup_elem(&so_pcpu_hash, &zero) || bpf_map_lookup_elem(&so_raw, &zero))
		so_calls++;
	return max(tcp_sk(sk)->snd_cwnd >> 1U, 2U);
}

SEC("struct_ops/so_cli_cong_avoid")
void BPF_PROG(so_cli_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	struct tcp_sock *tp = tcp_sk(sk);

	if (tcp_in_slow_start(tp))
		tcp_slow_start(tp, acked);
}

SEC("struct_ops/so_cli_undo_cwnd")
__u32 BPF_PROG(so_cli_undo_cwnd, struct sock *sk)
{
	return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops")
struct tcp_congestion_ops so_cli = {
	.ssthresh = (void *)so_cli_ssthresh,
	.cong_avoid = (void *)so_cli_cong_avoid,
	.undo_cwnd = (void *)so_cli_undo_cwnd,
	.name = "so_cli",
};
