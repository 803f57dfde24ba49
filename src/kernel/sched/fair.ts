/**
 * The fair class (kernel/sched/fair.c, EEVDF as in 6.18 without task groups): every runnable
 * entity has a virtual runtime advancing at NICE_0_LOAD/weight of real time and a virtual
 * deadline one slice ahead; the CPU runs the eligible entity (vruntime at or below the weighted
 * average) with the earliest deadline. Lag is kept across sleeps and migrations (PLACE_LAG), new
 * tasks start with half a slice (PLACE_DEADLINE_INITIAL), the running task keeps the CPU until
 * its protected slice ends (RUN_TO_PARITY). Waking tasks go to an idle CPU sharing the cache
 * (select_idle_sibling); an idle CPU pulls waiting tasks (newidle and nohz idle balancing); busy
 * CPUs even out the weight they carry at the periodic balance.
 */
import { load_balance_tick, sched_balance_newidle } from "./fair_balance.js";
import type { CfsBandwidth } from "./fair_bandwidth.js";
import {
  type CfsRq,
  ENQUEUE_INITIAL,
  NICE_0_LOAD,
  type Rq,
  SCHED_IDLE,
  SCHED_NORMAL,
  type SchedClass,
  type SchedCore,
  type SchedTask,
  task_allowed_on_cpu,
  WF_EXEC,
  WF_FORK,
  WF_SYNC,
} from "./sched.js";

/** sysctl_sched_base_slice before scaling (normalized_sysctl_sched_base_slice). */
export const NORMALIZED_BASE_SLICE = 750_000;

/** The base slice for a machine: 0.75 ms x (1 + ilog2(min(ncpus, 8))) (SCHED_TUNABLESCALING_LOG). */
export function sched_base_slice(nrCpus: number): number {
  return NORMALIZED_BASE_SLICE * (1 + Math.floor(Math.log2(Math.min(nrCpus, 8))));
}

/** calc_delta_fair: real time to the entity's virtual time. */
export function calc_delta_fair(delta: number, weight: number): number {
  return weight === NICE_0_LOAD ? delta : (delta * NICE_0_LOAD) / weight;
}

/** avg_vruntime: the load-weighted average vruntime of the queued entities, curr included. */
export function avg_vruntime(cfs: CfsRq): number {
  const min = cfs.min_vruntime;
  let avg = 0;
  let load = 0;
  const curr = cfs.curr;
  if (curr?.se.on_rq) {
    avg += (curr.se.vruntime - min) * curr.se.weight;
    load += curr.se.weight;
  }
  for (const p of cfs.queue) {
    avg += (p.se.vruntime - min) * p.se.weight;
    load += p.se.weight;
  }
  return load ? min + avg / load : min;
}

/** entity_eligible: no more service received than its share (vruntime at or below the average). */
export function entity_eligible(cfs: CfsRq, p: SchedTask, avg = avg_vruntime(cfs)): boolean {
  return p.se.vruntime <= avg;
}

export class FairSchedClass implements SchedClass {
  readonly name = "fair";
  readonly base_slice: number;
  /** cpu.max throttling (set by the CPU controller). */
  bw: CfsBandwidth | null = null;

  constructor(readonly core: SchedCore) {
    this.base_slice = sched_base_slice(core.nr_cpu_ids);
  }

  private update_min_vruntime(cfs: CfsRq): void {
    let v = Number.POSITIVE_INFINITY;
    if (cfs.curr?.se.on_rq) v = cfs.curr.se.vruntime;
    for (const p of cfs.queue) if (p.se.vruntime < v) v = p.se.vruntime;
    if (v !== Number.POSITIVE_INFINITY && v > cfs.min_vruntime) cfs.min_vruntime = v;
  }

  /** update_deadline: a slice used up gets a new deadline; true when the CPU should pick again. */
  private update_deadline(p: SchedTask): boolean {
    const se = p.se;
    if (se.vruntime < se.deadline) return false;
    se.slice = this.base_slice;
    se.deadline = se.vruntime + calc_delta_fair(se.slice, se.weight);
    return true;
  }

  /** protect_slice: curr still within the part of its slice no wake-up may take (RUN_TO_PARITY). */
  private protect_slice(p: SchedTask): boolean {
    return p.se.vprot > p.se.vruntime;
  }

