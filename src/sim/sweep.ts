/**
 * Parameter sweeps: a grid over congestion controls, the bottleneck's qdisc, rates, delays, buffers (bytes,
 * packets or multiples of the path's BDP), flow counts and seeds, expanded in one fixed order so
 * that a run's index names the same grid point everywhere. Shards take every N-th run (i, i+N, ...),
 * so a grid splits across machines without coordination and `report` merges the pieces. Also the
 * result rows (one JSON object per run, and CSV) and the report's aggregations and vega-lite spec.
 */
import type { SimMetrics } from "./metrics.js";
import { parseDuration, parseRate } from "./units.js";

export interface SweepAxes {
  cc: string[];
  /** `sim --rcv-cc` words: the receivers' CA; none (or empty): each flow's own, and no rcvCc field. */
  rcvCc?: string[];
  /** `sim --qdisc` words; none (or empty): the droptail queue, and no qdisc field in the points. */
  qdisc?: string[];
  rate: string[];
  delay: string[];
  buffer: string[];
  flows: number[];
  seeds: number[];
}

/** One run of the grid. */
export interface GridPoint {
  index: number;
  cc: string;
  /** The receiving sockets' CA as `sim --rcv-cc` names it (absent: the sender's). */
  rcvCc?: string;
  /** The bottleneck's qdisc as `sim --qdisc` names it (absent: the droptail queue). */
  qdisc?: string;
  rate: string;
  delay: string;
  /** As given ("45kb", "30pkts", "1bdp"). */
  buffer: string;
  flows: number;
  seed: number;
}

/** One line of a sweep's output: the grid point, the buffer as simulated, and the sim's metrics. */
export interface SweepRow extends GridPoint {
  duration: string;
  /** The buffer the run used, in bytes or packets (BDP multiples resolved). */
  buffer_resolved: string;
  metrics: SimMetrics;
  events: number;
}

