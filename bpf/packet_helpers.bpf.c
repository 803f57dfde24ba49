// SPDX-License-Identifier: GPL-2.0
/*
 * The tc and XDP packet helpers on the packets of test runs: bytes loaded and stored, IPv4 and
 * TCP checksums fixed after a rewrite, the packet grown and shrunk at its head, tail and network
 * header, VLAN tags pushed and popped, the hash set and read, redirect verdicts, and XDP's
 * head, tail and metadata moved. Each program returns what it saw so the run can be compared.
 */
#include "structops_pkt.h"

char _license[] SEC("license") = "GPL";

/* include/uapi/linux/bpf.h's flags (structops_pkt.h carries no uapi enums). */
#define BPF_F_INGRESS 1
#define BPF_F_INVALIDATE_HASH 2
#define BPF_F_PSEUDO_HDR 16
#define BPF_ADJ_ROOM_NET 0
#define BPF_ADJ_ROOM_MAC 1
#define BPF_HDR_START_MAC 0
#define BPF_HDR_START_NET 1

#define IP_OFF 14
#define IP_CSUM_OFF (IP_OFF + 10)
#define IP_DST_OFF (IP_OFF + 16)
#define TCP_CSUM_OFF (IP_OFF + 20 + 16)

/* NAT the destination address to 10.0.0.2 with both checksums fixed; return the old address's low byte. */
SEC("tc")
int tc_nat(struct __sk_buff *skb)
{
	__be32 old, new = bpf_htonl(0x0a000002);
	__u8 proto;

	if (bpf_skb_load_bytes(skb, IP_DST_OFF, &old, 4))
		return -1;
	if (bpf_skb_load_bytes(skb, IP_OFF + 9, &proto, 1))
		return -2;
	if (bpf_skb_store_bytes(skb, IP_DST_OFF, &new, 4, BPF_F_INVALIDATE_HASH))
		return -3;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old, new, 4))
		return -4;
	if (proto == IPPROTO_TCP && bpf_l4_csum_replace(skb, TCP_CSUM_OFF, old, new, BPF_F_PSEUDO_HDR | 4))
		return -5;
	return bpf_ntohl(old) & 0xff;
}

/* The same rewrite through bpf_csum_diff and a direct store; return the diff. */
SEC("tc")
int tc_csum_diff(struct __sk_buff *skb)
{
	__be32 old[2], new[2] = { bpf_htonl(0xc0a80001), bpf_htonl(0x0a000002) };
	__s64 diff;
	void *data, *data_end;
	__be32 *addrs;

	if (bpf_skb_pull_data(skb, IP_DST_OFF + 4))
		return -1;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	addrs = data + IP_OFF + 12;
	if ((void *)(addrs + 2) > data_end)
		return -2;
	old[0] = addrs[0];
	old[1] = addrs[1];
	diff = bpf_csum_diff(old, 8, new, 8, 0);
	if (diff < 0)
		return -3;
	addrs[0] = new[0];
	addrs[1] = new[1];
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, 0, diff, 0))
		return -4;
	return diff;
}

/* bpf_csum_diff over odd lengths, with and without a seed: two folded sums. */
SEC("tc")
int tc_csum_odd(struct __sk_buff *skb)
{
	__u8 buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	__s64 a, b;

	a = bpf_csum_diff((void *)buf, 3, 0, 0, 0x10000);
	b = bpf_csum_diff((void *)buf, 5, (void *)buf + 2, 6, 0x12345);
	return a << 16 | b;
}