  /**
   * set_protect_slice: protected up to its deadline, or for the shortest slice queued when that
   * is shorter than its own.
   */
  private set_protect_slice(cfs: CfsRq, p: SchedTask): void {
    const se = p.se;
    let slice = se.slice;
    for (const q of cfs.queue) if (q.se.slice < slice) slice = q.se.slice;
    se.vprot =
      slice === se.slice ? se.deadline : Math.min(se.deadline, se.vruntime + calc_delta_fair(slice, se.weight));
  }

  update_curr(rq: Rq): void {
    const cfs = rq.cfs;
    const curr = cfs.curr;
    if (!curr) return;
    const se = curr.se;
    const delta = rq.clock_task - se.exec_start;
    if (delta <= 0) return;
    se.exec_start = rq.clock_task;
    se.sum_exec_runtime += delta;
    se.vruntime += calc_delta_fair(delta, se.weight);
    if (this.bw?.active) this.bw.account(curr, delta);
    const resched = this.update_deadline(curr);
    this.update_min_vruntime(cfs);
    if (cfs.nr_running <= 1) return;
    if (resched || !this.protect_slice(curr)) {
      if (rq.curr === curr) rq.sched.resched_curr(rq);
    }
  }

  private place_entity(cfs: CfsRq, p: SchedTask, flags: number): void {
    const se = p.se;
    if (!se.slice) se.slice = this.base_slice;
    let vslice = calc_delta_fair(se.slice, se.weight);
    const vruntime = avg_vruntime(cfs);
    let lag = 0;
    if (cfs.nr_running && se.vlag) {
      const load = cfs.load;
      lag = (se.vlag * (load + se.weight)) / (load || 1);
    }
    se.vruntime = vruntime - lag;
    if (flags & ENQUEUE_INITIAL) vslice /= 2;
    se.deadline = se.vruntime + vslice;
  }

  /** update_entity_lag: the service owed (positive) or overdrawn, bounded by a slice or a tick. */
  private update_entity_lag(cfs: CfsRq, p: SchedTask): void {
    const se = p.se;
    const limit = calc_delta_fair(Math.max(2 * se.slice, this.core.tick_nsec), se.weight);
    const lag = avg_vruntime(cfs) - se.vruntime;
    se.vlag = Math.max(-limit, Math.min(limit, lag));
  }

  enqueue_task(rq: Rq, p: SchedTask, flags: number): void {
    const cfs = rq.cfs;
    this.update_curr(rq);
    if (this.bw?.active && this.bw.throttled(p)) {
      // Runnable into a throttled group: it waits off the queue for the refill.
      this.bw.parked.add(p);
      rq.nr_running--;
      return;
    }
    this.place_entity(cfs, p, flags);
    if (cfs.curr !== p) cfs.queue.push(p);
    p.se.on_rq = true;
    cfs.nr_running++;
    cfs.load += p.se.weight;
    this.update_min_vruntime(cfs);
  }

  dequeue_task(rq: Rq, p: SchedTask): boolean {
    const cfs = rq.cfs;
    if (this.bw?.parked.has(p)) {
      // Off the queue already: the core's count of it went when it was throttled.
      this.bw.forget(p);
      rq.nr_running++;
      return true;
    }
    this.update_curr(rq);
    this.update_entity_lag(cfs, p);
    if (cfs.curr !== p) {
      const i = cfs.queue.indexOf(p);
      if (i >= 0) cfs.queue.splice(i, 1);
    }
    p.se.on_rq = false;
    cfs.nr_running--;
    cfs.load -= p.se.weight;
    this.update_min_vruntime(cfs);
    return true;
  }

  yield_task(rq: Rq): void {
    const p = rq.curr;
    if (rq.cfs.nr_running <= 1) return;
    this.update_curr(rq);
    p.se.deadline += calc_delta_fair(p.se.slice, p.se.weight);
  }

  /** pick_eevdf: the eligible entity with the earliest virtual deadline. */
  pick_eevdf(cfs: CfsRq): SchedTask | null {
    let curr = cfs.curr;
    if (cfs.nr_running === 1) return curr?.se.on_rq ? curr : (cfs.queue[0] ?? null);
    const avg = avg_vruntime(cfs);
    if (curr && (!curr.se.on_rq || !entity_eligible(cfs, curr, avg))) curr = null;
    if (curr && this.protect_slice(curr)) return curr;
    let best: SchedTask | null = null;
    for (const p of cfs.queue) {
      if (p.se.vruntime > avg) continue;
      if (!best || p.se.deadline < best.se.deadline) best = p;
    }
    if (!best || (curr && curr.se.deadline < best.se.deadline)) best = curr;
    if (!best) {
      // Rounding can leave nothing at or below the average: the smallest vruntime is eligible.
      for (const p of cfs.queue) if (!best || p.se.vruntime < best.se.vruntime) best = p;
    }
    return best;
  }

