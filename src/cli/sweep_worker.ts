/** A sweep worker thread: runs the grid points it is sent, one at a time, and posts each row back. */
import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { GridPoint } from "../sim/sweep.js";
import "./platform_node.js";
import { runPoint, type SweepRunOptions } from "./sweep_run.js";

/**
 * This thread's CPU time in ns (Linux: the scheduler's sum_exec_runtime in /proc/thread-self/schedstat),
 * or undefined elsewhere. process.cpuUsage() counts every thread of the process, V8's compiler and GC
 * threads included, so it cannot tell one worker's share.
 */
function threadCpuNs(): number | undefined {
  try {
    const ns = Number(readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]);
    return Number.isFinite(ns) ? ns : undefined;
  } catch {
    return undefined;
  }
}

const opts = workerData as SweepRunOptions;
let runs = 0;
parentPort!.on("message", (p: GridPoint | null) => {
  if (p === null) {
    parentPort!.postMessage({ done: { runs, cpuNs: threadCpuNs() } });
    parentPort!.close();
    return;
  }
  runs++;
  try {
    parentPort!.postMessage({ row: runPoint(p, opts) });
  } catch (e) {
    parentPort!.postMessage({ index: p.index, error: (e as Error).message });
  }
});
