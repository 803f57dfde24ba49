// SPDX-License-Identifier: GPL-2.0
/*
 * A BPF ring buffer fed from syscall programs: fixed records reserved and submitted or
 * discarded, variable-length copies with bpf_ringbuf_output, ringbuf dynptrs, and the query
 * helper. Each run emits at most one record, so a consumer can check order, discards and the
 * wrap-around of the positions run by run.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

/* A fixed record: 16 bytes of payload, 24 with its header. */
struct rec {
	__u64 seq;
	__u64 val;
};

/* The syscall context each program reads (test_run's ctx_in). */
struct rb_args {
	__u64 val;
	__u32 len;
	__u32 discard;
	__u64 flags;
};

__u64 seq;
char out_buf[256];

/* Reserve a record, fill it, then submit or discard it: 0, or -1 when the ring is full. */
SEC("syscall")
int reserve_one(struct rb_args *a)
{
	struct rec *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);

	if (!r)
		return -1;
	r->seq = ++seq;
	r->val = a->val;
	if (a->discard)
		bpf_ringbuf_discard(r, a->flags);
	else
		bpf_ringbuf_submit(r, a->flags);
	return 0;
}

/* Copy len bytes (at most 255) of a buffer led by the next sequence number: the helper's result. */
SEC("syscall")
int output_one(struct rb_args *a)
{
	__u32 len = a->len & 255;

	*(__u64 *)out_buf = ++seq;
	*(__u64 *)(out_buf + 8) = a->val;
	return bpf_ringbuf_output(&rb, out_buf, len, a->flags);
}

/* The same record through a ringbuf dynptr: written, then completed through bpf_dynptr_data. */
SEC("syscall")
int dynptr_one(struct rb_args *a)
{
	struct bpf_dynptr d;
	__u64 s = ++seq;
	__u64 *v;

	if (bpf_ringbuf_reserve_dynptr(&rb, sizeof(struct rec), 0, &d)) {
		/* A failed reservation is still a reference: it must be released. */
		bpf_ringbuf_discard_dynptr(&d, 0);
		return -1;
	}
	bpf_dynptr_write(&d, 0, &s, sizeof(s), 0);
	v = bpf_dynptr_data(&d, 8, sizeof(*v));
	if (!v) {
		bpf_ringbuf_discard_dynptr(&d, 0);
		return -2;
	}
	*v = a->val;
	if (a->discard)
		bpf_ringbuf_discard_dynptr(&d, a->flags);
	else
		bpf_ringbuf_submit_dynptr(&d, a->flags);
	return 0;
}

/* A dynptr reservation the ring cannot hold (or with bad flags): the helper's error, released anyway. */
SEC("syscall")
int dynptr_too_big(struct rb_args *a)
{
	struct bpf_dynptr d;
	long err = bpf_ringbuf_reserve_dynptr(&rb, a->len, a->flags, &d);

	bpf_ringbuf_discard_dynptr(&d, 0);
	return err;
}

/* bpf_ringbuf_query(&rb, flags): written to the context's val. */
SEC("syscall")
int query(struct rb_args *a)
{
	a->val = bpf_ringbuf_query(&rb, a->flags);
	return 0;
}
