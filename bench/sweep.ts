// Sweep throughput on 2 cores against 1 (the goal: >= 1.8x the runs per second).
//
// `structops sweep` as the command runs it (runSweep with the bundled worker, dist/cli/sweep_worker.js,
// workers started once and fed runs), on the same grid, twice in this bench run: with every thread of
// this process pinned to one core (taskset -a) and -J 1, then pinned to two cores and -J 2. Threads
// started later inherit the mask, so V8's compiler and GC threads share the cores the configuration
// has, as they would on a machine of that size.
//
// Wall time is what the goal means, and what an idle machine shows; on a shared one it says how busy
// the others are. So each configuration's CPU time stands beside it: on 1 core the wall time cannot be
// less than the process's CPU time (every thread on one core), on 2 cores not less than its busiest
// worker thread's (/proc/thread-self/schedstat) nor half the process's. Those give the ratio an idle
// machine would show at best, whatever ran meanwhile; the load average is given with each figure.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { gridFrom, runSweep, type SweepWorkerStats } from "../src/cli/sweep.js";
import type { GridPoint } from "../src/sim/sweep.js";
import type { BenchResult } from "./bench.js";

interface Measured {
  wallS: number;
  processCpuS: number;
  workerCpuS: number[];
  /** The wall time on `cores` idle cores this CPU time allows at best. */
  idleS: number;
  load: string;
}

/** Pin every thread of this process to CPUs 0..cores-1; false where taskset cannot. */
function pin(cores: number): boolean {
  const r = spawnSync("taskset", ["-a", "-p", "-c", cores === 1 ? "0" : `0-${cores - 1}`, String(process.pid)], {
    encoding: "utf8",
  });
  return r.status === 0;
}

async function measure(points: GridPoint[], duration: string, cores: number): Promise<Measured> {
  const workers: SweepWorkerStats[] = [];
  const load = loadavg()[0]!.toFixed(1);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await runSweep(points, { duration, hz: "1000" }, cores, undefined, workers);
  const wallS = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const processCpuS = (c.user + c.system) / 1e6;
  const workerCpuS = workers.map((w) => (w.cpuNs ?? Number.NaN) / 1e9);
  const idleS = cores === 1 ? processCpuS : Math.max(...workerCpuS, processCpuS / cores);
  return { wallS, processCpuS, workerCpuS, idleS, load: `${load}-${loadavg()[0]!.toFixed(1)}` };
}

const s = (x: number) => x.toFixed(2);

async function grid(duration: string, seeds: string): Promise<BenchResult> {
  const { points } = gridFrom({
    cc: "cubic,bbr",
    rate: "12mbit,24mbit",
    delay: "20ms",
    buffer: "0.5bdp,2bdp",
    flows: "1",
    seeds,
    duration,
    hz: "1000",
  });
  const n = points.length;
  const name = `sweep grid of ${n} runs (cubic, bbr; ${duration} each), 2 cores (-J 2) against 1 (-J 1)`;
  if (!pin(1)) {
    return {
      name,
      value: 0,
      unit: "runs/s",
      note: "taskset could not pin this process: no comparison of core counts here",
    };
  }
  let one: Measured;
  let two: Measured;
  try {
    one = await measure(points, duration, 1);
    pin(2);
    two = await measure(points, duration, 2);
  } finally {
    pin(2);
  }
  const wallRatio = one.wallS / two.wallS;
  const idleRatio = one.idleS / two.idleS;
  const perThread = !two.workerCpuS.some(Number.isNaN);
  return {
    name: `${name}, runs/s of wall time`,
    value: n / two.wallS,
    unit: "runs/s",
    baseline: { name: "1 core", value: n / one.wallS },
    ratio: wallRatio,
    note:
      `load average ${one.load} (1 core) and ${two.load} (2 cores): ` +
      `the wall-time ratio counts only where the machine was otherwise idle; ` +
      (perThread
        ? `from CPU time an idle machine's ratio is at best ${s(idleRatio)}x ` +
          `(1 core: process ${s(one.processCpuS)} s; 2 cores: process ${s(two.processCpuS)} s, worker threads ${two.workerCpuS.map(s).join("+")} s)`
        : `no per-thread CPU time on this platform (process ${s(one.processCpuS)} s and ${s(two.processCpuS)} s)`),
  };
}

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(new URL("../cli/sweep_worker.js", import.meta.url))) {
    throw new Error("dist/cli/sweep_worker.js is missing: run `npm run build` (npm run bench does)");
  }
  // Short runs, as a quick sweep has them, and runs of 30 s as most sweeps do; 48 and 32 runs so
  // that each worker's start-up (module loading, V8's optimising compiles) is shared by many. Each
  // worker is a V8 isolate of its own that optimises the simulator again (~0.9 s of CPU), in
  // parallel with the other's: a grid of T seconds of work on one core takes about W + T there and
  // W + T/2 on two, so the ratio nears 2 only as T outgrows W. The 96-run grid is a sweep's usual
  // size (a few CCs x rates x buffers x a dozen seeds).
  return [await grid("8s", "1..6"), await grid("30s", "1..4"), await grid("30s", "1..12")];
}
