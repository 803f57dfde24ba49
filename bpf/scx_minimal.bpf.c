// SPDX-License-Identifier: GPL-2.0
/* A scheduler with no ops at all: the kernel's defaults run every task. */
#include "scx_common.h"

SEC(".struct_ops.link")
struct sched_ext_ops minimal_ops = {
	.name = "minimal",
};
