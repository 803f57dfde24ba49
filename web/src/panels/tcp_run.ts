/**
 * The TCP simulation as `structops sim` runs it, from the page's parameters: the same defaults, the
 * same congestion-control words (bpf-cubic is bpf/obj/tcp_cubic.bpf.o, loaded into a simulated
 * kernel and attached through struct_ops), the same seed and metrics window, so a run here gives
 * the numbers of `structops sim --json` with the same values.
 */
import { BpfCcHost, isObjSpec } from "../../../src/sim/bpf_cc.js";
import type { SimMetrics } from "../../../src/sim/metrics.js";
import { expandQdiscSpec, simQdiscOf } from "../../../src/sim/qdisc_spec.js";
import { type FlowSpec, type SimOptions, type SimTrace, Simulation, type SwitchSpec } from "../../../src/sim/sim.js";
import { parseDuration, parseRate, parseSize } from "../../../src/sim/units.js";
import { tcpBbr } from "../../../src/subsys/tcp/tcp_bbr.js";
import type { TcpCongestionOps } from "../../../src/subsys/tcp/tcp_cong.js";
import { tcpCubic } from "../../../src/subsys/tcp/tcp_cubic.js";
import { tcpDctcp } from "../../../src/subsys/tcp/tcp_dctcp.js";
import { tcpReno } from "../../../src/subsys/tcp/tcp_reno.js";

/** The page's parameters: the command's option values as text. */
export interface TcpParams {
  cc: string;
  rate: string;
  delay: string;
  buffer: string;
  flows: string;
  seed: string;
  duration: string;
  /** A congestion control to switch to at `at` ("" for none). */
  to: string;
  at: string;
  /** The bottleneck's qdisc as `--qdisc` names it ("" for the droptail queue). */
  qdisc: string;
}

/** `structops sim`'s defaults (flows: one per --cc entry). */
export const TCP_DEFAULTS: TcpParams = {
  cc: "bpf-cubic",
  rate: "12mbit",
  delay: "30ms",
  buffer: "45kb",
  flows: "",
  seed: "1",
  duration: "30s",
  to: "",
  at: "",
  qdisc: "",
};

/** Our committed objects by the command's short names. */
export const BPF_CC_ALIASES: Record<string, string> = {
  "bpf-cubic": "tcp_cubic",
  "bpf-reno": "tcp_reno",
  "bpf-dctcp": "tcp_dctcp",
  "bpf-reno-link": "tcp_reno_link",
  "bpf-cubic-link": "tcp_cubic_link",
};
export const KERNEL_CCS = ["cubic", "reno", "bbr", "dctcp"];

function expand(word: string): string {
  const [w, map] = word.split(":", 2) as [string, string | undefined];
  const obj = BPF_CC_ALIASES[w];
  if (!obj) return word;
  return `bpf/obj/${obj}.bpf.o${map !== undefined ? `:${map}` : ""}`;
}

function builtin(spec: string): TcpCongestionOps | undefined {
  if (spec === "cubic") return tcpCubic();
  if (spec === "reno") return tcpReno();
  if (spec === "bbr") return tcpBbr();
  if (spec === "dctcp") return tcpDctcp();
  return undefined;
}

function check(name: string, v: number, min: number, max: number, text: string, allowed: string): number {
  if (!Number.isFinite(v) || v < min || v > max)
    throw new Error(`${name} ${JSON.stringify(text)}: expected ${allowed}`);
  return v;
}

function value(name: string, text: string, parse: (s: string) => number, min: number, max: number, allowed: string) {
  let v: number;
  try {
    v = parse(text);
  } catch {
    throw new Error(`${name} ${JSON.stringify(text)}: expected ${allowed}`);
  }
  return check(name, v, min, max, text, allowed);
}

const int = (s: string) => {
  if (!/^\s*\d+\s*$/.test(s)) throw new Error("not an integer");
  return Number(s);
};

