// SPDX-License-Identifier: GPL-2.0
/*
 * A __ref argument of bpf_testmod_ops.test_refcounted and global functions. A global function is
 * verified on its own, holding no reference: the task it reads through the context is one it does
 * not own, whatever the caller did with it, so 6.18 refuses the load of the context slot
 * ("invalid bpf_context access off=8. Reference may already be released"). The scalar argument
 * is fine. Optional maps and programs: load them one at a time.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

#define __arg_ctx __attribute__((btf_decl_tag("arg:ctx")))

void bpf_task_release(struct task_struct *p) __ksym;

int seen_dummy;

/* reads only the scalar argument: verified, safe for any caller */
__noinline int rg_dummy_of(__u64 *ctx __arg_ctx)
{
	return (int)ctx[0] + 1;
}

/* releases the task it reads from the context: refused inside (it holds no reference) */
__noinline int rg_release_from_ctx(__u64 *ctx __arg_ctx)
{
	struct task_struct *task = (struct task_struct *)ctx[1];

	bpf_task_release(task);
	return (int)ctx[0];
}

/* reads the task's pid through the context: refused the same way, even before any release */
__noinline int rg_pid_from_ctx(__u64 *ctx __arg_ctx)
{
	struct task_struct *task = (struct task_struct *)ctx[1];

	return task->pid;
}

/* accepted: the global function looks at the scalar only; the program releases its task */
SEC("struct_ops/test_refcounted")
int BPF_PROG(rg_ok, int dummy, struct task_struct *task)
{
	seen_dummy = rg_dummy_of(ctx);
	bpf_task_release(task);
	return 0;
}

SEC(".struct_ops.link")
struct bpf_testmod_ops testmod_rg_ok = {
	.test_refcounted = (void *)rg_ok,
};

/* refused in rg_release_from_ctx: the program released the task, then the function would again */
SEC("?struct_ops/test_refcounted")
int BPF_PROG(rg_release_twice, int dummy, struct task_struct *task)
{
	bpf_task_release(task);
	return rg_release_from_ctx(ctx);
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops testmod_rg_release_twice = {
	.test_refcounted = (void *)rg_release_twice,
};

/* refused in rg_pid_from_ctx although the program still holds the task at the call */
SEC("?struct_ops/test_refcounted")
int BPF_PROG(rg_read_held, int dummy, struct task_struct *task)
{
	int pid = rg_pid_from_ctx(ctx);

	bpf_task_release(task);
	return pid;
}

SEC("?.struct_ops.link")
struct bpf_testmod_ops testmod_rg_read_held = {
	.test_refcounted = (void *)rg_read_held,
};
