/**
 * The scheduler core (kernel/sched/core.c): run queues, task wake-up (try_to_wake_up), the
 * schedule() path (__schedule, pick_next_task with the 6.12+ class order fair > ext > idle and
 * the balance() pass before every pick), the tick, fork, exit, migration, nice and affinity
 * changes, and moving tasks between classes when the ext class is enabled or disabled.
 *
 * Nothing here advances time: whatever drives the machine sets the clock (`setNow`), calls
 * `sched_tick` every tick, and runs `schedule_pending` after each event so that preemption
 * requests (resched_curr) are honoured before the CPU runs on.
 */

import type { Cgroup } from "../cgroup.js";
import type { Kernel } from "../kernel.js";
import { memberOff, PF_KTHREAD, type Task, task_alloc, task_exit } from "../task.js";
import { CpuCgroup } from "./cpu_cgroup.js";
import { FairSchedClass } from "./fair.js";
import { IdleSchedClass } from "./idle.js";
import { RtSchedClass, rt_policy, rt_prio } from "./rt.js";
import {
  DEQUEUE_MIGRATING,
  DEQUEUE_NOCLOCK,
  DEQUEUE_SAVE,
  DEQUEUE_SLEEP,
  ENQUEUE_INITIAL,
  ENQUEUE_MIGRATED,
  ENQUEUE_NOCLOCK,
  ENQUEUE_RESTORE,
  ENQUEUE_WAKEUP,
  ext_sched_class_maker,
  MAX_NICE,
  MAX_RT_PRIO,
  MIN_NICE,
  NICE_TO_PRIO,
  normal_policy,
  Rq,
  SCHED_EXT,
  type SchedClass,
  type SchedCore,
  SchedTask,
  TASK_DEAD,
  TASK_INTERRUPTIBLE,
  TASK_ON_RQ_MIGRATING,
  TASK_ON_RQ_QUEUED,
  TASK_RUNNING,
  TASK_UNINTERRUPTIBLE,
  task_allowed_on_cpu,
  task_weight,
  WF_FORK,
  WF_MIGRATED,
  WF_TTWU,
} from "./sched.js";
import { SchedTopology, type TopologySpec } from "./topology.js";

export const TASK_NORMAL = TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE;

/** Points where code outside the classes follows the scheduler (sched_ext's fork/exit/tick hooks, a machine's accounting). */
export interface SchedHooks {
  /** After the classes switched rq from prev to next (context_switch). */
  context_switch?(rq: Rq, prev: SchedTask, next: SchedTask): void;
  /** p was woken (try_to_wake_up enqueued it, or it had not slept yet). */
  wakeup?(p: SchedTask): void;
  /** sched_fork: p exists, not yet runnable. */
  fork?(p: SchedTask, parent: SchedTask | null): void;
  /** p has exited and was switched away from for the last time (finish_task_switch of a dead task). */
  dead?(p: SchedTask): void;
  /** sched_tick, after the class's task_tick. */
  tick?(rq: Rq): void;
  /** rq's CPU starts (true) or stops spinning in irq context: its current task makes no progress meanwhile. */
  stall?(rq: Rq, on: boolean): void;
  /** sched_cpu_activate: the CPU came online (sched_ext's scx_rq_activate). */
  cpu_activate?(rq: Rq): void;
  /** sched_cpu_deactivate: the CPU is going offline, its tasks not moved yet (scx_rq_deactivate). */
  cpu_deactivate?(rq: Rq): void;
  /** The CPU controller (cpu_cgrp_subsys): a cgroup comes online (scx_tg_online); an errno refuses it. */
  tg_online?(cg: Cgroup): number;
  tg_offline?(cg: Cgroup): void;
  /** A migration is being prepared (scx_cgroup_can_attach); an errno refuses it. */
  cgroup_can_attach?(tasks: readonly SchedTask[], from: readonly Cgroup[], to: Cgroup): number;
  cgroup_cancel_attach?(tasks: readonly SchedTask[], from: readonly Cgroup[], to: Cgroup): void;
  /** Inside sched_move_task, the task dequeued and in its new cgroup (scx_cgroup_move_task). */
  cgroup_move_task?(p: SchedTask): void;
  /** cpu.weight written (scx_group_set_weight). */
  tg_set_weight?(cg: Cgroup, weight: number): void;
  /** cpu.max / cpu.max.burst written and taken (scx_group_set_bandwidth), in us. */
  tg_set_bandwidth?(cg: Cgroup, period_us: bigint, quota_us: bigint, burst_us: bigint): void;
}

