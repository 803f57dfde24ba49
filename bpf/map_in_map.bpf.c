// SPDX-License-Identifier: GPL-2.0
/*
 * Maps of maps: an ARRAY_OF_MAPS of counter arrays and a HASH_OF_MAPS of hash tables, declared
 * with their template (`__array(values, ...)`), filled by userspace with map fds. A program looks
 * an inner map up and uses it like any map; inner maps holding timers are told apart by the
 * verifier (map_uid), so a timer is only ever set up with its own map. `syscall` programs take
 * {key, slot} and return 0 or the line of the check that failed; `?syscall` programs must be
 * refused (6.18's answer in the comment above each).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			return __LINE__;                                                           \
	} while (0)

struct mim_args {
	int key;
	int slot;
};

struct counters {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, long);
} counters_a SEC(".maps"), counters_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, int);
	__array(values, struct counters);
} outer_arr SEC(".maps");

struct table {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, int);
	__type(value, long);
} table_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, int);
	__array(values, struct table);
} outer_hash SEC(".maps");

struct tval {
	struct bpf_timer t;
	long n;
};

/* Instances of the templates: userspace puts them (and maps like them) into the outer maps; the
 * instances also give the BTF the templates' full value types. */
struct timers {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, struct tval);
} timers_a SEC(".maps"), timers_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, int);
	__array(values, struct timers);
} outer_timers SEC(".maps");

long seen;

/* Adds one to counter `slot` of inner array `key`. */
SEC("syscall")
int count_arr(struct mim_args *a)
{
	int key = a->key, slot = a->slot;
	long *v;
	void *inner;

	inner = bpf_map_lookup_elem(&outer_arr, &key);
	if (!inner)
		return -1;
	v = bpf_map_lookup_elem(inner, &slot);
	CHECK(v);
	__sync_fetch_and_add(v, 1);
	return 0;
}

/* Inserts or bumps `slot` in inner table `key`, then reads it back into `seen`. */
SEC("syscall")
int count_hash(struct mim_args *a)
{
	int key = a->key, slot = a->slot;
	long one = 1, *v;
	void *inner;

	inner = bpf_map_lookup_elem(&outer_hash, &key);
	if (!inner)
		return -1;
	v = bpf_map_lookup_elem(inner, &slot);
	if (v)
		*v += 1;
	else
		CHECK(bpf_map_update_elem(inner, &slot, &one, BPF_NOEXIST) == 0);
	v = bpf_map_lookup_elem(inner, &slot);
	CHECK(v);
	seen = *v;
	return 0;
}

static int tick(void *map, int *key, struct tval *v)
{
	v->n++;
	return 0;
}

/* A timer in the inner map `key`, set up with that same inner map. */
SEC("syscall")
int arm_timer(struct mim_args *a)
{
	int key = a->key, zero = 0;
	struct tval *v;
	void *inner;

	inner = bpf_map_lookup_elem(&outer_timers, &key);
	if (!inner)
		return -1;
	v = bpf_map_lookup_elem(inner, &zero);
	CHECK(v);
	bpf_timer_init(&v->t, inner, 1 /* CLOCK_MONOTONIC */);
	bpf_timer_set_callback(&v->t, tick);
	bpf_timer_start(&v->t, 1000, 0);
	return 0;
}

/* timer pointer in R1 map_uid=1 doesn't match map pointer in R2 map_uid=2 */
SEC("?syscall")
int bad_timer_other_inner(struct mim_args *a)
{
	int k0 = 0, k1 = 1, zero = 0;
	void *in0, *in1;
	struct tval *v;

	in0 = bpf_map_lookup_elem(&outer_timers, &k0);
	in1 = bpf_map_lookup_elem(&outer_timers, &k1);
	if (!in0 || !in1)
		return 0;
	v = bpf_map_lookup_elem(in0, &zero);
	if (!v)
		return 0;
	bpf_timer_init(&v->t, in1, 1);
	return 0;
}

/* cannot pass map_type 12 into func bpf_map_update_elem#2 */
SEC("?syscall")
int bad_update_outer(struct mim_args *a)
{
	int key = 0, fd = 3;

	bpf_map_update_elem(&outer_arr, &key, &fd, 0);
	return 0;
}

/* R1 type=map_ptr_or_null expected=map_ptr */
SEC("?syscall")
int bad_unchecked_inner(struct mim_args *a)
{
	int key = 0, slot = 0;
	void *inner;
	long *v;

	inner = bpf_map_lookup_elem(&outer_arr, &key);
	v = bpf_map_lookup_elem(inner, &slot);
	return v ? 1 : 0;
}

/* invalid access to map value, value_size=8 off=8 size=8: an inner value is its template's size */
SEC("?syscall")
int bad_inner_oob(struct mim_args *a)
{
	int key = 0, slot = 0;
	void *inner;
	long *v;

	inner = bpf_map_lookup_elem(&outer_arr, &key);
	if (!inner)
		return 0;
	v = bpf_map_lookup_elem(inner, &slot);
	if (!v)
		return 0;
	return v[1];
}
