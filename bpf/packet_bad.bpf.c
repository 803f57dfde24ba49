// SPDX-License-Identifier: GPL-2.0
/*
 * One direct packet access rule each, refused by the verifier; Linux 6.18's last log line in
 * a comment.
 */
#include "structops_pkt.h"

char _license[] SEC("license") = "GPL";

/* R1 offset is outside of the packet: no check against data_end at all. */
SEC("?xdp")
int no_bounds_check(struct xdp_md *ctx)
{
	struct eth_hdr *eth = (void *)(long)ctx->data;

	return eth->proto == bpf_htons(ETH_P_IP) ? XDP_PASS : XDP_DROP;
}

/* The check covers the Ethernet header, the read is in the IPv4 header. */
SEC("?xdp")
int check_too_short(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth_hdr *eth = data;
	struct ip4_hdr *ip = (void *)(eth + 1);

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	return ip->protocol == IPPROTO_TCP ? XDP_PASS : XDP_DROP;
}

/* A header at a variable offset is a new pointer: the check made before it does not cover it. */
SEC("?xdp")
int variable_offset_unchecked(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ip4_hdr *ip = data + sizeof(struct eth_hdr);
	struct tcp_hdr *tcp;

	if ((void *)(ip + 1) + sizeof(*tcp) > data_end)
		return XDP_DROP;
	tcp = (void *)ip + (ip->ver_ihl & 0xf) * 4;
	return tcp->dest == bpf_htons(80) ? XDP_PASS : XDP_DROP;
}

/* invalid bpf_context access off=0 size=4: xdp_md is read-only. */
SEC("?xdp")
int write_xdp_md(struct xdp_md *ctx)
{
	ctx->data = ctx->data_end;
	return XDP_PASS;
}

/* invalid bpf_context access off=76 size=4: socket filters read no packet pointers. */
SEC("?socket")
int socket_reads_data(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (data + 1 > data_end)
		return 0;
	return *(__u8 *)data;
}

/* cannot write into packet: cgroup_skb programs only read it. */
SEC("?cgroup_skb/ingress")
int cgroup_skb_writes(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (data + 1 > data_end)
		return 1;
	*(__u8 *)data = 0;
	return 1;
}

/* R3 pointer arithmetic on pkt_end prohibited. */
SEC("?tc")
int pkt_end_arithmetic(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	asm volatile("%[end] += -4" : [end] "+r"(data_end));
	if (data + 4 > data_end)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/* tc_classid is writable, data_end is not: invalid bpf_context access off=80 size=4. */
SEC("?tc")
int write_data_end(struct __sk_buff *skb)
{
	skb->tc_classid = 1;
	skb->data_end = skb->data;
	return TC_ACT_OK;
}
