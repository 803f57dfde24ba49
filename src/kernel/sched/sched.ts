/**
 * The scheduler's data structures (kernel/sched/sched.h and the scheduling part of
 * include/linux/sched.h): the per-task scheduling state around a kernel `Task`, the per-CPU run
 * queue, and `SchedClass`, the method table every scheduling class (fair, ext, idle) implements
 * with the kernel's sched_class names. Times are ns on the scheduler's clock (a plain number:
 * exact in doubles for any simulated run).
 */
import type { Kernel } from "../kernel.js";
import type { Task } from "../task.js";

// ---- policies (include/uapi/linux/sched.h) ----
export const SCHED_NORMAL = 0;
export const SCHED_FIFO = 1;
export const SCHED_RR = 2;
export const SCHED_BATCH = 3;
export const SCHED_IDLE = 5;
export const SCHED_DEADLINE = 6;
export const SCHED_EXT = 7;

// ---- task states (include/linux/sched.h) ----
export const TASK_RUNNING = 0x0000;
export const TASK_INTERRUPTIBLE = 0x0001;
export const TASK_UNINTERRUPTIBLE = 0x0002;
export const TASK_DEAD = 0x0080;
export const TASK_NEW = 0x0800;

// ---- p->on_rq ----
export const TASK_ON_RQ_QUEUED = 1;
export const TASK_ON_RQ_MIGRATING = 2;

// ---- enqueue/dequeue flags (kernel/sched/sched.h, 6.12+) ----
export const DEQUEUE_SLEEP = 0x01;
export const DEQUEUE_SAVE = 0x02;
export const DEQUEUE_MOVE = 0x04;
export const DEQUEUE_NOCLOCK = 0x08;
export const DEQUEUE_MIGRATING = 0x100;
export const ENQUEUE_WAKEUP = 0x01;
export const ENQUEUE_RESTORE = 0x02;
export const ENQUEUE_MOVE = 0x04;
export const ENQUEUE_NOCLOCK = 0x08;
export const ENQUEUE_HEAD = 0x10;
export const ENQUEUE_REPLENISH = 0x20;
export const ENQUEUE_MIGRATED = 0x40;
export const ENQUEUE_INITIAL = 0x80;
export const ENQUEUE_MIGRATING = 0x100;

// ---- wake flags ----
export const WF_EXEC = 0x02;
export const WF_FORK = 0x04;
export const WF_TTWU = 0x08;
export const WF_SYNC = 0x10;
export const WF_MIGRATED = 0x20;

// ---- nice and weights (kernel/sched/core.c sched_prio_to_weight) ----
export const MAX_NICE = 19;
export const MIN_NICE = -20;
export const MAX_RT_PRIO = 100;
export const DEFAULT_PRIO = MAX_RT_PRIO + 20;
export const NICE_0_LOAD = 1024;
/** SCHED_IDLE tasks weigh this little. */
export const WEIGHT_IDLEPRIO = 3;
export const sched_prio_to_weight: readonly number[] = [
  88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916, 9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991,
  1586, 1277, 1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
];
export const NICE_TO_PRIO = (nice: number): number => nice + DEFAULT_PRIO;
export const PRIO_TO_NICE = (prio: number): number => prio - DEFAULT_PRIO;

/** The fair class's per-task entity (struct sched_entity, no group scheduling). */
export interface SchedEntity {
  /** load.weight */
  weight: number;
  on_rq: boolean;
  exec_start: number;
  sum_exec_runtime: number;
  prev_sum_exec_runtime: number;
  vruntime: number;
  deadline: number;
  /** Lag saved at dequeue (avg_vruntime - vruntime, bounded). */
  vlag: number;
  /** The vruntime up to which the running entity is not preempted by wake-ups (RUN_TO_PARITY). */
  vprot: number;
  slice: number;
  nr_migrations: number;
}

/** struct sched_info: run-queue wait as schedstats count it. */
export interface SchedInfo {
  /** Times the task got a CPU. */
  pcount: number;
  /** Total ns runnable but waiting. */
  run_delay: number;
  /** When it last started waiting (-1: not waiting). */
  last_queued: number;
  /** When it last got a CPU. */
  last_arrival: number;
}

