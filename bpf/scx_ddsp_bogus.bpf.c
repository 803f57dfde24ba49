// SPDX-License-Identifier: GPL-2.0
/*
 * Direct dispatch from ops.select_cpu into a DSQ nobody created: the kernel ends the scheduler
 * with SCX_EXIT_ERROR ("non-existent DSQ ...") and every task goes back to the fair class.
 */
#include "scx_common.h"

struct scx_exit_record exit_rec;

s32 SCX_OP(bogus_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	scx_bpf_dsq_insert_vtime(p, 0xcafef00d, SCX_SLICE_DFL, p->scx.dsq_vtime, 0);
	return cpu;
}

void SCX_OP(bogus_exit, struct scx_exit_info *ei)
{
	SCX_EXIT_RECORD(exit_rec, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops ddsp_bogus_ops = {
	.select_cpu = (void *)bogus_select_cpu,
	.exit = (void *)bogus_exit,
	.timeout_ms = 1000,
	.name = "ddsp_bogus",
};
