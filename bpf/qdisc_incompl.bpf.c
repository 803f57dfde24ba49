// SPDX-License-Identifier: GPL-2.0
/* A qdisc without init: it loads, but registering it fails (bpf_qdisc_validate: EINVAL). All
 * four programs share one ELF section.
 */
#include "vmlinux.h"
#include "structops_qdisc.h"

char _license[] SEC("license") = "GPL";

SEC("struct_ops")
int BPF_PROG(incompl_enqueue, struct sk_buff *skb, struct Qdisc *sch, struct bpf_sk_buff_ptr *to_free)
{
	bpf_qdisc_skb_drop(skb, to_free);
	return NET_XMIT_DROP;
}

SEC("struct_ops")
struct sk_buff *BPF_PROG(incompl_dequeue, struct Qdisc *sch)
{
	return NULL;
}

SEC("struct_ops")
void BPF_PROG(incompl_reset, struct Qdisc *sch)
{
}

SEC("struct_ops")
void BPF_PROG(incompl_destroy, struct Qdisc *sch)
{
}

SEC(".struct_ops")
struct Qdisc_ops incompl = {
	.enqueue = (void *)incompl_enqueue,
	.dequeue = (void *)incompl_dequeue,
	.reset = (void *)incompl_reset,
	.destroy = (void *)incompl_destroy,
	.id = "bpf_qdisc_test",
};
