// SPDX-License-Identifier: GPL-2.0
/*
 * A central-dispatch scheduler: one CPU (central_cpu) makes every scheduling decision.
 *
 * Runnable tasks wait in one FIFO DSQ. A CPU other than the central one that runs out of work
 * raises its hand (want_work) and kicks the central CPU with SCX_KICK_PREEMPT, which then
 * dispatches: for each CPU with its hand up, the first waiting task allowed there goes to that
 * CPU's local DSQ (SCX_DSQ_LOCAL_ON | cpu) with an infinite slice, and the CPU is kicked
 * (SCX_KICK_IDLE: only if it went idle meanwhile). The central CPU runs its own tasks with a
 * finite slice so that it comes back to dispatch.
 *
 * Tasks elsewhere never see their slice run out: a BPF timer pinned to the central CPU fires
 * every slice_ns and, while tasks wait, preempts each CPU whose task has run a whole slice
 * (SCX_KICK_PREEMPT | SCX_KICK_WAIT: the timer returns once that task is off its CPU) and the
 * central CPU, which then hands out the waiting tasks. SCX_OPS_ENQ_LAST sends a preempted
 * task that is alone on its CPU back through ops.enqueue instead of keeping it running.
 * A syscall program kicks a CPU with the flags userspace passes.
 */
#include "scx_common.h"
#include "structops_loops.h"

#define MAX_CPUS 64
#define SHARED_DSQ 1
#define NR_FIRES 16
#define CLOCK_MONOTONIC 1

const volatile s32 central_cpu = 0;
const volatile u64 slice_ns = 5000000;

u32 nr_cpus;
bool want_work[MAX_CPUS];
/* whether each CPU other than the central one runs a task, and since when */
bool busy[MAX_CPUS];
u64 started_at[MAX_CPUS];
u64 dispatched_to[MAX_CPUS];
u64 nr_enqueued, nr_central_dispatches, nr_other_dispatches, nr_preempt_kicks, nr_fires;
u64 fire_at[NR_FIRES];
s64 timer_err;
struct scx_exit_record exit_rec;

struct central_timer {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct central_timer);
} central_timer SEC(".maps");

/* an index the verifier sees bounded: the mask is kept because clang cannot see through the asm */
static __always_inline u32 idx(u32 i)
{
	asm volatile("" : "+r"(i));
	return i & (MAX_CPUS - 1);
}

static __always_inline bool is_central(s32 cpu)
{
	return cpu == central_cpu;
}

s32 SCX_OP(central_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	/* where a task waits does not matter: the central CPU places it */
	return prev_cpu;
}

void SCX_OP(central_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 c;

	__sync_fetch_and_add(&nr_enqueued, 1);
	scx_insert(p, SHARED_DSQ, slice_ns, enq_flags);
	/* a CPU is waiting for work: the central CPU hands this task out now */
	bpf_for(c, 0, nr_cpus) {
		if (want_work[idx(c)]) {
			scx_bpf_kick_cpu(central_cpu, SCX_KICK_PREEMPT);
			return;
		}
	}
	/* or takes it itself if it has nothing to run */
	scx_bpf_kick_cpu(central_cpu, SCX_KICK_IDLE);
}

/* the first waiting task that may run on cpu goes to its local DSQ, to run until preempted */
static bool dispatch_to(s32 cpu)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;
	bool done = false;

	bpf_iter_scx_dsq_new(&it, SHARED_DSQ, 0);
	while ((p = bpf_iter_scx_dsq_next(&it))) {
		if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		scx_bpf_dsq_move_set_slice(&it, SCX_SLICE_INF);
		if (scx_bpf_dsq_move(&it, p, SCX_DSQ_LOCAL_ON | cpu, 0)) {
			done = true;
			break;
		}
	}
	bpf_iter_scx_dsq_destroy(&it);
	return done;
}

