// SPDX-License-Identifier: GPL-2.0
/*
 * One dynptr rule each, broken: every `?` program must be refused, with the message 6.18 gives
 * in the comment above it (the last line of the log).
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

extern void *bpf_dynptr_slice(const struct bpf_dynptr *p, __u32 offset, void *buffer__opt,
			      __u32 buffer__szk) __ksym;
extern void *bpf_dynptr_slice_rdwr(const struct bpf_dynptr *p, __u32 offset, void *buffer__opt,
				   __u32 buffer__szk) __ksym;
extern int bpf_dynptr_adjust(const struct bpf_dynptr *p, __u32 start, __u32 end) __ksym;
extern __u32 bpf_dynptr_size(const struct bpf_dynptr *p) __ksym;
extern int bpf_dynptr_from_skb(struct __sk_buff *s, __u64 flags, struct bpf_dynptr *ptr__uninit) __ksym;

char buf[64];
__u32 len;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpf_dynptr);
} dmap SEC(".maps");

/* Expected an initialized dynptr as arg #2 */
SEC("?syscall")
int read_uninit(void *ctx)
{
	struct bpf_dynptr d;
	__u32 out;

	bpf_dynptr_read(&out, sizeof(out), &d, 0, 0);
	return out;
}

/* cannot pass in dynptr at an offset=-20, then: Expected an initialized dynptr as arg #2 */
SEC("?syscall")
int read_misaligned(void *ctx)
{
	struct bpf_dynptr d[2];
	__u32 out;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d[0]);
	bpf_dynptr_read(&out, sizeof(out), (void *)&d[0] + 4, 0, 0);
	return out;
}

/* A store into the dynptr destroys it: Expected an initialized dynptr as arg #2 */
SEC("?syscall")
int use_after_overwrite(void *ctx)
{
	struct bpf_dynptr d;
	__u32 out;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	*(volatile __u64 *)((void *)&d + 8) = 0;
	bpf_dynptr_read(&out, sizeof(out), &d, 0, 0);
	return out;
}

/* invalid read from stack off -16+0 size 8 */
SEC("?syscall")
int read_dynptr_bytes(void *ctx)
{
	struct bpf_dynptr d;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	return *(volatile __u64 *)&d;
}

/* bpf_dynptr_data's slice goes with its dynptr: R6 invalid mem access 'scalar' */
SEC("?syscall")
int data_after_overwrite(void *ctx)
{
	struct bpf_dynptr d;
	__u32 *p;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	p = bpf_dynptr_data(&d, 0, 4);
	if (!p)
		return 0;
	*(volatile __u64 *)&d = 0;
	return *p;
}

/* R0 invalid mem access 'mem_or_null' */
SEC("?syscall")
int data_unchecked(void *ctx)
{
	struct bpf_dynptr d;
	__u32 *p;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	p = bpf_dynptr_data(&d, 0, 4);
	return *p;
}

/* invalid access to memory, mem_size=4 off=4 size=1 */
SEC("?syscall")
int data_past_len(void *ctx)
{
	struct bpf_dynptr d;
	__u8 *p;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	p = bpf_dynptr_data(&d, 0, 4);
	if (!p)
		return 0;
	return p[4];
}

/* R3 is not a known constant' */
SEC("?syscall")
int data_var_len(void *ctx)
{
	struct bpf_dynptr d;
	__u8 *p;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	p = bpf_dynptr_data(&d, 0, len & 7);
	if (!p)
		return 0;
	return p[0];
}

/* R0 cannot write into rdonly_mem */
SEC("?syscall")
int slice_write(void *ctx)
{
	struct bpf_dynptr d;
	__u32 *p;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	p = bpf_dynptr_slice(&d, 0, NULL, 4);
	if (!p)
		return 0;
	*p = 1;
	return 0;
}

/* the prog does not allow writes to packet data */
SEC("?syscall")
int slice_rdwr_syscall(void *ctx)
{
	struct bpf_dynptr d;
	__u32 *p;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	p = bpf_dynptr_slice_rdwr(&d, 0, NULL, 4);
	if (!p)
		return 0;
	return *p;
}

