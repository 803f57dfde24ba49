// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU allocated objects: bpf_percpu_obj_new() gives one zeroed copy of a struct of scalars
 * per CPU, owned by the program until it is exchanged into a `__percpu_kptr` field of a map
 * value (or dropped with bpf_percpu_obj_drop()). Inside an RCU section a field's pointer is
 * per-CPU and RCU-protected: bpf_per_cpu_ptr()/bpf_this_cpu_ptr() give one CPU's copy, which the
 * program reads and writes. What a map element still holds when it is replaced, deleted or the map
 * goes is freed by the kernel. `syscall` programs take {nr_cpus, key} and return 0 or the line of
 * the check that failed; `?syscall` programs must be refused (6.18's answer in the comment above
 * each). Built with clang-19: `__percpu_kptr` is a btf_type_tag.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "structops_graph.h"

char _license[] SEC("license") = "GPL";

#define __percpu_kptr __attribute__((btf_type_tag("percpu_kptr")))

extern void *bpf_percpu_obj_new_impl(__u64 local_type_id, void *meta) __ksym;
extern void bpf_percpu_obj_drop_impl(void *kptr, void *meta) __ksym;
void bpf_rcu_read_lock(void) __ksym;
void bpf_rcu_read_unlock(void) __ksym;

#define bpf_percpu_obj_new(type) ((type __percpu_kptr *)bpf_percpu_obj_new_impl(bpf_core_type_id_local(type), NULL))
#define bpf_percpu_obj_drop(kptr) bpf_percpu_obj_drop_impl(kptr, NULL)

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			return __LINE__;                                                           \
	} while (0)

#define MAX_CPUS 64

struct pc_args {
	int nr_cpus;
	int key;
};

/* One CPU's counters. */
struct counters {
	long hits;
	long cpu;
	long stamp;
};

struct other {
	long x;
};

struct with_ptr {
	char *p;
};

struct with_lock {
	struct bpf_spin_lock lock;
	long n;
};

struct big {
	char b[600];
};

struct elem {
	long n;
	struct counters __percpu_kptr *pc;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, int);
	__type(value, struct elem);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, int);
	__type(value, struct elem);
} hash SEC(".maps");

/* Keep the structs in the BTF whatever the programs use. */
struct other *other_anchor;
struct with_ptr *with_ptr_anchor;
struct with_lock *with_lock_anchor;
struct big *big_anchor;

long total;

static __always_inline struct elem *elem_of(void *map, int key)
{
	struct elem zero = {}, *e;

	e = bpf_map_lookup_elem(map, &key);
	if (e)
		return e;
	bpf_map_update_elem(map, &key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, &key);
}

/* A fresh per-CPU object into the element; the one it replaces is dropped. */
static __always_inline int install(void *map, int key)
{
	struct counters __percpu_kptr *p, *old;
	struct elem *e = elem_of(map, key);

	CHECK(e);
	p = bpf_percpu_obj_new(struct counters);
	CHECK(p);
	old = bpf_kptr_xchg(&e->pc, p);
	if (old) {
		e->n++;
		bpf_percpu_obj_drop(old);
	}
	return 0;
}

SEC("syscall")
int pc_install(struct pc_args *a)
{
	return install(&arr, a->key);
}

SEC("syscall")
int pc_install_hash(struct pc_args *a)
{
	return install(&hash, a->key);
}

/* Every CPU's copy gets its CPU number; this CPU's copy counts a hit. */
SEC("syscall")
int pc_fill(struct pc_args *a)
{
	struct counters __percpu_kptr *p;
	struct counters *c;
	struct elem *e;
	int key = a->key, n = a->nr_cpus, i;

	e = bpf_map_lookup_elem(&arr, &key);
	CHECK(e);
	bpf_rcu_read_lock();
	p = e->pc;
	if (!p) {
		bpf_rcu_read_unlock();
		return __LINE__;
	}
	for (i = 0; i < n && i < MAX_CPUS; i++) {
		c = bpf_per_cpu_ptr(p, i);
		if (!c)
			break;
		c->cpu = i;
		c->stamp = 100 + i;
	}
	c = bpf_this_cpu_ptr(p);
	c->hits++;
	bpf_rcu_read_unlock();
	return 0;
}

