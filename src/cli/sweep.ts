/**
 * `structops sweep`: a grid of simulations run on every core (worker threads), one JSON line per
 * run plus an optional CSV; `structops sweep report FILES --plot OUT` merges shards and draws the
 * comparisons (throughput vs p95 delay per CC, utilisation heatmaps over rate x buffer, Jain's index).
 *
 *   structops sweep --cc cubic,bbr,bpf-cubic --rate 10mbit,50mbit --delay 10ms,40ms \
 *                   --buffer 0.5bdp,1bdp,4bdp --flows 1,2 --seeds 1..5 --duration 20s \
 *                   [--jobs N] [--shard i/N] [--out runs.jsonl] [--csv runs.csv]
 *
 * Runs are deterministic per seed, so a shard (i/N: runs i, i+N, ...; also from a Kubernetes
 * Indexed Job's JOB_COMPLETION_INDEX/JOB_COMPLETIONS or a Slurm array's SLURM_ARRAY_TASK_ID/
 * SLURM_ARRAY_TASK_COUNT) computes exactly its part of the whole grid's output.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { Command } from "commander";
import { isObjSpec } from "../sim/bpf_cc.js";
import { renderSvg } from "../sim/plot.js";
import { BPF_QDISC_ALIASES, QDISC_CHOICES, SIM_QDISCS } from "../sim/qdisc_spec.js";
import {
  costliestFirst,
  expandGrid,
  type GridPoint,
  mergeRows,
  parseList,
  parseSeeds,
  parseShard,
  reportSpec,
  resolveBuffer,
  type Shard,
  type SweepRow,
  shardFromEnv,
  shardPoints,
  summarise,
  toCsv,
} from "../sim/sweep.js";
import { formatRate, parseSize } from "../sim/units.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import { expandCcSpec, simValue } from "./sim.js";
import type { SweepRunOptions } from "./sweep_run.js";

export interface SweepCliOptions {
  cc: string;
  rcvCc?: string;
  qdisc?: string;
  rate: string;
  delay: string;
  buffer: string;
  flows: string;
  seeds: string;
  duration: string;
  hz: string;
  loss?: string;
  ecnThreshold?: string;
  delack?: boolean;
  jobs?: string;
  shard?: string;
  out?: string;
  csv?: string;
  progress?: boolean;
}

const bad = (msg: string) => new BpfError(EINVAL, msg);

/** Check every axis value up front, so a typo fails before any run starts. */
export function gridFrom(
  o: SweepCliOptions,
  env: Record<string, string | undefined> = {},
): {
  points: GridPoint[];
  all: number;
  shard?: Shard;
} {
  const axes = {
    cc: parseList(o.cc),
    ...(o.rcvCc !== undefined ? { rcvCc: parseList(o.rcvCc) } : {}),
    ...(o.qdisc !== undefined ? { qdisc: parseList(o.qdisc) } : {}),
    rate: parseList(o.rate),
    delay: parseList(o.delay),
    buffer: parseList(o.buffer),
    flows: parseList(o.flows).map((f) => {
      try {
        return simValue("flows", f);
      } catch (e) {
        throw bad((e as Error).message);
      }
    }),
    seeds: [] as number[],
  };
  try {
    axes.seeds = parseSeeds(o.seeds);
  } catch (e) {
    throw bad(`--seeds: ${(e as Error).message}`);
  }
  for (const [k, v] of Object.entries(axes)) if (!v.length) throw bad(`--${k === "rcvCc" ? "rcv-cc" : k}: no values`);
  const check = (what: string, f: () => unknown) => {
    try {
      f();
    } catch (e) {
      throw bad(`--${what}: ${(e as Error).message}`);
    }
  };
  // The same ranges as `structops sim`, with its one-line messages.
  const limit = (name: string, text: string) => {
    try {
      return simValue(name, text);
    } catch (e) {
      throw bad((e as Error).message);
    }
  };
  for (const r of axes.rate) limit("rate", r);
  for (const d of axes.delay) limit("delay", d);
  for (const b of axes.buffer)
    for (const r of axes.rate)
      for (const d of axes.delay) {
        check("buffer", () => parseSize(resolveBuffer(b, r, d)));
        limit("buffer", resolveBuffer(b, r, d));
      }
  for (const q of axes.qdisc ?? []) {
    const known = SIM_QDISCS.includes(q) || BPF_QDISC_ALIASES[q.split(":")[0]!] !== undefined || isObjSpec(q);
    if (!known) throw bad(`--qdisc ${JSON.stringify(q)}: unknown qdisc; expected ${QDISC_CHOICES}`);
  }
  for (const s of axes.seeds) limit("seed", String(s));
  limit("duration", o.duration);
  limit("hz", o.hz);
  if (o.loss !== undefined) limit("loss", o.loss);
  if (o.ecnThreshold !== undefined) limit("ecn-threshold", o.ecnThreshold);
  const all = expandGrid(axes);
  let shard: Shard | undefined;
  try {
    shard = o.shard !== undefined ? parseShard(o.shard) : shardFromEnv(env);
  } catch (e) {
    throw bad((e as Error).message);
  }
  return { points: shardPoints(all, shard), all: all.length, shard };
}