/* R4 must be a known constant */
SEC("?syscall")
int slice_var_size(void *ctx)
{
	struct bpf_dynptr d;
	__u8 tmp[8];
	__u8 *p;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	p = bpf_dynptr_slice(&d, 0, tmp, (len & 7) + 1);
	if (!p)
		return 0;
	return p[0];
}

/* R3 type=map_value expected=fp, dynptr_ptr */
SEC("?syscall")
int dynptr_in_map(void *ctx)
{
	__u32 key = 0, out = 0;
	struct bpf_dynptr *d = bpf_map_lookup_elem(&dmap, &key);

	if (!d)
		return 0;
	bpf_dynptr_read(&out, sizeof(out), d, 0, 0);
	return out;
}

/* arg#0 expected pointer to stack or const struct bpf_dynptr */
SEC("?syscall")
int kfunc_dynptr_in_map(void *ctx)
{
	__u32 key = 0;
	struct bpf_dynptr *d = bpf_map_lookup_elem(&dmap, &key);

	if (!d)
		return 0;
	return bpf_dynptr_size(d);
}

/* Expected an initialized dynptr as arg #0 */
SEC("?syscall")
int adjust_uninit(void *ctx)
{
	struct bpf_dynptr d;

	return bpf_dynptr_adjust(&d, 0, 1);
}

/* potential write to dynptr at off=-16 disallowed */
SEC("?syscall")
int read_into_dynptr(void *ctx)
{
	struct bpf_dynptr d, src;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &src);
	bpf_dynptr_read(&d, 8, &src, 0, 0);
	return 0;
}

/* calling kernel function bpf_dynptr_from_skb is not allowed */
SEC("?syscall")
int skb_from_syscall(void *ctx)
{
	struct bpf_dynptr d;

	return bpf_dynptr_from_skb(ctx, 0, &d);
}

/* the prog does not allow writes to packet data */
SEC("?socket")
int skb_rdwr_socket(struct __sk_buff *skb)
{
	struct bpf_dynptr d;
	__u8 tmp[2];
	__u8 *p;

	bpf_dynptr_from_skb(skb, 0, &d);
	p = bpf_dynptr_slice_rdwr(&d, 0, tmp, sizeof(tmp));
	return p ? p[0] : 0;
}

/* arg#0 expected pointer to ctx, but got fp */
SEC("?tc")
int skb_not_ctx(struct __sk_buff *skb)
{
	struct bpf_dynptr d;
	__u64 fake[4] = {};

	return bpf_dynptr_from_skb((struct __sk_buff *)fake, 0, &d);
}

/* Unsupported reg type fp for bpf_dynptr_from_mem data */
SEC("?syscall")
int from_mem_stack(void *ctx)
{
	struct bpf_dynptr d;
	__u64 x = 0;

	bpf_dynptr_from_mem(&x, sizeof(x), 0, &d);
	return bpf_dynptr_size(&d);
}

/* A dynptr is no map value: invalid read from stack R3 off -16+0 size 16 */
SEC("?syscall")
int dynptr_into_map(void *ctx)
{
	struct bpf_dynptr d;
	__u32 key = 0;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	bpf_map_update_elem(&dmap, &key, &d, 0);
	return 0;
}

/* dynptr has to be at a constant offset, then: Dynptr has to be an uninitialized dynptr */
SEC("?syscall")
int init_var_off(void *ctx)
{
	struct bpf_dynptr d[2];

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, (void *)d + (len & 16));
	return 0;
}

extern int bpf_dynptr_clone(const struct bpf_dynptr *p, struct bpf_dynptr *clone__uninit) __ksym;

/* Initializing the dynptr again ends its bpf_dynptr_data slices: R6 invalid mem access 'scalar' */
SEC("?syscall")
int data_after_reinit(void *ctx)
{
	struct bpf_dynptr d;
	__u32 *p;

	bpf_dynptr_from_mem(buf, sizeof(buf), 0, &d);
	p = bpf_dynptr_data(&d, 0, 4);
	if (!p)
		return 0;
	bpf_dynptr_from_mem(buf, 8, 0, &d);
	return *p;
}

/* Expected an initialized dynptr as arg #0 */
SEC("?syscall")
int clone_uninit(void *ctx)
{
	struct bpf_dynptr d, c;

	return bpf_dynptr_clone(&d, &c);
}