export interface SchedOptions {
  topology?: TopologySpec;
}

export class Sched implements SchedCore {
  readonly nr_cpu_ids: number;
  readonly tick_nsec: number;
  readonly topology: SchedTopology;
  readonly rqs: Rq[] = [];
  readonly fair: FairSchedClass;
  readonly rt: RtSchedClass;
  readonly idleClass: IdleSchedClass;
  private extClass: SchedClass | null = null;
  private extEnabled = false;
  private extAll = false;
  /** The active classes, highest first; rebuilt when the ext class's state changes. */
  private active: SchedClass[] = [];
  readonly hooks: SchedHooks[] = [];
  private readonly taskList = new Set<SchedTask>();
  private readonly byTask = new Map<Task, SchedTask>();
  private clock = 0;
  private readonly pending: Rq[] = [];
  private readonly irqWork: { cpu: number; fn: () => void }[] = [];

  constructor(
    readonly kernel: Kernel,
    opts: SchedOptions = {},
  ) {
    this.nr_cpu_ids = kernel.nrCpus;
    this.tick_nsec = Math.round(1e9 / Number(kernel.config.CONFIG_HZ ?? 1000));
    this.topology = new SchedTopology(this.nr_cpu_ids, opts.topology);
    this.fair = new FairSchedClass(this);
    this.rt = new RtSchedClass(this);
    this.idleClass = new IdleSchedClass();
    for (let cpu = 0; cpu < this.nr_cpu_ids; cpu++) {
      const t =
        cpu === 0
          ? kernel.initTask
          : task_alloc(kernel, 0, `swapper/${cpu}`, { flags: PF_KTHREAD, parent: kernel.initTask });
      const idle = new SchedTask(t, this.nr_cpu_ids);
      idle.sched_class = this.idleClass;
      idle.cpu = cpu;
      idle.__state = TASK_RUNNING;
      idle.on_cpu = true;
      idle.cpus_mask.fill(0)[cpu] = 1;
      idle.nr_cpus_allowed = 1;
      this.byTask.set(t, idle);
      this.rqs.push(new Rq(this, cpu, idle));
    }
    // pid 0 is init_task's; the other idle threads share the pid but are not in the pid hash.
    kernel.taskByPid.set(0, kernel.initTask);
    this.rebuildActive();
    this.ext = ext_sched_class_maker(kernel)?.(this) ?? null;
    this.cgroup = new CpuCgroup(this);
  }

  /** The CPU controller: cgroup membership and weights. */
  readonly cgroup: CpuCgroup;

  // ---- the services classes use (SchedCore) ----

  now(): number {
    return this.clock;
  }

  /** The driver moves time forward. */
  setNow(ns: number): void {
    if (ns < this.clock) throw new Error("the scheduler clock does not go backwards");
    this.clock = ns;
  }

  cpu_rq(cpu: number): Rq {
    return this.rqs[cpu]!;
  }

  task_rq(p: SchedTask): Rq {
    return this.rqs[p.cpu]!;
  }

  tasks(): Iterable<SchedTask> {
    return this.taskList;
  }

  /** The scheduling state of a kernel task. */
  of(t: Task): SchedTask | undefined {
    return this.byTask.get(t);
  }

  update_rq_clock(rq: Rq): void {
    rq.clock = this.clock;
    rq.clock_task = this.clock;
  }

  update_curr_common(rq: Rq): number {
    const se = rq.curr.se;
    const delta = rq.clock_task - se.exec_start;
    if (delta <= 0) return 0;
    se.exec_start = rq.clock_task;
    se.sum_exec_runtime += delta;
    return delta;
  }

  resched_curr(rq: Rq): void {
    if (rq.need_resched) return;
    rq.need_resched = true;
    this.pending.push(rq);
  }

  irq_work_queue(cpu: number, fn: () => void): void {
    this.irqWork.push({ cpu, fn });
  }

  set_cpu_stalled(cpu: number, on: boolean): void {
    const rq = this.rqs[cpu]!;
    if (rq.stalled === on) return;
    rq.stalled = on;
    for (const h of this.hooks) h.stall?.(rq, on);
    // a reschedule asked for while it spun happens now
    if (!on && rq.need_resched) this.pending.push(rq);
  }

  kick_cpu(cpu: number): void {
    this.resched_curr(this.rqs[cpu]!);
  }

