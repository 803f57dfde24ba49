// SPDX-License-Identifier: GPL-2.0
/*
 * A loop whose bound the verifier cannot see, cut by cond_break (the may_goto instruction,
 * which clang 19 emits): the kernel gives each program run a budget of iterations and the
 * loop ends when it runs out. Built with clang-19 only.
 */
#include "vmlinux.h"
#include "structops.h"
#include "structops_loops.h"

char _license[] SEC("license") = "GPL";

__u64 goto_iters;
__u64 goto_limit = ~0ULL;

SEC("syscall")
int run_may_goto(void *ctx)
{
	__u64 i = 0;

	/* goto_limit is a global the program may change: no bound the verifier can use. */
	while (i < goto_limit) {
		i++;
		cond_break;
	}
	goto_iters = i;
	return 0;
}
