// SPDX-License-Identifier: GPL-2.0
/*
 * Local structs initialised from constants: clang keeps the initialisers in .rodata without a
 * variable, so the object's BTF has a `.rodata` DATASEC with no entries (vlen 0), which the kernel
 * accepts. The callback context of bpf_loop is one of them, as in a BPF qdisc's reset.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct walk_ctx {
	__u32 seen;
	__u32 stop_at;
	__u64 sum;
	__u64 step;
};

static int walk(__u32 i, struct walk_ctx *ctx)
{
	ctx->seen++;
	ctx->sum += ctx->step * i;
	return ctx->seen >= ctx->stop_at;
}

__u64 result;

SEC("syscall")
int rodata_consts(void *args)
{
	struct walk_ctx ctx = { .seen = 0, .stop_at = 10, .sum = 0, .step = 3 };

	bpf_loop(100, walk, &ctx, 0);
	result = ctx.sum;
	return ctx.seen;
}

char _license[] SEC("license") = "GPL";