/* Errors the helpers answer, one bit each. */
SEC("tc")
int tc_errors(struct __sk_buff *skb)
{
	__u8 buf[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
	int r = 0;

	if (bpf_skb_load_bytes(skb, skb->len - 4, buf, 8) == -14 && buf[0] == 0)
		r |= 1;
	if (bpf_skb_store_bytes(skb, skb->len - 4, buf, 8, 0) == -14)
		r |= 2;
	if (bpf_skb_store_bytes(skb, 0, buf, 8, 4) == -22)
		r |= 4;
	if (bpf_l3_csum_replace(skb, 25, 0, 0, 2) == -14)
		r |= 8;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, 0, 0, 3) == -22)
		r |= 16;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, 1, 0, 0) == -22)
		r |= 32;
	if (bpf_skb_pull_data(skb, skb->len + 1) == -12)
		r |= 64;
	if (bpf_skb_change_tail(skb, 13, 0) == -22)
		r |= 128;
	if (bpf_skb_change_head(skb, 4, 1) == -22)
		r |= 256;
	if (bpf_skb_load_bytes_relative(skb, 0, buf, 4, 2) == -14)
		r |= 512;
	if (bpf_skb_adjust_room(skb, -1000, BPF_ADJ_ROOM_NET, 0) == -524)
		r |= 1024;
	if (bpf_skb_adjust_room(skb, 4, 7, 0) == -524)
		r |= 2048;
	if (bpf_skb_change_proto(skb, bpf_htons(0x86dd), 1) == -22)
		r |= 4096;
	if (bpf_skb_change_type(skb, 4) == -22)
		r |= 8192;
	return r;
}

/* Grow the tail by 6 zero bytes, then push a 14-byte head with a new Ethernet header; the new length. */
SEC("tc")
int tc_resize(struct __sk_buff *skb)
{
	struct eth_hdr eth = { .dst = { 2, 0, 0, 0, 0, 9 }, .src = { 2, 0, 0, 0, 0, 8 }, .proto = bpf_htons(0x88b5) };
	__u8 mark = 0xab;

	if (bpf_skb_change_tail(skb, skb->len + 6, 0))
		return -1;
	if (bpf_skb_store_bytes(skb, skb->len - 1, &mark, 1, 0))
		return -2;
	if (bpf_skb_change_head(skb, 14, 0))
		return -3;
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0))
		return -4;
	if (bpf_skb_change_tail(skb, skb->len - 2, 0))
		return -5;
	return skb->len;
}

/* Room for an 8-byte header after IPv4 (net mode), written; then 4 bytes taken out after the MAC header. */
SEC("tc")
int tc_adjust_room(struct __sk_buff *skb)
{
	__u64 tag = 0x1122334455667788ULL;

	if (bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_NET, 0))
		return -1;
	if (bpf_skb_store_bytes(skb, IP_OFF + 20, &tag, 8, 0))
		return -2;
	if (bpf_skb_adjust_room(skb, -4, BPF_ADJ_ROOM_MAC, 0))
		return -3;
	return skb->len;
}

/* IPv4 to IPv6 and back: 20 bytes in, then out again after the MAC header. */
SEC("tc")
int tc_change_proto(struct __sk_buff *skb)
{
	int len6;

	if (bpf_skb_change_proto(skb, bpf_htons(0x86dd), 0))
		return -1;
	len6 = skb->len;
	if (skb->protocol != bpf_htons(0x86dd))
		return -2;
	if (bpf_skb_change_proto(skb, bpf_htons(0x0800), 0))
		return -3;
	return len6 << 16 | skb->len;
}

/* Two tags pushed (the first goes into the frame), one popped; what the context says at each step. */
SEC("tc")
int tc_vlan(struct __sk_buff *skb)
{
	int r = 0;

	if (bpf_skb_vlan_push(skb, bpf_htons(0x8100), 100))
		return -1;
	r = skb->vlan_present << 28 | skb->vlan_tci << 16;
	if (bpf_skb_vlan_push(skb, bpf_htons(0x88a8), 200))
		return -2;
	r |= (skb->vlan_tci & 0xff) << 8 | (skb->len & 0xff);
	if (bpf_skb_vlan_pop(skb))
		return -3;
	/* The tag in the frame became the accelerated one. */
	if (skb->vlan_tci != 100 || skb->vlan_proto != bpf_htons(0x8100))
		return -4;
	return r;
}