  idle_cpu(cpu: number): boolean {
    const rq = this.rqs[cpu]!;
    return rq.curr === rq.idle && rq.nr_running === 0;
  }

  cpu_to_node(cpu: number): number {
    return this.topology.cpu_to_node(cpu);
  }

  get nr_node_ids(): number {
    return this.topology.nr_node_ids;
  }

  llc_cpus(cpu: number): readonly number[] {
    return this.topology.llc_cpus(cpu);
  }

  smt_cpus(cpu: number): readonly number[] {
    return this.topology.smt_cpus(cpu);
  }

  cpus_share_cache(a: number, b: number): boolean {
    return this.topology.cpus_share_cache(a, b);
  }

  set_task_cpu(p: SchedTask, new_cpu: number): void {
    if (p.cpu === new_cpu) return;
    p.sched_class.migrate_task_rq?.(p, new_cpu);
    p.se.nr_migrations++;
    p.cpu = new_cpu;
    p.wake_cpu = new_cpu;
  }

  move_queued_task(rq: Rq, p: SchedTask, new_cpu: number): Rq {
    this.deactivate_task(rq, p, DEQUEUE_NOCLOCK);
    this.set_task_cpu(p, new_cpu);
    const dst = this.rqs[new_cpu]!;
    this.update_rq_clock(dst);
    this.activate_task(dst, p, 0);
    this.wakeup_preempt(dst, p, 0);
    return dst;
  }

  // ---- classes ----

  /** The ext class, once the sched_ext subsystem fills the slot. */
  get ext(): SchedClass | null {
    return this.extClass;
  }

  set ext(c: SchedClass | null) {
    this.extClass = c;
    this.rebuildActive();
  }

  /** scx_enabled(): a BPF scheduler is attached. */
  get ext_enabled(): boolean {
    return this.extEnabled;
  }

  set ext_enabled(v: boolean) {
    this.extEnabled = v;
    this.rebuildActive();
  }

  /** scx_switched_all(): no SCX_OPS_SWITCH_PARTIAL, every normal task is in ext. */
  get ext_switched_all(): boolean {
    return this.extAll;
  }

  set ext_switched_all(v: boolean) {
    this.extAll = v;
    this.rebuildActive();
  }

  private rebuildActive(): void {
    const a: SchedClass[] = [this.rt];
    if (!this.extAll) a.push(this.fair);
    if (this.extEnabled && this.extClass) a.push(this.extClass);
    a.push(this.idleClass);
    this.active = a;
  }

  private classRank(c: SchedClass): number {
    return c === this.rt ? -1 : c === this.fair ? 0 : c === this.idleClass ? 2 : 1;
  }

  /** sched_class_above(a, b) in the 6.12+ order rt > fair > ext > idle. */
  sched_class_above(a: SchedClass, b: SchedClass): boolean {
    return this.classRank(a) < this.classRank(b);
  }

  /** __setscheduler_class: the class a task of this policy belongs to now. */
  class_for(policy: number): SchedClass {
    if (rt_policy(policy)) return this.rt;
    if (this.ext_enabled && this.ext && (policy === SCHED_EXT || (this.ext_switched_all && normal_policy(policy)))) {
      return this.ext;
    }
    return this.fair;
  }

  // ---- enqueue/dequeue ----

  enqueue_task(rq: Rq, p: SchedTask, flags: number): void {
    if (!(flags & ENQUEUE_NOCLOCK)) this.update_rq_clock(rq);
    if (!(flags & ENQUEUE_RESTORE) && p !== rq.curr && p.sched_info.last_queued < 0) {
      p.sched_info.last_queued = this.clock;
    }
    rq.nr_running++;
    p.sched_class.enqueue_task(rq, p, flags);
  }

  dequeue_task(rq: Rq, p: SchedTask, flags: number): void {
    if (!(flags & DEQUEUE_NOCLOCK)) this.update_rq_clock(rq);
    if (!(flags & DEQUEUE_SAVE) && p.sched_info.last_queued >= 0) {
      p.sched_info.run_delay += this.clock - p.sched_info.last_queued;
      p.sched_info.last_queued = -1;
    }
    rq.nr_running--;
    p.sched_class.dequeue_task(rq, p, flags);
  }

  activate_task(rq: Rq, p: SchedTask, flags: number): void {
    if (p.on_rq === TASK_ON_RQ_MIGRATING) flags |= ENQUEUE_MIGRATED;
    this.enqueue_task(rq, p, flags);
    p.on_rq = TASK_ON_RQ_QUEUED;
  }

