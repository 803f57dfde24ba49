// SPDX-License-Identifier: GPL-2.0
/*
 * Reading a map's `struct bpf_map` (and its map type's struct) through the map pointer: reads
 * load and give the map's attributes; the `?` programs break one rule each, with the message 6.18
 * gives in the comment above them (the last line of the log).
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u32);
} hash SEC(".maps");

/* The array's attributes as the map pointer shows them, packed into the return value. */
SEC("syscall")
int read_fields(void *ctx)
{
	struct bpf_map *m = (struct bpf_map *)&arr;
	struct bpf_array *a = (struct bpf_array *)&arr;

	return m->max_entries | m->key_size << 4 | m->value_size << 8 | a->elem_size << 16 | a->index_mask << 24;
}

/* A hash map's max_entries, through its own struct's first member. */
SEC("syscall")
int read_hash(void *ctx)
{
	struct bpf_htab *h = (struct bpf_htab *)&hash;

	return h->map.max_entries;
}

/* The name's first letter, and whether the map has no NUMA node (-1). */
SEC("syscall")
int read_name(void *ctx)
{
	struct bpf_map *m = (struct bpf_map *)&arr;

	return m->name[0] + (m->numa_node == -1 ? 1000 : 0);
}

/* only read from bpf_array is supported */
SEC("?syscall")
int write_field(void *ctx)
{
	struct bpf_map *m = (struct bpf_map *)&arr;

	m->max_entries = 1;
	return 0;
}

/* R1 is bpf_array invalid negative access: off=-8 */
SEC("?syscall")
int negative_off(void *ctx)
{
	return *(volatile __u32 *)((char *)&arr - 8);
}

/* access beyond struct bpf_array at off 400 size 4 */
SEC("?syscall")
int beyond(void *ctx)
{
	return *(volatile __u32 *)((char *)&arr + 400);
}