  wakeup_preempt(rq: Rq, p: SchedTask, _wake_flags: number): void {
    const curr = rq.curr;
    if (curr === p || rq.need_resched) return;
    const cIdle = curr.policy === SCHED_IDLE;
    const pIdle = p.policy === SCHED_IDLE;
    if (cIdle && !pIdle) {
      rq.sched.resched_curr(rq);
      return;
    }
    if (cIdle !== pIdle || p.policy !== SCHED_NORMAL) return;
    // PREEMPT_SHORT: an eligible task with a shorter slice and an earlier deadline ends curr's protection.
    if (p.se.slice < curr.se.slice && entity_eligible(rq.cfs, p) && p.se.deadline < curr.se.deadline) {
      curr.se.vprot = curr.se.vruntime;
    }
    this.update_curr(rq);
    if (this.pick_eevdf(rq.cfs) === p) rq.sched.resched_curr(rq);
  }

  balance(rq: Rq): boolean {
    if (rq.nr_running) return true;
    return sched_balance_newidle(this, rq) > 0;
  }

  pick_task(rq: Rq): SchedTask | null {
    if (this.bw?.active) {
      // check_cfs_rq_runtime: a current task whose group ran out leaves before anything is picked.
      const c = rq.cfs.curr;
      if (c?.se.on_rq && this.bw.throttled(c)) {
        this.update_curr(rq);
        this.park(rq, c);
      }
    }
    if (!rq.cfs.nr_running) return null;
    return this.pick_eevdf(rq.cfs);
  }

  put_prev_task(rq: Rq, p: SchedTask): void {
    const cfs = rq.cfs;
    if (p.se.on_rq) {
      this.update_curr(rq);
      if (this.bw?.active && this.bw.throttled(p)) this.park(rq, p);
      else cfs.queue.push(p);
    }
    cfs.curr = null;
  }

  /** Take a queued (not running) task of a throttled group off the run queue. */
  throttle_task(rq: Rq, p: SchedTask): void {
    const cfs = rq.cfs;
    this.update_curr(rq);
    const i = cfs.queue.indexOf(p);
    if (i >= 0) cfs.queue.splice(i, 1);
    this.park(rq, p);
  }

  private park(rq: Rq, p: SchedTask): void {
    const cfs = rq.cfs;
    this.update_entity_lag(cfs, p);
    p.se.on_rq = false;
    cfs.nr_running--;
    cfs.load -= p.se.weight;
    rq.nr_running--;
    this.update_min_vruntime(cfs);
    this.bw?.parked.add(p);
  }

  /** Its group refilled: back on the run queue, placed by its lag as after a sleep. */
  unthrottle_task(rq: Rq, p: SchedTask): void {
    const cfs = rq.cfs;
    this.bw?.forget(p);
    this.update_curr(rq);
    this.place_entity(cfs, p, 0);
    cfs.queue.push(p);
    p.se.on_rq = true;
    cfs.nr_running++;
    cfs.load += p.se.weight;
    rq.nr_running++;
    this.update_min_vruntime(cfs);
    if (rq.curr === rq.idle) rq.sched.resched_curr(rq);
    else if (rq.curr.sched_class === this) this.wakeup_preempt(rq, p, 0);
    else if (rq.sched.sched_class_above(this, rq.curr.sched_class)) rq.sched.resched_curr(rq);
  }

  set_next_task(rq: Rq, p: SchedTask): void {
    const cfs = rq.cfs;
    const se = p.se;
    if (se.on_rq) {
      const i = cfs.queue.indexOf(p);
      if (i >= 0) cfs.queue.splice(i, 1);
      this.set_protect_slice(cfs, p);
    }
    cfs.curr = p;
    se.exec_start = rq.clock_task;
    se.prev_sum_exec_runtime = se.sum_exec_runtime;
  }

  task_tick(rq: Rq): void {
    this.update_curr(rq);
  }

  task_fork(p: SchedTask): void {
    p.se.slice = this.base_slice;
  }

