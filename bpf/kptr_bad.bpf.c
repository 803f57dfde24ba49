// SPDX-License-Identifier: GPL-2.0
/* kptr programs the verifier must refuse, one rule each (every section is `?syscall`: load them
 * one at a time). The comment above each is what the 6.18 verifier answers.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "structops_graph.h"

char _license[] SEC("license") = "GPL";

#define __kptr __attribute__((btf_type_tag("kptr")))
#define __kptr_untrusted __attribute__((btf_type_tag("kptr_untrusted")))

struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;
void bpf_rcu_read_lock(void) __ksym;
void bpf_rcu_read_unlock(void) __ksym;
struct bpf_cpumask *bpf_cpumask_create(void) __ksym;
void bpf_cpumask_release(struct bpf_cpumask *cpumask) __ksym;

struct tval {
	struct task_struct __kptr *task;
	struct task_struct __kptr_untrusted *seen;
	long n;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct tval);
} tasks SEC(".maps");

struct inner {
	long v;
	struct bpf_list_node node;
};

struct outer {
	long key;
	struct inner __kptr *in;
	struct bpf_list_node node;
};

/* Keep both structs in the BTF whatever the programs use (a kptr to a FWD is refused). */
struct outer *outer_anchor;
struct inner *inner_anchor;

static __always_inline struct tval *tval(void)
{
	int zero = 0;

	return bpf_map_lookup_elem(&tasks, &zero);
}

/* store to referenced kptr disallowed */
SEC("?syscall")
int store_ref(void *ctx)
{
	struct tval *v = tval();
	struct task_struct *t;

	if (!v)
		return 0;
	t = bpf_task_from_pid(1);
	if (!t)
		return 0;
	v->task = t;
	bpf_task_release(t);
	return 0;
}

/* invalid kptr access, R1 type=scalar expected=ptr_task_struct or untrusted_ptr_task_struct */
SEC("?syscall")
int store_scalar(void *ctx)
{
	struct tval *v = tval();

	if (!v)
		return 0;
	v->seen = (struct task_struct *)(long)bpf_get_prandom_u32();
	return 0;
}

/* kptr in map can only be accessed using BPF_MEM instruction mode */
SEC("?syscall")
int atomic_kptr(void *ctx)
{
	struct tval *v = tval();

	if (!v)
		return 0;
	__sync_fetch_and_add((long *)&v->seen, 1);
	return 0;
}

/* off=8 kptr isn't referenced kptr */
SEC("?syscall")
int xchg_untrusted(void *ctx)
{
	struct tval *v = tval();
	struct task_struct *t;

	if (!v)
		return 0;
	t = bpf_task_from_pid(1);
	if (!t)
		return 0;
	t = bpf_kptr_xchg(&v->seen, t);
	if (t)
		bpf_task_release(t);
	return 0;
}

/* off=16 doesn't point to kptr */
SEC("?syscall")
int xchg_not_kptr(void *ctx)
{
	struct tval *v = tval();
	struct task_struct *t;

	if (!v)
		return 0;
	t = bpf_task_from_pid(1);
	if (!t)
		return 0;
	t = bpf_kptr_xchg(&v->n, t);
	if (t)
		bpf_task_release(t);
	return 0;
}

/* invalid kptr access, R2 type=ptr_bpf_cpumask expected=ptr_task_struct */
SEC("?syscall")
int xchg_wrong_type(void *ctx)
{
	struct tval *v = tval();
	struct bpf_cpumask *m;

	if (!v)
		return 0;
	m = bpf_cpumask_create();
	if (!m)
		return 0;
	m = bpf_kptr_xchg(&v->task, m);
	if (m)
		bpf_cpumask_release(m);
	return 0;
}

/* R2 must be referenced when passed to release function */
SEC("?syscall")
int xchg_unreferenced(void *ctx)
{
	struct tval *v = tval();
	struct task_struct *t;

	if (!v)
		return 0;
	bpf_rcu_read_lock();
	t = v->task;
	if (t) {
		t = bpf_kptr_xchg(&v->task, t);
		if (t)
			bpf_task_release(t);
	}
	bpf_rcu_read_unlock();
	return 0;
}

/* Unreleased reference id=N alloc_insn=M / BPF_EXIT instruction in main prog would lead to
 * reference leak: what bpf_kptr_xchg hands back is the program's to release */
SEC("?syscall")
int xchg_leak(void *ctx)
{
	struct tval *v = tval();
	struct task_struct *t;

	if (!v)
		return 0;
	t = bpf_kptr_xchg(&v->task, NULL);
	if (t)
		return t->pid;
	return 0;
}

/* R1 must be referenced or trusted (an RCU pointer loaded from the map is not a reference) */
SEC("?syscall")
int release_loaded(void *ctx)
{
	struct tval *v = tval();
	struct task_struct *t;

	if (!v)
		return 0;
	bpf_rcu_read_lock();
	t = v->task;
	if (t)
		bpf_task_release(t);
	bpf_rcu_read_unlock();
	return 0;
}

/* R1 invalid mem access 'untrusted_ptr_or_null_' (a sleepable program outside an RCU section) */
SEC("?syscall")
int deref_unchecked(void *ctx)
{
	struct tval *v = tval();

	if (!v)
		return 0;
	return v->task->pid;
}

/* direct access to kptr is disallowed */
SEC("?syscall")
int obj_load_kptr(void *ctx)
{
	struct outer *o = bpf_obj_new(struct outer);
	long r;

	if (!o)
		return 0;
	r = (long)o->in;
	bpf_obj_drop(o);
	return r != 0;
}

/* R1 type=fp expected=map_value, ptr_ */
SEC("?syscall")
int xchg_stack(void *ctx)
{
	struct task_struct *slot = NULL, *t;

	t = bpf_task_from_pid(1);
	if (!t)
		return 0;
	t = bpf_kptr_xchg(&slot, t);
	if (t)
		bpf_task_release(t);
	return 0;
}
