// SPDX-License-Identifier: GPL-2.0
/*
 * Packet helpers the verifier refuses: a packet pointer kept across a helper that may move the
 * packet, helpers of another program type, packet memory passed to a helper without pkt_access,
 * and NULL memory with a non-zero size.
 */
#include "structops_pkt.h"

char _license[] SEC("license") = "GPL";

/* bpf_skb_store_bytes may reallocate the packet: the checked pointer is gone. */
SEC("?tc")
int stale_after_store(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *p = data;
	__u8 v = 1;

	if ((void *)(p + 1) > data_end)
		return 0;
	bpf_skb_store_bytes(skb, 0, &v, 1, 0);
	return *p;
}

/* The same after bpf_xdp_adjust_head. */
SEC("?xdp")
int stale_after_adjust_head(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p = data;

	if ((void *)(p + 1) > data_end)
		return 0;
	bpf_xdp_adjust_head(ctx, 1);
	return *p;
}

SEC("?xdp")
int xdp_skb_helper(struct xdp_md *ctx)
{
	__u8 v = 0;

	return bpf_skb_store_bytes((void *)ctx, 0, &v, 1, 0);
}

SEC("?socket")
int socket_store_bytes(struct __sk_buff *skb)
{
	__u8 v = 0;

	return bpf_skb_store_bytes(skb, 0, &v, 1, 0);
}

/* bpf_skb_load_bytes has no pkt_access: it may not write into the packet it reads. */
SEC("?tc")
int load_into_packet(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (data + 8 > data_end)
		return 0;
	return bpf_skb_load_bytes(skb, 0, data, 4);
}

SEC("?tc")
int csum_diff_null(struct __sk_buff *skb)
{
	return bpf_csum_diff(0, 4, 0, 0, 0);
}
