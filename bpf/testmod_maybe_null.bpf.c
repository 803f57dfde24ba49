// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_testmod_ops.test_maybe_null's task argument is `__nullable` (its cfi stub names it
 * task__nullable): a program may read it only after a NULL check. tm_maybe_null checks and is
 * accepted; the optional tm_maybe_null_bad reads it unchecked and the verifier refuses it.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

int tgid;

SEC("struct_ops/test_maybe_null")
int BPF_PROG(tm_maybe_null, int dummy, struct task_struct *task)
{
	if (task)
		tgid = task->tgid;
	return 0;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops testmod_maybe_null = {
	.test_maybe_null = (void *)tm_maybe_null,
};

SEC("?struct_ops/test_maybe_null")
int BPF_PROG(tm_maybe_null_bad, int dummy, struct task_struct *task)
{
	tgid = task->tgid;
	return 0;
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops testmod_maybe_null_bad = {
	.test_maybe_null = (void *)tm_maybe_null_bad,
};
