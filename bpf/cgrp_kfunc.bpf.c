// SPDX-License-Identifier: GPL-2.0
/*
 * The cgroup kfuncs of the BPF core: a cgroup found by id (bpf_cgroup_from_id), its fields
 * (kn->id, level), an ancestor (bpf_cgroup_ancestor), a second reference (bpf_cgroup_acquire),
 * a task's cgroup through task->cgroups->dfl_cgrp inside an RCU section, bpf_task_under_cgroup,
 * and a cgroup held by a map element as a referenced kptr. Each program returns 0 or the line of
 * the check that failed. The `?syscall` programs must be refused: the comment above each is what
 * the 6.18 verifier answers.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

#define __kptr __attribute__((btf_type_tag("kptr")))

struct cgroup *bpf_cgroup_acquire(struct cgroup *cgrp) __ksym;
void bpf_cgroup_release(struct cgroup *cgrp) __ksym;
struct cgroup *bpf_cgroup_ancestor(struct cgroup *cgrp, int level) __ksym;
struct cgroup *bpf_cgroup_from_id(u64 cgid) __ksym;
long bpf_task_under_cgroup(struct task_struct *task, struct cgroup *ancestor) __ksym;
struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;
void bpf_rcu_read_lock(void) __ksym;
void bpf_rcu_read_unlock(void) __ksym;

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			return __LINE__;                                                           \
	} while (0)

/* In: id, pid, level. Out: the rest. */
struct cgrp_args {
	u64 id;
	s32 pid;
	s32 level;
	u64 kn_id;
	u64 anc_id;
	u64 task_cgid;
	s32 cg_level;
	s32 under;
	s32 found;
	s32 pad;
};

struct cval {
	struct cgroup __kptr *cg;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct cval);
} cgrps SEC(".maps");

/* The cgroup with id args->id: its id and level, its ancestor at args->level (found = 0 when the
 * level is out of range), and a second reference taken and put. */
SEC("syscall")
int cgrp_info(struct cgrp_args *a)
{
	struct cgroup *cg, *anc, *again;

	cg = bpf_cgroup_from_id(a->id);
	if (!cg) {
		a->found = 0;
		return 0;
	}
	a->found = 1;
	a->kn_id = cg->kn->id;
	a->cg_level = cg->level;
	anc = bpf_cgroup_ancestor(cg, a->level);
	if (anc) {
		a->anc_id = anc->kn->id;
		bpf_cgroup_release(anc);
	} else {
		a->anc_id = 0;
	}
	again = bpf_cgroup_acquire(cg);
	bpf_cgroup_release(cg);
	CHECK(again);
	bpf_cgroup_release(again);
	return 0;
}

/* The cgroup of task args->pid (task_cgid), and whether it is under cgroup args->id (under:
 * 1 or 0, -1 when that cgroup is not found). */
SEC("syscall")
int task_cgrp(struct cgrp_args *a)
{
	struct task_struct *t;
	struct cgroup *cg, *anc;

	t = bpf_task_from_pid(a->pid);
	CHECK(t);
	bpf_rcu_read_lock();
	cg = bpf_cgroup_acquire(t->cgroups->dfl_cgrp);
	bpf_rcu_read_unlock();
	if (!cg) {
		bpf_task_release(t);
		return __LINE__;
	}
	a->task_cgid = cg->kn->id;
	bpf_cgroup_release(cg);
	anc = bpf_cgroup_from_id(a->id);
	if (!anc) {
		a->under = -1;
	} else {
		a->under = bpf_task_under_cgroup(t, anc);
		bpf_cgroup_release(anc);
	}
	bpf_task_release(t);
	return 0;
}

/* The map element takes a reference to cgroup args->id; the one it held is put. */
SEC("syscall")
int stash_cgrp(struct cgrp_args *a)
{
	struct cgroup *cg, *old;
	struct cval *v;
	int zero = 0;

	v = bpf_map_lookup_elem(&cgrps, &zero);
	CHECK(v);
	cg = bpf_cgroup_from_id(a->id);
	CHECK(cg);
	old = bpf_kptr_xchg(&v->cg, cg);
	if (old)
		bpf_cgroup_release(old);
	return 0;
}

/* The map element gives its reference back (found = 0 when it held none). */
SEC("syscall")
int unstash_cgrp(struct cgrp_args *a)
{
	struct cgroup *old;
	struct cval *v;
	int zero = 0;

	v = bpf_map_lookup_elem(&cgrps, &zero);
	CHECK(v);
	old = bpf_kptr_xchg(&v->cg, NULL);
	a->found = !!old;
	if (old) {
		a->kn_id = old->kn->id;
		bpf_cgroup_release(old);
	}
	return 0;
}

/* A reference never put. */
SEC("?syscall")
int leak(struct cgrp_args *a)
{
	struct cgroup *cg = bpf_cgroup_from_id(a->id);

	if (cg)
		a->cg_level = cg->level;
	return 0;
}

/* The result read before the NULL check. */
SEC("?syscall")
int unchecked(struct cgrp_args *a)
{
	struct cgroup *cg = bpf_cgroup_from_id(a->id);

	a->cg_level = cg->level;
	bpf_cgroup_release(cg);
	return 0;
}

/* A pointer the program holds no reference to, released. */
SEC("?syscall")
int release_unreferenced(struct cgrp_args *a)
{
	struct task_struct *t = bpf_task_from_pid(a->pid);

	if (!t)
		return 0;
	bpf_rcu_read_lock();
	bpf_cgroup_release(t->cgroups->dfl_cgrp);
	bpf_rcu_read_unlock();
	bpf_task_release(t);
	return 0;
}

/* Outside an RCU section a sleepable program's walk gives an untrusted pointer, which
 * bpf_cgroup_acquire (KF_RCU) does not take. */
SEC("?syscall")
int acquire_untrusted(struct cgrp_args *a)
{
	struct task_struct *t = bpf_task_from_pid(a->pid);
	struct cgroup *cg;

	if (!t)
		return 0;
	cg = bpf_cgroup_acquire(t->cgroups->dfl_cgrp);
	if (cg)
		bpf_cgroup_release(cg);
	bpf_task_release(t);
	return 0;
}

/* A reference put twice. */
SEC("?syscall")
int release_twice(struct cgrp_args *a)
{
	struct cgroup *cg = bpf_cgroup_from_id(a->id);

	if (!cg)
		return 0;
	bpf_cgroup_release(cg);
	bpf_cgroup_release(cg);
	return 0;
}
