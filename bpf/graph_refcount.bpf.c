// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_refcount_acquire of a reference the program owns cannot fail (the verifier's
 * is_kfunc_ret_null: arg_owning_ref), so its result is used without a NULL check, as the kernel's
 * bpf_qdisc_fq does with a flow it took out of a map. From a non-owning reference (a node just
 * added to a tree, under the lock) the result may be NULL and must be checked.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "structops_graph.h"

struct ritem {
	long key;
	struct bpf_rb_node rb;
	struct bpf_refcount ref;
};

private(rc) struct bpf_spin_lock rc_lock;
private(rc) struct bpf_rb_root rc_tree __contains(ritem, rb);

static bool ritem_less(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	return container_of(a, struct ritem, rb)->key < container_of(b, struct ritem, rb)->key;
}

/* Returns 0 when the second reference sees the first's write, else the failing line. */
SEC("syscall")
int refcount_owning(void *ctx)
{
	struct ritem *it, *again;
	long seen;

	it = bpf_obj_new(typeof(*it));
	if (!it)
		return __LINE__;
	again = bpf_refcount_acquire(it);
	again->key = 7;
	seen = it->key;
	bpf_obj_drop(again);
	bpf_obj_drop(it);
	return seen == 7 ? 0 : __LINE__;
}

SEC("?syscall")
int refcount_non_owning(void *ctx)
{
	struct ritem *it, *again;

	it = bpf_obj_new(typeof(*it));
	if (!it)
		return 0;
	bpf_spin_lock(&rc_lock);
	bpf_rbtree_add(&rc_tree, &it->rb, ritem_less);
	again = bpf_refcount_acquire(it);
	bpf_spin_unlock(&rc_lock);
	again->key = 1;
	bpf_obj_drop(again);
	return 0;
}

char _license[] SEC("license") = "GPL";
