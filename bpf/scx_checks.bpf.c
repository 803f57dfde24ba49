// SPDX-License-Identifier: GPL-2.0
/*
 * Small schedulers, one sched_ext_ops map each, for what the kernel's sched_ext selftests check.
 * Userspace attaches one map at a time; each does one thing the kernel must get right:
 *   nodispatch_ops   ops.select_cpu asks scx_bpf_select_cpu_dfl() but inserts nothing; enqueue
 *                    sends a task the default found an idle CPU for to SCX_DSQ_LOCAL (saw_local)
 *   ddsp_ops         every wake-up direct-dispatched to SCX_DSQ_LOCAL from ops.select_cpu
 *   ddsp_bad_ops     direct dispatch from ops.select_cpu to a DSQ that does not exist
 *   ddsp_twice_ops   two inserts from one ops.select_cpu
 *   select_vtime_ops vtime-ordered direct dispatch into a user DSQ, consumed by ops.dispatch
 *   vtime_local_ops  a vtime insert into SCX_DSQ_LOCAL (built-in DSQs are FIFO only)
 *   local_on_ops     ops.dispatch inserts into SCX_DSQ_LOCAL_ON | cpu, tasks looked up by pid
 *   create_dsq_ops   DSQs created and destroyed in ops.init, one per task in init_task/exit_task
 *   count_ops        counts init_task (fork or not), exit_task, enable, disable
 *   count_partial_ops  the same with SCX_OPS_SWITCH_PARTIAL (only SCHED_EXT tasks)
 *   cpumask_ops      records what ops.set_cpumask receives when a task's affinity changes
 *   move_ops         scx_bpf_dsq_move[_vtime] (with set_slice/set_vtime) from the DSQ iterator
 *   enq_select_ops   scx_bpf_select_cpu_dfl() from ops.enqueue (and from the select_cpu_of syscall
 *                    program): an idle CPU found there gets the task on its local DSQ
 *   allowed_ops      scx_bpf_select_cpu_and() within a one-CPU domain, from select_cpu and enqueue
 *   release_ops      ops.cpu_release (reason, the RT task) and ops.cpu_acquire around an RT task,
 *                    scx_bpf_reenqueue_local() from cpu_release
 * plus a syscall program that ends whichever scheduler is loaded with scx_bpf_exit().
 */
#include "scx_common.h"
#include "structops_loops.h"

#define BOGUS_DSQ 0xbadULL
#define VTIME_DSQ 7
#define NR_TEST_DSQS 256
#define TASK_DSQ_BASE 0x10000

const volatile u32 nr_cpus = 1;

bool saw_local;
u64 nr_ddsp, nr_consumed, nr_local_on;
u64 init_task_cnt, exit_task_cnt, enable_cnt, disable_cnt, init_fork_cnt, init_transition_cnt;
u64 dsqs_created, dsqs_live;
struct scx_exit_record exit_rec;

/* one ops.exit program per map: a struct_ops program belongs to one map */
#define EXIT_OP(pfx)                                                   \
	void SCX_OP(pfx##_exit, struct scx_exit_info *ei)              \
	{                                                              \
		SCX_EXIT_RECORD(exit_rec, ei);                         \
	}

EXIT_OP(nodsp)
EXIT_OP(ddsp)
EXIT_OP(ddsp_bad)
EXIT_OP(ddsp_twice)
EXIT_OP(svt)
EXIT_OP(vtl)
EXIT_OP(lon)
EXIT_OP(cdsq)
EXIT_OP(cnt)
EXIT_OP(cntp)

/* ---- nodispatch_ops ---- */

/* pid -> the default selection found an idle CPU */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, s32);
	__type(value, u8);
} force_local SEC(".maps");

s32 SCX_OP(nodsp_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 pid = p->pid;
	u8 v;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	v = is_idle;
	bpf_map_update_elem(&force_local, &pid, &v, BPF_ANY);
	return cpu;
}

