/** A sweep worker thread: runs the grid points it is sent, one at a time, and posts each row back. */
import { parentPort, workerData } from "node:worker_threads";
import type { GridPoint } from "../sim/sweep.js";
import "./platform_node.js";
import { runPoint, type SweepRunOptions } from "./sweep_run.js";

const opts = workerData as SweepRunOptions;
parentPort!.on("message", (p: GridPoint | null) => {
  if (p === null) {
    parentPort!.close();
    return;
  }
  try {
    parentPort!.postMessage({ row: runPoint(p, opts) });
  } catch (e) {
    parentPort!.postMessage({ index: p.index, error: (e as Error).message });
  }
});