/** The scheduling part of task_struct, for one kernel task. */
export class SchedTask {
  __state = TASK_NEW;
  on_rq = 0;
  on_cpu = false;
  /** task_cpu(p) */
  cpu = 0;
  wake_cpu = 0;
  recent_used_cpu = 0;
  policy = SCHED_NORMAL;
  static_prio = DEFAULT_PRIO;
  normal_prio = DEFAULT_PRIO;
  prio = DEFAULT_PRIO;
  sched_class!: SchedClass;
  /** cpus_mask as one flag per CPU; nr_cpus_allowed counts the set ones. */
  cpus_mask: Uint8Array;
  nr_cpus_allowed: number;
  readonly se: SchedEntity = {
    weight: NICE_0_LOAD,
    on_rq: false,
    exec_start: 0,
    sum_exec_runtime: 0,
    prev_sum_exec_runtime: 0,
    vruntime: 0,
    deadline: 0,
    vlag: 0,
    vprot: 0,
    slice: 0,
    nr_migrations: 0,
  };
  readonly sched_info: SchedInfo = { pcount: 0, run_delay: 0, last_queued: -1, last_arrival: 0 };
  /** Voluntary and involuntary context switches. */
  nvcsw = 0;
  nivcsw = 0;
  /** The ext class's per-task state (struct sched_ext_entity), kept by that class. */
  scx: unknown = null;
  /** Whatever drives the task (a workload) keeps its own state here. */
  user: unknown = null;

  constructor(
    readonly task: Task,
    nrCpus: number,
  ) {
    this.cpus_mask = new Uint8Array(nrCpus).fill(1);
    this.nr_cpus_allowed = nrCpus;
  }

  get pid(): number {
    return this.task.pid;
  }

  get comm(): string {
    return this.task.comm;
  }
}

/** The fair class's run queue (struct cfs_rq, flat: no task groups). */
export interface CfsRq {
  /** Queued entities other than curr (the kernel's tasks_timeline). */
  readonly queue: SchedTask[];
  /** Queued fair tasks including curr. */
  nr_running: number;
  /** Sum of the weights of queued entities including curr (load.weight). */
  load: number;
  min_vruntime: number;
  /** The fair entity running on this CPU, if on_rq or not. */
  curr: SchedTask | null;
}

/** struct rq: one per CPU. */
export class Rq {
  /** Every runnable task on this CPU, any class, curr included. */
  nr_running = 0;
  curr: SchedTask;
  /** rq->clock and rq->clock_task (no IRQ time is modelled: equal). */
  clock = 0;
  clock_task = 0;
  /** TIF_NEED_RESCHED of curr. */
  need_resched = false;
  nr_switches = 0;
  readonly cfs: CfsRq = { queue: [], nr_running: 0, load: 0, min_vruntime: 0, curr: null };
  /** The ext class's per-CPU state (struct scx_rq), kept by that class. */
  scx: unknown = null;
  /** Jiffies of the next periodic load balance. */
  next_balance = 0;
  online = true;
  /** The CPU spins in irq context (an SCX_KICK_WAIT): no task progress, no reschedule, no tick. */
  stalled = false;

  constructor(
    readonly sched: SchedCore,
    readonly cpu: number,
    readonly idle: SchedTask,
  ) {
    this.curr = idle;
  }
}

/**
 * struct sched_class. Optional methods are the ones a class may leave NULL. `rq` is always the
 * run queue the call concerns, locked, with its clock updated.
 */
export interface SchedClass {
  readonly name: string;
  enqueue_task(rq: Rq, p: SchedTask, flags: number): void;
  /** False when the class keeps the task on the run queue (a delayed dequeue). */
  dequeue_task(rq: Rq, p: SchedTask, flags: number): boolean;
  yield_task?(rq: Rq): void;
  wakeup_preempt(rq: Rq, p: SchedTask, wake_flags: number): void;
  /** Pull work before picking (newidle balancing); true when this class or a higher one has a task. */
  balance?(rq: Rq, prev: SchedTask): boolean;
  pick_task(rq: Rq): SchedTask | null;
  put_prev_task(rq: Rq, p: SchedTask, next: SchedTask | null): void;
  set_next_task(rq: Rq, p: SchedTask, first: boolean): void;
  /** The CPU a waking or new task should run on (p's rq is not locked). */
  select_task_rq?(p: SchedTask, prev_cpu: number, wake_flags: number): number;
  /** p is about to move to new_cpu (set_task_cpu). */
  migrate_task_rq?(p: SchedTask, new_cpu: number): void;
  task_woken?(rq: Rq, p: SchedTask): void;
  task_tick(rq: Rq, p: SchedTask, queued: boolean): void;
  task_fork?(p: SchedTask): void;
  task_dead?(p: SchedTask): void;
  switching_to?(rq: Rq, p: SchedTask): void;
  switched_from?(rq: Rq, p: SchedTask): void;
  switched_to?(rq: Rq, p: SchedTask): void;
  reweight_task?(rq: Rq, p: SchedTask, weight: number): void;
  prio_changed?(rq: Rq, p: SchedTask, oldprio: number): void;
  set_cpus_allowed?(p: SchedTask, mask: Uint8Array): void;
  update_curr?(rq: Rq): void;
  rq_online?(rq: Rq): void;
  rq_offline?(rq: Rq): void;
}