void SCX_OP(central_dispatch, s32 cpu, struct task_struct *prev)
{
	s32 c;

	if (!is_central(cpu)) {
		__sync_fetch_and_add(&nr_other_dispatches, 1);
		if (cpu >= 0 && cpu < MAX_CPUS)
			want_work[idx(cpu)] = true;
		scx_bpf_kick_cpu(central_cpu, SCX_KICK_PREEMPT);
		return;
	}
	__sync_fetch_and_add(&nr_central_dispatches, 1);
	bpf_for(c, 0, nr_cpus) {
		if (is_central(c) || !want_work[idx(c)])
			continue;
		if (!scx_bpf_dsq_nr_queued(SHARED_DSQ))
			break;
		if (dispatch_to(c)) {
			want_work[idx(c)] = false;
			__sync_fetch_and_add(&dispatched_to[idx(c)], 1);
			scx_bpf_kick_cpu(c, SCX_KICK_IDLE);
		}
	}
	if (scx_move_to_local(SHARED_DSQ))
		__sync_fetch_and_add(&dispatched_to[idx(cpu)], 1);
}

void SCX_OP(central_running, struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);

	if (cpu >= 0 && cpu < MAX_CPUS && !is_central(cpu)) {
		started_at[idx(cpu)] = scx_bpf_now();
		busy[idx(cpu)] = true;
	}
}

void SCX_OP(central_stopping, struct task_struct *p, bool runnable)
{
	s32 cpu = scx_bpf_task_cpu(p);

	if (cpu >= 0 && cpu < MAX_CPUS)
		busy[idx(cpu)] = false;
}

static int central_timerfn(void *map, int *key, struct bpf_timer *timer)
{
	u64 now = scx_bpf_now();
	u64 n = __sync_fetch_and_add(&nr_fires, 1);
	s32 c;

	if (n < NR_FIRES)
		fire_at[n & (NR_FIRES - 1)] = now;
	if (scx_bpf_dsq_nr_queued(SHARED_DSQ) > 0) {
		bpf_for(c, 0, nr_cpus) {
			if (is_central(c) || !busy[idx(c)] || now - started_at[idx(c)] < slice_ns)
				continue;
			__sync_fetch_and_add(&nr_preempt_kicks, 1);
			scx_bpf_kick_cpu(c, SCX_KICK_PREEMPT | SCX_KICK_WAIT);
		}
		scx_bpf_kick_cpu(central_cpu, SCX_KICK_PREEMPT);
	}
	bpf_timer_start(timer, slice_ns, BPF_F_TIMER_CPU_PIN);
	return 0;
}

s32 SCX_OP_SLEEPABLE(central_init)
{
	u32 key = 0;
	struct bpf_timer *timer;
	s32 err;
	s32 c;

	nr_cpus = scx_bpf_nr_cpu_ids();
	err = scx_bpf_create_dsq(SHARED_DSQ, -1);
	if (err)
		return err;
	/* every CPU starts out idle, waiting for the central CPU */
	bpf_for(c, 0, nr_cpus)
		want_work[idx(c)] = !is_central(c);
	timer = bpf_map_lookup_elem(&central_timer, &key);
	if (!timer)
		return -2;
	bpf_timer_init(timer, &central_timer, CLOCK_MONOTONIC);
	bpf_timer_set_callback(timer, central_timerfn);
	err = bpf_timer_start(timer, slice_ns, BPF_F_TIMER_CPU_PIN);
	timer_err = err;
	return err;
}

void SCX_OP(central_exit, struct scx_exit_info *ei)
{
	SCX_EXIT_RECORD(exit_rec, ei);
}

/* BPF_PROG_RUN: scx_bpf_kick_cpu() from whichever CPU the run happens on */
struct kick_args {
	s32 cpu;
	u64 flags;
};

SEC("syscall")
int kick(struct kick_args *a)
{
	scx_bpf_kick_cpu(a->cpu, a->flags);
	return 0;
}

SEC(".struct_ops.link")
struct sched_ext_ops central_ops = {
	.select_cpu = (void *)central_select_cpu,
	.enqueue = (void *)central_enqueue,
	.dispatch = (void *)central_dispatch,
	.running = (void *)central_running,
	.stopping = (void *)central_stopping,
	.init = (void *)central_init,
	.exit = (void *)central_exit,
	.flags = SCX_OPS_ENQ_LAST,
	.timeout_ms = 5000,
	.name = "central",
};
