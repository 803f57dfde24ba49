// SPDX-License-Identifier: GPL-2.0
/*
 * Cgroup local storage (BPF_MAP_TYPE_CGRP_STORAGE): a value per cgroup, made by
 * bpf_cgrp_storage_get(BPF_LOCAL_STORAGE_GET_F_CREATE), found again without the flag, dropped by
 * bpf_cgrp_storage_delete. `storage` runs on the cgroup whose id it is given and returns 0 or the
 * line of the failed check; `bump` adds to the cgroup's counter so userspace can read it back
 * through a cgroup directory fd. The `?syscall` programs must be refused: the comment above each
 * is what the 6.18 verifier answers (the last line of its log).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

struct cgroup *bpf_cgroup_from_id(u64 cgid) __ksym;
void bpf_cgroup_release(struct cgroup *cgrp) __ksym;

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			goto fail;                                                                 \
	} while (0)

struct cval {
	u64 n;
	u64 seen;
};

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cval);
} cgrp_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct cval);
} not_storage SEC(".maps");

struct cgrp_arg {
	u64 id;
	u64 n;
};

/* get without F_CREATE finds nothing, with it a zeroed value (initialised from `init` when given),
 * the same value again, then delete: 0 once, -ENOENT after, and nothing to find. */
SEC("syscall")
int storage(struct cgrp_arg *a)
{
	struct cval init = { .n = 40, .seen = 0 };
	struct cval *v, *w;
	struct cgroup *cg;
	int line = 0;
	long r;

	cg = bpf_cgroup_from_id(a->id);
	if (!cg)
		return __LINE__;
	v = bpf_cgrp_storage_get(&cgrp_map, cg, 0, 0);
	if (v) {
		line = __LINE__;
		goto out;
	}
	/* flags other than F_CREATE give NULL */
	if (bpf_cgrp_storage_get(&cgrp_map, cg, 0, 2)) {
		line = __LINE__;
		goto out;
	}
	v = bpf_cgrp_storage_get(&cgrp_map, cg, &init, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!v || v->n != 40) {
		line = __LINE__;
		goto out;
	}
	v->n += 2;
	w = bpf_cgrp_storage_get(&cgrp_map, cg, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!w || w->n != 42) {
		line = __LINE__;
		goto out;
	}
	a->n = w->n;
	r = bpf_cgrp_storage_delete(&cgrp_map, cg);
	if (r != 0) {
		line = __LINE__;
		goto out;
	}
	r = bpf_cgrp_storage_delete(&cgrp_map, cg);
	if (r != -2 /* -ENOENT */) {
		line = __LINE__;
		goto out;
	}
	if (bpf_cgrp_storage_get(&cgrp_map, cg, 0, 0))
		line = __LINE__;
out:
	bpf_cgroup_release(cg);
	return line;
}

/* the cgroup's counter + 1 (made on first use): left for userspace to read */
SEC("syscall")
int bump(struct cgrp_arg *a)
{
	struct cgroup *cg = bpf_cgroup_from_id(a->id);
	struct cval *v;

	if (!cg)
		return 1;
	v = bpf_cgrp_storage_get(&cgrp_map, cg, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (v)
		a->n = ++v->n;
	bpf_cgroup_release(cg);
	return v ? 0 : 2;
}

/* the cgroup may be NULL (6.18 takes ARG_PTR_TO_BTF_ID_OR_NULL): get gives NULL, delete -EINVAL */
SEC("syscall")
int null_cgroup(void *ctx)
{
	if (bpf_cgrp_storage_get(&cgrp_map, 0, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return 1;
	return bpf_cgrp_storage_delete(&cgrp_map, 0);
}

/* a cgroup that may be NULL is passed unchecked: deleting from one that has nothing is -ENOENT */
SEC("syscall")
int maybe_null(struct cgrp_arg *a)
{
	struct cgroup *cg = bpf_cgroup_from_id(a->id);
	long r = bpf_cgrp_storage_delete(&cgrp_map, cg);

	if (cg)
		bpf_cgroup_release(cg);
	return r;
}

/* R2 is of type task_struct but cgroup is expected */
SEC("?syscall")
int bad_task(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

	return bpf_cgrp_storage_get(&cgrp_map, (struct cgroup *)t, 0, 0) != 0;
}

/* cannot pass map_type 1 into func bpf_cgrp_storage_get#210 */
SEC("?syscall")
int bad_map_type(struct cgrp_arg *a)
{
	struct cgroup *cg = bpf_cgroup_from_id(a->id);
	void *v;

	if (!cg)
		return 0;
	v = bpf_cgrp_storage_get(&not_storage, cg, 0, 0);
	bpf_cgroup_release(cg);
	return v != 0;
}

/* cannot pass map_type 32 into func bpf_map_lookup_elem#1 */
SEC("?syscall")
int bad_lookup(void *ctx)
{
	int key = 0;

	return bpf_map_lookup_elem(&cgrp_map, &key) != 0;
}
