/**
 * Per-flow and aggregate metrics: throughput (unique data delivered, in wire bits/s), link utilisation,
 * p95 queueing delay, loss rate, and Jain's fairness index across flows.
 */
import type { TcpConn } from "../subsys/tcp/tcp.js";
import type { Bottleneck } from "./link.js";
import type { Receiver } from "./receiver.js";

export interface FlowMetrics {
  flow: number;
  cc: string;
  throughputBps: number;
  /** Share of the link rate. */
  utilisation: number;
  p95QueueDelayMs: number;
  /** (drops + random losses) / packets offered to the bottleneck. */
  lossRate: number;
  packetsSent: number;
  retransmits: number;
  rtos: number;
  undos: number;
  ecnMarks: number;
  /** Packets the bottleneck dropped: its droptail queue, or the qdisc (not random loss). */
  drops?: number;
}

export interface SimMetrics {
  fromMs: number;
  toMs: number;
  rateBps: number;
  flows: FlowMetrics[];
  /** Bottleneck busy time over the window. */
  utilisation: number;
  throughputBps: number;
  p95QueueDelayMs: number;
  lossRate: number;
  jain: number;
}

/** Jain's fairness index: (sum x)^2 / (n * sum x^2); 1 when all equal. */
export function jainIndex(xs: number[]): number {
  if (xs.length === 0) return 1;
  const s = xs.reduce((a, b) => a + b, 0);
  const s2 = xs.reduce((a, b) => a + b * b, 0);
  return s2 === 0 ? 1 : (s * s) / (xs.length * s2);
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = Float64Array.from(xs).sort();
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[rank - 1]!;
}

function binSum(bins: number[], fromNs: number, toNs: number): number {
  let sum = 0;
  const a = Math.floor(fromNs / 1e8);
  const b = Math.ceil(toNs / 1e8);
  for (let i = a; i < b && i < bins.length; i++) sum += bins[i]!;
  return sum;
}

export interface MetricsInput {
  fromNs: number;
  toNs: number;
  rateBps: number;
  conns: TcpConn[];
  receivers: Receiver[];
  link: Pick<Bottleneck, "counters" | "txBins">;
  /** Per flow: flattened (time ns, queueing delay ns) pairs. */
  queueDelays: number[][];
}

export function computeMetrics(m: MetricsInput): SimMetrics {
  // Byte counts come in 100 ms bins: the window is widened to whole bins so rates stay exact.
  const secs = (Math.ceil(m.toNs / 1e8) - Math.floor(m.fromNs / 1e8)) / 10;
  const all: number[] = [];
  let offered = 0;
  let lost = 0;
  const flows = m.conns.map((c, i): FlowMetrics => {
    const bytes = binSum(m.receivers[i]!.rxBins, m.fromNs, m.toNs);
    const tput = secs > 0 ? (bytes * 8) / secs : 0;
    const pairs = m.queueDelays[i]!;
    const ds: number[] = [];
    for (let k = 0; k < pairs.length; k += 2)
      if (pairs[k]! >= m.fromNs && pairs[k]! <= m.toNs) ds.push(pairs[k + 1]! / 1e6);
    for (const d of ds) all.push(d);
    const lc = m.link.counters(i);
    offered += lc.enqueued;
    lost += lc.dropped + lc.randomLoss;
    return {
      flow: i,
      cc: c.sk.icsk_ca_ops.name,
      throughputBps: tput,
      utilisation: tput / m.rateBps,
      p95QueueDelayMs: percentile(ds, 95),
      lossRate: lc.enqueued ? (lc.dropped + lc.randomLoss) / lc.enqueued : 0,
      packetsSent: lc.enqueued,
      retransmits: c.retransmits,
      rtos: c.rtoCount,
      undos: c.undos,
      ecnMarks: lc.marked,
    };
  });
  const busy = binSum(m.link.txBins, m.fromNs, m.toNs);
  return {
    fromMs: m.fromNs / 1e6,
    toMs: m.toNs / 1e6,
    rateBps: m.rateBps,
    flows,
    utilisation: secs > 0 ? (busy * 8) / secs / m.rateBps : 0,
    throughputBps: flows.reduce((a, f) => a + f.throughputBps, 0),
    p95QueueDelayMs: percentile(all, 95),
    lossRate: offered ? lost / offered : 0,
    jain: jainIndex(flows.map((f) => f.throughputBps)),
  };
}