/* The sum over CPUs of (hits * 1000 + cpu) into `total`. */
SEC("syscall")
int pc_sum(struct pc_args *a)
{
	struct counters __percpu_kptr *p;
	struct counters *c;
	struct elem *e;
	int key = a->key, n = a->nr_cpus, i;
	long sum = 0;

	e = bpf_map_lookup_elem(&arr, &key);
	CHECK(e);
	bpf_rcu_read_lock();
	p = e->pc;
	if (!p) {
		bpf_rcu_read_unlock();
		return __LINE__;
	}
	for (i = 0; i < n && i < MAX_CPUS; i++) {
		c = bpf_per_cpu_ptr(p, i);
		if (!c)
			break;
		sum += c->hits * 1000 + c->cpu;
	}
	bpf_rcu_read_unlock();
	total = sum;
	return 0;
}

/* Inside an RCU section the pointer just exchanged into the map stays usable as an RCU one. */
SEC("syscall")
int pc_xchg_in_rcu(struct pc_args *a)
{
	struct counters __percpu_kptr *p, *old;
	struct counters *c;
	struct elem *e;
	int key = a->key;

	e = bpf_map_lookup_elem(&arr, &key);
	CHECK(e);
	p = bpf_percpu_obj_new(struct counters);
	CHECK(p);
	bpf_rcu_read_lock();
	old = bpf_kptr_xchg(&e->pc, p);
	c = bpf_this_cpu_ptr(p);
	c->hits = 5;
	bpf_rcu_read_unlock();
	if (old)
		bpf_percpu_obj_drop(old);
	return 0;
}

/* Takes the object out of the element and drops it. */
SEC("syscall")
int pc_remove(struct pc_args *a)
{
	struct counters __percpu_kptr *p;
	struct elem *e;
	int key = a->key;

	e = bpf_map_lookup_elem(&arr, &key);
	CHECK(e);
	p = bpf_kptr_xchg(&e->pc, NULL);
	if (!p)
		return -1;
	bpf_percpu_obj_drop(p);
	return 0;
}

/* store to referenced kptr disallowed */
SEC("?syscall")
int bad_store(struct pc_args *a)
{
	struct elem *e;
	int key = 0;

	e = bpf_map_lookup_elem(&arr, &key);
	if (!e)
		return 0;
	e->pc = (struct counters __percpu_kptr *)total;
	return 0;
}

/* invalid kptr access, R2 type=percpu_ptr_other expected=ptr_counters */
SEC("?syscall")
int bad_xchg_type(struct pc_args *a)
{
	struct other __percpu_kptr *p;
	struct counters __percpu_kptr *old;
	struct elem *e;
	int key = 0;

	e = bpf_map_lookup_elem(&arr, &key);
	if (!e)
		return 0;
	p = bpf_percpu_obj_new(struct other);
	if (!p)
		return 0;
	old = bpf_kptr_xchg(&e->pc, (void *)p);
	if (old)
		bpf_percpu_obj_drop(old);
	return 0;
}

/* R1 type=scalar expected=percpu_ptr_, percpu_rcu_ptr_, percpu_trusted_ptr_ */
SEC("?syscall")
int bad_use_after_xchg(struct pc_args *a)
{
	struct counters __percpu_kptr *p, *old;
	struct counters *c;
	struct elem *e;
	int key = 0;

	e = bpf_map_lookup_elem(&arr, &key);
	if (!e)
		return 0;
	p = bpf_percpu_obj_new(struct counters);
	if (!p)
		return 0;
	old = bpf_kptr_xchg(&e->pc, p);
	if (old)
		bpf_percpu_obj_drop(old);
	c = bpf_this_cpu_ptr(p);
	total = c->hits;
	return 0;
}

/* bpf_obj_drop on a per-CPU object */
SEC("?syscall")
int bad_obj_drop(struct pc_args *a)
{
	struct counters __percpu_kptr *p;

	p = bpf_percpu_obj_new(struct counters);
	if (!p)
		return 0;
	bpf_obj_drop(p);
	return 0;
}

