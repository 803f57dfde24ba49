// SPDX-License-Identifier: GPL-2.0
/*
 * Global functions taking a `struct bpf_dynptr *`: the callee gets a CONST_PTR_TO_DYNPTR it may
 * read and write through but never release nor re-initialise. The `?` programs break one rule
 * each, with the message 6.18 gives in the comment above them (the last line of the log).
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

extern __u32 bpf_dynptr_size(const struct bpf_dynptr *p) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *p, __u32 offset, void *buffer__opt,
			      __u32 buffer__szk) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpf_dynptr);
} dmap SEC(".maps");

char buf[64];

/* Reads the first 8 bytes and adds the dynptr's size: every read a const dynptr allows. */
__noinline int dyn_sum(const struct bpf_dynptr *d)
{
	__u64 v = 0;
	__u64 *p;

	if (bpf_dynptr_read(&v, sizeof(v), d, 0, 0))
		return -1;
	p = bpf_dynptr_data(d, 8, sizeof(*p));
	if (p)
		v += *p;
	p = bpf_dynptr_slice(d, 0, NULL, sizeof(*p));
	if (p)
		v += *p;
	return v + bpf_dynptr_size(d);
}

/* Writes through the dynptr: the const is on the dynptr, not on its bytes. */
__noinline int dyn_put(struct bpf_dynptr *d, __u64 v)
{
	return bpf_dynptr_write(d, 0, &v, sizeof(v), 0);
}

__noinline int dyn_release(struct bpf_dynptr *d)
{
	bpf_ringbuf_discard_dynptr(d, 0);
	return 0;
}

__noinline int dyn_reinit(struct bpf_dynptr *d)
{
	return bpf_dynptr_from_mem(buf, sizeof(buf), 0, d);
}

__noinline int dyn_deref(struct bpf_dynptr *d)
{
	return *(int *)d;
}

__noinline int dyn_reserve(struct bpf_dynptr *d)
{
	return bpf_ringbuf_reserve_dynptr(&rb, 8, 0, d);
}

/* A local dynptr: written and read back through the global functions. */
SEC("syscall")
int local_through_global(void *ctx)
{
	struct bpf_dynptr d;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	if (dyn_put(&d, 40))
		return -1;
	return dyn_sum(&d);
}

/* A ringbuf dynptr lent to the global functions, then submitted by its owner. */
SEC("syscall")
int ringbuf_through_global(void *ctx)
{
	struct bpf_dynptr d;
	int r;

	if (bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &d)) {
		bpf_ringbuf_discard_dynptr(&d, 0);
		return -1;
	}
	dyn_put(&d, 7);
	r = dyn_sum(&d);
	bpf_ringbuf_submit_dynptr(&d, 0);
	return r;
}

/* cannot release unowned const bpf_dynptr */
SEC("?syscall")
int release_in_global(void *ctx)
{
	struct bpf_dynptr d;

	bpf_ringbuf_reserve_dynptr(&rb, 8, 0, &d);
	dyn_release(&d);
	bpf_ringbuf_discard_dynptr(&d, 0);
	return 0;
}

/* Dynptr has to be an uninitialized dynptr */
SEC("?syscall")
int reinit_in_global(void *ctx)
{
	struct bpf_dynptr d;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	return dyn_reinit(&d);
}

/* Reserving into the const dynptr: Dynptr has to be an uninitialized dynptr */
SEC("?syscall")
int reserve_in_global(void *ctx)
{
	struct bpf_dynptr d;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	return dyn_reserve(&d);
}

/* Reading the dynptr's own bytes: invalid mem access 'dynptr_ptr' */
SEC("?syscall")
int deref_in_global(void *ctx)
{
	struct bpf_dynptr d;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	return dyn_deref(&d);
}

/* Expected an initialized dynptr as arg #0, then: Caller passes invalid args into func#1 */
SEC("?syscall")
int pass_uninit(void *ctx)
{
	struct bpf_dynptr d;

	return dyn_sum(&d);
}

/* A dynptr in a map value is not one: arg#0 expected pointer to stack or const struct bpf_dynptr */
SEC("?syscall")
int pass_map_value(void *ctx)
{
	__u32 k = 0;
	struct bpf_dynptr *d = bpf_map_lookup_elem(&dmap, &k);

	if (!d)
		return 0;
	return dyn_sum(d);
}

/* Misaligned: cannot pass in dynptr at an offset=-12 */
SEC("?syscall")
int pass_misaligned(void *ctx)
{
	struct bpf_dynptr d[2];

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d[0]);
	return dyn_sum((void *)&d[0] + 4);
}