  deactivate_task(rq: Rq, p: SchedTask, flags: number): void {
    p.on_rq = flags & DEQUEUE_SLEEP ? 0 : TASK_ON_RQ_MIGRATING;
    if (p.on_rq === TASK_ON_RQ_MIGRATING) flags |= DEQUEUE_MIGRATING;
    this.dequeue_task(rq, p, flags);
  }

  wakeup_preempt(rq: Rq, p: SchedTask, wake_flags: number): void {
    const curr = rq.curr;
    if (p.sched_class === curr.sched_class) curr.sched_class.wakeup_preempt(rq, p, wake_flags);
    else if (this.sched_class_above(p.sched_class, curr.sched_class)) this.resched_curr(rq);
  }

  // ---- wake-up ----

  /** select_task_rq: the class's choice, or any allowed CPU when it cannot choose. */
  private select_task_rq(p: SchedTask, cpu: number, wake_flags: number): number {
    if (p.nr_cpus_allowed > 1 && p.sched_class.select_task_rq) cpu = p.sched_class.select_task_rq(p, cpu, wake_flags);
    else cpu = p.cpus_mask.indexOf(1);
    if (!task_allowed_on_cpu(p, cpu) || !this.rqs[cpu]?.online) cpu = this.select_fallback_rq(p);
    return cpu;
  }

  /** select_fallback_rq: the first allowed online CPU. */
  select_fallback_rq(p: SchedTask): number {
    for (let c = 0; c < this.nr_cpu_ids; c++) if (p.cpus_mask[c] && this.rqs[c]!.online) return c;
    throw new Error(`task ${p.pid} is allowed on no online CPU`);
  }

  /** try_to_wake_up(p, state, wake_flags): false when p was not in one of `state`. */
  try_to_wake_up(p: SchedTask, state = TASK_NORMAL, wake_flags = 0): boolean {
    if (!(p.__state & state)) return false;
    wake_flags |= WF_TTWU;
    if (p.on_rq) {
      // ttwu_runnable: it had not left the run queue yet.
      p.__state = TASK_RUNNING;
      const rq = this.task_rq(p);
      this.update_rq_clock(rq);
      if (rq.curr !== p) this.wakeup_preempt(rq, p, wake_flags);
      for (const h of this.hooks) h.wakeup?.(p);
      return true;
    }
    const cpu = this.select_task_rq(p, p.wake_cpu, wake_flags);
    if (cpu !== p.cpu) {
      wake_flags |= WF_MIGRATED;
      this.set_task_cpu(p, cpu);
    }
    const rq = this.rqs[cpu]!;
    this.update_rq_clock(rq);
    this.activate_task(rq, p, ENQUEUE_WAKEUP | ENQUEUE_NOCLOCK | (wake_flags & WF_MIGRATED ? ENQUEUE_MIGRATED : 0));
    this.wakeup_preempt(rq, p, wake_flags);
    p.__state = TASK_RUNNING;
    p.sched_class.task_woken?.(rq, p);
    for (const h of this.hooks) h.wakeup?.(p);
    return true;
  }

  // ---- schedule ----

  /** Run __schedule on every CPU asked to reschedule (the IPIs and returns to user space). */
  schedule_pending(): void {
    for (;;) {
      // irq work first: it runs as soon as the CPU that queued it leaves the locked section
      const w = this.irqWork.shift();
      if (w) {
        const k = this.kernel;
        const saved = [k.cpu, k.runningTask] as const;
        k.cpu = w.cpu;
        k.runningTask = this.rqs[w.cpu]!.curr.task;
        try {
          w.fn();
        } finally {
          [k.cpu, k.runningTask] = saved;
        }
        continue;
      }
      const rq = this.pending.shift();
      if (!rq) return;
      // a CPU spinning in irq context reschedules once it stops (set_cpu_stalled)
      if (rq.need_resched && !rq.stalled) this.__schedule(rq, true);
    }
  }

  /** schedule() by rq's current task: it blocks if its state is no longer TASK_RUNNING. */
  schedule(rq: Rq): void {
    this.__schedule(rq, false);
  }

  /** prev_balance: from prev's class (ext at the latest when enabled) down, until a class has work. */
  private prev_balance(rq: Rq, prev: SchedTask): void {
    let start = prev.sched_class;
    if (this.ext_enabled && this.ext && this.sched_class_above(this.ext, start)) start = this.ext;
    // for_each_active_class from start (all of them when start is not active)
    const a = this.active;
    for (let i = Math.max(0, a.indexOf(start)); i < a.length; i++) if (a[i]!.balance?.(rq, prev)) break;
  }

