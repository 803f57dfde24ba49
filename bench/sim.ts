/**
 * Simulator speed on the default scenario (12 Mbit/s, 30 ms, 45 KB, 30 s, seed 1): wall time and
 * simulated seconds per wall second with every congestion-control callback run as BPF (our CUBIC,
 * bpf/obj/tcp_cubic.bpf.o, through struct_ops trampolines into the VM) in both VM tiers, the
 * interpreter and the compiling tier (goal: 30 simulated seconds in at most 3 s with the interpreter),
 * against the built-in TypeScript CUBIC and Reno measured in the same run, plus raw event throughput.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
// The command's V8 settings (the Wasm tier compiled by the optimising compiler from the start).
import "../src/cli/v8_flags.js";
import { BpfCcHost } from "../src/sim/bpf_cc.js";
import { DEFAULT_LINK, simulate } from "../src/sim/sim.js";
import type { TcpKernel } from "../src/subsys/tcp/tcp_init.js";
import type { Tier } from "../src/vm/program.js";
import type { BenchResult } from "./bench.js";

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

const DURATION_NS = 30e9;

interface Speed {
  /** Best wall time of one run, seconds. */
  wallS: number;
  simPerWall: number;
  eventsPerSec: number;
  /** Least CPU time of one run, seconds (what a loaded machine leaves alone). */
  cpuS: number;
}

/** Best of `rounds` runs; `setup` gives each run its CA name and, for BPF, a freshly booted kernel. */
function speed(setup: () => { cc: string; tcp?: TcpKernel }, durationNs: number, rounds: number): Speed {
  let best = Number.POSITIVE_INFINITY;
  let bestCpu = Number.POSITIVE_INFINITY;
  let events = 0;
  for (let i = 0; i < rounds; i++) {
    const { cc, tcp } = setup();
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const r = simulate({ link: DEFAULT_LINK, durationNs, flows: [{ cc }], tcp, seed: 1 });
    const c = process.cpuUsage(c0);
    const ms = performance.now() - t0;
    events = r.events;
    best = Math.min(best, ms);
    bestCpu = Math.min(bestCpu, (c.user + c.system) / 1e6);
  }
  return {
    wallS: best / 1000,
    simPerWall: durationNs / 1e9 / (best / 1000),
    eventsPerSec: events / (best / 1000),
    cpuS: bestCpu,
  };
}

/** A kernel with bpf/obj/tcp_cubic.bpf.o attached, its programs in `tier` ("auto": the VM's own choice). */
function bpfCubic(obj: string, tier: Tier | "auto"): () => { cc: string; tcp: TcpKernel } {
  return () => {
    const host = new BpfCcHost();
    const cc = host.attach(obj);
    if (tier !== "auto") host.setTier(tier);
    return { cc, tcp: host.tcp };
  };
}

/**
 * Least CPU time of `rounds` runs of each setup, the setups taking turns, so that a change in
 * the machine's load falls on every side alike.
 */
function cpuInterleaved(setups: (() => { cc: string; tcp?: TcpKernel })[], rounds: number): number[] {
  const best = setups.map(() => Number.POSITIVE_INFINITY);
  for (let i = 0; i < rounds; i++) {
    setups.forEach((setup, k) => {
      best[k] = Math.min(best[k], speed(setup, DURATION_NS, 1).cpuS);
    });
  }
  return best;
}