void SCX_OP(nodsp_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 pid = p->pid;
	u8 *v = bpf_map_lookup_elem(&force_local, &pid);
	u64 dsq = SCX_DSQ_GLOBAL;

	if (v && *v) {
		*v = 0;
		saw_local = true;
		dsq = SCX_DSQ_LOCAL;
	}
	scx_insert(p, dsq, SCX_SLICE_DFL, enq_flags);
}

SEC(".struct_ops.link")
struct sched_ext_ops nodispatch_ops = {
	.select_cpu = (void *)nodsp_select_cpu,
	.enqueue = (void *)nodsp_enqueue,
	.exit = (void *)nodsp_exit,
	.name = "nodispatch",
};

/* ---- ddsp_ops, ddsp_bad_ops, ddsp_twice_ops ---- */

s32 SCX_OP(ddsp_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	__sync_fetch_and_add(&nr_ddsp, 1);
	scx_insert(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);
	return cpu;
}

s32 SCX_OP(ddsp_bad_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	scx_insert(p, BOGUS_DSQ, SCX_SLICE_DFL, 0);
	return prev_cpu;
}

s32 SCX_OP(ddsp_twice_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	scx_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, 0);
	scx_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, 0);
	return prev_cpu;
}

SEC(".struct_ops.link")
struct sched_ext_ops ddsp_ops = {
	.select_cpu = (void *)ddsp_select_cpu,
	.exit = (void *)ddsp_exit,
	.name = "ddsp",
};

SEC(".struct_ops.link")
struct sched_ext_ops ddsp_bad_ops = {
	.select_cpu = (void *)ddsp_bad_select_cpu,
	.exit = (void *)ddsp_bad_exit,
	.name = "ddsp_bad",
};

SEC(".struct_ops.link")
struct sched_ext_ops ddsp_twice_ops = {
	.select_cpu = (void *)ddsp_twice_select_cpu,
	.exit = (void *)ddsp_twice_exit,
	.name = "ddsp_twice",
};

/* ---- select_vtime_ops, vtime_local_ops ---- */

static u64 vtime_now;

s32 SCX_OP(svt_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	u64 vtime = p->scx.dsq_vtime;

	if ((s64)(vtime - vtime_now) < 0)
		vtime = vtime_now;
	scx_bpf_dsq_insert_vtime(p, VTIME_DSQ, SCX_SLICE_DFL, vtime, 0);
	return cpu;
}

void SCX_OP(svt_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_bpf_dsq_insert_vtime(p, VTIME_DSQ, SCX_SLICE_DFL, p->scx.dsq_vtime, enq_flags);
}

void SCX_OP(svt_dispatch, s32 cpu, struct task_struct *prev)
{
	if (scx_move_to_local(VTIME_DSQ))
		__sync_fetch_and_add(&nr_consumed, 1);
}

void SCX_OP(svt_running, struct task_struct *p)
{
	if ((s64)(p->scx.dsq_vtime - vtime_now) > 0)
		vtime_now = p->scx.dsq_vtime;
}

void SCX_OP(svt_stopping, struct task_struct *p, bool runnable)
{
	p->scx.dsq_vtime += (SCX_SLICE_DFL - p->scx.slice) * 100 / p->scx.weight;
}

s32 SCX_OP_SLEEPABLE(svt_init)
{
	return scx_bpf_create_dsq(VTIME_DSQ, -1);
}

s32 SCX_OP(vtl_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	scx_bpf_dsq_insert_vtime(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, p->scx.dsq_vtime, 0);
	return prev_cpu;
}

SEC(".struct_ops.link")
struct sched_ext_ops select_vtime_ops = {
	.select_cpu = (void *)svt_select_cpu,
	.enqueue = (void *)svt_enqueue,
	.dispatch = (void *)svt_dispatch,
	.running = (void *)svt_running,
	.stopping = (void *)svt_stopping,
	.init = (void *)svt_init,
	.exit = (void *)svt_exit,
	.name = "select_vtime",
};

