/**
 * What a scheduler did with a workload: per task its CPU time and share of the machine against
 * the share its weight entitles it to, wake-up latency (wake-up to running), run-queue wait
 * (runnable but not running), context switches and migrations; overall the CPUs' utilisation and
 * Jain's fairness index over the CPU-bound tasks' shares divided by their entitlements.
 *
 * Entitlement: CPU-bound tasks (runnable at least 95% of their life) split the CPU time the others
 * left, by weight, none more than one CPU (water-filling); a ratio of 1 for every one of them is a
 * perfectly weighted-fair scheduler (Jain's index 1).
 */
import type { SchedTask } from "../../kernel/sched/sched.js";
import type { Machine, TaskRun } from "./machine.js";

export interface TaskMetrics {
  pid: number;
  name: string;
  nice: number;
  weight: number;
  runtime_ms: number;
  /** Share of the machine's CPU time (runtime / (duration x CPUs)). */
  share: number;
  /** CPU-bound: its weighted entitlement (share units); null for the others. */
  fair_share: number | null;
  wakeups: number;
  latency_us: { p50: number; p99: number; max: number };
  run_delay_ms: number;
  nvcsw: number;
  nivcsw: number;
  migrations: number;
  exited: boolean;
  /** Its cgroup's path at the end (only when the workload has cgroups). */
  cgroup?: string;
}

/** Per cgroup with tasks (only when the workload has cgroups): its tasks' CPU time and entitlement. */
export interface CgroupMetrics {
  path: string;
  weight: number;
  runtime_ms: number;
  share: number;
  /** The sum of its CPU-bound tasks' entitlements (null: none is CPU-bound). */
  fair_share: number | null;
}