  pick_next_task(rq: Rq, prev: SchedTask): SchedTask {
    this.prev_balance(rq, prev);
    const a = this.active;
    for (let i = 0; i < a.length; i++) {
      const c = a[i]!;
      const p = c.pick_task(rq);
      if (!p) continue;
      if (p !== prev) {
        prev.sched_class.put_prev_task(rq, prev, p);
        p.sched_class.set_next_task(rq, p, true);
      }
      return p;
    }
    throw new Error(`cpu ${rq.cpu}: the idle class picked nothing`);
  }

  __schedule(rq: Rq, preempt: boolean): void {
    // an offline CPU stays in its idle loop
    if (!rq.online && rq.curr === rq.idle) {
      rq.need_resched = false;
      return;
    }
    const k = this.kernel;
    const savedCpu = k.cpu;
    const savedTask = k.runningTask;
    k.cpu = rq.cpu;
    k.runningTask = rq.curr.task;
    const prev = rq.curr;
    this.update_rq_clock(rq);
    prev.sched_class.update_curr?.(rq);
    let voluntary = false;
    if (!preempt && prev.__state !== TASK_RUNNING) {
      this.deactivate_task(rq, prev, DEQUEUE_SLEEP | DEQUEUE_NOCLOCK);
      voluntary = true;
    }
    const next = this.pick_next_task(rq, prev);
    rq.need_resched = false;
    if (next !== prev) {
      rq.nr_switches++;
      if (voluntary) prev.nvcsw++;
      else if (prev !== rq.idle) prev.nivcsw++;
      rq.curr = next;
      this.context_switch(rq, prev, next);
    }
    k.cpu = savedCpu;
    k.runningTask = savedTask;
  }

  private context_switch(rq: Rq, prev: SchedTask, next: SchedTask): void {
    prev.on_cpu = false;
    next.on_cpu = true;
    const now = this.clock;
    // sched_info_switch: prev waits again if still runnable; next's wait ends.
    if (prev !== rq.idle && prev.on_rq) prev.sched_info.last_queued = now;
    const si = next.sched_info;
    if (si.last_queued >= 0) {
      si.run_delay += now - si.last_queued;
      si.last_queued = -1;
    }
    si.pcount++;
    si.last_arrival = now;
    for (const h of this.hooks) h.context_switch?.(rq, prev, next);
    if (prev.__state === TASK_DEAD) this.finish_dead(prev);
    else if (prev.on_rq && !task_allowed_on_cpu(prev, rq.cpu)) {
      // The affinity changed while it ran: the stopper moves it (migration_cpu_stop).
      this.move_queued_task(rq, prev, this.select_fallback_rq(prev));
    }
  }

  private finish_dead(p: SchedTask): void {
    p.sched_class.task_dead?.(p);
    for (const h of this.hooks) h.dead?.(p);
    this.taskList.delete(p);
    this.byTask.delete(p.task);
    task_exit(p.task);
    this.cgroup.reweight();
  }

  // ---- tick ----

  /** sched_tick on one CPU. */
  sched_tick(cpu: number): void {
    const rq = this.rqs[cpu]!;
    // interrupts are off while it spins: the tick waits
    if (rq.stalled) return;
    const k = this.kernel;
    const savedCpu = k.cpu;
    const savedTask = k.runningTask;
    k.cpu = cpu;
    k.runningTask = rq.curr.task;
    this.update_rq_clock(rq);
    const curr = rq.curr;
    curr.sched_class.task_tick(rq, curr, false);
    for (const h of this.hooks) h.tick?.(rq);
    if (!this.ext_switched_all) this.fair.trigger_load_balance(rq);
    k.cpu = savedCpu;
    k.runningTask = savedTask;
  }

  // ---- fork and exit ----

