// SPDX-License-Identifier: GPL-2.0
/*
 * test_return_ref_kptr returns a task: the `__ref` task argument the program owns, or NULL once
 * it gave the reference back. The optional maps each break the rule one way (6.18's message):
 * - ret_scalar: a non-zero scalar
 *   ("At program exit the register R0 has smin=3 smax=3 should have been in [0, 0]");
 * - ret_inner: a pointer inside the task
 *   ("dereference of modified trusted_ptr_ ptr R0 off=N disallowed");
 * - ret_local: an object of the program's own allocation
 *   ("At program exit the register R0 is not a known value (ptr_or_null_)");
 * - ret_cgroup: a referenced cgroup (bpf_cgroup_acquire on the cgroup argument), not the task
 *   ("At program exit the register R0 is not a known value (ptr_or_null_)");
 * - ret_reread: the argument read again after its release
 *   ("invalid bpf_context access off=8. Reference may already be released").
 */
#include "vmlinux.h"
#include "structops.h"
#include "structops_graph.h"

char _license[] SEC("license") = "GPL";

void bpf_task_release(struct task_struct *p) __ksym;
struct cgroup *bpf_cgroup_acquire(struct cgroup *cgrp) __ksym;

SEC("struct_ops/test_return_ref_kptr")
struct task_struct *BPF_PROG(kr_ok, int dummy, struct task_struct *task, struct cgroup *cgrp)
{
	if (dummy & 1) {
		bpf_task_release(task);
		return NULL;
	}
	return task;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops kr = {
	.test_return_ref_kptr = (void *)kr_ok,
};

SEC("?struct_ops/test_return_ref_kptr")
struct task_struct *BPF_PROG(kr_scalar, int dummy, struct task_struct *task, struct cgroup *cgrp)
{
	bpf_task_release(task);
	return (struct task_struct *)3;
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops ret_scalar = {
	.test_return_ref_kptr = (void *)kr_scalar,
};

SEC("?struct_ops/test_return_ref_kptr")
struct task_struct *BPF_PROG(kr_inner, int dummy, struct task_struct *task, struct cgroup *cgrp)
{
	return (struct task_struct *)&task->tgid;
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops ret_inner = {
	.test_return_ref_kptr = (void *)kr_inner,
};

SEC("?struct_ops/test_return_ref_kptr")
struct task_struct *BPF_PROG(kr_local, int dummy, struct task_struct *task, struct cgroup *cgrp)
{
	bpf_task_release(task);
	return bpf_obj_new(struct task_struct);
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops ret_local = {
	.test_return_ref_kptr = (void *)kr_local,
};

int cgroup_level;

SEC("?struct_ops/test_return_ref_kptr")
struct task_struct *BPF_PROG(kr_cgroup, int dummy, struct task_struct *task, struct cgroup *cgrp)
{
	struct cgroup *held = bpf_cgroup_acquire(cgrp);

	/* A field read gives the object the full struct cgroup, as the kfunc's prototype has it. */
	cgroup_level = cgrp->level;
	bpf_task_release(task);
	return (struct task_struct *)held;
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops ret_cgroup = {
	.test_return_ref_kptr = (void *)kr_cgroup,
};

SEC("?struct_ops/test_refcounted")
int kr_reread(unsigned long long *ctx)
{
	bpf_task_release((struct task_struct *)ctx[1]);
	return ((struct task_struct *)ctx[1])->pid;
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops ret_reread = {
	.test_refcounted = (void *)kr_reread,
};
