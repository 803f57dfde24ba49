// SPDX-License-Identifier: GPL-2.0
/*
 * A FIFO scheduler that breaks one rule on purpose, chosen by `mode` in .rodata before load:
 *   1: inserts every task into a DSQ that does not exist (SCX_EXIT_ERROR, "non-existent DSQ")
 *   2 (the default): never queues tasks whose name starts with "stall", nor the task of every
 *      `stall_nth`-th enqueue (50): the watchdog ends the scheduler with SCX_EXIT_ERROR_STALL
 *      after timeout_ms. Only tasks that are enqueued stall: ext.c keeps running a task whose
 *      slice ran out while nothing else is queued, so with no more runnable tasks than CPUs
 *      nothing is ever enqueued after the first wake-up, and nothing stalls.
 *   3: calls scx_bpf_error() on the 100th enqueue (SCX_EXIT_ERROR_BPF)
 *   4: calls scx_bpf_dump() from ops.enqueue, where the kernel allows it only in ops.dump*
 * An error exit's debug dump carries what ops.dump, dump_cpu and dump_task add to it.
 * Everything else it schedules correctly, through one shared DSQ.
 */
#include "scx_common.h"

#define SHARED_DSQ 1
#define BOGUS_DSQ 0xdeadbeefULL

const volatile int mode = 2;
const volatile u64 stall_nth = 50;
u64 nr_enqueued, nr_dropped;
struct scx_exit_record exit_rec;

void SCX_OP(bad_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 n = __sync_fetch_and_add(&nr_enqueued, 1) + 1;

	if (mode == 1) {
		scx_insert(p, BOGUS_DSQ, SCX_SLICE_DFL, enq_flags);
		return;
	}
	if (mode == 2 && ((p->comm[0] == 's' && p->comm[1] == 't' && p->comm[2] == 'a' && p->comm[3] == 'l' &&
			   p->comm[4] == 'l') ||
			  (stall_nth && n % stall_nth == 0))) {
		__sync_fetch_and_add(&nr_dropped, 1);
		return;
	}
	if (mode == 3 && n == 100)
		scx_bpf_error("enqueue #%llu of pid %d", n, p->pid);
	if (mode == 4)
		scx_bpf_dump("enqueue of pid %d\n", p->pid);
	scx_insert(p, SHARED_DSQ, SCX_SLICE_DFL, enq_flags);
}

void SCX_OP(bad_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_move_to_local(SHARED_DSQ);
}

void SCX_OP(bad_dump, struct scx_dump_ctx *dctx)
{
	/* one line in two calls, then a second line */
	scx_bpf_dump("bad: mode %d, exit kind %d", mode, dctx->kind);
	scx_bpf_dump(", %llu enqueued\n", nr_enqueued);
	scx_bpf_dump("bad: %llu dropped", nr_dropped);
}

void SCX_OP(bad_dump_cpu, struct scx_dump_ctx *dctx, s32 cpu, bool idle)
{
	if (!idle)
		scx_bpf_dump("queued on the shared DSQ: %d", scx_bpf_dsq_nr_queued(SHARED_DSQ));
}

void SCX_OP(bad_dump_task, struct scx_dump_ctx *dctx, struct task_struct *p)
{
	scx_bpf_dump("pid %d weight %u", p->pid, p->scx.weight);
}

s32 SCX_OP_SLEEPABLE(bad_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

void SCX_OP(bad_exit, struct scx_exit_info *ei)
{
	SCX_EXIT_RECORD(exit_rec, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops bad_ops = {
	.enqueue = (void *)bad_enqueue,
	.dispatch = (void *)bad_dispatch,
	.dump = (void *)bad_dump,
	.dump_cpu = (void *)bad_dump_cpu,
	.dump_task = (void *)bad_dump_task,
	.init = (void *)bad_init,
	.exit = (void *)bad_exit,
	.timeout_ms = 1000,
	.name = "bad",
};
