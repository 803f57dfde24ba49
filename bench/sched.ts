/**
 * Scheduler simulation speed: scheduling events (wake-ups, context switches, ticks: each one runs
 * the scheduling class's callbacks) per second of wall time, on 8 CPUs running the interactive
 * preset (hogs against tasks that sleep and wake every 10 ms) and the pipe preset (ping-pong
 * wake-ups), with the kernel's fair class. A BPF scheduler's row joins when the ext class can
 * attach one; its ratio is against the fair class measured here in the same run.
 */
import { Machine } from "../src/sim/sched/machine.js";
import { PRESETS } from "../src/sim/sched/workload.js";
import type { BenchResult } from "./bench.js";

interface Rate {
  perSec: number;
  events: number;
  wallMs: number;
}

/** Best of `rounds`: scheduling events per wall second. */
function measure(preset: string, durationNs: number, rounds: number): Rate {
  let best: Rate = { perSec: 0, events: 0, wallMs: 0 };
  for (let i = 0; i < rounds; i++) {
    const m = new Machine({ cpus: 8, workload: PRESETS[preset]!(8), seed: 1 });
    let events = 0;
    m.sched.hooks.push({
      wakeup: () => {
        events++;
      },
      context_switch: () => {
        events++;
      },
      tick: () => {
        events++;
      },
    });
    const t0 = performance.now();
    m.run(durationNs);
    const wallMs = performance.now() - t0;
    const perSec = events / (wallMs / 1000);
    if (perSec > best.perSec) best = { perSec, events, wallMs };
  }
  return best;
}

export async function run(): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const preset of ["interactive", "pipe"]) {
    const r = measure(preset, 2e9, 3);
    out.push({
      name: `fair class, ${preset} preset on 8 CPUs: scheduling events per second`,
      value: r.perSec,
      unit: "events/s",
      note: `${r.events} wake-ups, context switches and ticks in 2 simulated s, ${r.wallMs.toFixed(0)} ms wall; best of 3`,
    });
  }
  return out;
}
