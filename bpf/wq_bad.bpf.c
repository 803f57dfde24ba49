// SPDX-License-Identifier: GPL-2.0
/* bpf_wq programs the verifier must refuse, one rule each (every section is optional: load them
 * one at a time), with what the 6.18 verifier answers in a comment; `wq_ok` must load.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

extern int bpf_wq_init(struct bpf_wq *wq, void *p__map, unsigned int flags) __weak __ksym;
extern int bpf_wq_start(struct bpf_wq *wq, unsigned int flags) __weak __ksym;
extern int bpf_wq_set_callback_impl(struct bpf_wq *wq, int (callback_fn)(void *map, int *key, void *value),
				    unsigned int flags, void *aux__prog) __weak __ksym;

struct wval {
	struct bpf_wq w;
	__u64 n;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wval);
} wqmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wval);
} wqmap2 SEC(".maps");

static __always_inline struct wval *get(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&wqmap, &key);
}

static int cb_count(void *map, int *key, void *value)
{
	struct wval *v = value;

	v->n++;
	return 0;
}

static int cb_returns_one(void *map, int *key, void *value)
{
	return 1;
}

/* accepted: init, callback, start */
SEC("?syscall")
int wq_ok(void *ctx)
{
	struct wval *v = get();

	if (!v)
		return 0;
	bpf_wq_init(&v->w, &wqmap, 0);
	bpf_wq_set_callback_impl(&v->w, cb_count, 0, 0);
	bpf_wq_start(&v->w, 0);
	return 0;
}

/* At async callback return the register R0 has smin=1 smax=1 should have been in [0, 0] */
SEC("?syscall")
int wq_callback_returns_one(void *ctx)
{
	struct wval *v = get();

	if (!v)
		return 0;
	bpf_wq_init(&v->w, &wqmap, 0);
	bpf_wq_set_callback_impl(&v->w, cb_returns_one, 0, 0);
	return 0;
}

/* off 16 doesn't point to 'struct bpf_wq' that is at 0 */
SEC("?syscall")
int wq_wrong_offset(void *ctx)
{
	struct wval *v = get();

	if (!v)
		return 0;
	bpf_wq_init((struct bpf_wq *)&v->n, &wqmap, 0);
	return 0;
}

/* workqueue pointer in R1 map_uid=0 doesn't match map pointer in R2 map_uid=0 */
SEC("?syscall")
int wq_other_map(void *ctx)
{
	struct wval *v = get();

	if (!v)
		return 0;
	bpf_wq_init(&v->w, &wqmap2, 0);
	return 0;
}

/* arg#0 doesn't point to a map value */
SEC("?syscall")
int wq_on_stack(void *ctx)
{
	struct bpf_wq w = {};

	bpf_wq_start(&w, 0);
	return 0;
}

/* tracing progs cannot use bpf_wq yet */
SEC("?kprobe/do_nanosleep")
int kprobe_with_wq_map(void *ctx)
{
	struct wval *v = get();

	if (v)
		bpf_wq_start(&v->w, 0);
	return 0;
}
