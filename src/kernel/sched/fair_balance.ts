/**
 * The fair class's load balancing (kernel/sched/fair.c, sched_balance_*): a CPU going idle pulls
 * waiting tasks from the busiest CPU of its domains, innermost first (SMT siblings, LLC, the
 * machine); at the tick, a CPU with tasks waiting kicks the idle CPUs to do the same (nohz idle
 * balancing); and every balance interval a CPU pulls weight from a CPU carrying more than
 * imbalance_pct (117%) of its own, half the difference, tasks no heavier than what is left to
 * move unless earlier attempts failed (nr_balance_failed halves the weight it compares).
 */
import type { FairSchedClass } from "./fair.js";
import { type Rq, type SchedTask, task_allowed_on_cpu } from "./sched.js";

const IMBALANCE_PCT = 117;
const BUSY_FACTOR = 16;

const domainCache = new WeakMap<FairSchedClass, (readonly number[])[][]>();

/** The domain spans around a CPU, innermost first (the sched_domain hierarchy, built once). */
function domains(fair: FairSchedClass, cpu: number): (readonly number[])[] {
  let all = domainCache.get(fair);
  if (!all) {
    const c = fair.core;
    const machine = Array.from({ length: c.nr_cpu_ids }, (_, i) => i);
    all = machine.map((x) => {
      const out: (readonly number[])[] = [];
      for (const span of [c.smt_cpus(x), c.llc_cpus(x), machine]) {
        if (span.length > 1 && (out.length === 0 || span.length > out[out.length - 1]!.length)) out.push(span);
      }
      return out;
    });
    domainCache.set(fair, all);
  }
  return all[cpu]!;
}

/** can_migrate_task: queued, not running, allowed on the destination. */
function movable(src: Rq, p: SchedTask, dst: number): boolean {
  return src.curr !== p && task_allowed_on_cpu(p, dst) && src.sched.cpu_rq(dst).online;
}

function pull(fair: FairSchedClass, src: Rq, dst: Rq, p: SchedTask): void {
  fair.core.move_queued_task(src, p, dst.cpu);
}

/** sched_balance_newidle: tasks pulled to the CPU going idle (0 when none). */
export function sched_balance_newidle(fair: FairSchedClass, rq: Rq): number {
  for (const span of domains(fair, rq.cpu)) {
    const moved = pull_waiting(fair, rq, span);
    if (moved) return moved;
  }
  return 0;
}

/** From the CPU of `span` with the most fair tasks waiting, half the difference in count (at least one). */
function pull_waiting(fair: FairSchedClass, dst: Rq, span: readonly number[]): number {
  const core = fair.core;
  let busiest: Rq | null = null;
  for (const c of span) {
    if (c === dst.cpu) continue;
    const rq = core.cpu_rq(c);
    if (rq.cfs.nr_running < 2) continue;
    if (!rq.cfs.queue.some((p) => movable(rq, p, dst.cpu))) continue;
    if (!busiest || rq.cfs.nr_running > busiest.cfs.nr_running) busiest = rq;
  }
  if (!busiest) return 0;
  let want = Math.max(1, (busiest.cfs.nr_running - dst.cfs.nr_running) >> 1);
  let moved = 0;
  for (const p of [...busiest.cfs.queue]) {
    if (want === 0) break;
    if (!movable(busiest, p, dst.cpu)) continue;
    pull(fair, busiest, dst, p);
    want--;
    moved++;
  }
  return moved;
}

const failed = new WeakMap<Rq, number>();

/** sched_balance_rq for one domain: even out the weight carried. */
function balance_load(fair: FairSchedClass, dst: Rq, span: readonly number[]): number {
  const core = fair.core;
  let busiest: Rq | null = null;
  for (const c of span) {
    if (c === dst.cpu) continue;
    const rq = core.cpu_rq(c);
    if (rq.cfs.nr_running < 2) continue;
    if (!busiest || rq.cfs.load > busiest.cfs.load) busiest = rq;
  }
  if (!busiest || busiest.cfs.load * 100 <= dst.cfs.load * IMBALANCE_PCT) return 0;
  let imbalance = (busiest.cfs.load - dst.cfs.load) / 2;
  const nfail = failed.get(dst) ?? 0;
  let moved = 0;
  for (const p of [...busiest.cfs.queue]) {
    if (imbalance <= 0) break;
    if (!movable(busiest, p, dst.cpu)) continue;
    const w = p.se.weight;
    if (w / 2 ** nfail > imbalance) continue;
    pull(fair, busiest, dst, p);
    imbalance -= w;
    moved++;
  }
  failed.set(dst, moved ? 0 : nfail + 1);
  return moved;
}

/** The tick's part: nohz kick of idle CPUs when tasks wait here, and the periodic balance. */
export function load_balance_tick(fair: FairSchedClass, rq: Rq): void {
  const core = fair.core;
  if (rq.cfs.nr_running >= 2) {
    for (let c = 0; c < core.nr_cpu_ids; c++) {
      if (c === rq.cpu || !core.idle_cpu(c)) continue;
      const idle = core.cpu_rq(c);
      if (sched_balance_newidle(fair, idle) > 0) core.resched_curr(idle);
      if (rq.cfs.nr_running < 2) break;
    }
  }
  const now = core.now();
  if (now < rq.next_balance) return;
  const busy = rq.curr !== rq.idle;
  let moved = 0;
  for (const span of domains(fair, rq.cpu)) {
    if (!moved) moved = balance_load(fair, rq, span);
  }
  // balance_interval is the domain's weight in ms, times busy_factor while busy.
  const interval = core.nr_cpu_ids * 1e6 * (busy ? BUSY_FACTOR : 1);
  rq.next_balance = now + Math.max(interval, core.tick_nsec);
  if (moved && rq.curr === rq.idle) core.resched_curr(rq);
}