/**
 * What a class may call in the core (kernel/sched/core.c and sched.h helpers). Implemented by
 * `Sched` in core.ts; a class reaches it through `rq.sched`.
 */
export interface SchedCore {
  readonly kernel: Kernel;
  readonly nr_cpu_ids: number;
  /** ns per tick (TICK_NSEC at CONFIG_HZ). */
  readonly tick_nsec: number;
  /** The scheduler clock now. */
  now(): number;
  cpu_rq(cpu: number): Rq;
  task_rq(p: SchedTask): Rq;
  /** Every task that has not exited, in creation order (for_each_process_thread). */
  tasks(): Iterable<SchedTask>;
  /** Mark rq's curr for preemption; the CPU reschedules before running more of it. */
  resched_curr(rq: Rq): void;
  /** Let an idle CPU (or any with `force`) reschedule: an IPI to make it pick again. */
  kick_cpu(cpu: number): void;
  /** irq_work_queue on `cpu`: `fn` runs there before the next reschedule is honoured. */
  irq_work_queue(cpu: number, fn: () => void): void;
  /** The CPU starts or stops spinning in irq context (Rq.stalled). */
  set_cpu_stalled(cpu: number, on: boolean): void;
  idle_cpu(cpu: number): boolean;
  set_task_cpu(p: SchedTask, cpu: number): void;
  /** Move a queued, not running task to another CPU's run queue (move_queued_task). */
  move_queued_task(rq: Rq, p: SchedTask, new_cpu: number): Rq;
  /** The CPUs sharing a last-level cache with cpu, itself included, in id order. */
  llc_cpus(cpu: number): readonly number[];
  /** cpu_to_node() and nr_node_ids of the topology. */
  cpu_to_node(cpu: number): number;
  readonly nr_node_ids: number;
  /** cpu's SMT siblings, itself included. */
  smt_cpus(cpu: number): readonly number[];
  cpus_share_cache(a: number, b: number): boolean;
  update_rq_clock(rq: Rq): void;
  /**
   * update_curr_common: charge rq's current task for the time since its exec_start (the
   * sum_exec_runtime every class keeps through se, as ext and rt do); returns that time.
   */
  update_curr_common(rq: Rq): number;
  /** scx_enabled(): the ext class is in the pick order. Set by that class, then `reclass_all()`. */
  ext_enabled: boolean;
  /** scx_switched_all(): every normal task belongs to ext (no SCX_OPS_SWITCH_PARTIAL). */
  ext_switched_all: boolean;
  /** The class a task of this policy belongs to now. */
  class_for(policy: number): SchedClass;
  /** Move every task whose class changed with ext_enabled/ext_switched_all (scx_enable, scx_disable). */
  reclass_all(): void;
  /** Move one task to another class (switching_to, switched_from, switched_to around a dequeue/enqueue). */
  setscheduler_class(p: SchedTask, to: SchedClass): void;
  /** sched_class_above(a, b) in the order fair > ext > idle. */
  sched_class_above(a: SchedClass, b: SchedClass): boolean;
  /** Observers of fork, wake-up, context switch, tick and death (sched_ext's scx_fork, scx_tick...). */
  readonly hooks: import("./core.js").SchedHooks[];
}

/**
 * The ext class's slot. The kernel cannot import the sched_ext subsystem, so the subsystem fills
 * the slot at boot (Subsystem.register) with a maker, and each scheduler built on that kernel
 * asks it for its ext class.
 */
const extSlot = new WeakMap<Kernel, (core: SchedCore) => SchedClass>();

export function set_ext_sched_class(k: Kernel, make: (core: SchedCore) => SchedClass): void {
  extSlot.set(k, make);
}

export function ext_sched_class_maker(k: Kernel): ((core: SchedCore) => SchedClass) | undefined {
  return extSlot.get(k);
}

export function task_on_rq_queued(p: SchedTask): boolean {
  return p.on_rq === TASK_ON_RQ_QUEUED;
}

export function task_running(rq: Rq, p: SchedTask): boolean {
  return rq.curr === p;
}

/** cpumask_test_cpu(cpu, p->cpus_ptr) */
export function task_allowed_on_cpu(p: SchedTask, cpu: number): boolean {
  return p.cpus_mask[cpu] === 1;
}

/** The weight of a nice level or policy (set_load_weight). */
export function task_weight(p: SchedTask): number {
  if (p.policy === SCHED_IDLE) return WEIGHT_IDLEPRIO;
  return sched_prio_to_weight[p.static_prio - MAX_RT_PRIO]!;
}

/** Policies a fair (or ext) class runs. */
export function normal_policy(policy: number): boolean {
  return policy === SCHED_NORMAL || policy === SCHED_BATCH || policy === SCHED_IDLE || policy === SCHED_EXT;
}
