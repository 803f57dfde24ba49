// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_testmod_ops members with a referenced task (their cfi stubs name it task__ref): the program
 * holds a reference from its first instruction and must give it back, by bpf_task_release or, for
 * test_return_ref_kptr, by returning it. The optional programs break that rule and are refused.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

void bpf_task_release(struct task_struct *p) __ksym;

int seen_pid;

SEC("struct_ops/test_refcounted")
int BPF_PROG(tm_refcounted, int dummy, struct task_struct *task)
{
	seen_pid = task->pid;
	bpf_task_release(task);
	return 0;
}

SEC("struct_ops/test_return_ref_kptr")
struct task_struct *BPF_PROG(tm_return_ref, int dummy, struct task_struct *task, struct cgroup *cgrp)
{
	return task;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops testmod_ref = {
	.test_refcounted = (void *)tm_refcounted,
	.test_return_ref_kptr = (void *)tm_return_ref,
};

/* The reference is never released. */
SEC("?struct_ops/test_refcounted")
int BPF_PROG(tm_ref_leak, int dummy, struct task_struct *task)
{
	return 0;
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops testmod_ref_leak = {
	.test_refcounted = (void *)tm_ref_leak,
};

/* Released, then returned: the returned pointer is no longer a reference the program holds. */
SEC("?struct_ops/test_return_ref_kptr")
struct task_struct *BPF_PROG(tm_return_released, int dummy, struct task_struct *task, struct cgroup *cgrp)
{
	bpf_task_release(task);
	return task;
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops testmod_ref_released = {
	.test_return_ref_kptr = (void *)tm_return_released,
};