/* A hash set, read back, invalidated. */
SEC("tc")
int tc_hash(struct __sk_buff *skb)
{
	__u32 h;

	bpf_set_hash(skb, 0xc0ffee);
	h = bpf_get_hash_recalc(skb);
	if (h != 0xc0ffee || skb->hash != 0xc0ffee)
		return -1;
	bpf_set_hash_invalid(skb);
	if (skb->hash)
		return -2;
	return bpf_get_hash_recalc(skb) ? 1 : 0;
}

SEC("tc")
int tc_redirect(struct __sk_buff *skb)
{
	return skb->mark ? bpf_redirect(1, 8) : bpf_redirect(1, BPF_F_INGRESS);
}

/* Network and MAC header relative loads from a socket filter, which sees data after Ethernet. */
SEC("socket")
int sock_relative(struct __sk_buff *skb)
{
	__u8 ttl = 0, mac = 0, first = 0;

	if (bpf_skb_load_bytes_relative(skb, 8, &ttl, 1, BPF_HDR_START_NET))
		return -1;
	if (bpf_skb_load_bytes_relative(skb, 5, &mac, 1, BPF_HDR_START_MAC))
		return -2;
	if (bpf_skb_load_bytes(skb, 0, &first, 1))
		return -3;
	return ttl << 16 | mac << 8 | first;
}

/* Pop the Ethernet header, push a new one 4 bytes longer (an 802.1Q tag), trim the tail, add metadata. */
SEC("xdp")
int xdp_adjust(struct xdp_md *ctx)
{
	void *data, *data_end;
	__u32 *meta;
	__u8 *p;

	if (bpf_xdp_adjust_head(ctx, 14 - 18))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	p = data;
	if ((void *)(p + 18) > data_end)
		return XDP_ABORTED;
	/* Move the MAC addresses to the new front, then the tag. */
	__builtin_memmove(p, p + 4, 12);
	p[12] = 0x81;
	p[13] = 0x00;
	p[14] = 0x00;
	p[15] = 0x2a;
	p[16] = 0x08;
	p[17] = 0x00;
	if (bpf_xdp_adjust_tail(ctx, -2))
		return XDP_ABORTED;
	if (bpf_xdp_adjust_meta(ctx, -8))
		return XDP_ABORTED;
	meta = (void *)(long)ctx->data_meta;
	data = (void *)(long)ctx->data;
	if ((void *)(meta + 2) > data)
		return XDP_ABORTED;
	meta[0] = 0xfeedf00d;
	meta[1] = bpf_xdp_get_buff_len(ctx);
	return XDP_PASS;
}

/* XDP errors, one bit each, then the tail grown by 3 zero bytes. */
SEC("xdp")
int xdp_errors(struct xdp_md *ctx)
{
	__u8 buf[4] = { 7, 7, 7, 7 };
	int r = 0;

	if (bpf_xdp_adjust_head(ctx, -4096) == -22)
		r |= 1;
	if (bpf_xdp_adjust_head(ctx, 4096) == -22)
		r |= 2;
	if (bpf_xdp_adjust_tail(ctx, 4096) == -22)
		r |= 4;
	if (bpf_xdp_adjust_tail(ctx, -4096) == -22)
		r |= 8;
	if (bpf_xdp_adjust_meta(ctx, -6) == -13)
		r |= 16;
	if (bpf_xdp_adjust_meta(ctx, 4) == -22)
		r |= 32;
	if (bpf_xdp_load_bytes(ctx, 4096, buf, 4) == -22)
		r |= 64;
	if (bpf_xdp_load_bytes(ctx, 0x10000, buf, 4) == -14)
		r |= 128;
	if (bpf_xdp_store_bytes(ctx, 0, buf, 4) == 0 && bpf_xdp_load_bytes(ctx, 6, buf, 4) == 0 && buf[0] == 2)
		r |= 256;
	if (bpf_xdp_adjust_tail(ctx, 3))
		return -1;
	return r;
}

SEC("xdp")
int xdp_redirect(struct xdp_md *ctx)
{
	return bpf_redirect(ctx->ingress_ifindex + 1, ctx->rx_queue_index);
}
