/**
 * The CPU controller (kernel/sched/core.c cpu_cgrp_subsys: cpu_cgroup_css_online/offline,
 * cpu_cgroup_can_attach/attach/cancel_attach, sched_move_task, cpu_weight_write_u64) on the
 * simulated scheduler core. sched_ext follows it through the SchedHooks (scx_tg_online,
 * scx_cgroup_can_attach, scx_cgroup_move_task, scx_group_set_weight...); the fair class through
 * each task's load weight.
 *
 * Fair group scheduling in the small: instead of a group entity per CPU, each fair task's load
 * weight is its share of its cgroup's, compounded up the hierarchy (a cgroup with tasks in its
 * subtree is one entity of weight `cpu.weight * 1024 / 100` among its siblings and the tasks of its
 * parent). A group's weight is split over all its tasks, runnable or not: CPU hogs get their
 * cgroups' shares, as CFS gives them; sleepers leave part of their group's share unused.
 * Tasks of the root cgroup keep their own weight.
 *
 * `cpu.max` (tg_set_bandwidth): checked and applied to the fair class's tasks (fair_bandwidth.ts),
 * then sched_ext hears of it.
 */
import { type Cgroup, type CgroupRoot, type CgroupSubsys, cgroupRoot } from "../cgroup.js";
import type { Task } from "../task.js";
import type { Sched, SchedHooks } from "./core.js";
import { CfsBandwidth } from "./fair_bandwidth.js";
import { type SchedTask, task_weight } from "./sched.js";

/** sched_weight_from_cgroup(): cpu.weight 100 is a nice-0 task's 1024. */
export function sched_weight_from_cgroup(w: number): number {
  return Math.round((w * 1024) / 100);
}

export class CpuCgroup implements CgroupSubsys {
  readonly name = "cpu";
  readonly root: CgroupRoot | null;
  readonly bandwidth: CfsBandwidth;

  constructor(private readonly core: Sched) {
    this.root = cgroupRoot(core.kernel);
    this.root?.subsys.push(this);
    this.bandwidth = new CfsBandwidth(
      core,
      core.fair,
      (p) => this.taskCgroup(p),
      (t) => core.of(t),
    );
    core.fair.bw = this.bandwidth;
  }

  private get hooks(): readonly SchedHooks[] {
    return this.core.hooks;
  }

  private sched(tasks: readonly Task[]): SchedTask[] {
    const out: SchedTask[] = [];
    for (const t of tasks) {
      const p = this.core.of(t);
      if (p) out.push(p);
    }
    return out;
  }

  css_online(cg: Cgroup): number {
    for (const h of this.hooks) {
      const err = h.tg_online?.(cg) ?? 0;
      if (err) return err;
    }
    return 0;
  }

  css_offline(cg: Cgroup): void {
    for (const h of this.hooks) h.tg_offline?.(cg);
  }

  can_attach(tasks: readonly Task[], from: readonly Cgroup[], to: Cgroup): number {
    const ps = this.sched(tasks);
    for (const h of this.hooks) {
      const err = h.cgroup_can_attach?.(ps, from, to) ?? 0;
      if (err) return err;
    }
    return 0;
  }

  cancel_attach(tasks: readonly Task[], from: readonly Cgroup[], to: Cgroup): void {
    const ps = this.sched(tasks);
    for (const h of this.hooks) h.cgroup_cancel_attach?.(ps, from, to);
  }

  /** cpu_cgroup_attach: sched_move_task for each task, then the new load weights. */
  attach(tasks: readonly Task[], _from: readonly Cgroup[], _to: Cgroup): void {
    for (const p of this.sched(tasks))
      this.core.sched_move_task(p, () => {
        for (const h of this.hooks) h.cgroup_move_task?.(p);
      });
    this.reweight();
  }

  css_set_weight(cg: Cgroup, weight: number): void {
    for (const h of this.hooks) h.tg_set_weight?.(cg, weight);
    this.reweight();
  }

  /** tg_set_bandwidth: the CFS limit, then sched_ext (scx_group_set_bandwidth). */
  css_set_bandwidth(cg: Cgroup, period_us: bigint, quota_us: bigint, burst_us: bigint): number {
    const err = this.bandwidth.check(period_us, quota_us, burst_us);
    if (err) return err;
    this.bandwidth.set(cg, period_us, quota_us, burst_us);
    for (const h of this.hooks) h.tg_set_bandwidth?.(cg, period_us, quota_us, burst_us);
    return 0;
  }

  /** The cgroup a task's scheduling follows (task_group(p)'s). */
  taskCgroup(p: SchedTask): Cgroup | null {
    return this.root?.taskCgroup(p.task) ?? null;
  }

  /** Is anything outside the root cgroup? Until then every weight is the task's own. */
  grouped(): boolean {
    return (this.root?.cgrp.children.size ?? 0) > 0;
  }

  /** The load weight of fair task p: its own within the root cgroup, else its share of its group's. */
  load_weight(p: SchedTask): number {
    const own = task_weight(p);
    const cg = this.taskCgroup(p);
    if (!cg?.parent) return own;
    let w = own / this.entitiesWeight(cg);
    for (let c: Cgroup = cg; c.parent; c = c.parent) {
      const entity = sched_weight_from_cgroup(c.weight);
      w *= entity;
      if (c.parent.parent) w /= this.entitiesWeight(c.parent);
    }
    return Math.max(2, Math.round(w));
  }

  /** The weights competing inside cg: its tasks' own and its populated children's. */
  private entitiesWeight(cg: Cgroup): number {
    let sum = 0;
    for (const t of cg.tasks) {
      const p = this.core.of(t);
      if (p && !p.task.dead) sum += task_weight(p);
    }
    for (const ch of cg.children) if (this.populated(ch)) sum += sched_weight_from_cgroup(ch.weight);
    return sum || 1;
  }

  private populated(cg: Cgroup): boolean {
    for (const t of cg.tasks) if (!t.dead) return true;
    for (const ch of cg.children) if (this.populated(ch)) return true;
    return false;
  }

  /** Recompute every fair task's load weight (membership or a weight changed). */
  reweight(): void {
    if (!this.grouped()) return;
    for (const p of this.core.tasks()) {
      if (p.sched_class !== this.core.fair) continue;
      const w = this.load_weight(p);
      if (w !== p.se.weight) this.core.reweight_fair(p, w);
    }
  }
}
