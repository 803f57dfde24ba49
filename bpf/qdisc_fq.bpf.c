// SPDX-License-Identifier: GPL-2.0
/* A per-flow fair queue: packets wait in an rbtree ordered by (round, arrival), a flow's k-th
 * queued packet going into round k after the current one, so dequeueing the first node serves the
 * flows round robin, one packet each per round. Flows are told apart by the skb's flow hash and
 * keep their next round in a hash map. Past the total or the per-flow limit, or more than the
 * horizon ahead of time, a packet is dropped; one whose departure time (EDT) has not come holds
 * the queue and arms the watchdog.
 */
#include "vmlinux.h"
#include "structops_qdisc.h"

char _license[] SEC("license") = "GPL";

#define FLOW_PLIMIT 100
#define HORIZON_NS (10 * NSEC_PER_SEC)

struct skb_node {
	u64 round;
	u64 seq;
	struct sk_buff __kptr *skb;
	struct bpf_rb_node node;
};

struct flow_state {
	u64 next_round;
	u64 epoch;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, struct flow_state);
} flows SEC(".maps");

private(A) struct bpf_spin_lock q_lock;
private(A) struct bpf_rb_root q_tree __contains(skb_node, node);

/* The round of the packet last dequeued; the arrival counter; reset's generation. */
u64 cur_round, seq, epoch;
u64 enqueued, dropped, dequeued, throttled;

static bool node_less(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	struct skb_node *x = container_of(a, struct skb_node, node);
	struct skb_node *y = container_of(b, struct skb_node, node);

	return x->round < y->round || (x->round == y->round && x->seq < y->seq);
}

static int drop(struct sk_buff *skb, struct bpf_sk_buff_ptr *to_free, struct Qdisc *sch)
{
	bpf_qdisc_skb_drop(skb, to_free);
	sch->qstats.drops++;
	dropped++;
	return NET_XMIT_DROP;
}

SEC("struct_ops/bpf_fq_enqueue")
int BPF_PROG(bpf_fq_enqueue, struct sk_buff *skb, struct Qdisc *sch, struct bpf_sk_buff_ptr *to_free)
{
	struct flow_state *f, fresh = {};
	struct skb_node *n;
	u32 hash, pkt_len;
	u64 round;

	if (sch->q.qlen >= sch->limit)
		return drop(skb, to_free, sch);
	if (skb->tstamp > bpf_ktime_get_ns() + HORIZON_NS)
		return drop(skb, to_free, sch);
	hash = bpf_skb_get_hash(skb);
	f = bpf_map_lookup_elem(&flows, &hash);
	if (!f) {
		fresh.epoch = epoch;
		bpf_map_update_elem(&flows, &hash, &fresh, BPF_NOEXIST);
		f = bpf_map_lookup_elem(&flows, &hash);
		if (!f)
			return drop(skb, to_free, sch);
	}
	if (f->epoch != epoch) {
		f->epoch = epoch;
		f->next_round = 0;
	}
	round = f->next_round > cur_round ? f->next_round : cur_round;
	if (round - cur_round >= FLOW_PLIMIT)
		return drop(skb, to_free, sch);
	n = bpf_obj_new(typeof(*n));
	if (!n)
		return drop(skb, to_free, sch);
	f->next_round = round + 1;
	n->round = round;
	n->seq = seq++;
	pkt_len = qdisc_pkt_len(skb);
	skb = bpf_kptr_xchg(&n->skb, skb);
	if (skb)
		bpf_qdisc_skb_drop(skb, to_free);
	bpf_spin_lock(&q_lock);
	bpf_rbtree_add(&q_tree, &n->node, node_less);
	bpf_spin_unlock(&q_lock);
	sch->q.qlen++;
	sch->qstats.backlog += pkt_len;
	enqueued++;
	return NET_XMIT_SUCCESS;
}

SEC("struct_ops/bpf_fq_dequeue")
struct sk_buff *BPF_PROG(bpf_fq_dequeue, struct Qdisc *sch)
{
	struct sk_buff *skb = NULL;
	struct bpf_rb_node *rb;
	struct skb_node *n;
	u64 now, tstamp;

	bpf_spin_lock(&q_lock);
	rb = bpf_rbtree_first(&q_tree);
	if (!rb) {
		bpf_spin_unlock(&q_lock);
		return NULL;
	}
	rb = bpf_rbtree_remove(&q_tree, rb);
	bpf_spin_unlock(&q_lock);
	if (!rb)
		return NULL;
	n = container_of(rb, struct skb_node, node);
	skb = bpf_kptr_xchg(&n->skb, skb);
	if (!skb) {
		bpf_obj_drop(n);
		return NULL;
	}
	now = bpf_ktime_get_ns();
	tstamp = skb->tstamp;
	if (tstamp > now) {
		/* Not yet: back in its place, and wake up when it may go. */
		skb = bpf_kptr_xchg(&n->skb, skb);
		if (skb)
			bpf_kfree_skb(skb);
		bpf_spin_lock(&q_lock);
		bpf_rbtree_add(&q_tree, &n->node, node_less);
		bpf_spin_unlock(&q_lock);
		bpf_qdisc_watchdog_schedule(sch, tstamp, 0);
		throttled++;
		return NULL;
	}
	cur_round = n->round;
	bpf_obj_drop(n);
	sch->q.qlen--;
	sch->qstats.backlog -= qdisc_pkt_len(skb);
	bpf_qdisc_bstats_update(sch, skb);
	dequeued++;
	return skb;
}

SEC("struct_ops/bpf_fq_init")
int BPF_PROG(bpf_fq_init, struct Qdisc *sch, struct nlattr *opt, struct netlink_ext_ack *extack)
{
	sch->limit = 10000;
	return 0;
}

SEC("struct_ops/bpf_fq_reset")
void BPF_PROG(bpf_fq_reset, struct Qdisc *sch)
{
	struct bpf_rb_node *rb;
	int i;

	bpf_for(i, 0, sch->q.qlen) {
		bpf_spin_lock(&q_lock);
		rb = bpf_rbtree_first(&q_tree);
		if (!rb) {
			bpf_spin_unlock(&q_lock);
			break;
		}
		rb = bpf_rbtree_remove(&q_tree, rb);
		bpf_spin_unlock(&q_lock);
		if (!rb)
			break;
		/* Dropping the node drops the skb it holds (the sk_buff kptr's destructor). */
		bpf_obj_drop(container_of(rb, struct skb_node, node));
	}
	cur_round = 0;
	epoch++;
}

SEC("struct_ops")
void BPF_PROG(bpf_fq_destroy, struct Qdisc *sch)
{
}

SEC(".struct_ops")
struct Qdisc_ops fq = {
	.enqueue = (void *)bpf_fq_enqueue,
	.dequeue = (void *)bpf_fq_dequeue,
	.init = (void *)bpf_fq_init,
	.reset = (void *)bpf_fq_reset,
	.destroy = (void *)bpf_fq_destroy,
	.id = "bpf_fq",
};
