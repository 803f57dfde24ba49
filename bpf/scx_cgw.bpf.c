// SPDX-License-Identifier: GPL-2.0
/*
 * A cgroup-weighted vtime scheduler: CPU time is shared between cgroups by their cpu.weight,
 * then between the tasks of a cgroup by their own weights (flatcg's idea, flattened to one level:
 * every cgroup competes with every other by its own weight, its place in the hierarchy aside;
 * tasks of the root cgroup compete by their own weight, as CFS runs them).
 *
 * Every task waits in one shared DSQ ordered by virtual time. A task of cgroup C with weight w
 * runs at an effective weight of C's weight x w / (the weights of C's runnable tasks), so its
 * vtime advances by (time run) x 100 / that: each runnable cgroup's tasks together advance at
 * the rate of one task of the cgroup's weight. The weights come from ops.cgroup_init and
 * ops.cgroup_set_weight, each cgroup's runnable weight from ops.runnable / ops.quiescent (with
 * the cgroup scx_bpf_task_cgroup() gives, recorded per task so a move or a weight change in
 * between cannot unbalance it). Per-cgroup state lives in cgroup local storage (created by
 * ops.cgroup_init, deleted by ops.cgroup_exit); a task finds its cgroup again by id
 * (bpf_cgroup_from_id). The cgroup ops are counted for userspace; ops.cgroup_prep_move
 * refuses to move task `deny_pid`, so that the cancel path can be seen.
 */
#include "scx_common.h"

#define SHARED_DSQ 0
/* the root cgroup's id (kernfs gives it the first one) */
#define ROOT_CGID 1

struct cgw_cgrp {
	u64 weight;
	/* the weights of its runnable tasks */
	u64 runnable_weight;
};

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cgw_cgrp);
} cgrps SEC(".maps");

struct cgroup *bpf_cgroup_from_id(u64 cgid) __ksym;

/* what ops.runnable added to which cgroup, taken back by ops.quiescent */
struct cgw_task {
	u64 cgid;
	u64 weight;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cgw_task);
} tasks SEC(".maps");

static u64 vtime_now;
u64 nr_cgroup_init, nr_cgroup_exit, nr_prep_move, nr_move, nr_cancel_move, nr_set_weight;
/* the last ops.cgroup_set_weight: which cgroup, what weight */
u64 last_weight_cgid, last_weight;
/* the last ops.cgroup_move: the task's pid, from, to */
u64 last_move_pid, last_move_from, last_move_to;
u64 deny_pid;
/* the last ops.cgroup_set_bandwidth and the cpu.max the last ops.cgroup_init saw */
u64 nr_set_bandwidth, last_bw_cgid, last_bw_period, last_bw_quota, last_bw_burst;
u64 last_init_cgid, last_init_period, last_init_quota;
struct scx_exit_record exit_rec;

/* add d (signed) to the runnable weight of cgroup cgid; its weight, 0 when it has no state */
static __always_inline u64 cgrp_charge(u64 cgid, s64 d, u64 *runnable)
{
	struct cgroup *cgrp = bpf_cgroup_from_id(cgid);
	struct cgw_cgrp *cg;
	u64 w = 0;

	if (!cgrp)
		return 0;
	cg = bpf_cgrp_storage_get(&cgrps, cgrp, 0, 0);
	if (cg) {
		if (d)
			__sync_fetch_and_add(&cg->runnable_weight, d);
		w = cg->weight;
		*runnable = cg->runnable_weight;
	}
	bpf_cgroup_release(cgrp);
	return w;
}

/* the vtime a run of (SCX_SLICE_DFL - slice) costs p */
static __always_inline u64 vtime_charge(struct task_struct *p)
{
	u64 used = SCX_SLICE_DFL - p->scx.slice;
	struct cgw_task *tc = bpf_task_storage_get(&tasks, p, 0, 0);
	u64 weight, runnable = 0;

	if (!tc || tc->cgid == ROOT_CGID || !tc->cgid)
		return used * 100 / p->scx.weight;
	weight = cgrp_charge(tc->cgid, 0, &runnable);
	if (!weight || !runnable)
		return used * 100 / p->scx.weight;
	return used * 100 * runnable / (weight * p->scx.weight);
}

s32 SCX_OP(cgw_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);

	if (is_idle)
		scx_insert(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);
	return cpu;
}

void SCX_OP(cgw_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime;

	if ((s64)(vtime - (vtime_now - SCX_SLICE_DFL)) < 0)
		vtime = vtime_now - SCX_SLICE_DFL;
	scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, SCX_SLICE_DFL, vtime, enq_flags);
}

void SCX_OP(cgw_dispatch, s32 cpu, struct task_struct *prev)
{
	/* keep prev while it is still the furthest behind (see scx_vtime) */
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
			prev->scx.dsq_vtime = vtime;
			prev->scx.slice = SCX_SLICE_DFL;
			return;
		}
	}
	scx_move_to_local(SHARED_DSQ);
}

