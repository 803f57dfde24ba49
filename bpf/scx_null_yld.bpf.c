// SPDX-License-Identifier: GPL-2.0
/*
 * Must not load: ops.yield's `to` is NULL for a plain sched_yield() (its cfi stub names it
 * to__nullable), and this reads it without a check.
 */
#include "scx_common.h"

u64 last_pid;

bool SCX_OP(null_yld_yield, struct task_struct *from, struct task_struct *to)
{
	last_pid = to->pid;
	return false;
}

SEC(".struct_ops.link")
struct sched_ext_ops null_yld_ops = {
	.yield = (void *)null_yld_yield,
	.name = "null_yld",
};
