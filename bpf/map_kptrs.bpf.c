// SPDX-License-Identifier: GPL-2.0
/*
 * kptrs held by every kind of map that may hold them: PERCPU_ARRAY, PERCPU_HASH, LRU_HASH,
 * LRU_PERCPU_HASH and TASK_STORAGE values, each with a referenced task (`__kptr`) and an
 * allocated object (`__kptr`). The programs only put references in; releasing them is the
 * kernel's job when the value is replaced by an update, deleted, evicted, when the map goes or the
 * storage's owner does. `syscall` programs take {pid, key} and return 0 or the line of the check
 * that failed. Built with clang-19 (btf_type_tag).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "structops_graph.h"

char _license[] SEC("license") = "GPL";

#define __kptr __attribute__((btf_type_tag("kptr")))

struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			return __LINE__;                                                           \
	} while (0)

struct mk_args {
	int pid;
	int key;
};

struct blob {
	long tag;
	struct bpf_list_node node;
};

/* What every map here holds. */
struct held {
	struct task_struct __kptr *task;
	struct blob __kptr *obj;
	long n;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, int);
	__type(value, struct held);
} pcpu_arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, struct held);
} pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, struct held);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, struct held);
} lru_pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct held);
} tstore SEC(".maps");

/* The task of `pid` and a new object into `h`; what was there before is released here. */
static __always_inline int fill(struct held *h, int pid)
{
	struct task_struct *t;
	struct blob *b;

	t = bpf_task_from_pid(pid);
	CHECK(t);
	t = bpf_kptr_xchg(&h->task, t);
	if (t)
		bpf_task_release(t);
	b = bpf_obj_new(struct blob);
	CHECK(b);
	b->tag = pid;
	b = bpf_kptr_xchg(&h->obj, b);
	if (b)
		bpf_obj_drop(b);
	h->n++;
	return 0;
}

static __always_inline struct held *held_of(void *map, int key)
{
	struct held zero = {}, *h;

	h = bpf_map_lookup_elem(map, &key);
	if (h)
		return h;
	bpf_map_update_elem(map, &key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, &key);
}

SEC("syscall")
int stash_pcpu_arr(struct mk_args *a)
{
	struct held *h = held_of(&pcpu_arr, a->key);

	CHECK(h);
	return fill(h, a->pid);
}

SEC("syscall")
int stash_pcpu_hash(struct mk_args *a)
{
	struct held *h = held_of(&pcpu_hash, a->key);

	CHECK(h);
	return fill(h, a->pid);
}

SEC("syscall")
int stash_lru(struct mk_args *a)
{
	struct held *h = held_of(&lru, a->key);

	CHECK(h);
	return fill(h, a->pid);
}

SEC("syscall")
int stash_lru_pcpu(struct mk_args *a)
{
	struct held *h = held_of(&lru_pcpu, a->key);

	CHECK(h);
	return fill(h, a->pid);
}

/* Task `key`'s storage holds task `pid` and an object. */
SEC("syscall")
int stash_tstore(struct mk_args *a)
{
	struct task_struct *owner;
	struct held *h;
	int ret;

	owner = bpf_task_from_pid(a->key);
	CHECK(owner);
	h = bpf_task_storage_get(&tstore, owner, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!h) {
		bpf_task_release(owner);
		return __LINE__;
	}
	ret = fill(h, a->pid);
	bpf_task_release(owner);
	return ret;
}
