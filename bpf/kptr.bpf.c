// SPDX-License-Identifier: GPL-2.0
/*
 * kptrs: a map value holding a referenced task (`__kptr`) and an untrusted one
 * (`__kptr_untrusted`), and an allocated object holding another allocated object and a task
 * through kptr fields of its own. References move in and out with bpf_kptr_xchg; what a map
 * element or an object still holds when it goes is released by the kernel (the task's
 * bpf_task_release, an object's bpf_obj_drop). Each program returns 0 or the line of the check
 * that failed; `?syscall` programs must be refused (see the comment above each).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "structops_graph.h"

char _license[] SEC("license") = "GPL";

#define __kptr __attribute__((btf_type_tag("kptr")))
#define __kptr_untrusted __attribute__((btf_type_tag("kptr_untrusted")))

struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;
struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
void bpf_rcu_read_lock(void) __ksym;
void bpf_rcu_read_unlock(void) __ksym;

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			return __LINE__;                                                           \
	} while (0)

struct kptr_args {
	int pid;
};

/* What a map element holds: a task reference, an untrusted task pointer, a counter. */
struct tval {
	struct task_struct __kptr *task;
	struct task_struct __kptr_untrusted *seen;
	long n;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, struct tval);
} tasks SEC(".maps");

/* An allocated object holding another and a task. The list node gives it a btf_record. */
struct inner {
	long v;
	struct bpf_list_node node;
};

struct outer {
	long key;
	struct inner __kptr *in;
	struct task_struct __kptr *task;
	struct bpf_list_node node;
};

struct oval {
	struct outer __kptr *obj;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, int);
	__type(value, struct oval);
} objs SEC(".maps");

static __always_inline struct tval *tval_of(int key)
{
	struct tval zero = {}, *v;

	v = bpf_map_lookup_elem(&tasks, &key);
	if (v)
		return v;
	bpf_map_update_elem(&tasks, &key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&tasks, &key);
}

/* The task of `pid` into element `pid`: the map takes the reference, the one it held (if any)
 * comes back and is released. The untrusted field remembers the pointer without a reference. */
SEC("syscall")
int stash_task(struct kptr_args *args)
{
	struct task_struct *t, *old;
	struct tval *v = tval_of(args->pid);

	CHECK(v);
	t = bpf_task_from_pid(args->pid);
	CHECK(t);
	v->seen = t;
	old = bpf_kptr_xchg(&v->task, t);
	if (old) {
		v->n++;
		bpf_task_release(old);
	}
	return 0;
}

/* Reads the stashed task's pid: an RCU pointer inside the section (maybe NULL), from which a
 * new reference may be taken; outside, the untrusted load still reads (PROBE_MEM). */
SEC("syscall")
int read_task(struct kptr_args *args)
{
	struct task_struct *t, *ref;
	struct tval *v;
	int key = args->pid, pid;

	v = bpf_map_lookup_elem(&tasks, &key);
	CHECK(v);
	bpf_rcu_read_lock();
	t = v->task;
	if (!t) {
		bpf_rcu_read_unlock();
		return -1;
	}
	ref = bpf_task_acquire(t);
	bpf_rcu_read_unlock();
	CHECK(ref);
	pid = ref->pid;
	bpf_task_release(ref);
	CHECK(pid == args->pid);
	t = v->seen;
	CHECK(t && t->pid == args->pid);
	return 0;
}

/* Takes the task back out of element `pid` and releases it. */
SEC("syscall")
int unstash_task(struct kptr_args *args)
{
	struct task_struct *t;
	struct tval *v;
	int key = args->pid;

	v = bpf_map_lookup_elem(&tasks, &key);
	CHECK(v);
	t = bpf_kptr_xchg(&v->task, NULL);
	if (!t)
		return -1;
	bpf_task_release(t);
	return 0;
}

/* An outer object holding an inner one and the task of `pid`, stored in objs[0]; whatever was
 * there before is dropped (and with it what it held). */
SEC("syscall")
int stash_obj(struct kptr_args *args)
{
	struct outer *o, *old;
	struct inner *in, *prev;
	struct task_struct *t;
	struct oval *ov;
	int zero = 0;

	ov = bpf_map_lookup_elem(&objs, &zero);
	CHECK(ov);
	o = bpf_obj_new(struct outer);
	CHECK(o);
	o->key = args->pid;
	in = bpf_obj_new(struct inner);
	if (!in) {
		bpf_obj_drop(o);
		return __LINE__;
	}
	in->v = 7;
	prev = bpf_kptr_xchg(&o->in, in);
	if (prev)
		bpf_obj_drop(prev);
	t = bpf_task_from_pid(args->pid);
	if (t) {
		t = bpf_kptr_xchg(&o->task, t);
		if (t)
			bpf_task_release(t);
	}
	old = bpf_kptr_xchg(&ov->obj, o);
	if (old)
		bpf_obj_drop(old);
	return 0;
}

/* Takes the outer object out, the inner one out of it, checks both, puts them back. */
SEC("syscall")
int check_obj(struct kptr_args *args)
{
	struct outer *o, *old;
	struct inner *in;
	struct oval *ov;
	int zero = 0, ret = 0;

	ov = bpf_map_lookup_elem(&objs, &zero);
	CHECK(ov);
	o = bpf_kptr_xchg(&ov->obj, NULL);
	CHECK(o);
	in = bpf_kptr_xchg(&o->in, NULL);
	if (!in || in->v != 7 || o->key != args->pid)
		ret = __LINE__;
	if (in) {
		in = bpf_kptr_xchg(&o->in, in);
		if (in)
			bpf_obj_drop(in);
	}
	old = bpf_kptr_xchg(&ov->obj, o);
	if (old)
		bpf_obj_drop(old);
	return ret;
}
