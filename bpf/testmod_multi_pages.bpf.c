// SPDX-License-Identifier: GPL-2.0
/*
 * Forty programs in bpf_testmod_ops.tramp_1 .. tramp_40: their trampolines take more than one
 * image page. Each returns its member's number plus its argument.
 */
#include "vmlinux.h"
#include "structops.h"

char _license[] SEC("license") = "GPL";

#define TRAMP(n)                                   \
	SEC("struct_ops/tramp_" #n)                \
	int BPF_PROG(tm_tramp_##n, int value)      \
	{                                          \
		return n + value;                  \
	}

TRAMP(1)
TRAMP(2)
TRAMP(3)
TRAMP(4)
TRAMP(5)
TRAMP(6)
TRAMP(7)
TRAMP(8)
TRAMP(9)
TRAMP(10)
TRAMP(11)
TRAMP(12)
TRAMP(13)
TRAMP(14)
TRAMP(15)
TRAMP(16)
TRAMP(17)
TRAMP(18)
TRAMP(19)
TRAMP(20)
TRAMP(21)
TRAMP(22)
TRAMP(23)
TRAMP(24)
TRAMP(25)
TRAMP(26)
TRAMP(27)
TRAMP(28)
TRAMP(29)
TRAMP(30)
TRAMP(31)
TRAMP(32)
TRAMP(33)
TRAMP(34)
TRAMP(35)
TRAMP(36)
TRAMP(37)
TRAMP(38)
TRAMP(39)
TRAMP(40)

SEC(".struct_ops.link")
struct bpf_testmod_ops multi_pages = {
	.tramp_1 = (void *)tm_tramp_1,
	.tramp_2 = (void *)tm_tramp_2,
	.tramp_3 = (void *)tm_tramp_3,
	.tramp_4 = (void *)tm_tramp_4,
	.tramp_5 = (void *)tm_tramp_5,
	.tramp_6 = (void *)tm_tramp_6,
	.tramp_7 = (void *)tm_tramp_7,
	.tramp_8 = (void *)tm_tramp_8,
	.tramp_9 = (void *)tm_tramp_9,
	.tramp_10 = (void *)tm_tramp_10,
	.tramp_11 = (void *)tm_tramp_11,
	.tramp_12 = (void *)tm_tramp_12,
	.tramp_13 = (void *)tm_tramp_13,
	.tramp_14 = (void *)tm_tramp_14,
	.tramp_15 = (void *)tm_tramp_15,
	.tramp_16 = (void *)tm_tramp_16,
	.tramp_17 = (void *)tm_tramp_17,
	.tramp_18 = (void *)tm_tramp_18,
	.tramp_19 = (void *)tm_tramp_19,
	.tramp_20 = (void *)tm_tramp_20,
	.tramp_21 = (void *)tm_tramp_21,
	.tramp_22 = (void *)tm_tramp_22,
	.tramp_23 = (void *)tm_tramp_23,
	.tramp_24 = (void *)tm_tramp_24,
	.tramp_25 = (void *)tm_tramp_25,
	.tramp_26 = (void *)tm_tramp_26,
	.tramp_27 = (void *)tm_tramp_27,
	.tramp_28 = (void *)tm_tramp_28,
	.tramp_29 = (void *)tm_tramp_29,
	.tramp_30 = (void *)tm_tramp_30,
	.tramp_31 = (void *)tm_tramp_31,
	.tramp_32 = (void *)tm_tramp_32,
	.tramp_33 = (void *)tm_tramp_33,
	.tramp_34 = (void *)tm_tramp_34,
	.tramp_35 = (void *)tm_tramp_35,
	.tramp_36 = (void *)tm_tramp_36,
	.tramp_37 = (void *)tm_tramp_37,
	.tramp_38 = (void *)tm_tramp_38,
	.tramp_39 = (void *)tm_tramp_39,
	.tramp_40 = (void *)tm_tramp_40,
};
