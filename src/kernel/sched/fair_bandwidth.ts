/**
 * CFS bandwidth control (kernel/sched/fair.c CONFIG_CFS_BANDWIDTH, core.c tg_set_cfs_bandwidth):
 * a cgroup's `cpu.max` quota of CPU time per period, shared by the fair tasks of its subtree on
 * every CPU. Time they run is charged to each limited ancestor; one that runs out is throttled:
 * its queued tasks leave their run queues and its running ones are preempted and leave at
 * put_prev, until the period timer refills the quota (`runtime += quota`, at most quota + burst;
 * an overrun is a debt the next period pays first) and unthrottles them.
 *
 * In the small: one pool per cgroup instead of per-CPU runtime slices handed out from it
 * (sched_cfs_bandwidth_slice), so a throttle takes effect at the next update_curr of each CPU
 * (a tick at most) and every CPU's tasks stop together. The period timer runs while a limit is set.
 */
import { type Cgroup, RUNTIME_INF } from "../cgroup.js";
import {
  HRTIMER_MODE_ABS,
  HRTIMER_RESTART,
  type Hrtimer,
  hrtimer_cancel,
  hrtimer_forward_now,
  hrtimer_setup,
  hrtimer_start,
} from "../hrtimer.js";
import type { Task } from "../task.js";
import type { FairSchedClass } from "./fair.js";
import type { SchedCore, SchedTask } from "./sched.js";

const NSEC_PER_USEC = 1000n;
/** min_cfs_quota_period: 1 ms; max_cfs_quota_period: 1 s. */
const MIN_CFS_QUOTA_PERIOD = 1_000_000n;
const MAX_CFS_QUOTA_PERIOD = 1_000_000_000n;
/** max_cfs_runtime: MAX_BW us (BW_SHIFT 20). */
const MAX_CFS_RUNTIME = ((1n << 44n) - 1n) * NSEC_PER_USEC;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const EINVAL = 22;

/** struct cfs_bandwidth of one limited cgroup (ns). */
export interface CfsBw {
  period: number;
  quota: number;
  burst: number;
  /** What is left of this period's quota (negative: a debt). */
  runtime: number;
  throttled: boolean;
  timer: Hrtimer;
  /** cpu.stat: nr_periods, nr_throttled, throttled_usec. */
  nr_periods: number;
  nr_throttled: number;
  throttled_time: number;
  throttled_since: number;
}

export class CfsBandwidth {
  private readonly bw = new Map<Cgroup, CfsBw>();
  /** Throttled fair tasks: runnable, but off their CPU's run queue. */
  readonly parked = new Set<SchedTask>();

  constructor(
    private readonly core: SchedCore,
    private readonly fair: FairSchedClass,
    private readonly cgroupOf: (p: SchedTask) => Cgroup | null,
    private readonly schedOf: (t: Task) => SchedTask | undefined,
  ) {}

  /** Is any cgroup limited (the fair class's fast path skips all of this otherwise)? */
  get active(): boolean {
    return this.bw.size > 0 || this.parked.size > 0;
  }

  stat(cg: Cgroup): Readonly<CfsBw> | undefined {
    return this.bw.get(cg);
  }

  /**
   * tg_set_bandwidth + tg_set_cfs_bandwidth's checks (us): -EINVAL for values that do not survive
   * the conversion to ns, a quota or period under 1 ms, a period over 1 s, a quota over
   * max_cfs_runtime, a burst over the quota. 0 when the limit is taken.
   */
  check(period_us: bigint, quota_us: bigint, burst_us: bigint): number {
    const maxUsec = U64_MAX / NSEC_PER_USEC;
    if (period_us > maxUsec || (quota_us !== RUNTIME_INF && quota_us > maxUsec) || burst_us > maxUsec) return -EINVAL;
    const period = period_us * NSEC_PER_USEC;
    const quota = quota_us === RUNTIME_INF ? RUNTIME_INF : quota_us * NSEC_PER_USEC;
    const burst = burst_us * NSEC_PER_USEC;
    if (quota < MIN_CFS_QUOTA_PERIOD || period < MIN_CFS_QUOTA_PERIOD) return -EINVAL;
    if (period > MAX_CFS_QUOTA_PERIOD) return -EINVAL;
    if (quota !== RUNTIME_INF && quota > MAX_CFS_RUNTIME) return -EINVAL;
    if (quota !== RUNTIME_INF && (burst > quota || burst + quota > MAX_CFS_RUNTIME)) return -EINVAL;
    return 0;
  }