export async function run(): Promise<BenchResult[]> {
  const builtin = (cc: string) => () => ({ cc });
  speed(builtin("cubic"), 5e9, 2); // warm-up: JIT the stack
  const cubic = speed(builtin("cubic"), DURATION_NS, 5);
  const reno = speed(builtin("reno"), DURATION_NS, 5);
  const rows: BenchResult[] = [];
  const obj = join(repoRoot(), "bpf", "obj", "tcp_cubic.bpf.o");
  if (existsSync(obj)) {
    try {
      const tiers: Tier[] = ["interp", "jit", "wasm"];
      for (const tier of tiers) speed(bpfCubic(obj, tier), 5e9, 1); // warm-up
      const [interp, jit, wasm] = tiers.map((tier) => speed(bpfCubic(obj, tier), DURATION_NS, 3)) as [
        Speed,
        Speed,
        Speed,
      ];
      // The same kernel and socket memory without BPF: what the struct_ops calls into the VM cost on top.
      const onKernelSetup = () => ({ cc: "cubic", tcp: new BpfCcHost().tcp });
      const onKernel = speed(onKernelSetup, DURATION_NS, 3);
      const [wasmCpu, autoCpu, jitCpu, kernelCpu] = cpuInterleaved(
        [bpfCubic(obj, "wasm"), bpfCubic(obj, "auto"), bpfCubic(obj, "jit"), onKernelSetup],
        5,
      );
      const cpuGoal = (v: number) =>
        `goal: no slower than the built-in TypeScript CUBIC: ${v <= kernelCpu ? "met" : "missed"}`;
      rows.push(
        {
          name: "default scenario, BPF CUBIC, interpreter: wall time for 30 simulated s",
          value: interp.wallS,
          unit: "s",
          baseline: { name: "built-in CUBIC", value: cubic.wallS },
          ratio: interp.wallS / cubic.wallS,
          note: `goal <= 3 s: ${interp.wallS <= 3 ? "met" : "missed"}; bpf/obj/tcp_cubic.bpf.o, every callback as BPF; best of 3`,
        },
        {
          name: "default scenario, BPF CUBIC, compiling tier: wall time for 30 simulated s",
          value: jit.wallS,
          unit: "s",
          baseline: { name: "BPF CUBIC, interpreter", value: interp.wallS },
          ratio: jit.wallS / interp.wallS,
          note: "best of 3",
        },
        {
          name: "default scenario, BPF CUBIC, Wasm tier: wall time for 30 simulated s",
          value: wasm.wallS,
          unit: "s",
          baseline: { name: "built-in CUBIC on a booted kernel", value: onKernel.wallS },
          ratio: wasm.wallS / onKernel.wallS,
          note: `goal: no slower than the built-in TypeScript CUBIC on the same kernel: ${wasm.wallS <= onKernel.wallS ? "met" : "missed"}; best of 3`,
        },
        {
          name: "default scenario, BPF CUBIC, Wasm tier: CPU time for 30 simulated s",
          value: wasmCpu,
          unit: "s",
          baseline: { name: "built-in CUBIC on a booted kernel", value: kernelCpu },
          ratio: wasmCpu / kernelCpu,
          note: `least CPU time of 5 runs taking turns with the baseline's (the load inflates wall time); ${cpuGoal(wasmCpu)}; JIT tier ${jitCpu.toFixed(3)} s`,
        },
        {
          name: "default scenario, BPF CUBIC, the VM's tier choice (auto): CPU time for 30 simulated s",
          value: autoCpu,
          unit: "s",
          baseline: { name: "built-in CUBIC on a booted kernel", value: kernelCpu },
          ratio: autoCpu / kernelCpu,
          note: `the same interleaved runs; ${cpuGoal(autoCpu)}`,
        },
        {
          name: "default scenario, built-in CUBIC on a booted kernel (sockets in VM memory): wall time for 30 simulated s",
          value: onKernel.wallS,
          unit: "s",
          baseline: { name: "BPF CUBIC, interpreter", value: interp.wallS },
          ratio: onKernel.wallS / interp.wallS,
          note: "the BPF rows minus this is the cost of running the callbacks as BPF",
        },
        {
          name: "default scenario, BPF CUBIC, interpreter",
          value: interp.simPerWall,
          unit: "sim s / wall s",
          baseline: { name: "built-in CUBIC", value: cubic.simPerWall },
          ratio: interp.simPerWall / cubic.simPerWall,
        },
        {
          name: "default scenario, BPF CUBIC, compiling tier",
          value: jit.simPerWall,
          unit: "sim s / wall s",
          baseline: { name: "built-in CUBIC", value: cubic.simPerWall },
          ratio: jit.simPerWall / cubic.simPerWall,
        },
      );
    } catch (e) {
      rows.push({ name: "BPF CUBIC", value: 0, unit: "n/a", note: `not loadable: ${(e as Error).message}` });
    }
  }
  return [
    ...rows,
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
  ];
}

const isMain = process.argv[1] && import.meta.url === new URL(process.argv[1], "file:").href;
if (isMain) {
  for (const r of await run()) {
    console.log(
      `${r.name}: ${r.value.toFixed(r.unit === "s" ? 3 : 1)} ${r.unit}` +
        (r.baseline
          ? ` | ${r.baseline.name}: ${r.baseline.value.toFixed(r.unit === "s" ? 3 : 1)} | ratio ${r.ratio?.toFixed(2)}x`
          : "") +
        (r.note ? ` (${r.note})` : ""),
    );
  }
}
