// SPDX-License-Identifier: GPL-2.0
/* Allocated objects in lists and red-black trees, each program checking its own results: it
 * returns 0 when every check holds, else the line of the first one that failed.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "structops_graph.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return __LINE__;                                                           \
	} while (0)

/* In a list and a tree at once: both nodes, and a refcount for the two owners. */
struct gitem {
	long key;
	struct bpf_list_node node;
	struct bpf_rb_node rb;
	struct bpf_refcount ref;
};

/* A map value: the lock protects the list beside it. */
struct gbucket {
	struct bpf_spin_lock lock;
	struct bpf_list_head items __contains(gitem, node);
	long pushed;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, int);
	__type(value, struct gbucket);
} buckets SEC(".maps");

/* Global data: a lock with the tree (and a list) it protects, in a section of their own. */
private(tree) struct bpf_spin_lock tree_lock;
private(tree) struct bpf_rb_root tree __contains(gitem, rb);
private(tree) struct bpf_list_head fifo __contains(gitem, node);

long last_key;

static bool item_less(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	struct gitem *x = container_of(a, struct gitem, rb);
	struct gitem *y = container_of(b, struct gitem, rb);

	return x->key < y->key;
}

static struct gitem *new_item(long key)
{
	struct gitem *it = bpf_obj_new(struct gitem);

	if (it)
		it->key = key;
	return it;
}

/* Push 1 at the back, 2 at the back, 3 at the front; then 3 1 2 come out from the front. */
SEC("tc")
int list_push_pop(struct __sk_buff *skb)
{
	struct bpf_list_node *n;
	struct gbucket *b;
	struct gitem *it;
	long k, order[3] = {3, 1, 2};
	int zero = 0, i;

	b = bpf_map_lookup_elem(&buckets, &zero);
	CHECK(b);
	for (i = 1; i <= 3; i++) {
		it = new_item(i);
		CHECK(it);
		bpf_spin_lock(&b->lock);
		if (i == 3)
			bpf_list_push_front(&b->items, &it->node);
		else
			bpf_list_push_back(&b->items, &it->node);
		b->pushed++;
		bpf_spin_unlock(&b->lock);
	}
	bpf_spin_lock(&b->lock);
	n = bpf_list_back(&b->items);
	k = n ? container_of(n, struct gitem, node)->key : -1;
	bpf_spin_unlock(&b->lock);
	CHECK(k == 2);
	for (i = 0; i < 3; i++) {
		bpf_spin_lock(&b->lock);
		n = bpf_list_pop_front(&b->items);
		bpf_spin_unlock(&b->lock);
		CHECK(n);
		it = container_of(n, struct gitem, node);
		k = it->key;
		bpf_obj_drop(it);
		CHECK(k == order[i]);
	}
	bpf_spin_lock(&b->lock);
	n = bpf_list_pop_back(&b->items);
	bpf_spin_unlock(&b->lock);
	if (n)
		bpf_obj_drop(container_of(n, struct gitem, node));
	CHECK(!n);
	return 0;
}

/* Keys 5 1 3 in; the tree gives them back smallest first. */
SEC("tc")
int rbtree_order(struct __sk_buff *skb)
{
	long keys[3] = {5, 1, 3}, want[3] = {1, 3, 5};
	struct bpf_rb_node *r;
	struct gitem *it;
	int i;

	for (i = 0; i < 3; i++) {
		it = new_item(keys[i]);
		CHECK(it);
		bpf_spin_lock(&tree_lock);
		bpf_rbtree_add(&tree, &it->rb, item_less);
		bpf_spin_unlock(&tree_lock);
	}
	for (i = 0; i < 3; i++) {
		bpf_spin_lock(&tree_lock);
		r = bpf_rbtree_first(&tree);
		if (r)
			r = bpf_rbtree_remove(&tree, r);
		bpf_spin_unlock(&tree_lock);
		CHECK(r);
		it = container_of(r, struct gitem, rb);
		last_key = it->key;
		bpf_obj_drop(it);
		CHECK(last_key == want[i]);
	}
	bpf_spin_lock(&tree_lock);
	r = bpf_rbtree_first(&tree);
	bpf_spin_unlock(&tree_lock);
	CHECK(!r);
	return 0;
}

/* One object, two owners: the list and the tree hold the same item. */
SEC("tc")
int refcount_two_owners(struct __sk_buff *skb)
{
	struct bpf_list_node *n;
	struct bpf_rb_node *r;
	struct gitem *it, *ref;
	long k1, k2;

	it = new_item(42);
	CHECK(it);
	ref = bpf_refcount_acquire(it);
	if (!ref) {
		bpf_obj_drop(it);
		return __LINE__;
	}
	bpf_spin_lock(&tree_lock);
	bpf_list_push_back(&fifo, &it->node);
	bpf_rbtree_add(&tree, &ref->rb, item_less);
	bpf_spin_unlock(&tree_lock);

	bpf_spin_lock(&tree_lock);
	n = bpf_list_pop_front(&fifo);
	r = bpf_rbtree_first(&tree);
	if (r)
		r = bpf_rbtree_remove(&tree, r);
	bpf_spin_unlock(&tree_lock);
	if (n) {
		it = container_of(n, struct gitem, node);
		k1 = it->key;
		bpf_obj_drop(it);
	} else {
		k1 = -1;
	}
	if (r) {
		it = container_of(r, struct gitem, rb);
		k2 = it->key;
		bpf_obj_drop(it);
	} else {
		k2 = -1;
	}
	CHECK(k1 == 42);
	CHECK(k2 == 42);
	return 0;
}

/* Items left in the map's second bucket: the kernel frees them when the map goes. */
SEC("tc")
int leave_in_map(struct __sk_buff *skb)
{
	struct gbucket *b;
	struct gitem *it;
	int one = 1;

	b = bpf_map_lookup_elem(&buckets, &one);
	CHECK(b);
	it = new_item(7);
	CHECK(it);
	bpf_spin_lock(&b->lock);
	bpf_list_push_back(&b->items, &it->node);
	b->pushed++;
	bpf_spin_unlock(&b->lock);
	return 0;
}

/* Thirty items through one bucket's list and back, unrolled: about a thousand instructions of
 * references and locking (the verifier benchmark), checking the sum that comes out. */
SEC("tc")
int list_many(struct __sk_buff *skb)
{
	struct bpf_list_node *n;
	struct gbucket *b;
	struct gitem *it;
	long sum = 0;
	int zero = 0;

	b = bpf_map_lookup_elem(&buckets, &zero);
	CHECK(b);
#pragma clang loop unroll(full)
	for (int i = 1; i <= 30; i++) {
		it = new_item(i);
		CHECK(it);
		bpf_spin_lock(&b->lock);
		bpf_list_push_back(&b->items, &it->node);
		bpf_spin_unlock(&b->lock);
	}
#pragma clang loop unroll(full)
	for (int i = 1; i <= 30; i++) {
		bpf_spin_lock(&b->lock);
		n = bpf_list_pop_front(&b->items);
		bpf_spin_unlock(&b->lock);
		if (n) {
			it = container_of(n, struct gitem, node);
			sum += it->key * i;
			bpf_obj_drop(it);
		}
	}
	/* sum of i*i for i = 1..30 */
	CHECK(sum == 9455);
	return 0;
}

char _license[] SEC("license") = "GPL";
