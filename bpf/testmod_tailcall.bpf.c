// SPDX-License-Identifier: GPL-2.0
/*
 * Tail calls through a BPF_MAP_TYPE_PROG_ARRAY. Userspace fills `jmp` with program fds; the
 * syscall programs take their slot from the context.
 *
 * tc_entry: tail calls slot `index`; returns -1 only when the call falls through.
 * tc_leaf: returns 100 + index (as the callee of any of them).
 * tc_count: counts its runs in `runs` and tail calls slot `index` again; what it returns when
 *   that falls through (the tail call limit) is the number of runs.
 * tc_sub: the tail call is in a subprogram: the callee's return comes back to tc_sub itself
 *   (which adds 1000); falling through, the subprogram returns index + 7.
 * tail_epilogue / plus_one_epilogue: bpf_testmod_st_ops.test_epilogue programs, patched with the
 *   module's epilogue (+10000, then return twice args->a); the first tail calls `epi_jmp`[0],
 *   which the object initialises to the second.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

int bpf_kfunc_st_ops_test_epilogue(struct st_ops_args *args) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jmp SEC(".maps");

struct tc_ctx {
	__u32 index;
	__u32 pad;
};

int runs;

SEC("syscall")
int tc_entry(struct tc_ctx *c)
{
	bpf_tail_call(c, &jmp, c->index);
	return -1;
}

SEC("syscall")
int tc_leaf(struct tc_ctx *c)
{
	return 100 + c->index;
}

SEC("syscall")
int tc_count(struct tc_ctx *c)
{
	runs++;
	bpf_tail_call(c, &jmp, c->index);
	return runs;
}

static __noinline int sub_tail(struct tc_ctx *c)
{
	bpf_tail_call(c, &jmp, c->index);
	return c->index + 7;
}

SEC("syscall")
int tc_sub(struct tc_ctx *c)
{
	return sub_tail(c) + 1000;
}

static __noinline int plus_one(struct st_ops_args *args)
{
	args->a += 1;
	return args->a;
}

SEC("struct_ops/test_epilogue")
int BPF_PROG(plus_one_epilogue, struct st_ops_args *args)
{
	plus_one(args);
	return args->a;
}

/* libbpf stores plus_one_epilogue's fd in slot 0 once the programs are loaded. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__array(values, int(void *));
} epi_jmp SEC(".maps") = {
	.values = { [0] = (void *)&plus_one_epilogue },
};

SEC("struct_ops/test_epilogue")
int tail_epilogue(unsigned long long *ctx)
{
	bpf_tail_call(ctx, &epi_jmp, 0);
	return 0;
}

SEC(".struct_ops.link")
struct bpf_testmod_st_ops epi_tail = {
	.test_epilogue = (void *)tail_epilogue,
};

SEC(".struct_ops.link")
struct bpf_testmod_st_ops epi_plus_one = {
	.test_epilogue = (void *)plus_one_epilogue,
};

__u64 final_a;

SEC("syscall")
int run_epilogue(void *ctx)
{
	struct st_ops_args args = {};
	int ret = bpf_kfunc_st_ops_test_epilogue(&args);

	final_a = args.a;
	return ret;
}
