/**
 * `structops sched`: run a workload on a simulated machine under the kernel's fair class or a BPF
 * scheduler (a sched_ext_ops struct_ops map attached through its link), and report per task and
 * overall: CPU share against weight, wake-up latency, run-queue wait, context switches,
 * migrations, utilisation and Jain's index over weighted shares; a scheduler that ends itself
 * prints `EXIT: reason (message)` as the scx tools do.
 *
 *   structops sched [--scx OBJ[:MAP]|fair] [--cpus 8] [--nodes N] [--workload FILE|preset] [--duration 10s]
 *                   [--seed S] [--offline CPU@TIME] [--online CPU@TIME] [--switch-at 5s --to OBJ|fair]
 *                   [--json] [--plot out.png]
 */
import { readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import { isObjSpec, parseObjSpec } from "../sim/bpf_cc.js";
import { Machine } from "../sim/sched/machine.js";
import { type SchedMetrics, schedMetrics } from "../sim/sched/metrics.js";
import { PRESETS, parseWorkload, type Workload } from "../sim/sched/workload.js";
import { parseDuration } from "../sim/units.js";
import { CliError, fileError } from "./errors.js";

export interface SchedCliOptions {
  scx: string;
  cpus: string;
  smt: string;
  llc?: string;
  nodes: string;
  offline: string[];
  online: string[];
  workload: string;
  duration: string;
  seed: string;
  hz: string;
  csCost: string;
  migrationCost: string;
  switchAt?: string;
  to?: string;
  json?: boolean;
  plot?: string;
}

interface Limit {
  unit: "duration" | "int";
  min: number;
  max: number;
  allowed: string;
  oneOf?: number[];
}

const S = 1e9;
export const SCHED_LIMITS: Record<string, Limit> = {
  cpus: { unit: "int", min: 1, max: 256, allowed: "an integer from 1 to 256" },
  smt: { unit: "int", min: 1, max: 8, allowed: "threads per core from 1 to 8, dividing --cpus" },
  llc: { unit: "int", min: 1, max: 256, allowed: "CPUs per LLC, a multiple of --smt dividing --cpus" },
  nodes: { unit: "int", min: 1, max: 256, allowed: "NUMA nodes, dividing --cpus into whole LLCs" },
  duration: { unit: "duration", min: 1e6, max: 3600 * S, allowed: "a duration from 1ms to 3600s" },
  seed: { unit: "int", min: 0, max: 0xffffffff, allowed: "an integer from 0 to 4294967295" },
  hz: { unit: "int", min: 100, max: 1000, oneOf: [100, 250, 300, 1000], allowed: "one of 100, 250, 300, 1000" },
  "cs-cost": { unit: "duration", min: 0, max: 1e6, allowed: "a duration from 0 to 1ms" },
  "migration-cost": { unit: "duration", min: 0, max: 10e6, allowed: "a duration from 0 to 10ms" },
  "switch-at": { unit: "duration", min: 0, max: 3600 * S, allowed: "a time before the end of --duration" },
};

/** Option `name`'s value checked against SCHED_LIMITS; a failure is one line naming option, value and range. */
export function schedValue(name: string, text: string): number {
  const lim = SCHED_LIMITS[name]!;
  const bad = () => new CliError(`--${name} ${JSON.stringify(text)}: expected ${lim.allowed}`);
  let v: number;
  if (lim.unit === "duration") {
    try {
      v = parseDuration(text);
    } catch {
      throw bad();
    }
  } else {
    if (!/^\s*\d+\s*$/.test(text)) throw bad();
    v = Number(text);
  }
  if (!Number.isFinite(v) || v < lim.min || v > lim.max || (lim.oneOf && !lim.oneOf.includes(v))) throw bad();
  return v;
}

/** An --offline/--online value: CPU@TIME (a CPU of the machine, a time before the end of the run). */
export function hotplugValue(opt: string, text: string, cpus: number, duration: number): { cpu: number; at: number } {
  const bad = () =>
    new CliError(`${opt} ${JSON.stringify(text)}: expected CPU@TIME, a CPU below ${cpus} and a time before --duration`);
  const m = /^\s*(\d+)@(.+)$/.exec(text);
  if (!m) throw bad();
  const cpu = Number(m[1]);
  let at: number;
  try {
    at = parseDuration(m[2]!);
  } catch {
    throw bad();
  }
  if (!Number.isInteger(cpu) || cpu >= cpus || !Number.isFinite(at) || at < 0 || at >= duration) throw bad();
  return { cpu, at };
}

/** --workload: a preset name or an rt-app JSON file. */
export function loadWorkload(spec: string, cpus: number): Workload {
  const preset = PRESETS[spec];
  if (preset) return preset(cpus);
  let text: string;
  try {
    if (!statSync(spec).isFile()) throw Object.assign(new Error(), { code: "EISDIR" });
    text = readFileSync(spec, "utf8");
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT" && !spec.includes("/") && !spec.endsWith(".json")) {
      throw new CliError(
        `--workload ${JSON.stringify(spec)}: expected a preset (${Object.keys(PRESETS).join(", ")}) or an rt-app JSON file`,
      );
    }
    throw fileError("--workload: can't read", spec, e);
  }
  try {
    return parseWorkload(text, spec);
  } catch (e) {
    throw new CliError(`--workload ${spec}: ${(e as Error).message.replace(/^workload: /, "")}`);
  }
}

