// SPDX-License-Identifier: GPL-2.0
/*
 * The legacy packet loads (BPF_LD | BPF_ABS / BPF_IND, clang's llvm.bpf.load.* builtins): bytes
 * in network order from the skb whose context is in R6, a load past the end ending the program
 * with 0. `?xdp` is refused: only socket filters and tc programs have an skb.
 */
#include "structops_pkt.h"

char _license[] SEC("license") = "GPL";

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

#define SKF_LL_OFF (-0x200000)

/* A socket filter's offsets start at the network header: IPv4 protocol << 16 | the EtherType. */
SEC("socket")
int sock_ld_abs(struct __sk_buff *skb)
{
	return (load_byte(skb, 9) << 16) | load_half(skb, SKF_LL_OFF + 12);
}

/* tc's start at the Ethernet header: the TCP destination port behind variable-length IPv4. */
SEC("tc")
int tc_ld_ind(struct __sk_buff *skb)
{
	__u32 ihl = (load_byte(skb, 14) & 0xf) * 4;

	return load_half(skb, 14 + ihl + 2);
}

/* A word past the end: the program ends there with 0. */
SEC("tc")
int tc_ld_past_end(struct __sk_buff *skb)
{
	if (load_word(skb, skb->len) == 0x12345678)
		return 1;
	return 2;
}

/* BPF_LD_[ABS|IND] instructions not allowed for this program type. */
SEC("?xdp")
int xdp_ld_abs(struct xdp_md *ctx)
{
	return load_byte(ctx, 0);
}