  /** copy_process + sched_fork + wake_up_new_task: a new runnable task, child of `parent` (null: of init). */
  fork(
    comm: string,
    opts: {
      parent?: SchedTask | null;
      pid: number;
      nice?: number;
      policy?: number;
      cpus?: Uint8Array;
      /** SchedTask.user of the new task. */
      user?: unknown;
      /** sched_priority (1..99) of a SCHED_FIFO or SCHED_RR task. */
      rtPriority?: number;
      /** Start in this cgroup (clone3's CLONE_INTO_CGROUP) rather than the parent's. */
      cgroup?: Cgroup;
    },
  ): SchedTask {
    const parent = opts.parent ?? null;
    const t = task_alloc(this.kernel, opts.pid, comm, {
      parent: parent?.task ?? this.kernel.initTask,
      cgroup: opts.cgroup,
    });
    const p = new SchedTask(t, this.nr_cpu_ids);
    p.policy = opts.policy ?? (parent ? parent.policy : 0);
    if (!normal_policy(p.policy) && !rt_policy(p.policy))
      throw new RangeError(`policy ${p.policy}: only SCHED_NORMAL, BATCH, IDLE, EXT, FIFO and RR are modelled`);
    const nice = opts.nice ?? (parent ? parent.static_prio - 120 : 0);
    if (!Number.isInteger(nice) || nice < MIN_NICE || nice > MAX_NICE)
      throw new RangeError(`nice ${nice}: not in -20..19`);
    p.static_prio = p.normal_prio = p.prio = NICE_TO_PRIO(nice);
    if (rt_policy(p.policy)) {
      const rtp = opts.rtPriority ?? (parent && rt_policy(parent.policy) ? MAX_RT_PRIO - 1 - parent.prio : 1);
      if (!Number.isInteger(rtp) || rtp < 1 || rtp > MAX_RT_PRIO - 1)
        throw new RangeError(`sched_priority ${rtp}: not in 1..99`);
      p.normal_prio = p.prio = rt_prio(rtp);
    }
    const mask = opts.cpus ?? parent?.cpus_mask;
    if (mask) {
      p.cpus_mask.set(mask);
      p.nr_cpus_allowed = p.cpus_mask.reduce((a, b) => a + b, 0);
      if (p.nr_cpus_allowed === 0) throw new RangeError(`${comm}: an empty CPU affinity`);
      this.sync_task_cpus(p);
    }
    p.se.weight = task_weight(p);
    p.cpu = parent ? parent.cpu : this.select_fallback_rq(p);
    if (!task_allowed_on_cpu(p, p.cpu)) p.cpu = this.select_fallback_rq(p);
    p.wake_cpu = p.cpu;
    p.sched_class = this.class_for(p.policy);
    p.user = opts.user ?? null;
    this.taskList.add(p);
    this.byTask.set(t, p);
    p.sched_class.task_fork?.(p);
    for (const h of this.hooks) h.fork?.(p, parent);
    this.cgroup.reweight();
    this.wake_up_new_task(p);
    return p;
  }

  wake_up_new_task(p: SchedTask): void {
    p.__state = TASK_RUNNING;
    const cpu = this.select_task_rq(p, p.cpu, WF_FORK);
    // A fork does not count as a migration.
    p.cpu = cpu;
    p.wake_cpu = cpu;
    const rq = this.rqs[cpu]!;
    this.update_rq_clock(rq);
    this.activate_task(rq, p, ENQUEUE_NOCLOCK | ENQUEUE_INITIAL);
    this.wakeup_preempt(rq, p, WF_FORK);
    p.sched_class.task_woken?.(rq, p);
    for (const h of this.hooks) h.wakeup?.(p);
  }

  /** do_exit by rq's current task: it leaves the CPU for good. */
  do_exit(p: SchedTask): void {
    const rq = this.task_rq(p);
    if (rq.curr !== p) throw new Error(`task ${p.pid} exits while not running`);
    p.__state = TASK_DEAD;
    this.__schedule(rq, false);
  }

  /** The task sleeps: its state leaves TASK_RUNNING and it calls schedule(). */
  block(p: SchedTask, state = TASK_INTERRUPTIBLE): void {
    const rq = this.task_rq(p);
    if (rq.curr !== p) throw new Error(`task ${p.pid} blocks while not running`);
    p.__state = state;
    this.__schedule(rq, false);
  }

  // ---- CPU hotplug ----