export interface SchedMetrics {
  cpus: number;
  duration_s: number;
  tasks: TaskMetrics[];
  /** Busy fraction of each CPU and of the machine. */
  utilisation: number[];
  utilisation_all: number;
  context_switches: number;
  migrations: number;
  latency_us: { p50: number; p99: number; max: number; samples: number };
  run_delay_ms: number;
  /** Jain's index over the CPU-bound tasks' share / entitlement (null: fewer than two such tasks). */
  jain_weighted: number | null;
  cgroups?: CgroupMetrics[];
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function jain(xs: readonly number[]): number {
  const s = xs.reduce((a, b) => a + b, 0);
  const q = xs.reduce((a, b) => a + b * b, 0);
  return q ? (s * s) / (xs.length * q) : 1;
}

/** Water-filling of `capacity` CPUs by weight, no task above one CPU. */
export function waterFill(weights: readonly number[], capacity: number, caps?: readonly number[]): number[] {
  const out = weights.map(() => 0);
  const capOf = (i: number) => Math.min(1, caps?.[i] ?? 1);
  let free = weights.map((_, i) => i);
  let cap = Math.max(0, capacity);
  while (free.length) {
    const w = free.reduce((a, i) => a + weights[i]!, 0);
    const over = free.filter((i) => (cap * weights[i]!) / w > capOf(i));
    if (!over.length) {
      for (const i of free) out[i] = (cap * weights[i]!) / w;
      break;
    }
    for (const i of over) {
      out[i] = capOf(i);
      cap -= out[i]!;
    }
    free = free.filter((i) => !over.includes(i));
  }
  return out;
}

const us = (ns: number) => Math.round(ns / 100) / 10;
const ms = (ns: number) => Math.round(ns / 1e3) / 1e3;
const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

export function schedMetrics(m: Machine, durationNs: number): SchedMetrics {
  const cpus = m.sched.nr_cpu_ids;
  const capacity = durationNs * cpus;
  const life = (p: SchedTask) => {
    const r = p.user as TaskRun;
    return (r.exited ? r.exitedAt : durationNs) - r.forkedAt;
  };
  const bound = m.all.filter((p) => {
    const l = life(p);
    return l > 0 && p.se.sum_exec_runtime + p.sched_info.run_delay >= 0.95 * l && l >= 0.95 * durationNs;
  });
  const boundSet = new Set(bound);
  const othersNs = m.all.filter((p) => !boundSet.has(p)).reduce((a, p) => a + p.se.sum_exec_runtime, 0);
  // With cgroups, a task's weight is its share of its group's (what the fair class runs it with).
  const cpuCg = m.sched.cgroup;
  const grouped = cpuCg.grouped();
  const weightOf = (p: SchedTask) => (grouped ? cpuCg.load_weight(p) : p.se.weight);
  // cpu.max: a limited cgroup's bound tasks together get at most quota / period CPUs (the
  // tightest over its ancestors), split by weight.
  const capOf = (p: SchedTask): number => {
    let cap = 1;
    for (let c = cpuCg.taskCgroup(p); c?.parent; c = c.parent) {
      const b = cpuCg.bandwidth.stat(c);
      if (!b) continue;
      let w = 0;
      for (const q of bound) {
        const qc = cpuCg.taskCgroup(q);
        if (qc && (qc === c || qc.ancestors[c.level] === c)) w += weightOf(q);
      }
      cap = Math.min(cap, ((b.quota / b.period) * weightOf(p)) / (w || 1));
    }
    return cap;
  };
  const ent = waterFill(bound.map(weightOf), (capacity - othersNs) / durationNs, bound.map(capOf));
  const entOf = new Map(bound.map((p, i) => [p, ent[i]! / cpus]));
  const allLat: number[] = [];
  const tasks = m.all.map((p): TaskMetrics => {
    const r = p.user as TaskRun;
    const lat = [...r.latencies].sort((a, b) => a - b);
    for (const x of lat) allLat.push(x);
    const fs = entOf.get(p);
    return {
      pid: p.pid,
      name: p.comm,
      nice: p.static_prio - 120,
      weight: p.se.weight,
      runtime_ms: ms(p.se.sum_exec_runtime),
      share: r4(p.se.sum_exec_runtime / capacity),
      fair_share: fs === undefined ? null : r4(fs),
      wakeups: lat.length,
      latency_us: { p50: us(percentile(lat, 50)), p99: us(percentile(lat, 99)), max: us(lat[lat.length - 1] ?? 0) },
      run_delay_ms: ms(p.sched_info.run_delay),
      nvcsw: p.nvcsw,
      nivcsw: p.nivcsw,
      migrations: p.se.nr_migrations,
      exited: r.exited,
      ...(grouped ? { cgroup: cpuCg.taskCgroup(p)?.path ?? "/" } : {}),
    };
  });
  let cgroups: CgroupMetrics[] | undefined;
  if (grouped) {
    const by = new Map<string, CgroupMetrics>();
    m.all.forEach((p, i) => {
      const cg = cpuCg.taskCgroup(p);
      const path = cg?.path ?? "/";
      let c = by.get(path);
      if (!c) by.set(path, (c = { path, weight: cg?.weight ?? 100, runtime_ms: 0, share: 0, fair_share: null }));
      c.runtime_ms += p.se.sum_exec_runtime;
      const fs = tasks[i]!.fair_share;
      if (fs !== null) c.fair_share = (c.fair_share ?? 0) + (entOf.get(p) ?? 0);
    });
    cgroups = [...by.values()].map((c) => ({
      ...c,
      runtime_ms: ms(c.runtime_ms),
      share: r4(c.runtime_ms / capacity),
      fair_share: c.fair_share === null ? null : r4(c.fair_share),
    }));
  }
  allLat.sort((a, b) => a - b);
  const busy = m.busyNs();
  const ratios = bound.map((p) => p.se.sum_exec_runtime / capacity / entOf.get(p)!);
  return {
    cpus,
    duration_s: durationNs / 1e9,
    tasks,
    utilisation: busy.map((b) => r4(b / durationNs)),
    utilisation_all: r4(busy.reduce((a, b) => a + b, 0) / capacity),
    context_switches: m.sched.rqs.reduce((a, rq) => a + rq.nr_switches, 0),
    migrations: m.all.reduce((a, p) => a + p.se.nr_migrations, 0),
    latency_us: {
      p50: us(percentile(allLat, 50)),
      p99: us(percentile(allLat, 99)),
      max: us(allLat[allLat.length - 1] ?? 0),
      samples: allLat.length,
    },
    run_delay_ms: ms(m.all.reduce((a, p) => a + p.sched_info.run_delay, 0)),
    jain_weighted: ratios.length >= 2 ? r4(jain(ratios)) : null,
    ...(cgroups ? { cgroups } : {}),
  };
}
