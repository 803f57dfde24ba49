/**
 * The `structops` command's start-up, whole process, as a user runs it (the built dist/cli/main.js):
 * `prog show` on an empty session against `node -e 0` measured alternately in the same run
 * (goal: at most 2x), then on sessions with 1 and 4 registered objects, each replayed into a
 * freshly booted kernel (goal: at most 0.1 s more per object than the empty session). A session
 * keeps the verifier's verdicts beside its state file (src/cli/verdict_cache.ts), so replay skips
 * the verifier once they are recorded; one more row shows the same session replayed without them.
 * The launcher compiles the bundle with V8's code cache (src/cli/launcher.ts); the last row is the
 * 1-object session compiled from source (STRUCTOPS_CODE_CACHE=off).
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { type BenchResult, median } from "./bench.js";

const MAIN = "dist/cli/main.js";
const RUNS = 9;
const OBJECTS = [
  "bpf/obj/tcp_reno.bpf.o",
  "bpf/obj/tcp_dctcp.bpf.o",
  "bpf/obj/tcp_cubic.bpf.o",
  "bpf/obj/tcp_ca_kfunc.bpf.o",
];
/** Sessions measured: how many of OBJECTS each registers. */
const SIZES = [1, 4];
/** CPU slots besides the sessions' (their size). */
const NODE = 100;
const FULL = 101;
const NO_CODE_CACHE = 102;

/**
 * CPU time of the reaped children so far (user + system, ms), from /proc/self/stat's cutime and
 * cstime (clock ticks of 10 ms): a figure the other processes on a loaded machine do not inflate
 * as much as wall time. Undefined where there is no /proc.
 */
function childCpuMs(): number | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return undefined;
  }
}

const cpu: number[][] = [];
/** Wall time of one run; its CPU time goes to `cpu[slot]`. */
function wallMs(args: string[], env: NodeJS.ProcessEnv = {}, slot?: number): number {
  const c0 = childCpuMs();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  const ms = performance.now() - t0;
  const c1 = childCpuMs();
  if (r.status !== 0) throw new Error(`node ${args.join(" ")} failed: ${r.stderr}`);
  if (slot !== undefined && c0 !== undefined && c1 !== undefined) (cpu[slot] ??= []).push(c1 - c0);
  return ms;
}
const cpuMedian = (slot: number) => (cpu[slot]?.length ? median(cpu[slot]) : Number.NaN);

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "structops-bench-cli-"));
  try {
    const state = (n: number) => join(dir, `s${n}.json`);
    for (const n of SIZES) {
      for (const o of OBJECTS.slice(0, n)) wallMs([MAIN, "struct_ops", "register", o], { STRUCTOPS_STATE: state(n) });
    }
    // The same 4-object session without its verdicts: every replay verifies every program.
    const full = join(dir, "full.json");
    copyFileSync(state(4), full);
    const node: number[] = [];
    const sessions = [0, ...SIZES];
    const ours = new Map<number, number[]>(sessions.map((n) => [n, []]));
    const uncached: number[] = [];
    const compiled: number[] = [];
    wallMs(["-e", "0"]);
    for (let i = 0; i < RUNS; i++) {
      node.push(wallMs(["-e", "0"], {}, NODE));
      for (const n of sessions) {
        ours.get(n)!.push(wallMs([MAIN, "prog", "show"], { STRUCTOPS_STATE: state(n) }, n));
      }
      rmSync(`${full}.verdicts`, { force: true });
      uncached.push(wallMs([MAIN, "prog", "show"], { STRUCTOPS_STATE: full }, FULL));
      compiled.push(
        wallMs([MAIN, "prog", "show"], { STRUCTOPS_STATE: state(1), STRUCTOPS_CODE_CACHE: "off" }, NO_CODE_CACHE),
      );
    }
    const base = median(node);
    const empty = median(ours.get(0)!);
    const cpuEmpty = cpuMedian(0);
    const perCpu = (n: number) => (cpuMedian(n) - cpuEmpty) / n;
    const load = loadavg()[0]!.toFixed(1);
    const cpuNote = (slot: number, n: number) =>
      `CPU ${cpuMedian(slot).toFixed(0)} ms, ${((cpuMedian(slot) - cpuEmpty) / n).toFixed(0)} ms per object`;
    const out: BenchResult[] = [
      {
        name: "structops prog show, empty session (whole process)",
        value: empty,
        unit: "ms",
        baseline: { name: "node -e 0", value: base },
        ratio: empty / base,
        note: `goal <= 2x: ${empty / base <= 2 ? "met" : "not met"} (CPU ${cpuEmpty.toFixed(0)} ms vs ${cpuMedian(NODE).toFixed(0)} ms: ${(cpuEmpty / cpuMedian(NODE)).toFixed(2)}x); median of ${RUNS}, alternating; load average ${load} on ${cpus().length} CPUs`,
      },
    ];
    const objs = (n: number) =>
      OBJECTS.slice(0, n)
        .map((o) => o.replace("bpf/obj/", ""))
        .join(", ");
    for (const n of SIZES) {
      const v = median(ours.get(n)!);
      const per = (v - empty) / n;
      out.push({
        name: `structops prog show, ${n} registered object${n > 1 ? "s" : ""} replayed`,
        value: v,
        unit: "ms",
        baseline: { name: "empty session", value: empty },
        ratio: v / empty,
        note: `${per.toFixed(0)} ms per object (goal <= 100: ${per <= 100 ? "met" : "not met"}; in CPU time: ${perCpu(n) <= 100 ? "met" : "not met"}); ${cpuNote(n, n)}; ${objs(n)}`,
      });
    }
    const v = median(uncached);
    out.push({
      name: "structops prog show, 4 registered objects replayed without recorded verdicts",
      value: v,
      unit: "ms",
      baseline: { name: "empty session", value: empty },
      ratio: v / empty,
      note: `${((v - empty) / 4).toFixed(0)} ms per object: every program verified again; ${cpuNote(FULL, 4)}`,
    });
    const c = median(compiled);
    out.push({
      name: "structops prog show, 1 registered object replayed, the bundle compiled without its code cache",
      value: c,
      unit: "ms",
      baseline: { name: "empty session", value: empty },
      ratio: c / empty,
      note: `${(c - empty).toFixed(0)} ms more; ${cpuNote(NO_CODE_CACHE, 1)}; STRUCTOPS_CODE_CACHE=off`,
    });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
