// SPDX-License-Identifier: GPL-2.0
/* CoDel (RFC 8289) as a BPF qdisc: a FIFO whose dequeue drops at the head once packets have
 * waited longer than the target (5 ms) for a whole interval (100 ms), the next drop
 * interval/sqrt(count) later, until the sojourn time is under target again.
 */
#include "vmlinux.h"
#include "structops_qdisc.h"

char _license[] SEC("license") = "GPL";

#define TARGET_NS (5 * NSEC_PER_MSEC)
#define INTERVAL_NS (100 * NSEC_PER_MSEC)
/* A queue of at most one full-sized packet never counts as standing. */
#define MAXPACKET 1514

struct skb_node {
	u64 enqueued_at;
	struct sk_buff __kptr *skb;
	struct bpf_list_node node;
};

private(A) struct bpf_spin_lock q_lock;
private(A) struct bpf_list_head q_fifo __contains(skb_node, node);

/* CoDel's state (struct codel_vars). */
u64 first_above_time, drop_next;
u32 count, lastcount;
bool dropping;
u64 enqueued, dropped_limit, dropped_codel, dequeued;

static __always_inline u64 isqrt(u64 n)
{
	u64 x = n, y = (n + 1) / 2;
	int i;

	for (i = 0; i < 64 && y < x; i++) {
		x = y;
		y = (x + n / x) / 2;
	}
	return x;
}

/* The next drop: interval / sqrt(count) after t. */
static __always_inline u64 control_law(u64 t, u32 c)
{
	u64 root = isqrt((u64)c << 20); /* sqrt(c) * 1024 */

	return t + (INTERVAL_NS << 10) / (root ? root : 1);
}

static __always_inline bool should_drop(struct Qdisc *sch, u64 sojourn, u64 now)
{
	if (sojourn < TARGET_NS || sch->qstats.backlog <= MAXPACKET) {
		first_above_time = 0;
		return false;
	}
	if (!first_above_time) {
		first_above_time = now + INTERVAL_NS;
		return false;
	}
	return now >= first_above_time;
}

SEC("struct_ops/bpf_codel_enqueue")
int BPF_PROG(bpf_codel_enqueue, struct sk_buff *skb, struct Qdisc *sch, struct bpf_sk_buff_ptr *to_free)
{
	struct skb_node *n;
	u32 pkt_len;

	if (sch->q.qlen >= sch->limit)
		goto drop;
	n = bpf_obj_new(typeof(*n));
	if (!n)
		goto drop;
	n->enqueued_at = bpf_ktime_get_ns();
	pkt_len = qdisc_pkt_len(skb);
	skb = bpf_kptr_xchg(&n->skb, skb);
	if (skb)
		bpf_qdisc_skb_drop(skb, to_free);
	bpf_spin_lock(&q_lock);
	bpf_list_push_back(&q_fifo, &n->node);
	bpf_spin_unlock(&q_lock);
	sch->q.qlen++;
	sch->qstats.backlog += pkt_len;
	enqueued++;
	return NET_XMIT_SUCCESS;
drop:
	bpf_qdisc_skb_drop(skb, to_free);
	sch->qstats.drops++;
	dropped_limit++;
	return NET_XMIT_DROP;
}

/* The head packet, out of the queue, with its enqueue time; NULL when empty. */
static __always_inline struct sk_buff *pop(struct Qdisc *sch, u64 *enqueued_at)
{
	struct sk_buff *skb = NULL;
	struct bpf_list_node *ln;
	struct skb_node *n;

	bpf_spin_lock(&q_lock);
	ln = bpf_list_pop_front(&q_fifo);
	bpf_spin_unlock(&q_lock);
	if (!ln)
		return NULL;
	n = container_of(ln, struct skb_node, node);
	*enqueued_at = n->enqueued_at;
	skb = bpf_kptr_xchg(&n->skb, skb);
	bpf_obj_drop(n);
	if (!skb)
		return NULL;
	sch->q.qlen--;
	sch->qstats.backlog -= qdisc_pkt_len(skb);
	return skb;
}

SEC("struct_ops/bpf_codel_dequeue")
struct sk_buff *BPF_PROG(bpf_codel_dequeue, struct Qdisc *sch)
{
	u64 now = bpf_ktime_get_ns(), at = 0;
	struct sk_buff *skb;
	bool drop;
	u32 delta;
	int i;

	skb = pop(sch, &at);
	if (!skb) {
		dropping = false;
		return NULL;
	}
	drop = should_drop(sch, now - at, now);
	if (dropping) {
		if (!drop) {
			dropping = false;
		} else if (now >= drop_next) {
			for (i = 0; i < 64; i++) {
				count++;
				bpf_kfree_skb(skb);
				sch->qstats.drops++;
				dropped_codel++;
				skb = pop(sch, &at);
				if (!skb) {
					dropping = false;
					return NULL;
				}
				if (!should_drop(sch, now - at, now)) {
					dropping = false;
					break;
				}
				drop_next = control_law(drop_next, count);
				if (now < drop_next)
					break;
			}
		}
	} else if (drop) {
		bpf_kfree_skb(skb);
		sch->qstats.drops++;
		dropped_codel++;
		skb = pop(sch, &at);
		dropping = true;
		delta = count - lastcount;
		count = delta > 1 && now - drop_next < 16 * INTERVAL_NS ? delta : 1;
		lastcount = count;
		drop_next = control_law(now, count);
		if (!skb)
			return NULL;
	}
	bpf_qdisc_bstats_update(sch, skb);
	dequeued++;
	return skb;
}

SEC("struct_ops/bpf_codel_init")
int BPF_PROG(bpf_codel_init, struct Qdisc *sch, struct nlattr *opt, struct netlink_ext_ack *extack)
{
	sch->limit = 1000;
	return 0;
}

SEC("struct_ops/bpf_codel_reset")
void BPF_PROG(bpf_codel_reset, struct Qdisc *sch)
{
	struct bpf_list_node *ln;
	int i;

	bpf_for(i, 0, sch->q.qlen) {
		bpf_spin_lock(&q_lock);
		ln = bpf_list_pop_front(&q_fifo);
		bpf_spin_unlock(&q_lock);
		if (!ln)
			break;
		bpf_obj_drop(container_of(ln, struct skb_node, node));
	}
	dropping = false;
	first_above_time = 0;
	count = lastcount = 0;
}

SEC("struct_ops")
void BPF_PROG(bpf_codel_destroy, struct Qdisc *sch)
{
}

SEC(".struct_ops")
struct Qdisc_ops codel = {
	.enqueue = (void *)bpf_codel_enqueue,
	.dequeue = (void *)bpf_codel_dequeue,
	.init = (void *)bpf_codel_init,
	.reset = (void *)bpf_codel_reset,
	.destroy = (void *)bpf_codel_destroy,
	.id = "bpf_codel",
};
