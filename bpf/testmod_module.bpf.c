// SPDX-License-Identifier: GPL-2.0
/*
 * struct_ops maps of types the bpf_testmod module defines (its BTF is split BTF on top of
 * vmlinux): the loader finds `struct bpf_testmod_ops` in the module's BTF and creates the maps with
 * BPF_F_VTYPE_BTF_OBJ_FD. Registering a bpf_testmod_ops calls test_1() and then test_2(4, data);
 * the programs leave what they saw in .bss.
 *
 * - testmod_1, testmod_2: two link maps sharing programs, with different `data`.
 * - testmod_zeroed: a local flavor with two members the kernel lacks, left zero (the loader skips
 *   them); a shadow edit that sets either makes the load fail.
 * - testmod_odd: a flavor whose test_2 has another prototype; the kernel's prototype rules.
 * - ops3_a, ops3_b: optional (`?`) maps of bpf_testmod_ops3, which registers one map at a time;
 *   their programs are `?struct_ops` and load only when a map that uses them is created.
 * - testmod_unsupported: optional; a program for the member that has no cfi stub.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

unsigned int test_1_result;
int test_2_result;
int test_2_calls;
int ops3_calls;

SEC("struct_ops/test_1")
int BPF_PROG(tm_test_1)
{
	test_1_result = 0xdeadbeef;
	return 0;
}

SEC("struct_ops/test_2")
void BPF_PROG(tm_test_2, int a, int b)
{
	test_2_result = a + b;
	test_2_calls++;
}

/*
 * In no map at compile time, hence optional: a shadow edit that puts it in a slot of a created
 * map turns its autoload on.
 */
SEC("?struct_ops/test_2")
void BPF_PROG(tm_test_3, int a, int b)
{
	test_2_result = a + b + 3;
	test_2_calls++;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops testmod_1 = {
	.test_1 = (void *)tm_test_1,
	.test_2 = (void *)tm_test_2,
	.data = 0x1,
};

SEC(".struct_ops.link")
struct bpf_testmod_ops testmod_2 = {
	.test_1 = (void *)tm_test_1,
	.test_2 = (void *)tm_test_2,
	.data = 8,
};

struct bpf_testmod_ops___zeroed {
	int (*test_1)(void);
	void (*test_2)(int a, int b);
	int (*test_maybe_null)(int dummy, struct task_struct *task);
	void (*zeroed_op)(int a, int b);
	int data;
	int zeroed;
};

SEC("?struct_ops/test_2")
void BPF_PROG(tm_zeroed_op, int a, int b)
{
	test_2_result = a * b;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops___zeroed testmod_zeroed = {
	.test_1 = (void *)tm_test_1,
	.test_2 = (void *)tm_test_2,
};

struct bpf_testmod_ops___odd {
	int (*test_1)(void);
	void (*test_2)(int *a);
	int data;
};

SEC("struct_ops/test_2")
void BPF_PROG(tm_test_2_odd, int *a)
{
	/* The kernel passes an int here: the program is checked against the kernel's prototype. */
	test_2_result = (int)(long)a;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops___odd testmod_odd = {
	.test_1 = (void *)tm_test_1,
	.test_2 = (void *)tm_test_2_odd,
};

SEC("?struct_ops/test_1")
int BPF_PROG(tm_ops3_test_1)
{
	ops3_calls++;
	return 3;
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops3 ops3_a = {
	.test_1 = (void *)tm_ops3_test_1,
};

SEC("?.struct_ops.link")
struct bpf_testmod_ops3 ops3_b = {
	.test_1 = (void *)tm_ops3_test_1,
};

SEC("?struct_ops/unsupported_ops")
int BPF_PROG(tm_unsupported)
{
	return 0;
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops testmod_unsupported = {
	.unsupported_ops = (void *)tm_unsupported,
};
