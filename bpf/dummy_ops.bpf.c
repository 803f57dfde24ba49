// SPDX-License-Identifier: GPL-2.0
/*
 * Programs for the kernel's bpf_dummy_ops, run through BPF_PROG_TEST_RUN:
 * test_1 returns the state's value and overwrites it with 0x5a (0xf2f3f4f5 when the state
 * pointer is NULL), test_2 records each argument cast to its declared type, and
 * test_sleepable is a sleepable program that only reads its state.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

/* Arguments test_2 saw, in declaration order: state->val, a1, a2, a3, a4. */
__u64 test_2_args[5];

SEC("struct_ops/test_1")
int BPF_PROG(dummy_test_1, struct bpf_dummy_ops_state *state)
{
	int ret;

	if (!state)
		return 0xf2f3f4f5;
	ret = state->val;
	state->val = 0x5a;
	return ret;
}

SEC("struct_ops/test_2")
int BPF_PROG(dummy_test_2, struct bpf_dummy_ops_state *state, int a1, unsigned short a2, char a3,
	     unsigned long a4)
{
	test_2_args[0] = state ? state->val : 0;
	test_2_args[1] = a1;
	test_2_args[2] = a2;
	test_2_args[3] = a3;
	test_2_args[4] = a4;
	return 0;
}

SEC("struct_ops.s/test_sleepable")
int BPF_PROG(dummy_test_sleepable, struct bpf_dummy_ops_state *state)
{
	return state ? 0 : -1;
}

SEC(".struct_ops")
struct bpf_dummy_ops dummy_1 = {
	.test_1 = (void *)dummy_test_1,
	.test_2 = (void *)dummy_test_2,
	.test_sleepable = (void *)dummy_test_sleepable,
};