/**
 * The worker script: next to this module (the bundled command's dist/cli/sweep_worker.js, a compiled
 * .js, or .ts under tsx). From dist/src/cli, the bundled worker of the same build when there is one
 * (one script to load instead of a few hundred modules: each worker pays its loading).
 */
function workerUrl(): { url: URL; execArgv: string[] } {
  const self = import.meta.url;
  if (self.endsWith(".ts")) return { url: new URL("./sweep_worker.ts", self), execArgv: ["--import", "tsx"] };
  const bundled = new URL("../../cli/sweep_worker.js", self);
  if (self.endsWith("/dist/src/cli/sweep.js") && built(bundled, self)) return { url: bundled, execArgv: [] };
  return { url: new URL("./sweep_worker.js", self), execArgv: [] };
}

/** `file` exists and was written after `than` (a bundle made from this build, not an older one). */
function built(file: URL, than: string): boolean {
  try {
    return statSync(file).mtimeMs >= statSync(new URL(than)).mtimeMs;
  } catch {
    return false;
  }
}

/** What each worker thread did: its runs and its own CPU time (ns; undefined off Linux), start-up included. */
export interface SweepWorkerStats {
  runs: number;
  cpuNs?: number;
}

/** Whether a run loads BPF objects (a congestion control or qdisc run by the VM). */
function runsBpf(p: GridPoint): boolean {
  const ccs = [...p.cc.split(","), ...(p.rcvCc !== undefined ? [p.rcvCc] : [])];
  return p.qdisc !== undefined || ccs.some((c) => isObjSpec(expandCcSpec(c)));
}

/**
 * Run the points on `jobs` worker threads, started once and each fed the next point when it
 * finishes one, the costliest first (costliestFirst); rows come back in index order whatever the
 * finishing order. `workers` receives each thread's stats.
 */

export async function runSweep(
  points: GridPoint[],
  opts: SweepRunOptions,
  jobs: number,
  onRow?: (row: SweepRow, done: number) => void,
  workers?: SweepWorkerStats[],
): Promise<SweepRow[]> {
  const rows: SweepRow[] = [];
  if (!points.length) return rows;
  const { url, execArgv } = workerUrl();
  const order = costliestFirst(points, runsBpf);
  let next = 0;
  let failed: Error | undefined;
  const n = Math.max(1, Math.min(jobs, points.length));
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(url, { workerData: opts, execArgv });
          const feed = () => {
            if (failed || next >= order.length) w.postMessage(null);
            else w.postMessage(order[next++]);
          };
          w.on("message", (m: { row?: SweepRow; index?: number; error?: string; done?: SweepWorkerStats }) => {
            if (m.done) {
              workers?.push(m.done);
              return;
            }
            if (m.row) {
              rows.push(m.row);
              onRow?.(m.row, rows.length);
            } else {
              failed ??= bad(`run ${m.index}: ${m.error}`);
            }
            feed();
          });
          w.on("error", (e) => {
            failed ??= e;
            reject(e);
          });
          w.on("exit", () => resolve());
          feed();
        }),
    ),
  );
  if (failed) throw failed;
  return rows.sort((a, b) => a.index - b.index);
}

function jsonl(rows: SweepRow[]): string {
  return rows.map((r) => `${JSON.stringify(r)}\n`).join("");
}

async function writeFigure(path: string, spec: object): Promise<void> {
  const svg = await renderSvg(spec);
  if (path.toLowerCase().endsWith(".png")) {
    const { Resvg } = await import("@resvg/resvg-js");
    writeFileSync(path, new Resvg(svg, { fitTo: { mode: "zoom", value: 2 }, background: "white" }).render().asPng());
  } else {
    writeFileSync(path, svg);
  }
}

/** The report's table: one line per CC, means over its runs. */
export function formatReport(rows: SweepRow[]): string {
  const head = ["cc", "runs", "throughput", "util", "p95 qdelay", "loss", "jain"];
  const body = summarise(rows).map((s) => [
    s.cc,
    String(s.runs),
    formatRate(s.throughputBps),
    `${(s.utilisation * 100).toFixed(1)}%`,
    `${s.p95QueueDelayMs.toFixed(1)} ms`,
    `${(s.lossRate * 100).toFixed(2)}%`,
    s.jain.toFixed(3),
  ]);
  const all = [head, ...body];
  const w = head.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((x, c) => (c === 0 ? x.padEnd(w[c]!) : x.padStart(w[c]!))).join("  ");
  return `${[line(head), w.map((n) => "-".repeat(n)).join("  "), ...body.map(line)].join("\n")}\n`;
}

