// SPDX-License-Identifier: GPL-2.0
/*
 * Every op but tick and the dump ops, each doing the least it may: tasks go through one user DSQ.
 * It must load, attach and run; `calls` counts how often the kernel called each op.
 */
#include "scx_common.h"

#define DSQ 0

enum { C_SELECT_CPU, C_ENQUEUE, C_DEQUEUE, C_DISPATCH, C_RUNNABLE, C_RUNNING, C_STOPPING, C_QUIESCENT,
       C_YIELD, C_CORE_SCHED_BEFORE, C_SET_WEIGHT, C_SET_CPUMASK, C_UPDATE_IDLE, C_CPU_ACQUIRE,
       C_CPU_RELEASE, C_INIT_TASK, C_EXIT_TASK, C_ENABLE, C_DISABLE, C_CGROUP_INIT, C_CGROUP_EXIT,
       C_CGROUP_PREP_MOVE, C_CGROUP_MOVE, C_CGROUP_CANCEL_MOVE, C_CGROUP_SET_WEIGHT,
       C_CGROUP_SET_BANDWIDTH, C_CPU_ONLINE, C_CPU_OFFLINE, C_INIT, C_EXIT, C_NR };

u64 calls[C_NR];
struct scx_exit_record exit_rec;

#define COUNT(c) __sync_fetch_and_add(&calls[c], 1)

s32 SCX_OP(max_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	COUNT(C_SELECT_CPU);
	return prev_cpu;
}

void SCX_OP(max_enqueue, struct task_struct *p, u64 enq_flags)
{
	COUNT(C_ENQUEUE);
	scx_insert(p, DSQ, SCX_SLICE_DFL, enq_flags);
}

void SCX_OP(max_dequeue, struct task_struct *p, u64 deq_flags) { COUNT(C_DEQUEUE); }

void SCX_OP(max_dispatch, s32 cpu, struct task_struct *prev)
{
	COUNT(C_DISPATCH);
	scx_move_to_local(DSQ);
}

void SCX_OP(max_runnable, struct task_struct *p, u64 enq_flags) { COUNT(C_RUNNABLE); }
void SCX_OP(max_running, struct task_struct *p) { COUNT(C_RUNNING); }
void SCX_OP(max_stopping, struct task_struct *p, bool runnable) { COUNT(C_STOPPING); }
void SCX_OP(max_quiescent, struct task_struct *p, u64 deq_flags) { COUNT(C_QUIESCENT); }

bool SCX_OP(max_yield, struct task_struct *from, struct task_struct *to)
{
	COUNT(C_YIELD);
	return false;
}

bool SCX_OP(max_core_sched_before, struct task_struct *a, struct task_struct *b)
{
	COUNT(C_CORE_SCHED_BEFORE);
	return false;
}

void SCX_OP(max_set_weight, struct task_struct *p, u32 weight) { COUNT(C_SET_WEIGHT); }
void SCX_OP(max_set_cpumask, struct task_struct *p, const struct cpumask *cpumask) { COUNT(C_SET_CPUMASK); }
void SCX_OP(max_update_idle, s32 cpu, bool idle) { COUNT(C_UPDATE_IDLE); }
void SCX_OP(max_cpu_acquire, s32 cpu, struct scx_cpu_acquire_args *args) { COUNT(C_CPU_ACQUIRE); }
void SCX_OP(max_cpu_release, s32 cpu, struct scx_cpu_release_args *args) { COUNT(C_CPU_RELEASE); }

s32 SCX_OP_SLEEPABLE(max_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	COUNT(C_INIT_TASK);
	return 0;
}

void SCX_OP(max_exit_task, struct task_struct *p, struct scx_exit_task_args *args) { COUNT(C_EXIT_TASK); }
void SCX_OP(max_enable, struct task_struct *p) { COUNT(C_ENABLE); }
void SCX_OP(max_disable, struct task_struct *p) { COUNT(C_DISABLE); }

s32 SCX_OP_SLEEPABLE(max_cgroup_init, struct cgroup *cgrp, struct scx_cgroup_init_args *args)
{
	COUNT(C_CGROUP_INIT);
	return 0;
}

void SCX_OP_SLEEPABLE(max_cgroup_exit, struct cgroup *cgrp) { COUNT(C_CGROUP_EXIT); }

s32 SCX_OP_SLEEPABLE(max_cgroup_prep_move, struct task_struct *p, struct cgroup *from, struct cgroup *to)
{
	COUNT(C_CGROUP_PREP_MOVE);
	return 0;
}

void SCX_OP(max_cgroup_move, struct task_struct *p, struct cgroup *from, struct cgroup *to) { COUNT(C_CGROUP_MOVE); }
void SCX_OP(max_cgroup_cancel_move, struct task_struct *p, struct cgroup *from, struct cgroup *to)
{
	COUNT(C_CGROUP_CANCEL_MOVE);
}
void SCX_OP(max_cgroup_set_weight, struct cgroup *cgrp, u32 weight) { COUNT(C_CGROUP_SET_WEIGHT); }
void SCX_OP(max_cgroup_set_bandwidth, struct cgroup *cgrp, u64 period_us, u64 quota_us, u64 burst_us)
{
	COUNT(C_CGROUP_SET_BANDWIDTH);
}
void SCX_OP_SLEEPABLE(max_cpu_online, s32 cpu) { COUNT(C_CPU_ONLINE); }
void SCX_OP_SLEEPABLE(max_cpu_offline, s32 cpu) { COUNT(C_CPU_OFFLINE); }

s32 SCX_OP_SLEEPABLE(max_init)
{
	COUNT(C_INIT);
	return scx_bpf_create_dsq(DSQ, -1);
}

void SCX_OP_SLEEPABLE(max_exit, struct scx_exit_info *ei)
{
	COUNT(C_EXIT);
	SCX_EXIT_RECORD(exit_rec, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops maximal_ops = {
	.select_cpu = (void *)max_select_cpu,
	.enqueue = (void *)max_enqueue,
	.dequeue = (void *)max_dequeue,
	.dispatch = (void *)max_dispatch,
	.runnable = (void *)max_runnable,
	.running = (void *)max_running,
	.stopping = (void *)max_stopping,
	.quiescent = (void *)max_quiescent,
	.yield = (void *)max_yield,
	.core_sched_before = (void *)max_core_sched_before,
	.set_weight = (void *)max_set_weight,
	.set_cpumask = (void *)max_set_cpumask,
	.update_idle = (void *)max_update_idle,
	.cpu_acquire = (void *)max_cpu_acquire,
	.cpu_release = (void *)max_cpu_release,
	.init_task = (void *)max_init_task,
	.exit_task = (void *)max_exit_task,
	.enable = (void *)max_enable,
	.disable = (void *)max_disable,
	.cgroup_init = (void *)max_cgroup_init,
	.cgroup_exit = (void *)max_cgroup_exit,
	.cgroup_prep_move = (void *)max_cgroup_prep_move,
	.cgroup_move = (void *)max_cgroup_move,
	.cgroup_cancel_move = (void *)max_cgroup_cancel_move,
	.cgroup_set_weight = (void *)max_cgroup_set_weight,
	.cgroup_set_bandwidth = (void *)max_cgroup_set_bandwidth,
	.cpu_online = (void *)max_cpu_online,
	.cpu_offline = (void *)max_cpu_offline,
	.init = (void *)max_init,
	.exit = (void *)max_exit,
	.name = "maximal",
};
