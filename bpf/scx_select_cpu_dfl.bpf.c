// SPDX-License-Identifier: GPL-2.0
/*
 * No ops.select_cpu: the kernel's default picks an idle CPU for a waking task and inserts it
 * into that CPU's local DSQ itself, so ops.enqueue never sees a wake-up while its CPU is idle.
 * saw_local records it if it does.
 */
#include "scx_common.h"

bool saw_local;
u64 nr_enqueued;

void SCX_OP(dfl_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu = scx_bpf_task_cpu(p);

	__sync_fetch_and_add(&nr_enqueued, 1);
	if ((enq_flags & SCX_ENQ_WAKEUP) && p->nr_cpus_allowed > 1 && scx_bpf_test_and_clear_cpu_idle(cpu))
		saw_local = true;
	scx_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

SEC(".struct_ops.link")
struct sched_ext_ops select_cpu_dfl_ops = {
	.enqueue = (void *)dfl_enqueue,
	.name = "select_cpu_dfl",
};
