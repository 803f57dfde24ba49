// Sweep throughput: the same grid on 1 worker thread and on 2 (runs per second); the goal is
// >= 1.8x on 2 cores.
//
// Wall time on a shared machine says how busy the others are, so each configuration is measured in
// CPU time: every worker thread reports its own (/proc/thread-self/schedstat), and process.cpuUsage()
// gives the whole process's, V8's compiler and GC threads included. On 2 idle cores a configuration
// cannot finish before its busiest worker thread has run, nor before the process's CPU time spread
// over both cores: the larger of the two is its wall time there, and the ratio of those is the
// speed-up the configuration can reach, whatever else runs meanwhile. The measured wall-clock rates and
// the load average stand beside them.
import { loadavg } from "node:os";
import { gridFrom, runSweep, type SweepWorkerStats } from "../src/cli/sweep.js";
import type { GridPoint } from "../src/sim/sweep.js";
import type { BenchResult } from "./bench.js";

const CORES = 2;

interface Measured {
  wallS: number;
  processCpuS: number;
  workerCpuS: number[];
  /** The wall time on CORES idle cores this CPU time allows at best. */
  idleS: number;
}

async function measure(points: GridPoint[], duration: string, jobs: number): Promise<Measured> {
  const workers: SweepWorkerStats[] = [];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await runSweep(points, { duration, hz: "1000" }, jobs, undefined, workers);
  const wallS = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const processCpuS = (c.user + c.system) / 1e6;
  const workerCpuS = workers.map((w) => (w.cpuNs ?? Number.NaN) / 1e9);
  const idleS = Math.max(...workerCpuS, processCpuS / CORES);
  return { wallS, processCpuS, workerCpuS, idleS };
}

/** The least CPU time of `reps` measurements (the one the others' load disturbed least). */
async function best(points: GridPoint[], duration: string, jobs: number, reps: number): Promise<Measured> {
  let b: Measured | undefined;
  for (let i = 0; i < reps; i++) {
    const m = await measure(points, duration, jobs);
    if (!b || m.idleS < b.idleS) b = m;
  }
  return b!;
}

const s = (x: number) => x.toFixed(2);

async function grid(duration: string, reps: number): Promise<BenchResult> {
  const { points } = gridFrom({
    cc: "cubic,bbr",
    rate: "12mbit,24mbit",
    delay: "20ms",
    buffer: "0.5bdp,2bdp",
    flows: "1",
    seeds: "1..2",
    duration,
    hz: "1000",
  });
  const load = loadavg()[0]!.toFixed(1);
  const one = await best(points, duration, 1, reps);
  const two = await best(points, duration, 2, reps);
  const n = points.length;
  const ratio = one.idleS / two.idleS;
  if (one.workerCpuS.some(Number.isNaN)) {
    // No per-thread CPU time here: wall time only, which the load can bend either way.
    return {
      name: `sweep grid of ${n} runs (cubic, bbr; ${duration} each), 2 worker threads, wall time`,
      value: n / two.wallS,
      unit: "runs/s",
      baseline: { name: "1 worker thread", value: n / one.wallS },
      ratio: one.wallS / two.wallS,
      note: `no per-thread CPU time on this platform; load average ${load}`,
    };
  }
  return {
    name: `sweep grid of ${n} runs (cubic, bbr; ${duration} each), 2 worker threads, runs/s on ${CORES} idle cores from CPU time`,
    value: n / two.idleS,
    unit: "runs/s",
    baseline: { name: "1 worker thread", value: n / one.idleS },
    ratio,
    note:
      `goal >= 1.8x: ${ratio >= 1.8 ? "met" : "not met"}; ` +
      `CPU s (process / worker threads): 1 worker ${s(one.processCpuS)} / ${one.workerCpuS.map(s).join("+")}, ` +
      `2 workers ${s(two.processCpuS)} / ${two.workerCpuS.map(s).join("+")}; ` +
      `wall ${s(n / one.wallS)} and ${s(n / two.wallS)} runs/s at load average ${load}`,
  };
}

export async function run(): Promise<BenchResult[]> {
  // Short runs, as a quick sweep has them: each worker's start-up and JIT warm-up weigh in. Longer
  // runs of the same grid: the per-run work dominates.
  return [await grid("8s", 2), await grid("30s", 1)];
}