  /** The new limit (checked): the pool starts full, whatever was throttled runs again. */
  set(cg: Cgroup, period_us: bigint, quota_us: bigint, burst_us: bigint): void {
    let b = this.bw.get(cg);
    if (quota_us === RUNTIME_INF) {
      if (b) {
        hrtimer_cancel(b.timer);
        this.bw.delete(cg);
      }
    } else {
      const period = Number(period_us * NSEC_PER_USEC);
      const quota = Number(quota_us * NSEC_PER_USEC);
      const burst = Number(burst_us * NSEC_PER_USEC);
      if (!b) {
        const k = this.core.kernel;
        const timer = hrtimer_setup(k, (t) => this.period_timer(cg, t), 1 /* CLOCK_MONOTONIC */, HRTIMER_MODE_ABS);
        b = {
          period,
          quota,
          burst,
          runtime: quota,
          throttled: false,
          timer,
          nr_periods: 0,
          nr_throttled: 0,
          throttled_time: 0,
          throttled_since: 0,
        };
        this.bw.set(cg, b);
      }
      Object.assign(b, { period, quota, burst, runtime: quota });
      if (b.throttled) this.endThrottle(b);
      hrtimer_start(b.timer, this.core.kernel.ktimeGetNs() + BigInt(period), HRTIMER_MODE_ABS);
    }
    this.unthrottleRunnable();
  }

  /** Has any cgroup p's time is charged to run out of quota? */
  throttled(p: SchedTask): boolean {
    if (!this.bw.size) return false;
    for (let c = this.cgroupOf(p); c; c = c.parent) if (this.bw.get(c)?.throttled) return true;
    return false;
  }

  /** account_cfs_rq_runtime: p ran `delta` ns; a limited ancestor that runs out is throttled. */
  account(p: SchedTask, delta: number): void {
    for (let c = this.cgroupOf(p); c; c = c.parent) {
      const b = this.bw.get(c);
      if (!b) continue;
      b.runtime -= delta;
      if (b.runtime <= 0 && !b.throttled) this.throttle(c, b);
    }
  }

  /** throttle_cfs_rq on every CPU: queued tasks leave now, running ones at their next put_prev. */
  private throttle(cg: Cgroup, b: CfsBw): void {
    b.throttled = true;
    b.nr_throttled++;
    b.throttled_since = this.core.now();
    const walk = (c: Cgroup) => {
      for (const t of c.tasks) {
        const p = this.fairTaskOf(t);
        if (!p?.se.on_rq) continue;
        const rq = this.core.task_rq(p);
        if (rq.curr === p) this.core.resched_curr(rq);
        else this.fair.throttle_task(rq, p);
      }
      for (const ch of c.children) walk(ch);
    };
    walk(cg);
  }

  private endThrottle(b: CfsBw): void {
    b.throttled = false;
    b.throttled_time += this.core.now() - b.throttled_since;
  }

  private fairTaskOf(t: Task): SchedTask | null {
    const p = this.schedOf(t);
    return p && p.sched_class === this.fair ? p : null;
  }

  /** sched_cfs_period_timer: refill (with the burst carried over), unthrottle, run again next period. */
  private period_timer(cg: Cgroup, t: Hrtimer): number {
    const b = this.bw.get(cg);
    if (!b) return 0;
    const overruns = Number(hrtimer_forward_now(this.core.kernel, t, BigInt(b.period)));
    b.nr_periods += overruns;
    for (let i = 0; i < overruns; i++) b.runtime = Math.min(b.runtime + b.quota, b.quota + b.burst);
    if (b.throttled && b.runtime > 0) {
      this.endThrottle(b);
      this.unthrottleRunnable();
    }
    return HRTIMER_RESTART;
  }

  /** unthrottle_cfs_rq: every parked task no longer limited goes back to its run queue. */
  private unthrottleRunnable(): void {
    for (const p of [...this.parked]) if (!this.throttled(p)) this.fair.unthrottle_task(this.core.task_rq(p), p);
  }

  /** The task left its run queue for good (dequeue while parked). */
  forget(p: SchedTask): void {
    this.parked.delete(p);
  }
}
