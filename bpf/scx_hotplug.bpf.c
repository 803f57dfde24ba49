// SPDX-License-Identifier: GPL-2.0
/*
 * CPU hotplug and a scheduler: `cb_ops` implements ops.cpu_online/cpu_offline, which end the
 * scheduler themselves with scx_bpf_exit() and a restart code (after a sleepable kfunc, to show
 * the hotplug ops may block); `nocb_ops` has neither, so the kernel ends it with
 * SCX_EXIT_UNREG_KERN when a CPU comes or goes, or, at attach, when a CPU did since userspace
 * read the hotplug sequence it put in `hotplug_seq`.
 */
#include "scx_common.h"

/* the low bits of the exit code: a hotplug exit, and which way the CPU went */
#define HP_EXIT_REASON 1ULL
#define HP_ONLINING 2ULL

s32 hp_cpu = -1;
struct scx_exit_record exit_rec;

static void hp_exit(s32 cpu, bool onlining)
{
	s64 code = SCX_ECODE_ACT_RESTART | HP_EXIT_REASON;

	/* its result does not matter: the call shows the op may sleep */
	scx_bpf_create_dsq(0, -1);
	hp_cpu = cpu;
	if (onlining)
		scx_bpf_exit(code | HP_ONLINING, "cpu %d went online", cpu);
	else
		scx_bpf_exit(code, "cpu %d went offline", cpu);
}

void SCX_OP_SLEEPABLE(hp_cpu_online, s32 cpu)
{
	hp_exit(cpu, true);
}

void SCX_OP_SLEEPABLE(hp_cpu_offline, s32 cpu)
{
	hp_exit(cpu, false);
}

void SCX_OP(hp_exit_cb, struct scx_exit_info *ei)
{
	SCX_EXIT_RECORD(exit_rec, ei);
}

void SCX_OP(hp_exit_nocb, struct scx_exit_info *ei)
{
	SCX_EXIT_RECORD(exit_rec, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops cb_ops = {
	.cpu_online = (void *)hp_cpu_online,
	.cpu_offline = (void *)hp_cpu_offline,
	.exit = (void *)hp_exit_cb,
	.timeout_ms = 1000,
	.name = "hotplug_cb",
};

SEC(".struct_ops.link")
struct sched_ext_ops nocb_ops = {
	.exit = (void *)hp_exit_nocb,
	.timeout_ms = 1000,
	.name = "hotplug_nocb",
};