  /** A blocked or queued task changes weight: its lag is kept in real time. */
  reweight_task(rq: Rq, p: SchedTask, weight: number): void {
    const se = p.se;
    if (se.on_rq) {
      if (rq.cfs.curr === p) this.update_curr(rq);
      rq.cfs.load += weight - se.weight;
    }
    se.vlag = (se.vlag * se.weight) / weight;
    se.weight = weight;
  }

  switched_to(rq: Rq, p: SchedTask): void {
    if (rq.curr === p) return;
    if (p.se.on_rq) this.wakeup_preempt(rq, p, 0);
  }

  // ---- CPU selection ----

  select_task_rq(p: SchedTask, prev_cpu: number, wake_flags: number): number {
    const core = this.core;
    const cpu = core.kernel.cpu;
    if (wake_flags & (WF_FORK | WF_EXEC)) return this.find_idlest_cpu(p, prev_cpu);
    let target = prev_cpu;
    if (cpu !== prev_cpu && task_allowed_on_cpu(p, cpu))
      target = this.wake_affine(p, cpu, prev_cpu, !!(wake_flags & WF_SYNC));
    return this.select_idle_sibling(p, prev_cpu, target);
  }

  /** wake_affine: the waker's CPU when it is idle or less loaded, else prev. */
  private wake_affine(p: SchedTask, this_cpu: number, prev_cpu: number, sync: boolean): number {
    const core = this.core;
    if (core.idle_cpu(this_cpu) && core.cpus_share_cache(this_cpu, prev_cpu)) {
      return core.idle_cpu(prev_cpu) ? prev_cpu : this_cpu;
    }
    if (sync && core.cpu_rq(this_cpu).nr_running === 1) return this_cpu;
    if (core.idle_cpu(prev_cpu)) return prev_cpu;
    // WA_WEIGHT with imbalance_pct 117: half the margin in favour of staying.
    let thisLoad = core.cpu_rq(this_cpu).cfs.load + p.se.weight;
    if (sync) thisLoad -= core.cpu_rq(this_cpu).curr.se.weight;
    const prevLoad = core.cpu_rq(prev_cpu).cfs.load;
    return thisLoad * 100 < prevLoad * 108.5 ? this_cpu : prev_cpu;
  }

  /** select_idle_sibling: target or prev when idle, else an idle core, then an idle CPU, in target's LLC. */
  select_idle_sibling(p: SchedTask, prev: number, target: number): number {
    const core = this.core;
    if (core.idle_cpu(target) && task_allowed_on_cpu(p, target)) return target;
    if (prev !== target && core.cpus_share_cache(prev, target) && core.idle_cpu(prev) && task_allowed_on_cpu(p, prev)) {
      return prev;
    }
    const llc = core.llc_cpus(target);
    const n = llc.length;
    const start = llc.indexOf(target);
    const smt = core.smt_cpus(target).length > 1;
    if (smt) {
      for (let i = 1; i <= n; i++) {
        const c = llc[(start + i) % n]!;
        if (task_allowed_on_cpu(p, c) && core.smt_cpus(c).every((s) => core.idle_cpu(s))) return c;
      }
    }
    for (let i = 1; i <= n; i++) {
      const c = llc[(start + i) % n]!;
      if (task_allowed_on_cpu(p, c) && core.idle_cpu(c)) return c;
    }
    return target;
  }

  /** sched_balance_find_dst_cpu for fork and exec: an idle CPU (idle core first), else the least loaded. */
  private find_idlest_cpu(p: SchedTask, prev_cpu: number): number {
    const core = this.core;
    let best = -1;
    let bestKey = Number.POSITIVE_INFINITY;
    for (let c = 0; c < core.nr_cpu_ids; c++) {
      if (!task_allowed_on_cpu(p, c)) continue;
      const rq = core.cpu_rq(c);
      const busySiblings = core.smt_cpus(c).filter((s) => !core.idle_cpu(s)).length;
      // Idle CPUs first (on idle cores first), then by the weight queued.
      const key = core.idle_cpu(c) ? busySiblings : 1e3 + rq.cfs.load + rq.nr_running;
      if (key < bestKey || (key === bestKey && c === prev_cpu)) {
        best = c;
        bestKey = key;
      }
    }
    return best < 0 ? prev_cpu : best;
  }

  /** The tick's balancing (sched_balance_trigger): idle CPUs pull from overloaded ones, busy ones even out load. */
  trigger_load_balance(rq: Rq): void {
    load_balance_tick(this, rq);
  }
}
