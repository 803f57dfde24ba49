/* BPF qdiscs (struct Qdisc_ops, net/sched/bpf_qdisc.c): the kfuncs Linux 6.18 gives them and the
 * scheduler's constants, for programs compiled against the simulated kernel's vmlinux.h.
 */
#ifndef STRUCTOPS_QDISC_H
#define STRUCTOPS_QDISC_H

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "structops_graph.h"
#include "structops_loops.h"

#define NET_XMIT_SUCCESS 0x00
#define NET_XMIT_DROP 0x01
#define NET_XMIT_CN 0x02
#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL

extern u32 bpf_skb_get_hash(struct sk_buff *p) __ksym;
extern void bpf_kfree_skb(struct sk_buff *p) __ksym;
extern void bpf_qdisc_skb_drop(struct sk_buff *p, struct bpf_sk_buff_ptr *to_free) __ksym;
extern void bpf_qdisc_watchdog_schedule(struct Qdisc *sch, u64 expire, u64 delta_ns) __ksym;
extern void bpf_qdisc_bstats_update(struct Qdisc *sch, const struct sk_buff *skb) __ksym;

/* qdisc_skb_cb(skb)->pkt_len: the length the scheduler accounts the packet with. */
static __always_inline unsigned int qdisc_pkt_len(const struct sk_buff *skb)
{
	return ((struct qdisc_skb_cb *)skb->cb)->pkt_len;
}

#ifndef true
#define true 1
#define false 0
#endif

#ifndef __kptr
#define __kptr __attribute__((btf_type_tag("kptr")))
#endif

#endif