/** A --scx/--to word: fair, or a BPF object OBJ.o[:MAP] that exists. */
function checkSchedWord(opt: string, word: string): string {
  if (word === "fair") return word;
  if (isObjSpec(word)) {
    const { path } = parseObjSpec(word);
    try {
      if (!statSync(path).isFile()) throw Object.assign(new Error(), { code: "EISDIR" });
    } catch (e) {
      throw fileError(`${opt}: can't read object`, path, e);
    }
    return word;
  }
  throw new CliError(`${opt} ${JSON.stringify(word)}: expected fair or a BPF object OBJ.o[:MAP]`);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** The human summary: one row per task, then the machine. */
export function formatSchedSummary(m: SchedMetrics, header: string[], exitLines: string[]): string {
  const rows = [["pid", "task", "nice", "runtime", "share", "fair", "lat p50", "p99", "max", "wait", "csw", "mig"]];
  for (const t of m.tasks) {
    rows.push([
      String(t.pid),
      t.name + (t.exited ? " (exited)" : ""),
      String(t.nice),
      `${t.runtime_ms.toFixed(1)} ms`,
      pct(t.share),
      t.fair_share === null ? "-" : pct(t.fair_share),
      `${t.latency_us.p50} us`,
      `${t.latency_us.p99} us`,
      `${t.latency_us.max} us`,
      `${t.run_delay_ms.toFixed(1)} ms`,
      String(t.nvcsw + t.nivcsw),
      String(t.migrations),
    ]);
  }
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => r.map((x, c) => (c === 1 ? x.padEnd(w[c]!) : x.padStart(w[c]!))).join("  "));
  lines.splice(1, 0, w.map((n) => "-".repeat(n)).join("  "));
  lines.push("");
  lines.push(
    `${m.cpus} CPUs, ${m.duration_s} s: utilisation ${pct(m.utilisation_all)}, ${m.context_switches} context switches, ` +
      `${m.migrations} migrations, run-queue wait ${m.run_delay_ms.toFixed(1)} ms`,
  );
  lines.push(
    `wake-up latency p50 ${m.latency_us.p50} us, p99 ${m.latency_us.p99} us, max ${m.latency_us.max} us ` +
      `(${m.latency_us.samples} wake-ups); Jain's index over weighted shares ${m.jain_weighted === null ? "-" : m.jain_weighted.toFixed(4)}`,
  );
  for (const c of m.cgroups ?? [])
    lines.push(
      `cgroup ${c.path} (weight ${c.weight}): ${c.runtime_ms.toFixed(1)} ms, share ${pct(c.share)}, ` +
        `fair ${c.fair_share === null ? "-" : pct(c.fair_share)}`,
    );
  return `${[...header, "", ...lines, ...exitLines].join("\n")}\n`;
}

