// SPDX-License-Identifier: GPL-2.0
/*
 * A global FIFO scheduler: tasks run in the order they became runnable, each for the default
 * slice, from one shared user DSQ every CPU pulls from. Nothing is direct-dispatched, so every
 * wake-up goes through ops.enqueue (and the kernel's default CPU selection only picks the CPU).
 */
#include "scx_common.h"

#define FIFO_DSQ 7

u64 nr_enqueued, nr_dispatched;
struct scx_exit_record exit_rec;

void SCX_OP(fifo_enqueue, struct task_struct *p, u64 enq_flags)
{
	__sync_fetch_and_add(&nr_enqueued, 1);
	scx_insert(p, FIFO_DSQ, SCX_SLICE_DFL, enq_flags);
}

void SCX_OP(fifo_dispatch, s32 cpu, struct task_struct *prev)
{
	if (scx_move_to_local(FIFO_DSQ))
		__sync_fetch_and_add(&nr_dispatched, 1);
}

s32 SCX_OP_SLEEPABLE(fifo_init)
{
	return scx_bpf_create_dsq(FIFO_DSQ, -1);
}

void SCX_OP(fifo_exit, struct scx_exit_info *ei)
{
	SCX_EXIT_RECORD(exit_rec, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops fifo_ops = {
	.enqueue = (void *)fifo_enqueue,
	.dispatch = (void *)fifo_dispatch,
	.init = (void *)fifo_init,
	.exit = (void *)fifo_exit,
	.timeout_ms = 5000,
	.name = "fifo",
};
