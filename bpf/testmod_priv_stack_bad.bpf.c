// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_testmod_ops3.test_2 gets no private stack: 416 + 192 bytes along one call chain is more
 * than the 512 of the kernel stack.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

int out;

/* Read at run time, so that clang keeps every array whole. */
volatile int five = 5;

static __noinline int add_at(volatile int *outer, int k)
{
	volatile int local[48];

	local[k & 31] = k;
	return outer[k & 31] + local[k & 31];
}

SEC("struct_ops")
int BPF_PROG(big_test_2)
{
	volatile int big[104];

	big[5] = 10;
	out = add_at(big, five);
	return 0;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops3 narrow = {
	.test_2 = (void *)big_test_2,
};
