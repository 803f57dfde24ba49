// SPDX-License-Identifier: GPL-2.0
/*
 * Loops the verifier bounds without unrolling: bpf_loop with a callback, bpf_for_each_map_elem
 * over an array, and the open-coded numeric iterator (bpf_for, bpf_repeat). Each `syscall`
 * program leaves its result in .bss so a test can run it (BPF_PROG_TEST_RUN) and check it.
 */
#include "vmlinux.h"
#include "structops.h"
#include "structops_loops.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} loop_vals SEC(".maps");

__u64 loop_sum;
__u64 each_sum;
__u32 each_seen;
__u64 iter_sum;
__u32 repeat_count;

struct sum_ctx {
	__u64 sum;
	__u32 limit;
};

static int sum_step(__u32 index, struct sum_ctx *c)
{
	if (index >= c->limit)
		return 1; /* stop early */
	c->sum += index * index;
	return 0;
}

/* Sum of squares below 10 through bpf_loop, which would run up to 100 times. */
SEC("syscall")
int run_bpf_loop(void *ctx)
{
	struct sum_ctx c = { .sum = 0, .limit = 10 };
	long n;

	n = bpf_loop(100, sum_step, &c, 0);
	loop_sum = c.sum + ((__u64)n << 32);
	return 0;
}

static long add_elem(struct bpf_map *map, __u32 *key, __u64 *val, struct sum_ctx *c)
{
	c->sum += *val * (*key + 1);
	return 0;
}

/* Fill the array with 1..8 and add up value * (key + 1) with bpf_for_each_map_elem. */
SEC("syscall")
int run_for_each(void *ctx)
{
	struct sum_ctx c = {};
	int i;

	/* The counter stays in a register: only a copy's address goes to the helper. */
	for (i = 0; i < 8; i++) {
		__u32 k = i;
		__u64 v = i + 1;

		bpf_map_update_elem(&loop_vals, &k, &v, BPF_ANY);
	}
	each_seen = bpf_for_each_map_elem(&loop_vals, add_elem, &c, 0);
	each_sum = c.sum;
	return 0;
}

/* The open-coded iterator: sum of i for 3 <= i < 13, and a bpf_repeat count. */
SEC("syscall")
int run_iter(void *ctx)
{
	__u64 sum = 0;
	int i;

	bpf_for(i, 3, 13)
		sum += i;
	iter_sum = sum;
	bpf_repeat(5)
		repeat_count++;
	return 0;
}