/** Simulation options as the command builds them; BPF objects are loaded into `host`. */
export function tcpOptions(p: TcpParams): { opts: SimOptions; host?: BpfCcHost } {
  const durationNs = value("duration", p.duration, parseDuration, 1e6, 3600e9, "a duration from 1ms to 3600s");
  const words = p.cc.split(",").map((w) => w.trim());
  for (const w of words) {
    if (w === "" || (!isObjSpec(expand(w)) && !KERNEL_CCS.includes(w)))
      throw new Error(`cc ${JSON.stringify(w)}: unknown congestion control`);
  }
  const n = p.flows === "" ? words.length : value("flows", p.flows, int, 1, 1000, "an integer from 1 to 1000");
  const link = {
    rateBps: value("rate", p.rate, parseRate, 1e3, 100e9, "a rate from 1kbit to 100gbit"),
    delayNs: value("delay", p.delay, parseDuration, 0, 10e9, "a one-way delay from 0 to 10s"),
    buffer: (() => {
      try {
        return parseSize(p.buffer);
      } catch {
        throw new Error(`buffer ${JSON.stringify(p.buffer)}: expected a buffer size (b, kb, mb, pkts)`);
      }
    })(),
    lossRate: 0,
    ecnThreshold: undefined,
    trace: undefined,
  };
  const seed = value("seed", p.seed, int, 0, 0xffffffff, "an integer from 0 to 4294967295");
  const qdisc = (p.qdisc ?? "").trim();
  const needsKernel =
    words.some((w) => isObjSpec(expand(w))) || (p.to !== "" && isObjSpec(expand(p.to))) || qdisc !== "";
  const host = needsKernel ? new BpfCcHost({ CONFIG_HZ: 1000 }, { qdisc: qdisc !== "" }) : undefined;
  const ccs = words.map((w) => {
    const spec = expand(w);
    return isObjSpec(spec) ? host!.attach(spec) : spec;
  });
  const flows: FlowSpec[] = [];
  for (let i = 0; i < n; i++) flows.push({ cc: ccs[i % ccs.length]!, startNs: 0 });
  const switches: SwitchSpec[] = [];
  if (p.to !== "") {
    const atNs = value("switch at", p.at, parseDuration, 0, durationNs, "a time before the end of the run");
    if (atNs >= durationNs) throw new Error(`switch at ${JSON.stringify(p.at)}: expected a time before ${p.duration}`);
    const spec = expand(p.to);
    if (isObjSpec(spec)) switches.push({ atNs, apply: host!.prepareSwitch(spec) });
    else {
      const to = builtin(spec);
      if (!to) throw new Error(`switch to ${JSON.stringify(p.to)}: unknown congestion control`);
      switches.push({ atNs, to });
    }
  }
  return {
    host,
    opts: {
      qdisc: qdisc !== "" ? simQdiscOf(host!, expandQdiscSpec(qdisc), link.buffer) : undefined,
      link,
      durationNs,
      flows,
      switches,
      seed,
      HZ: 1000,
      metricsFromNs: Math.min(5e9, durationNs / 6),
      tcp: host?.tcp,
      describeCc: host ? (ops) => host.describe(ops) : undefined,
      sampleNs: 10e6,
    },
  };
}

export interface TcpResult {
  metrics: SimMetrics;
  trace: SimTrace;
  events: number;
  /** "flow 0 at 10.00 s: a -> b" for each change of congestion control. */
  changes: string[];
  /** Which objects were loaded, and how many struct_ops programs each runs. */
  objects: string[];
}

/** Run; `progress` is called about once per simulated second. */
export function runTcp(p: TcpParams, progress?: (nowNs: number, durationNs: number) => void): TcpResult {
  const { opts, host } = tcpOptions(p);
  const r = new Simulation({ ...opts, onProgress: progress }).run();
  const changes: string[] = [];
  r.trace.flows.forEach((f, i) => {
    for (let j = 1; j < f.cc.length; j++) {
      if (f.cc[j] !== f.cc[j - 1])
        changes.push(`flow ${i} at ${(r.trace.t_ms[j]! / 1000).toFixed(2)} s: ${f.cc[j - 1]} -> ${f.cc[j]}`);
    }
  });
  const objects = (host?.objects ?? []).map(({ spec, obj }) => `${spec} (${obj.programs.length} struct_ops programs)`);
  return { metrics: r.metrics, trace: r.trace, events: r.events, changes, objects };
}
