// SPDX-License-Identifier: GPL-2.0
/*
 * Maps of maps filled at load: `.values = { [i] = &inner }` in the outer map's definition makes
 * libbpf put each named inner map in slot i (a key for a HASH_OF_MAPS) right after creating the
 * outer map, so a program finds them without userspace doing anything. Slots left out stay
 * empty. `where(key)` returns the first element of inner map `key`, -1 for an empty slot.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, int);
	__type(value, long);
} inner_a SEC(".maps"), inner_b SEC(".maps"), inner_c SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, int);
	__array(values, struct inner);
} outer_arr SEC(".maps") = {
	.values = { [0] = &inner_a, [2] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, int);
	__array(values, struct inner);
} outer_hash SEC(".maps") = {
	.values = { [1] = &inner_c, [3] = &inner_a },
};

static long first(void *outer, int key)
{
	int zero = 0;
	void *inner;
	long *v;

	inner = bpf_map_lookup_elem(outer, &key);
	if (!inner)
		return -1;
	v = bpf_map_lookup_elem(inner, &zero);
	return v ? *v : -2;
}

struct key_arg {
	int key;
};

SEC("syscall")
int where_arr(struct key_arg *a)
{
	return first(&outer_arr, a->key);
}

SEC("syscall")
int where_hash(struct key_arg *a)
{
	return first(&outer_hash, a->key);
}
