// SPDX-License-Identifier: GPL-2.0
/*
 * A user ring buffer drained by programs: user space produces records (user_ring_buffer__reserve
 * / submit / discard in the loader), bpf_user_ringbuf_drain hands each committed one to a
 * callback as a read-only local dynptr, which reads it with bpf_dynptr_read. Built with clang-19.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* uapi's map types, for a vmlinux.h whose BTF has no enum naming them (the simulated kernel's). */
#ifndef BPF_MAP_TYPE_USER_RINGBUF
#define BPF_MAP_TYPE_RINGBUF 27
#define BPF_MAP_TYPE_USER_RINGBUF 31
#endif

char _license[] SEC("license") = "GPL";

extern __u32 bpf_dynptr_size(const struct bpf_dynptr *p) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} user_rb SEC(".maps");

struct urb_sample {
	__u32 seq;
	__u32 val;
};

struct urb_ctx {
	__u64 sum;
	__u32 last_seq;
};

__u64 total;
__u32 count;	/* callback calls */
__u32 short_records;
__u32 stop_at = 77;	/* a record whose val is this ends the drain (the callback returns 1) */
__u32 sizes[8];	/* the sizes of the first records seen */
long drain_ret;
long nested_ret;
__u64 flags;

static long take_record(struct bpf_dynptr *dynptr, void *data)
{
	struct urb_ctx *c = data;
	struct urb_sample s;
	__u32 tail;
	__u32 size = bpf_dynptr_size(dynptr);

	__u32 i = count++;

	if (i < 8)
		sizes[i] = size;
	if (bpf_dynptr_read(&s, sizeof(s), dynptr, 0, 0)) {
		short_records++;
		return 0;
	}
	c->sum += s.val;
	c->last_seq = s.seq;
	/* The last 4 bytes too: a record may wrap past the end of the ring. */
	if (size >= 12 && !bpf_dynptr_read(&tail, sizeof(tail), dynptr, size - 4, 0))
		c->sum += tail;
	return s.val == stop_at ? 1 : 0;
}

/* A drain from inside a drain callback finds the ring busy. */
static long nested(struct bpf_dynptr *dynptr, void *data)
{
	nested_ret = bpf_user_ringbuf_drain(&user_rb, take_record, data, 0);
	return 1;
}

SEC("syscall")
int drain(void *arg)
{
	struct urb_ctx c = {};

	drain_ret = bpf_user_ringbuf_drain(&user_rb, take_record, &c, flags);
	total += c.sum;
	return c.last_seq;
}

SEC("syscall")
int drain_nested(void *arg)
{
	struct urb_ctx c = {};

	drain_ret = bpf_user_ringbuf_drain(&user_rb, nested, &c, 0);
	return 0;
}
