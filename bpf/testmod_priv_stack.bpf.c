// SPDX-License-Identifier: GPL-2.0
/*
 * Private stacks: bpf_testmod_ops3.test_1 asks for them in check_member, so its programs may use
 * more than 512 bytes of stack along a call chain, each function at most 512 on its own; test_2
 * does not (testmod_priv_stack_bad.bpf.c). The module calls test_1 on a read of its sysfs file;
 * the kfuncs call test_1 or test_2 of the registered map.
 *
 * wide: big_test_1 (416 bytes) -> add_at (192 bytes): 608 in all; it stores first = 10 + 5, then
 *   runs test_2: mid_test_2 (192) -> add_at: second = 20 + 5 + first = 40.
 * again: again_test_1 calls test_1 again through the kfunc: the nested run is skipped (a
 *   recursion miss of the program) and `runs` ends at 1.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

void bpf_testmod_ops3_call_test_1(void) __ksym;
void bpf_testmod_ops3_call_test_2(void) __ksym;

int first, second, runs;

/* Read at run time, so that clang keeps every array whole. */
volatile int five = 5;

static __noinline int add_at(volatile int *outer, int k)
{
	volatile int local[48];

	local[k & 31] = k;
	return outer[k & 31] + local[k & 31] + first;
}

SEC("struct_ops")
int BPF_PROG(big_test_1)
{
	volatile int big[104];

	big[5] = 10;
	first = add_at(big, five);
	bpf_testmod_ops3_call_test_2();
	return 0;
}

SEC("struct_ops")
int BPF_PROG(mid_test_2)
{
	volatile int mid[48];

	mid[5] = 20;
	second = add_at(mid, five);
	return 0;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops3 wide = {
	.test_1 = (void *)big_test_1,
	.test_2 = (void *)mid_test_2,
};

SEC("struct_ops")
int BPF_PROG(again_test_1)
{
	volatile int buf[32];

	buf[3] = 1;
	runs += add_at(buf, five - 2) - 3;
	bpf_testmod_ops3_call_test_1();
	return 0;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops3 again = {
	.test_1 = (void *)again_test_1,
};
