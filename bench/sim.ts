/**
 * Simulator speed: simulated seconds per wall-clock second on the default scenario (12 Mbit/s, 30 ms,
 * 45 KB, 30 s) with the built-in TypeScript CUBIC, against built-in Reno in the same run (the cheapest CA:
 * the difference is the cost of CUBIC's ops), plus raw event throughput.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BpfCcHost } from "../src/sim/bpf_cc.js";
import { DEFAULT_LINK, simulate } from "../src/sim/sim.js";
import type { TcpKernel } from "../src/subsys/tcp/tcp_init.js";

/** The repository root, from the sources or from dist/bench. */
function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json"))) {
    const up = resolve(d, "..");
    if (up === d) break;
    d = up;
  }
  return d;
}

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  ratio?: number;
  note?: string;
}

function speed(
  cc: string,
  durationNs: number,
  rounds: number,
  tcp?: TcpKernel,
): { simPerWall: number; eventsPerSec: number } {
  let best = Number.POSITIVE_INFINITY;
  let events = 0;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const r = simulate({ link: DEFAULT_LINK, durationNs, flows: [{ cc }], tcp });
    const ms = performance.now() - t0;
    events = r.events;
    best = Math.min(best, ms);
  }
  return { simPerWall: durationNs / 1e9 / (best / 1000), eventsPerSec: events / (best / 1000) };
}

export async function run(): Promise<BenchResult[]> {
  speed("cubic", 5e9, 2); // warm-up: JIT the stack
  const cubic = speed("cubic", 30e9, 5);
  const reno = speed("reno", 30e9, 5);
  const rows: BenchResult[] = [];
  // The same CUBIC algorithm as a BPF struct_ops program run by the VM (bpf/tcp_cubic.bpf.c, no HyStart).
  const obj = join(repoRoot(), "bpf", "obj", "tcp_cubic.bpf.o");
  if (existsSync(obj)) {
    try {
      const host = new BpfCcHost();
      const name = host.attach(obj);
      speed(name, 5e9, 1, host.tcp);
      const bpf = speed(name, 30e9, 3, host.tcp);
      rows.push({
        name: "default scenario, BPF CUBIC (struct_ops trampolines into the VM)",
        value: bpf.simPerWall,
        unit: "sim s / wall s",
        baseline: { name: "built-in CUBIC", value: cubic.simPerWall },
        ratio: bpf.simPerWall / cubic.simPerWall,
        note: "bpf/obj/tcp_cubic.bpf.o; best of 3",
      });
    } catch (e) {
      rows.push({ name: "BPF CUBIC", value: 0, unit: "n/a", note: `not loadable: ${(e as Error).message}` });
    }
  }
  return [
    {
      name: "default scenario, built-in CUBIC (TypeScript ops)",
      value: cubic.simPerWall,
      unit: "sim s / wall s",
      baseline: { name: "built-in Reno", value: reno.simPerWall },
      ratio: cubic.simPerWall / reno.simPerWall,
      note: "12 Mbit/s, 30 ms, 45 KB, 30 s, one flow; best of 5",
    },
    {
      name: "events executed, built-in CUBIC",
      value: cubic.eventsPerSec,
      unit: "events/s",
      baseline: { name: "built-in Reno", value: reno.eventsPerSec },
      ratio: cubic.eventsPerSec / reno.eventsPerSec,
    },
    ...rows,
  ];
}

const isMain = process.argv[1] && import.meta.url === new URL(process.argv[1], "file:").href;
if (isMain) {
  for (const r of await run()) {
    console.log(
      `${r.name}: ${r.value.toFixed(1)} ${r.unit}` +
        (r.baseline ? ` | ${r.baseline.name}: ${r.baseline.value.toFixed(1)} | ratio ${r.ratio?.toFixed(2)}x` : ""),
    );
  }
}