  /**
   * The CPU goes offline: sched_cpu_deactivate (the hooks' cpu_deactivate, then the classes'
   * rq_offline), then sched_cpu_dying's migration: the running task is preempted as by the
   * stopper and every task queued there moves to an allowed online CPU; a task allowed on no
   * online CPU loses its affinity (select_fallback_rq's last resort: every online CPU).
   */
  cpu_down(cpu: number): void {
    const rq = this.rqs[cpu];
    if (!rq) throw new RangeError(`cpu ${cpu}: no such CPU`);
    if (!rq.online) return;
    if (this.rqs.filter((r) => r.online).length === 1) throw new RangeError(`cpu ${cpu}: the last online CPU`);
    const k = this.kernel;
    const saved = [k.cpu, k.runningTask] as const;
    k.cpu = cpu;
    k.runningTask = rq.curr.task;
    try {
      for (const h of this.hooks) h.cpu_deactivate?.(rq);
      rq.online = false;
      for (const c of this.active) c.rq_offline?.(rq);
      this.update_rq_clock(rq);
      const prev = rq.curr;
      if (prev !== rq.idle) {
        prev.sched_class.update_curr?.(rq);
        prev.sched_class.put_prev_task(rq, prev, rq.idle);
        rq.idle.sched_class.set_next_task(rq, rq.idle, true);
        rq.nr_switches++;
        prev.nivcsw++;
        rq.curr = rq.idle;
        rq.need_resched = false;
        this.context_switch(rq, prev, rq.idle);
      }
      for (const p of [...this.taskList]) {
        if (p.cpu !== cpu) continue;
        if (!this.allowedOnline(p)) this.breakAffinity(p);
        if (p.on_rq === TASK_ON_RQ_QUEUED) this.move_queued_task(rq, p, this.select_fallback_rq(p));
        else p.wake_cpu = this.select_fallback_rq(p);
      }
    } finally {
      [k.cpu, k.runningTask] = saved;
    }
  }

  /** The CPU comes online (sched_cpu_activate): the classes' rq_online, the hooks, then it looks for work. */
  cpu_up(cpu: number): void {
    const rq = this.rqs[cpu];
    if (!rq) throw new RangeError(`cpu ${cpu}: no such CPU`);
    if (rq.online) return;
    rq.online = true;
    for (const c of this.active) c.rq_online?.(rq);
    const k = this.kernel;
    const saved = [k.cpu, k.runningTask] as const;
    k.cpu = cpu;
    k.runningTask = rq.curr.task;
    try {
      for (const h of this.hooks) h.cpu_activate?.(rq);
    } finally {
      [k.cpu, k.runningTask] = saved;
    }
    this.resched_curr(rq);
  }

  private allowedOnline(p: SchedTask): boolean {
    for (let c = 0; c < this.nr_cpu_ids; c++) if (p.cpus_mask[c] && this.rqs[c]!.online) return true;
    return false;
  }

  /** select_fallback_rq's "no longer affine" case: every online CPU. */
  private breakAffinity(p: SchedTask): void {
    const mask = new Uint8Array(this.nr_cpu_ids);
    for (let c = 0; c < this.nr_cpu_ids; c++) mask[c] = this.rqs[c]!.online ? 1 : 0;
    for (let c = 0; c < this.nr_cpu_ids; c++) p.cpus_mask[c] = mask[c]!;
    p.nr_cpus_allowed = mask.reduce((a, b) => a + b, 0);
    this.sync_task_cpus(p);
    p.sched_class.set_cpus_allowed?.(p, mask);
  }

  // ---- attribute changes ----

  /** Dequeue (and put) p around a change, then put it back (the kernel's sched_change pattern). */
  private change<T>(p: SchedTask, fn: (rq: Rq) => T): T {
    const rq = this.task_rq(p);
    this.update_rq_clock(rq);
    const queued = p.on_rq === TASK_ON_RQ_QUEUED;
    const running = rq.curr === p;
    if (queued) this.dequeue_task(rq, p, DEQUEUE_SAVE | DEQUEUE_NOCLOCK);
    if (running) p.sched_class.put_prev_task(rq, p, null);
    const r = fn(rq);
    if (queued) this.enqueue_task(rq, p, ENQUEUE_RESTORE | ENQUEUE_NOCLOCK);
    if (running) p.sched_class.set_next_task(rq, p, false);
    return r;
  }

  /** set_user_nice. */
  set_user_nice(p: SchedTask, nice: number): void {
    if (!Number.isInteger(nice) || nice < MIN_NICE || nice > MAX_NICE)
      throw new RangeError(`nice ${nice}: not in -20..19`);
    this.change(p, (rq) => {
      p.static_prio = NICE_TO_PRIO(nice);
      const w = task_weight(p);
      if (p.sched_class.reweight_task) p.sched_class.reweight_task(rq, p, w);
      else p.se.weight = w;
      const old = p.prio;
      // an RT task's priority is its sched_priority, not its nice
      if (!rt_policy(p.policy)) p.prio = p.normal_prio = p.static_prio;
      p.sched_class.prio_changed?.(rq, p, old);
    });
    this.cgroup.reweight();
  }

