// SPDX-License-Identifier: GPL-2.0
/*
 * A global weighted-vtime scheduler: every task waits in one shared DSQ ordered by its virtual
 * time, which advances by the time it ran scaled by 100/weight, so CPU time is shared in
 * proportion to weight. A waking task goes straight to an idle CPU when the kernel's default
 * selection finds one. A task that slept long does not bank more than one slice of credit.
 */
#include "scx_common.h"

#define SHARED_DSQ 0

/* the vtime of the most advanced task that started running */
static u64 vtime_now;
/* [0]: direct to an idle CPU's local DSQ, [1]: through the shared DSQ */
u64 nr_local, nr_shared;
struct scx_exit_record exit_rec;

s32 SCX_OP(vtime_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle) {
		__sync_fetch_and_add(&nr_local, 1);
		scx_insert(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);
	}
	return cpu;
}

void SCX_OP(vtime_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime;

	/* at most one slice of credit for having slept */
	if ((s64)(vtime - (vtime_now - SCX_SLICE_DFL)) < 0)
		vtime = vtime_now - SCX_SLICE_DFL;
	__sync_fetch_and_add(&nr_shared, 1);
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, SCX_SLICE_DFL, vtime, enq_flags);
}

void SCX_OP(vtime_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_move_to_local(SHARED_DSQ);
}

void SCX_OP(vtime_running, struct task_struct *p)
{
	if ((s64)(p->scx.dsq_vtime - vtime_now) > 0)
		vtime_now = p->scx.dsq_vtime;
}

void SCX_OP(vtime_stopping, struct task_struct *p, bool runnable)
{
	/* charge what was used of the slice, inversely to the weight (100 = nice 0) */
	p->scx.dsq_vtime += (SCX_SLICE_DFL - p->scx.slice) * 100 / p->scx.weight;
}

void SCX_OP(vtime_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
}

s32 SCX_OP_SLEEPABLE(vtime_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

void SCX_OP(vtime_exit, struct scx_exit_info *ei)
{
	SCX_EXIT_RECORD(exit_rec, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops vtime_ops = {
	.select_cpu = (void *)vtime_select_cpu,
	.enqueue = (void *)vtime_enqueue,
	.dispatch = (void *)vtime_dispatch,
	.running = (void *)vtime_running,
	.stopping = (void *)vtime_stopping,
	.enable = (void *)vtime_enable,
	.init = (void *)vtime_init,
	.exit = (void *)vtime_exit,
	.name = "vtime",
};
