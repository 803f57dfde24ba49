// SPDX-License-Identifier: GPL-2.0
/*
 * scx_bpf_exit() from the op named by exit_point (set in .rodata before load): the scheduler ends
 * with SCX_EXIT_UNREG_BPF, the code it passed and its formatted message.
 */
#include "scx_common.h"

enum exit_point {
	EXIT_SELECT_CPU = 1,
	EXIT_ENQUEUE,
	EXIT_DISPATCH,
	EXIT_ENABLE,
	EXIT_INIT_TASK,
	EXIT_INIT,
};

const volatile int exit_point;
struct scx_exit_record exit_rec;

#define EXIT_AT(point)                                                   \
	do {                                                             \
		if (exit_point == (point))                               \
			scx_bpf_exit(point, "exit at %d", point);        \
	} while (0)

s32 SCX_OP(exit_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;

	EXIT_AT(EXIT_SELECT_CPU);
	return scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
}

void SCX_OP(exit_enqueue, struct task_struct *p, u64 enq_flags)
{
	EXIT_AT(EXIT_ENQUEUE);
	scx_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

/* the kernel consumes SCX_DSQ_GLOBAL itself; dispatch only has to be called */
void SCX_OP(exit_dispatch, s32 cpu, struct task_struct *prev)
{
	EXIT_AT(EXIT_DISPATCH);
}

void SCX_OP(exit_enable, struct task_struct *p)
{
	EXIT_AT(EXIT_ENABLE);
}

s32 SCX_OP_SLEEPABLE(exit_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	EXIT_AT(EXIT_INIT_TASK);
	return 0;
}

s32 SCX_OP_SLEEPABLE(exit_init)
{
	EXIT_AT(EXIT_INIT);
	return 0;
}

void SCX_OP(exit_exit, struct scx_exit_info *ei)
{
	SCX_EXIT_RECORD(exit_rec, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops exit_ops = {
	.select_cpu = (void *)exit_select_cpu,
	.enqueue = (void *)exit_enqueue,
	.dispatch = (void *)exit_dispatch,
	.enable = (void *)exit_enable,
	.init_task = (void *)exit_init_task,
	.init = (void *)exit_init,
	.exit = (void *)exit_exit,
	.name = "exit",
};
