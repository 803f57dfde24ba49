// SPDX-License-Identifier: GPL-2.0
/*
 * Autocreate and autoload with module types: testmod_ops2 registers (bpf_testmod_ops2 calls
 * test_1 at registration); testmod_v2 is a flavor with a member the kernel's bpf_testmod_ops
 * lacks, holding a program, so the whole object fails to load ("struct_ops init_kern",
 * ENOTSUP) unless that map's autocreate is turned off, which also leaves its only program
 * unloaded.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

int test_1_result;

SEC("struct_ops/test_1")
int BPF_PROG(ac_test_1)
{
	test_1_result = 42;
	return 0;
}

SEC("struct_ops/test_1")
int BPF_PROG(ac_v2_test_1)
{
	return 0;
}

SEC("struct_ops/test_1")
int BPF_PROG(ac_v2_extra)
{
	return 0;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops2 testmod_ops2 = {
	.test_1 = (void *)ac_test_1,
};

struct bpf_testmod_ops___v2 {
	int (*test_1)(void);
	void (*test_2)(int a, int b);
	int (*does_not_exist)(void);
};

SEC(".struct_ops.link")
struct bpf_testmod_ops___v2 testmod_v2 = {
	.test_1 = (void *)ac_v2_test_1,
	.does_not_exist = (void *)ac_v2_extra,
};