export function register(program: Command): void {
  program
    .command("sched")
    .description("run a workload on a simulated machine under the fair class or a sched_ext BPF scheduler")
    .option("--scx <spec>", "the scheduler: fair (the kernel's EEVDF class) or a BPF object OBJ[:MAP]", "fair")
    .option("--cpus <n>", "CPUs of the machine", "8")
    .option("--smt <n>", "threads per core", "1")
    .option("--llc <n>", "CPUs per last-level cache (default: a node)")
    .option("--nodes <n>", "NUMA nodes, each an equal share of the CPUs", "1")
    .option("--offline <cpu@time>", "take a CPU offline at a time (repeatable)", collect, [])
    .option("--online <cpu@time>", "bring a CPU back online at a time (repeatable)", collect, [])
    .option("--workload <spec>", `a preset (${Object.keys(PRESETS).join(", ")}) or an rt-app JSON file`, "interactive")
    .option("--duration <time>", "simulated time", "10s")
    .option("--seed <n>", "PRNG seed", "1")
    .option("--hz <n>", "CONFIG_HZ", "1000")
    .option("--cs-cost <time>", "context switch cost", "2us")
    .option("--migration-cost <time>", "extra work for a task that moved CPU (cache refill)", "20us")
    .option("--switch-at <time>", "replace the scheduler at this time")
    .option("--to <spec>", "the scheduler to switch to: fair or OBJ[:MAP]")
    .option("-j, --json", "JSON output")
    .option("--plot <path>", "write the per-CPU timeline and latency distributions (.svg or .png)")
    .action(async (_o: SchedCliOptions, c: Command) => {
      const o = c.optsWithGlobals<SchedCliOptions>();
      const { checkPlotPath } = await import("./sim.js");
      if (o.plot !== undefined) checkPlotPath(o.plot);
      const cpus = schedValue("cpus", o.cpus);
      const smt = schedValue("smt", o.smt);
      const nodes = schedValue("nodes", o.nodes);
      if (cpus % nodes) throw new CliError(`--nodes ${o.nodes}: expected ${SCHED_LIMITS.nodes!.allowed}`);
      const node = cpus / nodes;
      const llc = o.llc !== undefined ? schedValue("llc", o.llc) : node;
      if (cpus % smt) throw new CliError(`--smt ${o.smt}: expected ${SCHED_LIMITS.smt!.allowed}`);
      if (llc % smt || cpus % llc) throw new CliError(`--llc ${o.llc}: expected ${SCHED_LIMITS.llc!.allowed}`);
      if (node % llc || node % smt) throw new CliError(`--nodes ${o.nodes}: expected ${SCHED_LIMITS.nodes!.allowed}`);
      const duration = schedValue("duration", o.duration);
      const hotplug = [
        ...(o.offline ?? []).map((t) => ({ ...hotplugValue("--offline", t, cpus, duration), online: false })),
        ...(o.online ?? []).map((t) => ({ ...hotplugValue("--online", t, cpus, duration), online: true })),
      ].sort((a, b) => a.at - b.at);
      const seed = schedValue("seed", o.seed);
      const hz = schedValue("hz", o.hz);
      const csCost = schedValue("cs-cost", o.csCost);
      const migrationCost = schedValue("migration-cost", o.migrationCost);
      const scx = checkSchedWord("--scx", o.scx);
      let switchAt: number | undefined;
      let to: string | undefined;
      if (o.switchAt !== undefined || o.to !== undefined) {
        if (o.switchAt === undefined || o.to === undefined) throw new CliError("--switch-at and --to go together");
        switchAt = schedValue("switch-at", o.switchAt);
        if (switchAt >= duration) {
          throw new CliError(
            `--switch-at ${JSON.stringify(o.switchAt)}: expected a time before --duration ${o.duration}`,
          );
        }
        to = checkSchedWord("--to", o.to);
      }
      const loaded = loadWorkload(o.workload, cpus);
      // The flags' CPU hotplug joins the workload file's, in time order.
      const workload = hotplug.length
        ? { ...loaded, hotplug: [...(loaded.hotplug ?? []), ...hotplug].sort((a, b) => a.at - b.at) }
        : loaded;
      for (const t of workload.tasks) {
        if (t.cpus && !t.cpus.some((x) => x < cpus)) {
          throw new CliError(
            `--workload ${o.workload}: task ${t.name} may only run on CPUs ${t.cpus.join(",")}, not on a ${cpus}-CPU machine`,
          );
        }
      }
      const bpf = isObjSpec(scx) || (to !== undefined && isObjSpec(to));
      const ext = bpf ? (await import("../subsys/sched_ext/index.js")).schedExtSubsystem : null;
      const m = new Machine({
        cpus,
        workload,
        seed,
        hz,
        csCost,
        migrationCost,
        topology: { smt, llc, node },
        timeline: o.plot !== undefined,
        subsystems: ext ? [ext] : [],
      });
      const header = [
        `scheduler: ${scx}, workload ${workload.name}, ${cpus} CPUs (smt ${smt}, llc ${llc}${nodes > 1 ? `, ${nodes} nodes` : ""}), ${o.duration}, seed ${seed}`,
      ];
      let host: import("../sim/sched/bpf_sched.js").BpfSchedHost | undefined;
      if (bpf) {
        const { BpfSchedHost } = await import("../sim/sched/bpf_sched.js");
        const h = new BpfSchedHost(m);
        host = h;
        // Every object loads (and verifies) before anything runs.
        const first = isObjSpec(scx) ? h.load(scx) : null;
        const second = to !== undefined && isObjSpec(to) ? h.load(to) : null;
        if (first) h.attach(scx, first);
        if (switchAt !== undefined) m.at(switchAt, () => h.switchTo(to!, second));
        m.onTick = () => h.collect();
      }
      m.run(duration);
      host?.collect();
      const metrics = schedMetrics(m, duration);
      const exits = host?.exits ?? [];
      const switches = host?.switches ?? [];
      for (const sw of switches)
        header.push(`switch at ${(sw.at / 1e9).toFixed(3)} s: ${sw.from} -> ${sw.to} (${sw.how})`);
      const exitLines = exits.flatMap((e) => ["", `${e.spec}: ${e.kindName} at ${(e.at / 1e9).toFixed(3)} s`, e.line]);
      if (o.json) {
        const out = { scheduler: scx, workload: workload.name, seed, metrics, switches, exits, events: m.q.executed };
        process.stdout.write(`${JSON.stringify(out)}\n`);
      } else process.stdout.write(formatSchedSummary(metrics, header, exitLines));
      if (o.plot) {
        const { writeSchedPlot, groupOf } = await import("../sim/sched/plot.js");
        const lat = new Map<string, number[]>();
        for (const p of m.all) {
          const g = groupOf(p.comm);
          const xs = lat.get(g) ?? [];
          for (const x of (p.user as { latencies: number[] }).latencies) xs.push(x);
          lat.set(g, xs);
        }
        try {
          await writeSchedPlot(o.plot, {
            title: `${scx}: ${workload.name} on ${cpus} CPUs, seed ${seed}`,
            cpus,
            segments: m.segments,
            latencies: lat,
            marks: [
              ...switches.map((x) => ({ t: x.at, label: `${x.from} -> ${x.to}` })),
              ...exits.map((x) => ({ t: x.at, label: x.line })),
            ],
          });
        } catch (e) {
          throw fileError("--plot: can't write", o.plot, e);
        }
      }
    });
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}