void SCX_OP(cgw_runnable, struct task_struct *p, u64 enq_flags)
{
	struct cgw_task *tc = bpf_task_storage_get(&tasks, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	struct cgroup *cgrp;
	struct cgw_cgrp *cg;

	if (!tc)
		return;
	cgrp = scx_bpf_task_cgroup(p);
	tc->cgid = cgrp->kn->id;
	tc->weight = p->scx.weight;
	cg = bpf_cgrp_storage_get(&cgrps, cgrp, 0, 0);
	if (cg)
		__sync_fetch_and_add(&cg->runnable_weight, tc->weight);
	bpf_cgroup_release(cgrp);
}

void SCX_OP(cgw_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct cgw_task *tc = bpf_task_storage_get(&tasks, p, 0, 0);
	u64 runnable;

	if (!tc || !tc->cgid)
		return;
	cgrp_charge(tc->cgid, -(s64)tc->weight, &runnable);
	tc->cgid = 0;
}

void SCX_OP(cgw_running, struct task_struct *p)
{
	if ((s64)(p->scx.dsq_vtime - vtime_now) > 0)
		vtime_now = p->scx.dsq_vtime;
}

void SCX_OP(cgw_stopping, struct task_struct *p, bool runnable)
{
	p->scx.dsq_vtime += vtime_charge(p);
}

void SCX_OP(cgw_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
}

s32 SCX_OP_SLEEPABLE(cgw_cgroup_init, struct cgroup *cgrp, struct scx_cgroup_init_args *args)
{
	struct cgw_cgrp *cg = bpf_cgrp_storage_get(&cgrps, cgrp, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	__sync_fetch_and_add(&nr_cgroup_init, 1);
	last_init_cgid = cgrp->kn->id;
	last_init_period = args->bw_period_us;
	last_init_quota = args->bw_quota_us;
	if (!cg)
		return -12; /* -ENOMEM */
	cg->weight = args->weight;
	return 0;
}

void SCX_OP(cgw_cgroup_exit, struct cgroup *cgrp)
{
	__sync_fetch_and_add(&nr_cgroup_exit, 1);
	bpf_cgrp_storage_delete(&cgrps, cgrp);
}

void SCX_OP(cgw_cgroup_set_weight, struct cgroup *cgrp, u32 weight)
{
	struct cgw_cgrp *cg = bpf_cgrp_storage_get(&cgrps, cgrp, 0, 0);

	__sync_fetch_and_add(&nr_set_weight, 1);
	last_weight_cgid = cgrp->kn->id;
	last_weight = weight;
	if (cg)
		cg->weight = weight;
}

void SCX_OP(cgw_cgroup_set_bandwidth, struct cgroup *cgrp, u64 period_us, u64 quota_us, u64 burst_us)
{
	__sync_fetch_and_add(&nr_set_bandwidth, 1);
	last_bw_cgid = cgrp->kn->id;
	last_bw_period = period_us;
	last_bw_quota = quota_us;
	last_bw_burst = burst_us;
}

s32 SCX_OP_SLEEPABLE(cgw_cgroup_prep_move, struct task_struct *p, struct cgroup *from, struct cgroup *to)
{
	__sync_fetch_and_add(&nr_prep_move, 1);
	if (deny_pid && p->pid == deny_pid)
		return -16; /* -EBUSY */
	return 0;
}

void SCX_OP(cgw_cgroup_move, struct task_struct *p, struct cgroup *from, struct cgroup *to)
{
	__sync_fetch_and_add(&nr_move, 1);
	last_move_pid = p->pid;
	last_move_from = from->kn->id;
	last_move_to = to->kn->id;
}

void SCX_OP(cgw_cgroup_cancel_move, struct task_struct *p, struct cgroup *from, struct cgroup *to)
{
	__sync_fetch_and_add(&nr_cancel_move, 1);
}

s32 SCX_OP_SLEEPABLE(cgw_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

void SCX_OP(cgw_exit, struct scx_exit_info *ei)
{
	SCX_EXIT_RECORD(exit_rec, ei);
}

SEC(".struct_ops.link")
struct sched_ext_ops cgw_ops = {
	.select_cpu = (void *)cgw_select_cpu,
	.enqueue = (void *)cgw_enqueue,
	.dispatch = (void *)cgw_dispatch,
	.runnable = (void *)cgw_runnable,
	.quiescent = (void *)cgw_quiescent,
	.running = (void *)cgw_running,
	.stopping = (void *)cgw_stopping,
	.enable = (void *)cgw_enable,
	.cgroup_init = (void *)cgw_cgroup_init,
	.cgroup_exit = (void *)cgw_cgroup_exit,
	.cgroup_set_weight = (void *)cgw_cgroup_set_weight,
	.cgroup_set_bandwidth = (void *)cgw_cgroup_set_bandwidth,
	.cgroup_prep_move = (void *)cgw_cgroup_prep_move,
	.cgroup_move = (void *)cgw_cgroup_move,
	.cgroup_cancel_move = (void *)cgw_cgroup_cancel_move,
	.init = (void *)cgw_init,
	.exit = (void *)cgw_exit,
	.name = "cgw",
};