/* bpf_percpu_obj_drop on an ordinary object */
SEC("?syscall")
int bad_percpu_drop(struct pc_args *a)
{
	struct counters *p;

	p = bpf_obj_new(struct counters);
	if (!p)
		return 0;
	bpf_percpu_obj_drop(p);
	return 0;
}

/* invalid kptr access, R2 type=ptr_ expected=ptr_counters */
SEC("?syscall")
int bad_plain_into_percpu(struct pc_args *a)
{
	struct counters __percpu_kptr *old;
	struct counters *p;
	struct elem *e;
	int key = 0;

	e = bpf_map_lookup_elem(&arr, &key);
	if (!e)
		return 0;
	p = bpf_obj_new(struct counters);
	if (!p)
		return 0;
	old = bpf_kptr_xchg(&e->pc, p);
	if (old)
		bpf_percpu_obj_drop(old);
	return 0;
}

/* bpf_percpu_obj_new type ID argument must be of a struct of scalars */
SEC("?syscall")
int bad_new_ptr_member(struct pc_args *a)
{
	struct with_ptr __percpu_kptr *p;

	p = bpf_percpu_obj_new(struct with_ptr);
	if (!p)
		return 0;
	bpf_percpu_obj_drop(p);
	return 0;
}

/* bpf_percpu_obj_new type ID argument must not contain special fields */
SEC("?syscall")
int bad_new_special(struct pc_args *a)
{
	struct with_lock __percpu_kptr *p;

	p = bpf_percpu_obj_new(struct with_lock);
	if (!p)
		return 0;
	bpf_percpu_obj_drop(p);
	return 0;
}

/* bpf_percpu_obj_new type size (600) is greater than 512 */
SEC("?syscall")
int bad_new_big(struct pc_args *a)
{
	struct big __percpu_kptr *p;

	p = bpf_percpu_obj_new(struct big);
	if (!p)
		return 0;
	bpf_percpu_obj_drop(p);
	return 0;
}

/* A per-CPU object is not memory a load may go through. */
SEC("?syscall")
int bad_deref(struct pc_args *a)
{
	struct counters __percpu_kptr *p;
	long v;

	p = bpf_percpu_obj_new(struct counters);
	if (!p)
		return 0;
	v = *(volatile long *)&p->hits;
	bpf_percpu_obj_drop(p);
	return v;
}

/* An owning per-CPU pointer is not one bpf_per_cpu_ptr takes. */
SEC("?syscall")
int bad_per_cpu_owned(struct pc_args *a)
{
	struct counters __percpu_kptr *p;
	struct counters *c;
	long v = 0;

	p = bpf_percpu_obj_new(struct counters);
	if (!p)
		return 0;
	c = bpf_per_cpu_ptr(p, 0);
	if (c)
		v = c->hits;
	bpf_percpu_obj_drop(p);
	return v;
}

/* Unreleased reference */
SEC("?syscall")
int bad_leak(struct pc_args *a)
{
	struct counters __percpu_kptr *p;

	p = bpf_percpu_obj_new(struct counters);
	return p ? 1 : 0;
}

/* A loaded kptr outside an RCU section (a sleepable program) is untrusted. */
SEC("?syscall")
int bad_load_outside_rcu(struct pc_args *a)
{
	struct counters __percpu_kptr *p;
	struct counters *c;
	struct elem *e;
	int key = 0;

	e = bpf_map_lookup_elem(&arr, &key);
	if (!e)
		return 0;
	p = e->pc;
	if (!p)
		return 0;
	c = bpf_this_cpu_ptr(p);
	return c->hits;
}

/* The copy bpf_this_cpu_ptr gives does not outlive the RCU section. */
SEC("?syscall")
int bad_copy_after_unlock(struct pc_args *a)
{
	struct counters __percpu_kptr *p;
	struct counters *c;
	struct elem *e;
	int key = 0;

	e = bpf_map_lookup_elem(&arr, &key);
	if (!e)
		return 0;
	bpf_rcu_read_lock();
	p = e->pc;
	if (!p) {
		bpf_rcu_read_unlock();
		return 0;
	}
	c = bpf_this_cpu_ptr(p);
	bpf_rcu_read_unlock();
	c->hits = 1;
	return 0;
}