/** "1..5" or "1,2,7" (or a mix: "1..3,10") to a list of seeds. */
export function parseSeeds(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(",").filter((x) => x.trim().length)) {
    const m = /^\s*(\d+)\s*(?:\.\.\s*(\d+))?\s*$/.exec(part);
    if (!m) throw new Error(`invalid seeds '${s}' (use 1..N or a,b,c)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new Error(`invalid seed range '${part.trim()}': end below start`);
    if (b - a >= 1_000_000) throw new Error(`seed range '${part.trim()}' too long`);
    for (let x = a; x <= b; x++) out.push(x);
  }
  if (!out.length) throw new Error("no seeds");
  return out;
}

/** A comma list (empty items dropped). */
export function parseList(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length);
}

/**
 * Every grid point, cc outermost, then the receivers' cc, then qdisc, and seed innermost: the order
 * fixes each run's index (a grid without receivers' ccs or qdiscs numbers its runs as before).
 */
export function expandGrid(a: SweepAxes): GridPoint[] {
  const out: GridPoint[] = [];
  const qdiscs: (string | undefined)[] = a.qdisc?.length ? a.qdisc : [undefined];
  const rcvCcs: (string | undefined)[] = a.rcvCc?.length ? a.rcvCc : [undefined];
  for (const cc of a.cc)
    for (const rcvCc of rcvCcs)
      for (const qdisc of qdiscs)
        for (const rate of a.rate)
          for (const delay of a.delay)
            for (const buffer of a.buffer)
              for (const flows of a.flows)
                for (const seed of a.seeds)
                  out.push({
                    index: out.length,
                    cc,
                    ...(rcvCc !== undefined ? { rcvCc } : {}),
                    ...(qdisc !== undefined ? { qdisc } : {}),
                    rate,
                    delay,
                    buffer,
                    flows,
                    seed,
                  });
  return out;
}

/**
 * A run's series in the report: its cc, the receivers' when the grid varies them, and the qdisc it
 * ran over ("cubic to dctcp over fq").
 */
export function seriesOf(r: { cc: string; rcvCc?: string; qdisc?: string }): string {
  const cc = r.rcvCc !== undefined ? `${r.cc} to ${r.rcvCc}` : r.cc;
  return r.qdisc !== undefined ? `${cc} over ${r.qdisc}` : cc;
}

/**
 * A buffer in multiples of the bandwidth-delay product ("0.5bdp": half of rate x round-trip
 * propagation delay, the RTT being twice the one-way delay) becomes bytes; others pass through.
 */
export function resolveBuffer(buffer: string, rate: string, delay: string): string {
  const m = /^\s*([0-9]*\.?[0-9]+)\s*bdp\s*$/i.exec(buffer);
  if (!m) return buffer;
  const bdpBytes = (parseRate(rate) / 8) * ((2 * parseDuration(delay)) / 1e9);
  return `${Math.max(1, Math.round(Number(m[1]) * bdpBytes))}b`;
}

export interface Shard {
  index: number;
  count: number;
}

/** "i/N" with 0 <= i < N. */
export function parseShard(s: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(s);
  if (!m) throw new Error(`invalid shard '${s}' (use i/N, 0 <= i < N)`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) throw new Error(`invalid shard '${s}' (use i/N, 0 <= i < N)`);
  return { index, count };
}

/**
 * The shard a batch engine assigns: a Kubernetes Indexed Job's JOB_COMPLETION_INDEX (with the
 * completion count passed as JOB_COMPLETIONS), or a Slurm array's SLURM_ARRAY_TASK_ID (relative to
 * SLURM_ARRAY_TASK_MIN) out of SLURM_ARRAY_TASK_COUNT. Undefined when neither is set.
 */
export function shardFromEnv(env: Record<string, string | undefined>): Shard | undefined {
  const k8s = env.JOB_COMPLETION_INDEX;
  if (k8s !== undefined) {
    const n = env.JOB_COMPLETIONS;
    if (n === undefined)
      throw new Error("JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not (set it to spec.completions)");
    return parseShard(`${k8s}/${n}`);
  }
  const slurm = env.SLURM_ARRAY_TASK_ID;
  if (slurm !== undefined) {
    const n = env.SLURM_ARRAY_TASK_COUNT;
    if (n === undefined) throw new Error("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not");
    const min = Number(env.SLURM_ARRAY_TASK_MIN ?? 0);
    return parseShard(`${Number(slurm) - min}/${n}`);
  }
  return undefined;
}

/** The runs of one shard: indices i, i+N, i+2N, ... (round robin balances mixed run lengths). */
export function shardPoints(points: GridPoint[], shard?: Shard): GridPoint[] {
  if (!shard) return points;
  return points.filter((p) => p.index % shard.count === shard.index);
}

/**
 * The order to start runs in: the costliest first (a run's events grow with the packets it
 * carries, rate x flows, the same duration for all; a BPF congestion control or qdisc runs in the
 * VM, a few times slower), so the last run to finish is a short one and no core waits on a long
 * one at the end. Ties keep the grid's order; the output order is the index's whatever the start order.
 */
export function costliestFirst(points: GridPoint[], isBpf: (p: GridPoint) => boolean): GridPoint[] {
  const cost = (p: GridPoint) => parseRate(p.rate) * p.flows * (isBpf(p) ? 3 : 1);
  return points
    .map((p) => ({ p, c: cost(p) }))
    .sort((a, b) => b.c - a.c || a.p.index - b.p.index)
    .map((x) => x.p);
}

export const CSV_COLUMNS = [
  "index",
  "cc",
  "rate",
  "delay",
  "buffer",
  "buffer_resolved",
  "flows",
  "seed",
  "duration",
  "throughput_bps",
  "utilisation",
  "p95_qdelay_ms",
  "loss_rate",
  "jain",
  "retransmits",
  "rtos",
  "qdisc",
  "rcv_cc",
] as const;

/** A CSV row per run (aggregate metrics; per-flow detail stays in the JSON lines). */
export function toCsv(rows: SweepRow[]): string {
  const q = (v: string | number) => (typeof v === "string" && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  const lines = [CSV_COLUMNS.join(",")];
  for (const r of rows) {
    const m = r.metrics;
    const sum = (f: "retransmits" | "rtos") => m.flows.reduce((a, x) => a + x[f], 0);
    lines.push(
      [
        r.index,
        r.cc,
        r.rate,
        r.delay,
        r.buffer,
        r.buffer_resolved,
        r.flows,
        r.seed,
        r.duration,
        m.throughputBps,
        m.utilisation,
        m.p95QueueDelayMs,
        m.lossRate,
        m.jain,
        sum("retransmits"),
        sum("rtos"),
        r.qdisc ?? "",
        r.rcvCc ?? "",
      ]
        .map(q)
        .join(","),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Parse JSON lines, merging shards: one row per grid point (the same index and point twice is one run). */
export function mergeRows(texts: string[]): SweepRow[] {
  const byKey = new Map<string, SweepRow>();
  for (const t of texts) {
    for (const [n, line] of t.split("\n").entries()) {
      if (!line.trim()) continue;
      let r: SweepRow;
      try {
        r = JSON.parse(line) as SweepRow;
      } catch {
        throw new Error(`line ${n + 1}: not JSON`);
      }
      if (typeof r !== "object" || r === null || !r.metrics || typeof r.cc !== "string") {
        throw new Error(`line ${n + 1}: not a sweep row`);
      }
      const key = JSON.stringify([r.cc, r.rcvCc, r.qdisc, r.rate, r.delay, r.buffer, r.flows, r.seed, r.duration]);
      byKey.set(key, r);
    }
  }
  return [...byKey.values()].sort((a, b) => a.index - b.index);
}

export interface CcSummary {
  cc: string;
  runs: number;
  throughputBps: number;
  utilisation: number;
  p95QueueDelayMs: number;
  lossRate: number;
  jain: number;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** Means per congestion control (and qdisc, when the grid has them) over every run of the grid. */
export function summarise(rows: SweepRow[]): CcSummary[] {
  const ccs = [...new Set(rows.map(seriesOf))];
  return ccs.map((cc) => {
    const rs = rows.filter((r) => seriesOf(r) === cc);
    return {
      cc,
      runs: rs.length,
      throughputBps: mean(rs.map((r) => r.metrics.throughputBps)),
      utilisation: mean(rs.map((r) => r.metrics.utilisation)),
      p95QueueDelayMs: mean(rs.map((r) => r.metrics.p95QueueDelayMs)),
      lossRate: mean(rs.map((r) => r.metrics.lossRate)),
      jain: mean(rs.map((r) => r.metrics.jain)),
    };
  });
}

/**
 * The report's figure: throughput against p95 queueing delay per CC (one point per grid point,
 * averaged over seeds), utilisation as a heatmap over rate x buffer for each CC, and Jain's
 * fairness index per CC and flow count.
 */
export function reportSpec(rows: SweepRow[], title = "structops sweep"): object {
  const groups = new Map<string, SweepRow[]>();
  for (const r of rows) {
    const k = JSON.stringify([seriesOf(r), r.rate, r.delay, r.buffer, r.flows]);
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  const points = [...groups.values()].map((g) => ({
    cc: seriesOf(g[0]!),
    rate: g[0]!.rate,
    delay: g[0]!.delay,
    buffer: g[0]!.buffer,
    flows: g[0]!.flows,
    throughput_mbps: mean(g.map((r) => r.metrics.throughputBps)) / 1e6,
    p95_qdelay_ms: mean(g.map((r) => r.metrics.p95QueueDelayMs)),
    utilisation: mean(g.map((r) => r.metrics.utilisation)),
    jain: mean(g.map((r) => r.metrics.jain)),
  }));
  const order = (xs: string[], parse: (s: string) => number) =>
    [...new Set(xs)].sort((a, b) => {
      try {
        return parse(a) - parse(b);
      } catch {
        return a.localeCompare(b);
      }
    });
  const rateOrder = order(
    points.map((p) => p.rate),
    parseRate,
  );
  const bufferOrder = [...new Set(points.map((p) => p.buffer))];
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    config: { font: "sans-serif" },
    vconcat: [
      {
        title: "throughput vs p95 queueing delay (mean over seeds)",
        width: 480,
        height: 260,
        data: { values: points },
        mark: { type: "point", filled: true, size: 60 },
        encoding: {
          x: { field: "p95_qdelay_ms", type: "quantitative", title: "p95 queueing delay (ms)" },
          y: { field: "throughput_mbps", type: "quantitative", title: "throughput (Mbit/s)" },
          color: { field: "cc", type: "nominal", title: "cc" },
          shape: { field: "cc", type: "nominal", legend: null },
          tooltip: [
            { field: "rate" },
            { field: "delay" },
            { field: "buffer" },
            { field: "flows" },
            { field: "utilisation", format: ".3f" },
          ],
        },
      },
      {
        title: "link utilisation over rate x buffer (mean over delays, flows, seeds)",
        data: { values: points },
        facet: { column: { field: "cc", type: "nominal", title: null } },
        spec: {
          width: 40 * Math.max(2, bufferOrder.length),
          height: 30 * Math.max(2, rateOrder.length),
          mark: "rect",
          encoding: {
            x: { field: "buffer", type: "ordinal", sort: bufferOrder, title: "buffer" },
            y: { field: "rate", type: "ordinal", sort: rateOrder, title: "rate" },
            color: {
              aggregate: "mean",
              field: "utilisation",
              type: "quantitative",
              title: "utilisation",
              scale: { domain: [0, 1], scheme: "viridis" },
            },
          },
        },
      },
      {
        title: "Jain's fairness index (mean over the grid)",
        width: 480,
        height: 160,
        data: { values: points },
        mark: "bar",
        encoding: {
          x: { field: "cc", type: "nominal", title: null },
          xOffset: { field: "flows", type: "nominal" },
          y: {
            aggregate: "mean",
            field: "jain",
            type: "quantitative",
            title: "Jain's index",
            scale: { domain: [0, 1] },
          },
          color: { field: "flows", type: "nominal", title: "flows" },
        },
      },
    ],
  };
}
