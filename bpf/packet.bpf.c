// SPDX-License-Identifier: GPL-2.0
/*
 * Direct packet access: an XDP and a tc program parse Ethernet, IPv4 (with options: the TCP
 * header sits at a variable offset) and TCP with a bounds check against data_end before each
 * header, and rewrite a field in place. `xdp_meta` reads metadata in front of the packet,
 * checked against data.
 */
#include "structops_pkt.h"

char _license[] SEC("license") = "GPL";

/* The TCP header of an IPv4 frame, or NULL; *ipp is the IPv4 header. */
static __always_inline struct tcp_hdr *parse_tcp(void *data, void *data_end, struct ip4_hdr **ipp, int *verdict)
{
	struct eth_hdr *eth = data;
	struct ip4_hdr *ip;
	struct tcp_hdr *tcp;
	__u32 ihl;

	*verdict = 0;
	if ((void *)(eth + 1) > data_end)
		return NULL;
	*verdict = 1;
	if (eth->proto != bpf_htons(ETH_P_IP))
		return NULL;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return NULL;
	if (ip->protocol != IPPROTO_TCP)
		return NULL;
	ihl = (ip->ver_ihl & 0xf) * 4;
	if (ihl < sizeof(*ip))
		return NULL;
	tcp = (void *)ip + ihl;
	if ((void *)(tcp + 1) > data_end)
		return NULL;
	*ipp = ip;
	*verdict = 2;
	return tcp;
}

/* XDP_TX a TCP segment to port 80 with its TTL decremented; pass other frames; drop runts. */
SEC("xdp")
int xdp_parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ip4_hdr *ip = NULL;
	struct tcp_hdr *tcp;
	int verdict;

	tcp = parse_tcp(data, data_end, &ip, &verdict);
	if (!tcp)
		return verdict == 0 ? XDP_DROP : XDP_PASS;
	if (tcp->dest != bpf_htons(80))
		return XDP_PASS;
	ip->ttl--;
	return XDP_TX;
}

/* Pass a frame whose 4 bytes of metadata hold 0xfeed, drop it otherwise. */
SEC("xdp")
int xdp_meta(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	__u32 *meta = (void *)(long)ctx->data_meta;

	if ((void *)(meta + 1) > data)
		return XDP_ABORTED;
	return *meta == 0xfeed ? XDP_PASS : XDP_DROP;
}

/* Mark a TCP segment with its destination port and move port 22 to 2222; shoot anything else. */
SEC("tc")
int tc_parse(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ip4_hdr *ip = NULL;
	struct tcp_hdr *tcp;
	int verdict;

	tcp = parse_tcp(data, data_end, &ip, &verdict);
	if (!tcp)
		return TC_ACT_SHOT;
	skb->mark = bpf_ntohs(tcp->dest);
	skb->cb[0] = skb->len;
	if (tcp->dest == bpf_htons(22))
		tcp->dest = bpf_htons(2222);
	return TC_ACT_OK;
}
