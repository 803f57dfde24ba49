// SPDX-License-Identifier: GPL-2.0
/*
 * libbpf's rules for struct_ops programs on bpf_testmod_ops:
 * - `nulled`: test_1 holds cb_out_of_range, which the verifier would refuse (an unbounded index
 *   into a one-element array); a shadow NULL in that slot turns the callback off, so libbpf does
 *   not load the program and the object loads.
 * - cb_unused is in no map: loading the object fails ("isn't referenced anywhere") unless a
 *   shadow edit puts it in a slot (`spare`'s test_1).
 * - cb_shared is in `ops_a` (bpf_testmod_ops) and, when `reuse` is created, in a
 *   bpf_testmod_ops2 as well: one program cannot serve two struct_ops types ("invalid reuse").
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

int idx;
int one[1];

SEC("struct_ops/test_1")
int BPF_PROG(cb_out_of_range)
{
	return one[idx];
}

SEC(".struct_ops.link")
struct bpf_testmod_ops nulled = {
	.test_1 = (void *)cb_out_of_range,
};

SEC("struct_ops/test_1")
int BPF_PROG(cb_unused)
{
	return 7;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops spare = {};

SEC("struct_ops/test_1")
int BPF_PROG(cb_shared)
{
	return 1;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops ops_a = {
	.test_1 = (void *)cb_shared,
};

SEC("?.struct_ops.link")
struct bpf_testmod_ops2 reuse = {
	.test_1 = (void *)cb_shared,
};