SEC(".struct_ops.link")
struct sched_ext_ops vtime_local_ops = {
	.select_cpu = (void *)vtl_select_cpu,
	.exit = (void *)vtl_exit,
	.name = "vtime_local",
};

/* ---- local_on_ops ---- */

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4096);
	__type(value, s32);
} pids SEC(".maps");

struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;

s32 SCX_OP(lon_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	return prev_cpu;
}

void SCX_OP(lon_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 pid = p->pid;

	if (bpf_map_push_elem(&pids, &pid, 0))
		scx_bpf_error("queue full at pid %d", p->pid);
}

void SCX_OP(lon_dispatch, s32 cpu, struct task_struct *prev)
{
	struct task_struct *p;
	s32 pid, target;

	if (bpf_map_pop_elem(&pids, &pid))
		return;
	p = bpf_task_from_pid(pid);
	if (!p)
		return;
	/* any CPU for a task that may run everywhere, else the one it is on */
	if (p->nr_cpus_allowed == nr_cpus)
		target = bpf_get_prandom_u32() % nr_cpus;
	else
		target = scx_bpf_task_cpu(p);
	__sync_fetch_and_add(&nr_local_on, 1);
	scx_insert(p, SCX_DSQ_LOCAL_ON | target, SCX_SLICE_DFL, 0);
	bpf_task_release(p);
}

SEC(".struct_ops.link")
struct sched_ext_ops local_on_ops = {
	.select_cpu = (void *)lon_select_cpu,
	.enqueue = (void *)lon_enqueue,
	.dispatch = (void *)lon_dispatch,
	.exit = (void *)lon_exit,
	.timeout_ms = 1000,
	.name = "local_on",
};

/* ---- create_dsq_ops ---- */

s32 SCX_OP_SLEEPABLE(cdsq_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	s32 err = scx_bpf_create_dsq(TASK_DSQ_BASE + p->pid, -1);

	if (!err)
		__sync_fetch_and_add(&dsqs_live, 1);
	return err;
}

void SCX_OP(cdsq_exit_task, struct task_struct *p, struct scx_exit_task_args *args)
{
	scx_bpf_destroy_dsq(TASK_DSQ_BASE + p->pid);
	__sync_fetch_and_sub(&dsqs_live, 1);
}

s32 SCX_OP_SLEEPABLE(cdsq_init)
{
	u32 i;
	s32 err;

	/* create, destroy, create again: an ID is free once its DSQ is destroyed */
	bpf_for(i, 0, NR_TEST_DSQS) {
		err = scx_bpf_create_dsq(i, -1);
		if (err) {
			scx_bpf_error("create DSQ %u: %d", i, err);
			return err;
		}
		dsqs_created++;
	}
	bpf_for(i, 0, NR_TEST_DSQS) scx_bpf_destroy_dsq(i);
	bpf_for(i, 0, NR_TEST_DSQS) {
		err = scx_bpf_create_dsq(i, -1);
		if (err) {
			scx_bpf_error("create DSQ %u again: %d", i, err);
			return err;
		}
		dsqs_created++;
	}
	/* a second DSQ with a live ID is refused */
	err = scx_bpf_create_dsq(0, -1);
	if (err != -17) {
		scx_bpf_error("DSQ 0 created twice: %d", err);
		return -22;
	}
	return 0;
}

SEC(".struct_ops.link")
struct sched_ext_ops create_dsq_ops = {
	.init_task = (void *)cdsq_init_task,
	.exit_task = (void *)cdsq_exit_task,
	.init = (void *)cdsq_init,
	.exit = (void *)cdsq_exit,
	.name = "create_dsq",
};

/* ---- count_ops, count_partial_ops ---- */

