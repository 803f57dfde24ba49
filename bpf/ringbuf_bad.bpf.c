// SPDX-License-Identifier: GPL-2.0
/*
 * One ring buffer rule each, broken: every `?` program must be refused, with the message 6.18
 * gives in the comment above it (the last lines of the log).
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

__u32 size;
char buf[64];

/* Unreleased reference id=2 alloc_insn=4 */
SEC("?syscall")
int leak(void *ctx)
{
	__u64 *p = bpf_ringbuf_reserve(&rb, 8, 0);

	if (!p)
		return 0;
	*p = 1;
	return 0;
}

/* R0 invalid mem access 'ringbuf_mem_or_null' */
SEC("?syscall")
int no_null_check(void *ctx)
{
	__u64 *p = bpf_ringbuf_reserve(&rb, 8, 0);

	*p = 1;
	bpf_ringbuf_submit(p, 0);
	return 0;
}

/* R2 is not a known constant' */
SEC("?syscall")
int var_size(void *ctx)
{
	__u64 *p = bpf_ringbuf_reserve(&rb, size, 0);

	if (!p)
		return 0;
	bpf_ringbuf_submit(p, 0);
	return 0;
}

/* invalid access to memory, mem_size=8 off=8 size=8 */
SEC("?syscall")
int past_end(void *ctx)
{
	__u64 *p = bpf_ringbuf_reserve(&rb, 8, 0);

	if (!p)
		return 0;
	p[1] = 1;
	bpf_ringbuf_submit(p, 0);
	return 0;
}

/* R1 type=fp expected=ringbuf_mem */
SEC("?syscall")
int submit_stack(void *ctx)
{
	__u64 v = 0;

	bpf_ringbuf_submit(&v, 0);
	return 0;
}

/* R1 type=map_value expected=ringbuf_mem */
SEC("?syscall")
int discard_map_value(void *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&arr, &k);

	if (v)
		bpf_ringbuf_discard(v, 0);
	return 0;
}

/* Submitted twice, the second time what the release left: R1 type=scalar expected=ringbuf_mem */
SEC("?syscall")
int double_submit(void *ctx)
{
	__u64 *p = bpf_ringbuf_reserve(&rb, 8, 0);

	if (!p)
		return 0;
	bpf_ringbuf_submit(p, 0);
	bpf_ringbuf_submit(p, 0);
	return 0;
}

/* Written after submit: R6 invalid mem access 'scalar' */
SEC("?syscall")
int use_after_submit(void *ctx)
{
	__u64 *p = bpf_ringbuf_reserve(&rb, 8, 0);

	if (!p)
		return 0;
	bpf_ringbuf_submit(p, 0);
	*p = 2;
	return 0;
}

/* Not the record's start: R1 must have zero offset when passed to release func or trusted arg to kfunc */
SEC("?syscall")
int submit_offset(void *ctx)
{
	__u64 *p = bpf_ringbuf_reserve(&rb, 16, 0);

	if (!p)
		return 0;
	bpf_ringbuf_submit(p + 1, 0);
	return 0;
}

/* cannot pass map_type 2 into func bpf_ringbuf_reserve#131 */
SEC("?syscall")
int reserve_array(void *ctx)
{
	__u64 *p = bpf_ringbuf_reserve(&arr, 8, 0);

	if (!p)
		return 0;
	bpf_ringbuf_submit(p, 0);
	return 0;
}

/* A ring buffer has no keys (key_size 0): invalid zero-sized read */
SEC("?syscall")
int lookup_ringbuf(void *ctx)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(&rb, &k) != 0;
}

/* R3 unbounded memory access, use 'var &= const' or 'if (var < const)' */
SEC("?syscall")
int output_var_len(void *ctx)
{
	return bpf_ringbuf_output(&rb, buf, size, 0);
}

/*
 * A failed reservation is still a reference to release: Unreleased reference id=2 alloc_insn=6
 */
SEC("?syscall")
int dynptr_leak(void *ctx)
{
	struct bpf_dynptr d;

	if (bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d))
		return 0;
	bpf_ringbuf_submit_dynptr(&d, 0);
	return 0;
}

/* A ringbuf dynptr never submitted nor discarded: Unreleased reference id=2 alloc_insn=6 */
SEC("?syscall")
int dynptr_never_released(void *ctx)
{
	struct bpf_dynptr d;

	bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
	return 0;
}

/* arg 1 is an unacquired reference */
SEC("?syscall")
int submit_local_dynptr(void *ctx)
{
	struct bpf_dynptr d;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	bpf_ringbuf_submit_dynptr(&d, 0);
	return 0;
}

/* cannot overwrite referenced dynptr */
SEC("?syscall")
int overwrite_dynptr(void *ctx)
{
	struct bpf_dynptr d;

	bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
	*(volatile __u64 *)&d = 0;
	bpf_ringbuf_discard_dynptr(&d, 0);
	return 0;
}

/* A slice of a submitted dynptr goes with it: R6 invalid mem access 'scalar' */
SEC("?syscall")
int slice_after_submit(void *ctx)
{
	struct bpf_dynptr d;
	__u64 *v;

	bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
	v = bpf_dynptr_data(&d, 0, 8);
	if (!v) {
		bpf_ringbuf_discard_dynptr(&d, 0);
		return 0;
	}
	bpf_ringbuf_submit_dynptr(&d, 0);
	*v = 1;
	return 0;
}

/* Reserving into a live ringbuf dynptr: cannot overwrite referenced dynptr */
SEC("?syscall")
int reserve_twice(void *ctx)
{
	struct bpf_dynptr d;

	bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
	bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
	bpf_ringbuf_discard_dynptr(&d, 0);
	return 0;
}

/* Submitted twice: arg 1 is an unacquired reference */
SEC("?syscall")
int submit_twice_dynptr(void *ctx)
{
	struct bpf_dynptr d;

	bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
	bpf_ringbuf_submit_dynptr(&d, 0);
	bpf_ringbuf_submit_dynptr(&d, 0);
	return 0;
}

/* cannot pass map_type 2 into func bpf_ringbuf_reserve_dynptr#198 */
SEC("?syscall")
int dynptr_array(void *ctx)
{
	struct bpf_dynptr d;

	bpf_ringbuf_reserve_dynptr(&arr, 8, 0, &d);
	bpf_ringbuf_discard_dynptr(&d, 0);
	return 0;
}
