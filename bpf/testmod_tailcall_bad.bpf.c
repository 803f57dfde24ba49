// SPDX-License-Identifier: GPL-2.0
/*
 * Tail calls the verifier refuses (each program is loaded alone):
 * lookup_prog_array: a PROG_ARRAY passed to bpf_map_lookup_elem.
 * tail_in_rcu: a tail call inside bpf_rcu_read_lock().
 * deep_stack: a subprogram that tail calls, called with 288 bytes of stack below it (>= 256).
 * shallow_stack: the same with 64 bytes: loads.
 * ref_tail (bpf_testmod_ops.test_refcounted, whose task is __ref): tail calls at all.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

void bpf_rcu_read_lock(void) __ksym;
void bpf_rcu_read_unlock(void) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jmp SEC(".maps");

SEC("syscall")
int lookup_prog_array(void *ctx)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&jmp, &key) ? 1 : 0;
}

SEC("syscall")
int tail_in_rcu(void *ctx)
{
	bpf_rcu_read_lock();
	bpf_tail_call(ctx, &jmp, 0);
	bpf_rcu_read_unlock();
	return 0;
}

static __noinline int tail(void *ctx)
{
	bpf_tail_call(ctx, &jmp, 0);
	return 0;
}

#define STACK_THEN_TAIL(name, n)                                    \
	SEC("syscall")                                              \
	int name(__u32 *ctx)                                        \
	{                                                           \
		volatile __u8 buf[n];                               \
		__u32 i = *ctx & (n - 1);                           \
		buf[i] = 1;                                         \
		return tail(ctx) + buf[(i + 1) & (n - 1)];          \
	}

STACK_THEN_TAIL(deep_stack, 256)
STACK_THEN_TAIL(shallow_stack, 64)

void bpf_task_release(struct task_struct *p) __ksym;

/* A program handed a __ref task may not tail call: the callee could not be made to release it. */
SEC("?struct_ops/test_refcounted")
int BPF_PROG(ref_tail, int dummy, struct task_struct *task)
{
	bpf_task_release(task);
	bpf_tail_call(ctx, &jmp, 0);
	return 0;
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops ref_tail_ops = {
	.test_refcounted = (void *)ref_tail,
};
