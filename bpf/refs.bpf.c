// SPDX-License-Identifier: GPL-2.0
/*
 * Reference tracking from clang output: task and cpumask references taken and dropped through
 * kfuncs, RCU read-side sections, a reference handed from a subprogram to its caller. The
 * `syscall` programs must load; the `?syscall` ones must each be refused by the verifier (a
 * test turns their autoload on one at a time), for the reason named after them.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;
struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
void bpf_rcu_read_lock(void) __ksym;
void bpf_rcu_read_unlock(void) __ksym;
struct bpf_cpumask *bpf_cpumask_create(void) __ksym;
void bpf_cpumask_release(struct bpf_cpumask *cpumask) __ksym;
struct bpf_cpumask *bpf_cpumask_acquire(struct bpf_cpumask *cpumask) __ksym;
void bpf_cpumask_set_cpu(u32 cpu, struct bpf_cpumask *cpumask) __ksym;
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym;
u32 bpf_cpumask_weight(const struct cpumask *cpumask) __ksym;

/* The syscall context: a pid to look up. */
struct refs_args {
	int pid;
};

/* bpf_task_from_pid: a reference or NULL; the pid read through it, then released. */
SEC("syscall")
int task_from_pid(struct refs_args *args)
{
	struct task_struct *t = bpf_task_from_pid(args->pid);
	int pid;

	if (!t)
		return -1;
	pid = t->pid;
	bpf_task_release(t);
	return pid;
}

/* A second reference on the current task (trusted), dropped again. */
SEC("syscall")
int acquire_current(void *ctx)
{
	struct task_struct *t = bpf_task_acquire(bpf_get_current_task_btf());
	int tgid;

	if (!t)
		return -1;
	tgid = t->tgid;
	bpf_task_release(t);
	return tgid;
}

/* real_parent is RCU-protected: inside the section it may be acquired (KF_RCU). */
SEC("syscall")
int rcu_parent(void *ctx)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct task_struct *p;
	int pid;

	bpf_rcu_read_lock();
	p = bpf_task_acquire(cur->real_parent);
	bpf_rcu_read_unlock();
	if (!p)
		return -1;
	pid = p->pid;
	bpf_task_release(p);
	return pid;
}

/* A cpumask created, shared by a second reference, changed, read, released twice. */
SEC("syscall")
int cpumask_ops(void *ctx)
{
	struct bpf_cpumask *m = bpf_cpumask_create(), *m2;
	int r;

	if (!m)
		return -1;
	m2 = bpf_cpumask_acquire(m);
	bpf_cpumask_set_cpu(0, m2);
	r = bpf_cpumask_test_cpu(0, (const struct cpumask *)m) * 10 + bpf_cpumask_weight((const struct cpumask *)m2);
	bpf_cpumask_release(m2);
	bpf_cpumask_release(m);
	return r;
}

/* Kept out of line: the reference is acquired in the callee and released by the caller. */
static __noinline struct task_struct *lookup(int pid)
{
	return bpf_task_from_pid(pid);
}

SEC("syscall")
int subprog_ref(struct refs_args *args)
{
	struct task_struct *t = lookup(args->pid);
	int pid;

	if (!t)
		return -1;
	pid = t->pid;
	bpf_task_release(t);
	return pid;
}

/* ---- refused ---- */

SEC("?syscall")
int leak(struct refs_args *args)
{
	struct task_struct *t = bpf_task_from_pid(args->pid);

	if (!t)
		return -1;
	return t->pid;
}

SEC("?syscall")
int double_release(struct refs_args *args)
{
	struct task_struct *t = bpf_task_from_pid(args->pid);

	if (!t)
		return -1;
	bpf_task_release(t);
	bpf_task_release(t);
	return 0;
}

SEC("?syscall")
int release_unchecked(struct refs_args *args)
{
	struct task_struct *t = bpf_task_from_pid(args->pid);

	bpf_task_release(t);
	return 0;
}

SEC("?syscall")
int release_unacquired(void *ctx)
{
	bpf_task_release(bpf_get_current_task_btf());
	return 0;
}

SEC("?syscall")
int use_after_release(struct refs_args *args)
{
	struct task_struct *t = bpf_task_from_pid(args->pid);

	if (!t)
		return -1;
	bpf_task_release(t);
	return t->pid;
}

SEC("?syscall")
int rcu_outside_section(void *ctx)
{
	struct task_struct *p = bpf_task_acquire(bpf_get_current_task_btf()->real_parent);

	if (p)
		bpf_task_release(p);
	return 0;
}

SEC("?syscall")
int untrusted_to_trusted_arg(void *ctx)
{
	struct bpf_cpumask *m = (struct bpf_cpumask *)bpf_get_current_task_btf()->parent;
	struct bpf_cpumask *n = bpf_cpumask_acquire(m);

	if (n)
		bpf_cpumask_release(n);
	return 0;
}

SEC("?syscall")
int rcu_nested(void *ctx)
{
	bpf_rcu_read_lock();
	bpf_rcu_read_lock();
	bpf_rcu_read_unlock();
	bpf_rcu_read_unlock();
	return 0;
}

SEC("?syscall")
int rcu_unmatched_unlock(void *ctx)
{
	bpf_rcu_read_unlock();
	return 0;
}

SEC("?syscall")
int rcu_exit_locked(void *ctx)
{
	bpf_rcu_read_lock();
	return 0;
}
