// SPDX-License-Identifier: GPL-2.0
/*
 * may_goto's budget belongs to each call of a function (the kernel keeps it in a hidden stack
 * slot below the function's stack, set on entry): a callee that spends its budget leaves the
 * caller's untouched, and a second call starts afresh. Loops with no bound but cond_break end
 * when their budget runs out. Built with clang-19 only.
 */
#include "vmlinux.h"
#include "structops.h"
#include "structops_loops.h"

char _license[] SEC("license") = "GPL";

__u64 spin_iters[2];
__u64 main_iters;
__u64 nested_total;
__u64 main_limit = 1000;
__u64 inner_limit = 3;

/* Spins until its budget is spent; the stack it uses puts the budget's slot below 16 bytes. */
static __noinline __u64 spin(__u64 seed)
{
	volatile __u64 scratch[2];
	__u64 i = 0;

	scratch[0] = seed;
	while (1) {
		i++;
		scratch[1] = i;
		cond_break;
	}
	return i + scratch[0] - seed;
}

/* Loops inner_limit times: a bound the verifier cannot see, ended by the global. */
static __noinline __u64 inner(void)
{
	__u64 i = 0;

	while (i < inner_limit) {
		i++;
		cond_break;
	}
	return i;
}

SEC("syscall")
int budgets(void *ctx)
{
	volatile __u64 buf[3];
	__u64 i = 0;

	buf[0] = 1;
	spin_iters[0] = spin(buf[0]);
	spin_iters[1] = spin(buf[0]);
	/* main's own loop: the callees spent their budgets, not this one. */
	while (i < main_limit) {
		i++;
		buf[1] = i;
		cond_break;
	}
	main_iters = i + buf[0] - 1;
	return 0;
}

SEC("syscall")
int nested(void *ctx)
{
	__u64 i = 0, total = 0;

	while (i < main_limit) {
		i++;
		total += inner();
		cond_break;
	}
	nested_total = total;
	return 0;
}