export function register(program: Command): void {
  const sweep = program
    .command("sweep")
    .description("run a grid of simulations on every core; `sweep report` merges and plots the results");
  sweep
    .command("run", { isDefault: true })
    .description("run the grid (cc x rate x delay x buffer x flows x seeds), one JSON line per run")
    .option("--cc <list>", "congestion controls, as `sim --cc` names them", "cubic,bbr")
    .option(
      "--rcv-cc <list>",
      "the receivers' congestion controls, as `sim --rcv-cc` names them (default: the sender's)",
    )
    .option("--qdisc <list>", "the bottleneck's qdiscs, as `sim --qdisc` names them (default: the droptail queue)")
    .option("--rate <list>", "bottleneck rates", "12mbit")
    .option("--delay <list>", "one-way delays", "30ms")
    .option("--buffer <list>", "buffers: b, kb, mb, pkts, or multiples of the BDP (0.5bdp, 2bdp)", "1bdp")
    .option("--flows <list>", "flows per run", "1")
    .option("--seeds <seeds>", "seeds: 1..N or a,b,c", "1")
    .option("--duration <time>", "simulated time per run", "10s")
    .option("--hz <n>", "CONFIG_HZ of the simulated kernel", "1000")
    .option("--loss <p>", "random loss probability per packet")
    .option("--ecn-threshold <size>", "mark CE above this queue length")
    .option("--delack", "delayed ACKs at the receivers")
    .option("-J, --jobs <n>", "worker threads (default: all cores)")
    .option("--shard <i/N>", "run only runs i, i+N, ... (default: from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID)")
    .option("-o, --out <file>", "JSON lines here (default: stdout)")
    .option("--csv <file>", "also a CSV of the aggregate metrics")
    .option("--no-progress", "no progress bar")
    .action(async (o: SweepCliOptions) => {
      const { points, all, shard } = gridFrom(o, process.env);
      const jobs = o.jobs === undefined ? availableParallelism() : Number(o.jobs);
      if (!Number.isInteger(jobs) || jobs < 1 || jobs > 1024) throw bad(`--jobs ${o.jobs}: need an integer in 1..1024`);
      const runOpts: SweepRunOptions = {
        duration: o.duration,
        hz: o.hz,
        loss: o.loss,
        ecnThreshold: o.ecnThreshold,
        delack: o.delack,
      };
      let bar: { update(n: number): void; stop(): void } | undefined;
      if (o.progress !== false && process.stderr.isTTY) {
        const { SingleBar, Presets } = (await import("cli-progress")).default;
        const b = new SingleBar(
          {
            format: `sweep${shard ? ` shard ${shard.index}/${shard.count}` : ""} [{bar}] {value}/{total} runs, {eta_formatted} left`,
            stream: process.stderr,
          },
          Presets.shades_classic,
        );
        b.start(points.length, 0);
        bar = b;
      }
      let rows: SweepRow[];
      try {
        rows = await runSweep(points, runOpts, jobs, (_r, done) => bar?.update(done));
      } finally {
        bar?.stop();
      }
      if (o.out) writeFileSync(o.out, jsonl(rows));
      else process.stdout.write(jsonl(rows));
      if (o.csv) writeFileSync(o.csv, toCsv(rows));
      process.stderr.write(
        `${rows.length} of ${all} runs${shard ? ` (shard ${shard.index}/${shard.count})` : ""} on ${Math.min(jobs, Math.max(1, points.length))} workers\n`,
      );
    });
  sweep
    .command("report")
    .description("merge sweep outputs (shards) and summarise; --plot draws the comparisons")
    .argument("<files...>", "JSON lines written by `sweep`")
    .option("--plot <path>", "the figure (.svg or .png)")
    .option("--csv <file>", "the merged runs as CSV")
    .option("--title <text>", "figure title", "structops sweep")
    .action(async (files: string[], o: { plot?: string; csv?: string; title: string }) => {
      const texts = files.map((f) => {
        try {
          return readFileSync(f, "utf8");
        } catch (e) {
          throw bad(`${f}: ${(e as Error).message}`);
        }
      });
      let rows: SweepRow[];
      try {
        rows = mergeRows(texts);
      } catch (e) {
        throw bad((e as Error).message);
      }
      if (!rows.length) throw bad("no runs in the input");
      if (o.csv) writeFileSync(o.csv, toCsv(rows));
      if (o.plot) await writeFigure(o.plot, reportSpec(rows, o.title));
      process.stdout.write(formatReport(rows));
    });
}