#define COUNT_OPS(pfx)                                                                       \
	s32 SCX_OP_SLEEPABLE(pfx##_init_task, struct task_struct *p, struct scx_init_task_args *args) \
	{                                                                                    \
		__sync_fetch_and_add(&init_task_cnt, 1);                                     \
		if (args->fork)                                                              \
			__sync_fetch_and_add(&init_fork_cnt, 1);                             \
		else                                                                         \
			__sync_fetch_and_add(&init_transition_cnt, 1);                       \
		return 0;                                                                    \
	}                                                                                    \
	void SCX_OP(pfx##_exit_task, struct task_struct *p, struct scx_exit_task_args *args) \
	{                                                                                    \
		__sync_fetch_and_add(&exit_task_cnt, 1);                                     \
	}                                                                                    \
	void SCX_OP(pfx##_enable, struct task_struct *p)                                     \
	{                                                                                    \
		__sync_fetch_and_add(&enable_cnt, 1);                                        \
	}                                                                                    \
	void SCX_OP(pfx##_disable, struct task_struct *p)                                    \
	{                                                                                    \
		__sync_fetch_and_add(&disable_cnt, 1);                                       \
	}

COUNT_OPS(cnt)
COUNT_OPS(cntp)

SEC(".struct_ops.link")
struct sched_ext_ops count_ops = {
	.init_task = (void *)cnt_init_task,
	.exit_task = (void *)cnt_exit_task,
	.enable = (void *)cnt_enable,
	.disable = (void *)cnt_disable,
	.exit = (void *)cnt_exit,
	.name = "count",
};

SEC(".struct_ops.link")
struct sched_ext_ops count_partial_ops = {
	.init_task = (void *)cntp_init_task,
	.exit_task = (void *)cntp_exit_task,
	.enable = (void *)cntp_enable,
	.disable = (void *)cntp_disable,
	.exit = (void *)cntp_exit,
	.flags = SCX_OPS_SWITCH_PARTIAL,
	.name = "count_partial",
};

/* ---- cpumask_ops ---- */

u64 nr_set_cpumask, last_mask;
s32 last_set_pid, last_nr_allowed;

void SCX_OP(cmask_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

/* what the kernel passes: p->cpus_ptr after the change, read bit by bit */
void SCX_OP(cmask_set_cpumask, struct task_struct *p, const struct cpumask *cpumask)
{
	u64 mask = 0;
	u32 i;

	bpf_for(i, 0, 64) {
		if (i >= nr_cpus)
			break;
		if (bpf_cpumask_test_cpu(i, cpumask))
			mask |= 1ULL << i;
	}
	last_mask = mask;
	last_set_pid = p->pid;
	last_nr_allowed = p->nr_cpus_allowed;
	__sync_fetch_and_add(&nr_set_cpumask, 1);
}

EXIT_OP(cmask)

SEC(".struct_ops.link")
struct sched_ext_ops cpumask_ops = {
	.enqueue = (void *)cmask_enqueue,
	.set_cpumask = (void *)cmask_set_cpumask,
	.exit = (void *)cmask_exit,
	.name = "cpumask",
};

/* ---- move_ops: scx_bpf_dsq_move[_vtime] from the DSQ iterator ---- */

#define FIFO_DSQ 3
#define PRIQ_DSQ 4
#define MOVE_SLICE (SCX_SLICE_DFL / 4)

u64 nr_moved, nr_moved_vtime, nr_refused, nr_dispatches;
bool scx_bpf_dsq_move_vtime(struct bpf_iter_scx_dsq *it__iter, struct task_struct *p, u64 dsq_id, u64 enq_flags) __ksym;
void scx_bpf_dsq_move_set_vtime(struct bpf_iter_scx_dsq *it__iter, u64 vtime) __ksym;

void SCX_OP(move_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_insert(p, FIFO_DSQ, SCX_SLICE_DFL, enq_flags);
}

/*
 * The FIFO DSQ's head goes to this CPU's local DSQ with a quarter slice, or, every fourth
 * dispatch, through the vtime-ordered DSQ (its pid as the vtime). Moving the same task again
 * from the same iteration must fail: it is no longer on the DSQ being iterated.
 */
void SCX_OP(move_dispatch, s32 cpu, struct task_struct *prev)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;
	u64 n = __sync_fetch_and_add(&nr_dispatches, 1);

	bpf_iter_scx_dsq_new(&it, FIFO_DSQ, 0);
	p = bpf_iter_scx_dsq_next(&it);
	if (p) {
		if (n % 4 == 3) {
			scx_bpf_dsq_move_set_vtime(&it, p->pid);
			if (scx_bpf_dsq_move_vtime(&it, p, PRIQ_DSQ, 0))
				__sync_fetch_and_add(&nr_moved_vtime, 1);
		} else {
			scx_bpf_dsq_move_set_slice(&it, MOVE_SLICE);
			if (scx_bpf_dsq_move(&it, p, SCX_DSQ_LOCAL, 0))
				__sync_fetch_and_add(&nr_moved, 1);
		}
		if (!scx_bpf_dsq_move(&it, p, SCX_DSQ_GLOBAL, 0))
			__sync_fetch_and_add(&nr_refused, 1);
	}
	bpf_iter_scx_dsq_destroy(&it);
	scx_move_to_local(PRIQ_DSQ);
}

s32 SCX_OP_SLEEPABLE(move_init)
{
	s32 err = scx_bpf_create_dsq(FIFO_DSQ, -1);

	return err ?: scx_bpf_create_dsq(PRIQ_DSQ, -1);
}

EXIT_OP(move)

SEC(".struct_ops.link")
struct sched_ext_ops move_ops = {
	.enqueue = (void *)move_enqueue,
	.dispatch = (void *)move_dispatch,
	.init = (void *)move_init,
	.exit = (void *)move_exit,
	.name = "move",
};

/* ---- release_ops: an RT task takes a CPU from sched_ext and gives it back ---- */

u64 nr_release, nr_release_rt, nr_acquire, nr_reenq;
s32 release_pid;

void SCX_OP(rel_enqueue, struct task_struct *p, u64 enq_flags)
{
	scx_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
}

void SCX_OP(rel_cpu_acquire, s32 cpu, struct scx_cpu_acquire_args *args)
{
	__sync_fetch_and_add(&nr_acquire, 1);
}

/* what waited on this CPU's local DSQ goes back through ops.enqueue, to run elsewhere */
void SCX_OP(rel_cpu_release, s32 cpu, struct scx_cpu_release_args *args)
{
	__sync_fetch_and_add(&nr_release, 1);
	if (args->reason == SCX_CPU_PREEMPT_RT)
		__sync_fetch_and_add(&nr_release_rt, 1);
	release_pid = args->task->pid;
	__sync_fetch_and_add(&nr_reenq, scx_bpf_reenqueue_local());
}

EXIT_OP(rel)

SEC(".struct_ops.link")
struct sched_ext_ops release_ops = {
	.enqueue = (void *)rel_enqueue,
	.cpu_acquire = (void *)rel_cpu_acquire,
	.cpu_release = (void *)rel_cpu_release,
	.exit = (void *)rel_exit,
	.name = "release",
};

/* ---- enq_select_ops: the default CPU selection from ops.enqueue and from a syscall program ---- */

u64 nr_enq_idle, nr_enq_busy;

s32 SCX_OP(esc_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	/* no choice here: every wake-up reaches ops.enqueue */
	return prev_cpu;
}

void SCX_OP(esc_enqueue, struct task_struct *p, u64 enq_flags)
{
	bool idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, scx_bpf_task_cpu(p), 0, &idle);

	if (idle) {
		__sync_fetch_and_add(&nr_enq_idle, 1);
		scx_insert(p, SCX_DSQ_LOCAL_ON | cpu, SCX_SLICE_DFL, enq_flags);
	} else {
		__sync_fetch_and_add(&nr_enq_busy, 1);
		scx_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, enq_flags);
	}
}

EXIT_OP(esc)

SEC(".struct_ops.link")
struct sched_ext_ops enq_select_ops = {
	.select_cpu = (void *)esc_select_cpu,
	.enqueue = (void *)esc_enqueue,
	.exit = (void *)esc_exit,
	.timeout_ms = 1000,
	.name = "enq_select",
};

/* BPF_PROG_RUN: the CPU the default selection picks for a task, or -EBUSY when none is idle */
SEC("syscall")
int select_cpu_of(s32 *pid)
{
	struct task_struct *p = bpf_task_from_pid(*pid);
	bool idle = false;
	s32 cpu;

	if (!p)
		return -22;
	cpu = scx_bpf_select_cpu_dfl(p, bpf_get_smp_processor_id(), 0, &idle);
	bpf_task_release(p);
	return idle ? cpu : -16;
}

/* ---- allowed_ops: idle CPUs picked only within a domain (scx_bpf_select_cpu_and) ---- */

struct bpf_cpumask *bpf_cpumask_create(void) __ksym;
void bpf_cpumask_release(struct bpf_cpumask *cpumask) __ksym;
void bpf_cpumask_set_cpu(u32 cpu, struct bpf_cpumask *cpumask) __ksym;
s32 scx_bpf_select_cpu_and(struct task_struct *p, s32 prev_cpu, u64 wake_flags, const struct cpumask *cpus_allowed,
			   u64 flags) __ksym;

/* the domain: one CPU */
const volatile u32 domain_cpu = 0;
u64 nr_in_domain, nr_domain_busy;

/* a CPU the selection returned is claimed (no longer idle) and, when p may run there, the domain's */
static __always_inline void check_pick(struct task_struct *p, s32 cpu)
{
	if (scx_bpf_test_and_clear_cpu_idle(cpu))
		scx_bpf_error("CPU %d should be marked as busy", cpu);
	if (bpf_cpumask_test_cpu(domain_cpu, p->cpus_ptr) && cpu != domain_cpu)
		scx_bpf_error("CPU %d not in the allowed domain for %d", cpu, p->pid);
	__sync_fetch_and_add(&nr_in_domain, 1);
}

static __always_inline s32 pick_in_domain(struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct bpf_cpumask *mask = bpf_cpumask_create();
	s32 cpu;

	if (!mask) {
		scx_bpf_error("no cpumask");
		return -12;
	}
	bpf_cpumask_set_cpu(domain_cpu, mask);
	cpu = scx_bpf_select_cpu_and(p, prev_cpu, wake_flags, (const struct cpumask *)mask, 0);
	bpf_cpumask_release(mask);
	return cpu;
}

s32 SCX_OP(alw_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	s32 cpu = pick_in_domain(p, prev_cpu, wake_flags);

	if (cpu < 0) {
		__sync_fetch_and_add(&nr_domain_busy, 1);
		return prev_cpu;
	}
	check_pick(p, cpu);
	scx_insert(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);
	return cpu;
}

void SCX_OP(alw_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu;

	scx_insert(p, SCX_DSQ_GLOBAL, SCX_SLICE_DFL, 0);
	/* wake an idle CPU of the domain that may run p */
	cpu = pick_in_domain(p, scx_bpf_task_cpu(p), 0);
	if (cpu >= 0) {
		check_pick(p, cpu);
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	}
}

EXIT_OP(alw)

SEC(".struct_ops.link")
struct sched_ext_ops allowed_ops = {
	.select_cpu = (void *)alw_select_cpu,
	.enqueue = (void *)alw_enqueue,
	.exit = (void *)alw_exit,
	.name = "allowed",
};

/* ---- BPF_PROG_RUN: end the loaded scheduler from a syscall program ---- */

SEC("syscall")
int exit_from_syscall(void *ctx)
{
	scx_bpf_exit(0xdeadbeef, "exit from a syscall program");
	return 0;
}
