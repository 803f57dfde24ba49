// SPDX-License-Identifier: GPL-2.0
/*
 * BPF_F_STRICT_ALIGNMENT (the loader sets it on these programs): packet accesses must be aligned
 * as if the frame started NET_IP_ALIGN (2) bytes into a word, other pointers to their size;
 * without the flag x86-64 takes every one of them.
 */
#include "structops_pkt.h"

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} vals SEC(".maps");

/* The IPv4 source address: 14 + 12 bytes in, 2 + 26 a multiple of 4. */
SEC("?xdp")
int aligned_saddr(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 *saddr = data + 26;

	if ((void *)(saddr + 1) > data_end)
		return XDP_DROP;
	return *saddr ? XDP_PASS : XDP_DROP;
}

/* The EtherType and the first IPv4 byte as one u32: 2 + 12 is not a multiple of 4. */
SEC("?xdp")
int misaligned_u32(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 *p = data + 12;

	if ((void *)(p + 1) > data_end)
		return XDP_DROP;
	return *p ? XDP_PASS : XDP_DROP;
}

/* A u16 at a variable, even offset: 2 + 2k stays a multiple of 2. */
SEC("?tc")
int variable_even(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *p = data;
	__u16 *q;
	__u32 k;

	if ((void *)(p + 1) > data_end)
		return 0;
	k = (*p & 7) * 2;
	q = data + k;
	if ((void *)(q + 1) > data_end)
		return 0;
	return *q;
}

/* The same with an odd variable part. */
SEC("?tc")
int variable_odd(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *p = data;
	__u16 *q;
	__u32 k;

	if ((void *)(p + 1) > data_end)
		return 0;
	k = (*p & 7) | 1;
	q = data + k;
	if ((void *)(q + 1) > data_end)
		return 0;
	return *q;
}

/* A u32 at byte 2 of a map value. */
SEC("?tc")
int misaligned_value(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u8 *v = bpf_map_lookup_elem(&vals, &key);

	if (!v)
		return 0;
	return *(__u32 *)(v + 2);
}
