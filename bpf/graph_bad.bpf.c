// SPDX-License-Identifier: GPL-2.0
/* Programs the verifier must refuse, one rule each (every section is `?tc`: load them one at
 * a time). Each says in a comment what the 6.18 verifier answers.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "structops_graph.h"

struct gitem {
	long key;
	struct bpf_list_node node;
};

struct gbucket {
	struct bpf_spin_lock lock;
	struct bpf_list_head items __contains(gitem, node);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct gbucket);
} buckets SEC(".maps");

private(other) struct bpf_spin_lock other_lock;

/* Keeps struct gitem in the BTF whatever the programs use (`contains:` names it). */
struct gitem *item_type_anchor;

static __always_inline struct gbucket *bucket(void)
{
	int zero = 0;

	return bpf_map_lookup_elem(&buckets, &zero);
}

/* bpf_spin_lock at off=0 must be held for bpf_list_head */
SEC("?tc")
int push_without_lock(void *ctx)
{
	struct gbucket *b = bucket();
	struct gitem *it;

	if (!b)
		return 0;
	it = bpf_obj_new(struct gitem);
	if (!it)
		return 0;
	bpf_list_push_front(&b->items, &it->node);
	return 0;
}

/* Unreleased reference ... / BPF_EXIT instruction in main prog would lead to reference leak */
SEC("?tc")
int leak_obj_new(void *ctx)
{
	struct gitem *it = bpf_obj_new(struct gitem);

	if (!it)
		return 0;
	it->key = 1;
	return 0;
}

/* R1 must be referenced or trusted */
SEC("?tc")
int double_drop(void *ctx)
{
	struct gitem *it = bpf_obj_new(struct gitem);

	if (!it)
		return 0;
	bpf_obj_drop(it);
	bpf_obj_drop(it);
	return 0;
}

/* R<n> invalid mem access 'scalar': the node is no longer ours once the lock is released */
SEC("?tc")
int use_after_push(void *ctx)
{
	struct gbucket *b = bucket();
	struct gitem *it;

	if (!b)
		return 0;
	it = bpf_obj_new(struct gitem);
	if (!it)
		return 0;
	bpf_spin_lock(&b->lock);
	bpf_list_push_front(&b->items, &it->node);
	bpf_spin_unlock(&b->lock);
	return it->key;
}

/* BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region */
SEC("?tc")
int exit_with_lock(void *ctx)
{
	struct gbucket *b = bucket();

	if (!b)
		return 0;
	bpf_spin_lock(&b->lock);
	return 0;
}

/* function calls are not allowed while holding a lock */
SEC("?tc")
int call_under_lock(void *ctx)
{
	struct gbucket *b = bucket();

	if (!b)
		return 0;
	bpf_spin_lock(&b->lock);
	bpf_ktime_get_ns();
	bpf_spin_unlock(&b->lock);
	return 0;
}

/* bpf_spin_lock cannot be accessed directly by load/store */
SEC("?tc")
int touch_lock(void *ctx)
{
	struct gbucket *b = bucket();

	if (!b)
		return 0;
	return *(int *)&b->lock;
}

/* held lock and object are not in the same allocation / bpf_spin_lock at off=0 must be held ... */
SEC("?tc")
int pop_under_other_lock(void *ctx)
{
	struct gbucket *b = bucket();
	struct bpf_list_node *n;

	if (!b)
		return 0;
	bpf_spin_lock(&other_lock);
	n = bpf_list_pop_front(&b->items);
	bpf_spin_unlock(&other_lock);
	if (n)
		bpf_obj_drop(container_of(n, struct gitem, node));
	return 0;
}

/* bpf_list_head cannot be accessed directly by load/store */
SEC("?tc")
int touch_list_head(void *ctx)
{
	struct gbucket *b = bucket();

	if (!b)
		return 0;
	return *(long *)&b->items;
}

/* bpf_spin_unlock without taking a lock */
SEC("?tc")
int unlock_unlocked(void *ctx)
{
	struct gbucket *b = bucket();

	if (!b)
		return 0;
	bpf_spin_unlock(&b->lock);
	return 0;
}

/* socket filter progs cannot use bpf_spin_lock yet (when the map is bound, before do_check) */
SEC("?socket")
int socket_with_lock_map(void *ctx)
{
	struct gbucket *b = bucket();

	return b ? 1 : 0;
}

/* tracing progs cannot use bpf_{list_head,rb_root} yet */
SEC("?kprobe/do_nanosleep")
int kprobe_with_list_map(void *ctx)
{
	struct gbucket *b = bucket();

	return b ? 1 : 0;
}

char _license[] SEC("license") = "GPL";
