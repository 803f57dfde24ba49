// SPDX-License-Identifier: GPL-2.0
/*
 * NUMA-aware scheduling with per-node idle tracking (SCX_OPS_BUILTIN_IDLE_PER_NODE): one DSQ per
 * node, created on that node; a waking task gets an idle CPU of the node it last ran on
 * (SCX_PICK_IDLE_IN_NODE), or any CPU of that node, and a CPU only pulls from its own node's
 * DSQ, so tasks never leave their node. Each pick is checked: the CPU must be claimed (no longer
 * in the node's idle mask) and in the node.
 */
#include "scx_common.h"
#include "structops_loops.h"

int scx_bpf_cpu_node(s32 cpu) __ksym;
u32 scx_bpf_nr_node_ids(void) __ksym;
const struct cpumask *scx_bpf_get_idle_cpumask_node(int node) __ksym;
s32 scx_bpf_pick_idle_cpu_node(const struct cpumask *cpus_allowed, int node, u64 flags) __ksym;
s32 scx_bpf_pick_any_cpu_node(const struct cpumask *cpus_allowed, int node, u64 flags) __ksym;

u64 nr_idle_picks, nr_any_picks, nr_dsqs;
struct scx_exit_record exit_rec;

static __always_inline bool idle_in_node(s32 cpu, int node)
{
	const struct cpumask *idle = scx_bpf_get_idle_cpumask_node(node);
	bool ret = bpf_cpumask_test_cpu(cpu, idle);

	scx_bpf_put_idle_cpumask(idle);
	return ret;
}

s32 SCX_OP(numa_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	int node = scx_bpf_cpu_node(scx_bpf_task_cpu(p));
	s32 cpu = scx_bpf_pick_idle_cpu_node(p->cpus_ptr, node, SCX_PICK_IDLE_IN_NODE);

	if (cpu >= 0) {
		__sync_fetch_and_add(&nr_idle_picks, 1);
	} else {
		cpu = scx_bpf_pick_any_cpu_node(p->cpus_ptr, node, SCX_PICK_IDLE_IN_NODE);
		__sync_fetch_and_add(&nr_any_picks, 1);
	}
	if (idle_in_node(cpu, node))
		scx_bpf_error("CPU %d is still idle after the pick", cpu);
	if (scx_bpf_cpu_node(cpu) != node)
		scx_bpf_error("CPU %d is not in node %d", cpu, node);
	return cpu;
}

void SCX_OP(numa_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_insert(p, scx_bpf_cpu_node(scx_bpf_task_cpu(p)), SCX_SLICE_DFL, enq_flags);
}

void SCX_OP(numa_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_move_to_local(scx_bpf_cpu_node(cpu));
}

s32 SCX_OP_SLEEPABLE(numa_init)
{
	int node;
	s32 err;

	bpf_for(node, 0, scx_bpf_nr_node_ids()) {
		err = scx_bpf_create_dsq(node, node);
		if (err)
			return err;
		nr_dsqs++;
	}
	return 0;
}

void SCX_OP(numa_exit, struct scx_exit_info *ei)
{
	SCX_EXIT_RECORD(exit_rec, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops numa_ops = {
	.select_cpu = (void *)numa_select_cpu,
	.enqueue = (void *)numa_enqueue,
	.dispatch = (void *)numa_dispatch,
	.init = (void *)numa_init,
	.exit = (void *)numa_exit,
	.flags = SCX_OPS_BUILTIN_IDLE_PER_NODE,
	.name = "numa",
};