  /** A fair task's load weight changes (its group's share of it did). */
  reweight_fair(p: SchedTask, weight: number): void {
    this.change(p, (rq) => this.fair.reweight_task(rq, p, weight));
  }

  /**
   * sched_move_task: p, dequeued and put, changes task group; `moved` runs then (sched_ext's
   * ops.cgroup_move), before it is queued again.
   */
  sched_move_task(p: SchedTask, moved: () => void): void {
    this.change(p, moved);
  }

  /** p->cpus_mask and p->nr_cpus_allowed in the task_struct programs read (p->cpus_ptr points there). */
  private sync_task_cpus(p: SchedTask): void {
    const btf = this.kernel.btfVmlinux;
    if (!btf) return;
    let off = this.cpusOff;
    if (off === undefined) {
      try {
        off = {
          mask: memberOff(btf, "task_struct", "cpus_mask"),
          nr: memberOff(btf, "task_struct", "nr_cpus_allowed"),
        };
      } catch {
        off = { mask: -1, nr: -1 };
      }
      this.cpusOff = off;
    }
    if (off.mask < 0 || off.nr < 0) return;
    const bytes = this.kernel.mem.bytes(p.task.addr + off.mask, Math.ceil(this.nr_cpu_ids / 64) * 8);
    bytes.fill(0);
    for (let c = 0; c < this.nr_cpu_ids; c++) if (p.cpus_mask[c]) bytes[c >> 3]! |= 1 << (c & 7);
    const nr = this.kernel.mem.bytes(p.task.addr + off.nr, 4);
    new DataView(nr.buffer, nr.byteOffset, 4).setInt32(0, p.nr_cpus_allowed, true);
  }

  private cpusOff?: { mask: number; nr: number };

  /** set_cpus_allowed_ptr: a queued task on a CPU it may no longer use moves now; a running one at its next switch. */
  set_cpus_allowed_ptr(p: SchedTask, mask: Uint8Array): void {
    const n = mask.reduce((a, b) => a + (b ? 1 : 0), 0);
    if (mask.length !== this.nr_cpu_ids || n === 0)
      throw new RangeError(`task ${p.pid}: an empty or wrong-sized CPU mask`);
    this.change(p, () => {
      // set_cpus_allowed_common() first: the class (sched_ext's ops.set_cpumask) sees the new mask
      for (let c = 0; c < this.nr_cpu_ids; c++) p.cpus_mask[c] = mask[c] ? 1 : 0;
      p.nr_cpus_allowed = n;
      this.sync_task_cpus(p);
      if (p.sched_class.set_cpus_allowed) p.sched_class.set_cpus_allowed(p, mask);
    });
    const rq = this.task_rq(p);
    if (task_allowed_on_cpu(p, p.cpu)) return;
    if (rq.curr === p) this.resched_curr(rq);
    else if (p.on_rq) this.move_queued_task(rq, p, this.select_fallback_rq(p));
    else p.wake_cpu = this.select_fallback_rq(p);
  }

  /**
   * Move every task whose class changes with the ext class's state to its new class
   * (scx_enable/scx_disable walking all tasks with check_class_changed).
   */
  reclass_all(): void {
    for (const p of this.taskList) this.setscheduler_class(p, this.class_for(p.policy));
    this.cgroup.reweight();
  }

  /** Move p to class `to` (__sched_setscheduler's class switch). */
  setscheduler_class(p: SchedTask, to: SchedClass): void {
    const from = p.sched_class;
    if (from === to) return;
    const rq = this.task_rq(p);
    to.switching_to?.(rq, p);
    this.change(p, () => {
      p.sched_class = to;
    });
    from.switched_from?.(rq, p);
    to.switched_to?.(rq, p);
    if (rq.curr === p) this.resched_curr(rq);
    else if (p.on_rq) this.wakeup_preempt(rq, p, 0);
  }

  /** sched_setscheduler for the normal policies. */
  sched_setscheduler(p: SchedTask, policy: number): void {
    if (!normal_policy(policy))
      throw new RangeError(`policy ${policy}: only SCHED_NORMAL, BATCH, IDLE and EXT are modelled`);
    this.change(p, (rq) => {
      p.policy = policy;
      const w = task_weight(p);
      if (p.sched_class.reweight_task) p.sched_class.reweight_task(rq, p, w);
      else p.se.weight = w;
    });
    this.setscheduler_class(p, this.class_for(policy));
    this.cgroup.reweight();
  }
}
