// SPDX-License-Identifier: GPL-2.0
/*
 * Must not load: ops.dispatch's prev is NULL when the CPU ran no ext task before (its cfi stub
 * names it prev__nullable), and this reads it without a check.
 */
#include "scx_common.h"

u64 last_pid;

void SCX_OP(null_dsp_dispatch, s32 cpu, struct task_struct *prev)
{
	last_pid = prev->pid;
}

SEC(".struct_ops.link")
struct sched_ext_ops null_dsp_ops = {
	.dispatch = (void *)null_dsp_dispatch,
	.name = "null_dsp",
};
