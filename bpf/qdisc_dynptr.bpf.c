// SPDX-License-Identifier: GPL-2.0
/* A FIFO qdisc that reads each packet it queues: bpf_dynptr_from_skb gives a (read-only, from a
 * struct_ops program) dynptr over the skb, bpf_dynptr_slice its Ethernet, IPv4 and TCP headers.
 * Per TCP source port it counts packets, bytes and CE marks; packets it cannot parse are counted
 * apart. Otherwise qdisc_fifo.bpf.c: skbs wait in allocated nodes on a list under a spin lock.
 */
#include "vmlinux.h"
#include "structops_qdisc.h"

char _license[] SEC("license") = "GPL";

extern int bpf_dynptr_from_skb(struct __sk_buff *s, u64 flags, struct bpf_dynptr *ptr__uninit) __ksym;
extern void *bpf_dynptr_slice(const struct bpf_dynptr *p, u32 offset, void *buffer__opt,
			      u32 buffer__szk) __ksym;
extern bool bpf_dynptr_is_rdonly(const struct bpf_dynptr *p) __ksym;
extern u32 bpf_dynptr_size(const struct bpf_dynptr *p) __ksym;

/* The headers as they are on the wire (network byte order). */
struct eth_hdr {
	u8 dst[6];
	u8 src[6];
	u16 proto;
};

struct ip4_hdr {
	u8 ver_ihl;
	u8 tos;
	u16 tot_len;
	u16 id;
	u16 frag_off;
	u8 ttl;
	u8 protocol;
	u16 check;
	u32 saddr;
	u32 daddr;
};

struct tcp_hdr {
	u16 source;
	u16 dest;
	u32 seq;
	u32 ack_seq;
	u16 flags;
	u16 window;
};

#define MAX_PORTS 8
#define FIRST_PORT 40000

struct skb_node {
	struct sk_buff __kptr *skb;
	struct bpf_list_node node;
};

private(A) struct bpf_spin_lock q_lock;
private(A) struct bpf_list_head q_list __contains(skb_node, node);

u64 port_pkts[MAX_PORTS], port_bytes[MAX_PORTS], port_ce[MAX_PORTS];
u64 unparsed, rdonly, size_mismatch, dropped;

static __always_inline u16 be16(u16 x)
{
	return __builtin_bswap16(x);
}

/* Count the packet by its TCP source port; false when it is not IPv4/TCP. */
static __always_inline bool classify(struct sk_buff *skb)
{
	struct bpf_dynptr d;
	struct eth_hdr eth_buf, *eth;
	struct ip4_hdr ip_buf, *ip;
	struct tcp_hdr tcp_buf, *tcp;
	u32 port;

	if (bpf_dynptr_from_skb((struct __sk_buff *)skb, 0, &d))
		return false;
	if (bpf_dynptr_is_rdonly(&d))
		rdonly++;
	if (bpf_dynptr_size(&d) != skb->len)
		size_mismatch++;
	eth = bpf_dynptr_slice(&d, 0, &eth_buf, sizeof(eth_buf));
	if (!eth || eth->proto != be16(0x0800))
		return false;
	ip = bpf_dynptr_slice(&d, sizeof(*eth), &ip_buf, sizeof(ip_buf));
	if (!ip || ip->ver_ihl != 0x45 || ip->protocol != 6)
		return false;
	tcp = bpf_dynptr_slice(&d, sizeof(*eth) + sizeof(*ip), &tcp_buf, sizeof(tcp_buf));
	if (!tcp)
		return false;
	port = be16(tcp->source) - FIRST_PORT;
	if (port >= MAX_PORTS)
		return false;
	port_pkts[port]++;
	port_bytes[port] += skb->len;
	if ((ip->tos & 3) == 3)
		port_ce[port]++;
	return true;
}

SEC("struct_ops/dp_enqueue")
int BPF_PROG(dp_enqueue, struct sk_buff *skb, struct Qdisc *sch, struct bpf_sk_buff_ptr *to_free)
{
	struct skb_node *skbn;
	u32 pkt_len;

	if (!classify(skb))
		unparsed++;
	if (sch->q.qlen >= sch->limit)
		goto drop;
	skbn = bpf_obj_new(typeof(*skbn));
	if (!skbn)
		goto drop;
	pkt_len = qdisc_pkt_len(skb);
	sch->q.qlen++;
	skb = bpf_kptr_xchg(&skbn->skb, skb);
	if (skb)
		bpf_qdisc_skb_drop(skb, to_free);
	bpf_spin_lock(&q_lock);
	bpf_list_push_back(&q_list, &skbn->node);
	bpf_spin_unlock(&q_lock);
	sch->qstats.backlog += pkt_len;
	return NET_XMIT_SUCCESS;
drop:
	bpf_qdisc_skb_drop(skb, to_free);
	dropped++;
	return NET_XMIT_DROP;
}

SEC("struct_ops/dp_dequeue")
struct sk_buff *BPF_PROG(dp_dequeue, struct Qdisc *sch)
{
	struct bpf_list_node *node;
	struct sk_buff *skb = NULL;
	struct skb_node *skbn;

	bpf_spin_lock(&q_lock);
	node = bpf_list_pop_front(&q_list);
	bpf_spin_unlock(&q_lock);
	if (!node)
		return NULL;
	skbn = container_of(node, struct skb_node, node);
	skb = bpf_kptr_xchg(&skbn->skb, skb);
	bpf_obj_drop(skbn);
	if (!skb)
		return NULL;
	sch->qstats.backlog -= qdisc_pkt_len(skb);
	bpf_qdisc_bstats_update(sch, skb);
	sch->q.qlen--;
	return skb;
}

SEC("struct_ops/dp_init")
int BPF_PROG(dp_init, struct Qdisc *sch, struct nlattr *opt, struct netlink_ext_ack *extack)
{
	sch->limit = 1000;
	return 0;
}

SEC("struct_ops/dp_reset")
void BPF_PROG(dp_reset, struct Qdisc *sch)
{
	struct bpf_list_node *node;
	struct skb_node *skbn;
	int i;

	bpf_for(i, 0, sch->q.qlen) {
		struct sk_buff *skb = NULL;

		bpf_spin_lock(&q_lock);
		node = bpf_list_pop_front(&q_list);
		bpf_spin_unlock(&q_lock);
		if (!node)
			break;
		skbn = container_of(node, struct skb_node, node);
		skb = bpf_kptr_xchg(&skbn->skb, skb);
		if (skb)
			bpf_kfree_skb(skb);
		bpf_obj_drop(skbn);
	}
	sch->q.qlen = 0;
}

SEC("struct_ops")
void BPF_PROG(dp_destroy, struct Qdisc *sch)
{
}

SEC(".struct_ops")
struct Qdisc_ops dynptr_fifo = {
	.enqueue = (void *)dp_enqueue,
	.dequeue = (void *)dp_dequeue,
	.init = (void *)dp_init,
	.reset = (void *)dp_reset,
	.destroy = (void *)dp_destroy,
	.id = "bpf_dynptr_fifo",
};
