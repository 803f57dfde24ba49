/**
 * Scheduler simulation speed: scheduling events (wake-ups, context switches, ticks: each one runs
 * the scheduling class's callbacks) per second of wall time, on 8 CPUs running the interactive
 * preset (hogs against tasks that sleep and wake every 10 ms) and the pipe preset (ping-pong
 * wake-ups), with the kernel's fair class and with bpf/obj/sim/scx_vtime.bpf.o attached (every op
 * run as BPF; skipped where the kernel has no ext class), its ratio against the fair class of the
 * same run.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { BpfSchedHost } from "../src/sim/sched/bpf_sched.js";
import { Machine } from "../src/sim/sched/machine.js";
import { PRESETS } from "../src/sim/sched/workload.js";
import { schedExtSubsystem } from "../src/subsys/sched_ext/index.js";
import type { BenchResult } from "./bench.js";

interface Rate {
  perSec: number;
  events: number;
  wallMs: number;
}

/** Best of `rounds`: scheduling events per wall second, under the fair class or the BPF object `bpf`. */
function measure(preset: string, durationNs: number, rounds: number, bpf?: string): Rate | null {
  let best: Rate = { perSec: 0, events: 0, wallMs: 0 };
  for (let i = 0; i < rounds; i++) {
    const m = new Machine({
      cpus: 8,
      workload: PRESETS[preset]!(8),
      seed: 1,
      subsystems: bpf ? [schedExtSubsystem] : [],
    });
    if (bpf) {
      if (!m.sched.ext || !existsSync(bpf)) return null;
      const h = new BpfSchedHost(m);
      h.attach(bpf, h.load(bpf));
    }
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
  const vtime = join(process.cwd(), "bpf", "obj", "sim", "scx_vtime.bpf.o");
  for (const preset of ["interactive", "pipe"]) {
    const r = measure(preset, 2e9, 3)!;
    out.push({
      name: `fair class, ${preset} preset on 8 CPUs: scheduling events per second`,
      value: r.perSec,
      unit: "events/s",
      note: `${r.events} wake-ups, context switches and ticks in 2 simulated s, ${r.wallMs.toFixed(0)} ms wall; best of 3`,
    });
    const b = measure(preset, 2e9, 3, vtime);
    if (b) {
      out.push({
        name: `scx_vtime.bpf.o (every op as BPF), ${preset} preset on 8 CPUs: scheduling events per second`,
        value: b.perSec,
        unit: "events/s",
        baseline: { name: "fair class", value: r.perSec },
        ratio: r.perSec / b.perSec,
        note: `ratio = fair / BPF (the cost of the BPF scheduler); ${b.events} events in 2 simulated s, ${b.wallMs.toFixed(0)} ms wall; goal >= 200k/s: ${b.perSec >= 200e3 ? "met" : "missed"}`,
      });
    }
  }
  return out;
}
