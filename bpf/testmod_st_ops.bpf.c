// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_testmod_st_ops: the module's gen_prologue adds 1000 to args->a before the programs of
 * test_prologue and test_pro_epilogue; its gen_epilogue adds 10000 after the programs of
 * test_epilogue and test_pro_epilogue and returns twice args->a. The syscall programs call the
 * registered map's member through the module's kfuncs; each of the three maps is attached alone
 * (one bpf_testmod_st_ops at a time).
 *
 * pe_*: bpf_kfunc_st_ops_inc10 (+10) and a subprogram (+1) between prologue and epilogue.
 * loop_*: the first instruction is also the target of a backward jump: the prologue runs once.
 * exits_*: two exits, both through the epilogue, the second with r1 clobbered.
 * test_kfunc_*: the module gives programs with that name prefix a prologue and an epilogue that
 * themselves call bpf_cgroup_from_id / bpf_cgroup_release around the same additions.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

int bpf_kfunc_st_ops_test_prologue(struct st_ops_args *args) __ksym;
int bpf_kfunc_st_ops_test_epilogue(struct st_ops_args *args) __ksym;
int bpf_kfunc_st_ops_test_pro_epilogue(struct st_ops_args *args) __ksym;
int bpf_kfunc_st_ops_inc10(struct st_ops_args *args) __ksym;

static __noinline int bump(struct st_ops_args *args)
{
	args->a += 1;
	return args->a;
}

static __always_inline int pe_body(struct st_ops_args *args)
{
	bpf_kfunc_st_ops_inc10(args);
	return bump(args);
}

SEC("struct_ops/test_prologue")
int BPF_PROG(pe_prologue, struct st_ops_args *args)
{
	return pe_body(args);
}

SEC("struct_ops/test_epilogue")
int BPF_PROG(pe_epilogue, struct st_ops_args *args)
{
	return pe_body(args);
}

SEC("struct_ops/test_pro_epilogue")
int BPF_PROG(pe_pro_epilogue, struct st_ops_args *args)
{
	return pe_body(args);
}

SEC(".struct_ops.link")
struct bpf_testmod_st_ops pro_epi = {
	.test_prologue = (void *)pe_prologue,
	.test_epilogue = (void *)pe_epilogue,
	.test_pro_epilogue = (void *)pe_pro_epilogue,
};

SEC("struct_ops/test_pro_epilogue")
int BPF_PROG(test_kfunc_pe, struct st_ops_args *args)
{
	return pe_body(args);
}

SEC(".struct_ops.link")
struct bpf_testmod_st_ops kfunc_pro_epi = {
	.test_pro_epilogue = (void *)test_kfunc_pe,
};

/* insn 0 tests r1: the context on entry, 0 after the jump back to it. */
#define LOOP_TO_START                      \
	asm volatile("if r1 == 0 goto 2f;" \
		     "r1 = 0;"              \
		     "goto -3;"             \
		     "2: r0 = 0;"           \
		     "exit;" ::: "memory")

SEC("struct_ops")
__attribute__((naked)) int loop_prologue(void)
{
	LOOP_TO_START;
}

SEC("struct_ops")
__attribute__((naked)) int loop_epilogue(void)
{
	LOOP_TO_START;
}

SEC("struct_ops")
__attribute__((naked)) int loop_pro_epilogue(void)
{
	LOOP_TO_START;
}

SEC(".struct_ops.link")
struct bpf_testmod_st_ops loop_start = {
	.test_prologue = (void *)loop_prologue,
	.test_epilogue = (void *)loop_epilogue,
	.test_pro_epilogue = (void *)loop_pro_epilogue,
};

/* args->a != 0: a = 5, return 0; else a = 7, r1 = 0, return 1. */
SEC("struct_ops")
__attribute__((naked)) int exits_epilogue(void)
{
	asm volatile("r1 = *(u64 *)(r1 + 0);"
		     "r2 = *(u64 *)(r1 + 0);"
		     "if r2 == 0 goto 1f;"
		     "r2 = 5;"
		     "*(u64 *)(r1 + 0) = r2;"
		     "r0 = 0;"
		     "exit;"
		     "1: r2 = 7;"
		     "*(u64 *)(r1 + 0) = r2;"
		     "r1 = 0;"
		     "r0 = 1;"
		     "exit;" ::: "memory");
}

SEC(".struct_ops.link")
struct bpf_testmod_st_ops two_exits = {
	.test_epilogue = (void *)exits_epilogue,
};

/* In: initial_a; out: final_a and the kfunc's return. */
__u64 initial_a;
__u64 final_a;

#define RUN(name, kfunc)                                   \
	SEC("syscall")                                     \
	int name(void *ctx)                                \
	{                                                  \
		struct st_ops_args args = { .a = initial_a }; \
		int ret = kfunc(&args);                    \
		final_a = args.a;                          \
		return ret;                                \
	}

RUN(run_prologue, bpf_kfunc_st_ops_test_prologue)
RUN(run_epilogue, bpf_kfunc_st_ops_test_epilogue)
RUN(run_pro_epilogue, bpf_kfunc_st_ops_test_pro_epilogue)
