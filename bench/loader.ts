/**
 * Cold open + load of our CUBIC object, kernel BTF included: a fresh Node process boots a
 * simulated kernel (building its vmlinux BTF), opens bpf/obj/tcp_cubic.bpf.o, loads it (CO-RE
 * against that BTF, maps, verifier, programs) and registers its struct_ops map. The child
 * reports its own time for that work, so Node's start-up is not counted. Baseline, in the same
 * run: libbpf opening the same object (`bpftool gen skeleton`, whole process). Goal: < 200 ms.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BpfCcHost } from "../src/sim/bpf_cc.js";
import { type BenchResult, median } from "./bench.js";

const OBJ = "bpf/obj/tcp_cubic.bpf.o";
const RUNS = 7;

/** In the child: one cold open + load + register, timed from before the kernel boots. */
function child(): void {
  const t0 = performance.now();
  const host = new BpfCcHost({ CONFIG_HZ: 1000 });
  const tBoot = performance.now();
  host.attach(OBJ);
  const t1 = performance.now();
  process.stdout.write(JSON.stringify({ total: t1 - t0, boot: tBoot - t0, load: t1 - tBoot }));
}

function bpftoolMs(): number | undefined {
  try {
    execFileSync("bpftool", ["version"], { stdio: "ignore" });
  } catch {
    return undefined;
  }
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const r = spawnSync("bpftool", ["gen", "skeleton", OBJ], { stdio: ["ignore", "ignore", "ignore"] });
    if (r.status !== 0) return undefined;
    times.push(performance.now() - t0);
  }
  return median(times);
}

export async function run(): Promise<BenchResult[]> {
  const self = fileURLToPath(import.meta.url);
  const cold: { total: number; boot: number; load: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const out = execFileSync(process.execPath, [...process.execArgv, self, "--child"], {
      cwd: join(dirname(self), self.includes("/dist/") ? "../.." : ".."),
    });
    cold.push(JSON.parse(out.toString()));
  }
  const total = median(cold.map((c) => c.total));
  const base = bpftoolMs();
  return [
    {
      name: "loader.cold_open_load_cubic",
      value: total,
      unit: "ms",
      baseline:
        base !== undefined ? { name: "bpftool gen skeleton (libbpf open), whole process ms", value: base } : undefined,
      ratio: base !== undefined ? total / base : undefined,
      note: `median of ${RUNS} fresh processes; kernel boot ${median(cold.map((c) => c.boot)).toFixed(1)} ms + open/load/register ${median(cold.map((c) => c.load)).toFixed(1)} ms; goal < 200 ms`,
    },
  ];
}

if (process.argv.includes("--child")) child();
else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of await run()) console.log(r);
}
