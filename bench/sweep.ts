// Sweep throughput: the same grid on 1 worker thread and on 2 (runs per second); the goal is
// >= 1.8x on 2 cores.
import { gridFrom, runSweep } from "../src/cli/sweep.js";
import type { BenchResult } from "./bench.js";

export async function run(): Promise<BenchResult[]> {
  const { points } = gridFrom({
    cc: "cubic,bbr",
    rate: "12mbit,24mbit",
    delay: "20ms",
    buffer: "0.5bdp,2bdp",
    flows: "1",
    seeds: "1..2",
    duration: "8s",
    hz: "1000",
  });
  const opts = { duration: "8s", hz: "1000" };
  const rate = async (jobs: number) => {
    let best = 0;
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      await runSweep(points, opts, jobs);
      best = Math.max(best, points.length / ((performance.now() - t0) / 1000));
    }
    return best;
  };
  await runSweep(points.slice(0, 2), opts, 2); // warm up the module cache
  const one = await rate(1);
  const two = await rate(2);
  const ratio = two / one;
  return [
    {
      name: `sweep grid of ${points.length} runs (cubic, bbr; 8 s each), 2 worker threads`,
      value: two,
      unit: "runs/s",
      baseline: { name: "1 worker thread", value: one },
      ratio,
      note: `goal >= 1.8x: ${ratio >= 1.8 ? "met" : "not met"}; best of 2`,
    },
  ];
}
