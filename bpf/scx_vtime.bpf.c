// SPDX-License-Identifier: GPL-2.0
/*
 * A global weighted-vtime scheduler: every task waits in one shared DSQ ordered by its virtual
 * time, which advances by the time it ran scaled by 100/weight, so CPU time is shared in
 * proportion to weight. A waking task goes straight to an idle CPU when the kernel's default
 * selection finds one. A task that slept long does not bank more than one slice of credit.
 *
 * ops.dispatch() runs before the kernel re-enqueues a task whose slice ran out (ext.c's
 * balance_one, then put_prev_task_scx): taking the shared DSQ's head there unconditionally would
 * hand the CPU away from a task that is still the furthest behind, capping a heavy hog at every
 * other slice. So dispatch charges prev itself and keeps it (a refilled slice) while its vtime
 * stays below the head's.
 */
#include "scx_common.h"

#define SHARED_DSQ 0

/* the vtime of the most advanced task that started running */
static u64 vtime_now;
/* [0]: direct to an idle CPU's local DSQ, [1]: through the shared DSQ */
u64 nr_local, nr_shared;
/* dispatches that kept prev running instead of taking the shared DSQ's head */
u64 nr_kept;
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

/* the vtime a run of (SCX_SLICE_DFL - slice) costs, inversely to the weight (100 = nice 0) */
static __always_inline u64 vtime_charge(struct task_struct *p)
{
	return (SCX_SLICE_DFL - p->scx.slice) * 100 / p->scx.weight;
}

void SCX_OP(vtime_dispatch, s32 cpu, struct task_struct *prev)
{
	if (prev && (prev->scx.flags & SCX_TASK_QUEUED)) {
		u64 vtime = prev->scx.dsq_vtime + vtime_charge(prev);
		struct bpf_iter_scx_dsq it;
		struct task_struct *head;
		bool keep;

		bpf_iter_scx_dsq_new(&it, SHARED_DSQ, 0);
		head = bpf_iter_scx_dsq_next(&it);
		keep = !head || (s64)(vtime - head->scx.dsq_vtime) < 0;
		bpf_iter_scx_dsq_destroy(&it);
		if (keep) {
			__sync_fetch_and_add(&nr_kept, 1);
			prev->scx.dsq_vtime = vtime;
			prev->scx.slice = SCX_SLICE_DFL;
			return;
		}
	}
	scx_move_to_local(SHARED_DSQ);
}

void SCX_OP(vtime_running, struct task_struct *p)
{
	if ((s64)(p->scx.dsq_vtime - vtime_now) > 0)
		vtime_now = p->scx.dsq_vtime;
}

void SCX_OP(vtime_stopping, struct task_struct *p, bool runnable)
{
	p->scx.dsq_vtime += vtime_charge(p);
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
