/**
 * `structops sim`: run congestion controls over a simulated bottleneck and report throughput, utilisation,
 * queueing delay, loss and fairness; optionally switch the CA live and plot cwnd, throughput and queue.
 *
 *   structops sim [--cc bpf-cubic] --rate 12mbit --delay 30ms --buffer 45kb --duration 30s [--flows N]
 *                 [--switch-at 10s --to CC2] [--seed S] [--json] [--plot out.svg]
 *
 * With no arguments: the default scenario with our CUBIC BPF object (bpf/obj/tcp_cubic.bpf.o) registered
 * through struct_ops, so every callback runs as BPF. A CC spec is bpf-cubic/bpf-reno/bpf-dctcp (our
 * committed objects, found from the package root), a built-in name (cubic, reno), a BPF object OBJ[:MAP] (loaded into a simulated kernel and
 * attached through struct_ops; --to OBJ2 of the same CA name switches with BPF_LINK_UPDATE), or whatever
 * the resolver the CLI is built with understands.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { BpfCcHost, isObjSpec, parseObjSpec } from "../sim/bpf_cc.js";
import { parseMahimahi } from "../sim/mahimahi.js";
import type { SimMetrics } from "../sim/metrics.js";
import { expandQdiscSpec, QDISC_CHOICES, SIM_QDISCS, simQdiscOf } from "../sim/qdisc_spec.js";
import {
  DEFAULT_LINK,
  type FlowSpec,
  type SimOptions,
  type SimQdisc,
  type SimQdiscReport,
  type SimResult,
  type SimTrace,
  Simulation,
  type SwitchSpec,
} from "../sim/sim.js";
import { formatRate, parseDuration, parseRate, parseSize } from "../sim/units.js";
import { tcpBbr } from "../subsys/tcp/tcp_bbr.js";
import type { TcpCongestionOps } from "../subsys/tcp/tcp_cong.js";
import { tcpCubic } from "../subsys/tcp/tcp_cubic.js";
import { tcpDctcp } from "../subsys/tcp/tcp_dctcp.js";
import { tcpReno } from "../subsys/tcp/tcp_reno.js";
import { CliError, fileError } from "./errors.js";

/** The package root (has package.json), from src/cli under tsx or dist/src/cli when installed. */
function packageRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json"))) {
    const up = resolvePath(d, "..");
    if (up === d) break;
    d = up;
  }
  return d;
}

/** Our committed BPF congestion controls by short name: bpf-cubic is bpf/obj/tcp_cubic.bpf.o, from any cwd. */
export const BPF_CC_ALIASES: Record<string, string> = {
  "bpf-cubic": "tcp_cubic",
  "bpf-reno": "tcp_reno",
  "bpf-dctcp": "tcp_dctcp",
  // One CA name (so_cc) in .struct_ops.link maps: --cc bpf-reno-link --switch-at 10s --to bpf-cubic-link
  "bpf-reno-link": "tcp_reno_link",
  "bpf-cubic-link": "tcp_cubic_link",
};

/** The default --cc: CUBIC as a BPF struct_ops program (every callback run by the VM). */
export const DEFAULT_CC = "bpf-cubic";

/** A BPF_CC_ALIASES name becomes its object's path; anything else is returned as is. */
export function expandCcSpec(spec: string): string {
  const [word, map] = spec.split(":", 2) as [string, string | undefined];
  const obj = BPF_CC_ALIASES[word];
  if (!obj) return spec;
  const path = join(packageRoot(), "bpf", "obj", `${obj}.bpf.o`);
  return map !== undefined ? `${path}:${map}` : path;
}

/** Turns a --cc/--to spec into ops; undefined lets the next resolver (or the built-ins) try. */
export type CcResolver = (spec: string) => TcpCongestionOps | undefined;

export interface SimCliDeps {
  resolveCc?: CcResolver;
  /** Where output goes (default stdout). */
  out?: (s: string) => void;
}

/** The simulated kernel's congestion controls: reno and cubic built in, bbr and dctcp as modules. */
export const KERNEL_CCS = ["cubic", "reno", "bbr", "dctcp"];

/** Built-ins: fresh TypeScript ops objects (the simulated kernel registers reno and cubic itself). */
export function builtinCc(spec: string): TcpCongestionOps | undefined {
  if (spec === "cubic") return tcpCubic();
  if (spec === "reno") return tcpReno();
  if (spec === "bbr") return tcpBbr();
  if (spec === "dctcp") return tcpDctcp();
  return undefined;
}

export interface SimCliOptions {
  cc: string;
  rate: string;
  delay: string;
  buffer: string;
  duration: string;
  flows?: string;
  stagger: string;
  switchAt?: string;
  to?: string;
  seed: string;
  loss: string;
  ecnThreshold?: string;
  ecn?: boolean;
  trace?: string;
  hz: string;
  delack?: boolean;
  from?: string;
  sample: string;
  json?: boolean;
  plot?: string;
  progress?: boolean;
  qdisc?: string;
  qdiscLimit?: string;
}

/**
 * What each value the user types may be: how it is read and the range allowed. A new option adds a
 * row here and reads its value with `simValue(name, text)`; the check and its one-line message
 * (`--loss 2: expected a probability in [0, 1)`) come with it.
 */
export interface SimLimit {
  /** How the text is read: a rate in bit/s, a duration in ns, a size in bytes (or packets), a number. */
  unit: "rate" | "duration" | "size" | "int" | "number";
  min: number;
  max: number;
  /** min itself not allowed (an open interval at the bottom). */
  minExclusive?: boolean;
  maxExclusive?: boolean;
  /** What is allowed, as the message says it. */
  allowed: string;
  /** Only these values. */
  oneOf?: number[];
}

const S = 1e9;
export const SIM_LIMITS: Record<string, SimLimit> = {
  rate: { unit: "rate", min: 1e3, max: 100e9, allowed: "a rate from 1kbit to 100gbit (bit, kbit, mbit, gbit)" },
  delay: { unit: "duration", min: 0, max: 10 * S, allowed: "a one-way delay from 0 to 10s (ns, us, ms, s)" },
  buffer: { unit: "size", min: 1, max: 1e9, allowed: "a buffer from 1 byte (or 1pkts) to 1gb (b, kb, mb, pkts)" },
  duration: { unit: "duration", min: 1e6, max: 3600 * S, allowed: "a duration from 1ms to 3600s" },
  flows: { unit: "int", min: 1, max: 1000, allowed: "an integer from 1 to 1000" },
  stagger: { unit: "duration", min: 0, max: 3600 * S, allowed: "a duration from 0 to 3600s" },
  "switch-at": { unit: "duration", min: 0, max: 3600 * S, allowed: "a time before the end of --duration" },
  seed: { unit: "int", min: 0, max: 0xffffffff, allowed: "an integer from 0 to 4294967295" },
  loss: { unit: "number", min: 0, max: 1, maxExclusive: true, allowed: "a probability in [0, 1)" },
  "ecn-threshold": { unit: "size", min: 1, max: 1e9, allowed: "a queue length from 1 byte (or 1pkts) to 1gb" },
  hz: { unit: "int", min: 100, max: 1000, oneOf: [100, 250, 300, 1000], allowed: "one of 100, 250, 300, 1000" },
  from: { unit: "duration", min: 0, max: 3600 * S, allowed: "a time before the end of --duration" },
  sample: { unit: "duration", min: 1e6, max: 3600 * S, allowed: "a period from 1ms up to --duration" },
  "qdisc-limit": { unit: "int", min: 1, max: 1_000_000, allowed: "a packet count from 1 to 1000000" },
};

/** Samples kept per flow at most (--duration / --sample): bounds the trace's memory. */
export const MAX_SAMPLES = 1_000_000;

/** Read option `name`'s text and check it against SIM_LIMITS; a failure is one line naming option, value and range. */
export function simValue(name: string, text: string): number {
  const lim = SIM_LIMITS[name];
  if (!lim) throw new Error(`no limits for --${name}`);
  const bad = () => new CliError(`--${name} ${JSON.stringify(text)}: expected ${lim.allowed}`);
  let v: number;
  try {
    if (lim.unit === "rate") v = parseRate(text);
    else if (lim.unit === "duration") v = parseDuration(text);
    else if (lim.unit === "size") {
      const sz = parseSize(text);
      v = "bytes" in sz ? sz.bytes : sz.packets;
    } else {
      if (!/^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(text)) throw bad();
      v = Number(text);
      if (lim.unit === "int" && !Number.isInteger(v)) throw bad();
    }
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw bad();
  }
  if (!Number.isFinite(v)) throw bad();
  if (v < lim.min || (lim.minExclusive && v === lim.min)) throw bad();
  if (v > lim.max || (lim.maxExclusive && v === lim.max)) throw bad();
  if (lim.oneOf && !lim.oneOf.includes(v)) throw bad();
  return v;
}

/** What a --cc/--to word can be, for messages. */
const CC_CHOICES = `${[...Object.keys(BPF_CC_ALIASES), ...KERNEL_CCS].join(", ")}, or a BPF object OBJ.o[:MAP]`;

/** A --cc/--to word, with our aliases (bpf-cubic[:MAP]) expanded; unknown words say what is allowed. */
function checkCcWord(opt: string, word: string, resolve: CcResolver): string {
  if (word.trim() === "") throw new CliError(`${opt} ${JSON.stringify(word)}: expected ${CC_CHOICES}`);
  const spec = expandCcSpec(word);
  if (isObjSpec(spec)) {
    const { path } = parseObjSpec(spec);
    try {
      if (!statSync(path).isFile()) throw Object.assign(new Error(), { code: "EISDIR" });
    } catch (e) {
      throw fileError(`${opt}: can't read object`, path, e);
    }
    return spec;
  }
  if (KERNEL_CCS.includes(spec) || resolve(spec)) return spec;
  const hint = existsSync(word) ? " (a BPF object file's name ends in .o)" : "";
  throw new CliError(`${opt} ${JSON.stringify(word)}: unknown congestion control${hint}; expected ${CC_CHOICES}`);
}

/** Build the simulation options from the command line; BPF objects go through `host` (a booted kernel). */
export function simOptionsFrom(o: SimCliOptions, resolve: CcResolver, host?: BpfCcHost): SimOptions {
  const res = (spec: string): string | TcpCongestionOps => {
    if (KERNEL_CCS.includes(spec)) return spec; // the kernel's own (registered, or loaded on first use)
    if (isObjSpec(spec)) {
      if (!host) throw new CliError(`${spec}: BPF objects need a kernel`);
      return host.attach(spec);
    }
    return resolve(spec)!;
  };
  const durationNs = simValue("duration", o.duration);
  // "--cc a,b" puts the algorithms side by side: flow i runs specs[i % specs.length].
  const specs = o.cc.split(",").map((w) => checkCcWord("--cc", w, resolve));
  const n = o.flows === undefined ? specs.length : simValue("flows", o.flows);
  if (n > SIM_LIMITS.flows!.max) {
    throw new CliError(`--cc: ${n} flows: expected at most ${SIM_LIMITS.flows!.max}`);
  }
  const stagger = simValue("stagger", o.stagger);
  const sampleNs = simValue("sample", o.sample);
  if (sampleNs > durationNs || durationNs / sampleNs > MAX_SAMPLES) {
    throw new CliError(
      `--sample ${JSON.stringify(o.sample)}: expected a period from --duration/${MAX_SAMPLES} (${durationNs / MAX_SAMPLES / 1e6} ms) up to --duration`,
    );
  }
  const from = o.from !== undefined ? simValue("from", o.from) : Math.min(5e9, durationNs / 6);
  if (from >= durationNs)
    throw new CliError(`--from ${JSON.stringify(o.from)}: expected a time before --duration ${o.duration}`);
  const link = {
    rateBps: simValue("rate", o.rate),
    delayNs: simValue("delay", o.delay),
    buffer: parseSize(o.buffer),
    lossRate: simValue("loss", o.loss),
    ecnThreshold: o.ecnThreshold !== undefined ? parseSize(o.ecnThreshold) : undefined,
    trace: o.trace ? parseMahimahi(readText("--trace: can't read trace", o.trace)) : undefined,
  };
  simValue("buffer", o.buffer);
  if (o.ecnThreshold !== undefined) simValue("ecn-threshold", o.ecnThreshold);
  const seed = simValue("seed", o.seed);
  const HZ = simValue("hz", o.hz);
  // Every value checked: now load the objects, the flows' first, then a switch's target.
  const flows: FlowSpec[] = [];
  const ccs = specs.map(res);
  for (let i = 0; i < n; i++) flows.push({ cc: ccs[i % ccs.length]!, startNs: i * stagger });
  const switches: SwitchSpec[] = [];
  if (o.switchAt !== undefined || o.to !== undefined) {
    if (o.switchAt === undefined || o.to === undefined) throw new CliError("--switch-at and --to go together");
    const atNs = simValue("switch-at", o.switchAt);
    if (atNs >= durationNs) {
      throw new CliError(`--switch-at ${JSON.stringify(o.switchAt)}: expected a time before --duration ${o.duration}`);
    }
    const toSpec = checkCcWord("--to", o.to, resolve);
    if (isObjSpec(toSpec)) {
      if (!host) throw new CliError(`${o.to}: BPF objects need a kernel`);
      switches.push({ atNs, apply: host.prepareSwitch(toSpec) });
    } else {
      const to = resolve(toSpec) ?? builtinCc(toSpec);
      if (!to) throw new CliError(`--to ${JSON.stringify(o.to)}: unknown congestion control; expected ${CC_CHOICES}`);
      switches.push({ atNs, to });
    }
  }
  const qdisc = o.qdisc !== undefined ? simQdisc(o, link.buffer, host) : undefined;
  return {
    qdisc,
    link,
    durationNs,
    flows,
    switches,
    seed,
    HZ,
    delayedAck: o.delack,
    ecn: o.ecn,
    metricsFromNs: from,
    tcp: host?.tcp,
    describeCc: host ? (ops) => host.describe(ops) : undefined,
    sampleNs,
  };
}

/**
 * --qdisc KIND|bpf-fq|OBJ[:MAP] [--qdisc-limit N]: the bottleneck device's root qdisc. pfifo's and
 * bfifo's limits default to what --buffer holds besides the packet on the wire (defaultQdiscLimit),
 * so they drop where the droptail queue does; a BPF qdisc sets its limit in init.
 */
function simQdisc(o: SimCliOptions, buffer: { bytes: number } | { packets: number }, host?: BpfCcHost): SimQdisc {
  const spec = expandQdiscSpec(o.qdisc!, join(packageRoot(), "bpf", "obj"));
  if (!host?.qdisc) throw new CliError(`--qdisc ${JSON.stringify(o.qdisc)}: needs a kernel with the packet scheduler`);
  const bpf = isObjSpec(spec);
  if (!bpf && !SIM_QDISCS.includes(spec)) {
    const hint = existsSync(spec) ? " (a BPF object file's name ends in .o)" : "";
    throw new CliError(`--qdisc ${JSON.stringify(spec)}: unknown qdisc${hint}; expected ${QDISC_CHOICES}`);
  }
  const limit = o.qdiscLimit !== undefined ? simValue("qdisc-limit", o.qdiscLimit) : undefined;
  if (bpf && limit !== undefined) throw new CliError("--qdisc-limit: a BPF qdisc sets its own limit in init");
  return simQdiscOf(host, spec, buffer, limit);
}

function readText(what: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw fileError(what, path, e);
  }
}

/** --plot's file: .svg or .png, in a directory that exists (checked before the run, so no run is wasted). */
export function checkPlotPath(path: string): void {
  if (!/\.(svg|png)$/i.test(path))
    throw new CliError(`--plot ${JSON.stringify(path)}: expected a file name ending in .svg or .png`);
  const dir = dirname(resolvePath(path));
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error(), { code: "ENOTDIR" });
  } catch (e) {
    throw fileError("--plot: can't write into", dir, e);
  }
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** The human summary table. */
export function formatSummary(m: SimMetrics, events: number, header: string[] = [], qdisc?: SimQdiscReport): string {
  const rows = [["flow", "cc", "throughput", "util", "p95 qdelay", "loss", "retrans", "rto"]];
  for (const f of m.flows) {
    rows.push([
      String(f.flow),
      f.cc,
      formatRate(f.throughputBps),
      pct(f.utilisation),
      `${f.p95QueueDelayMs.toFixed(1)} ms`,
      pct(f.lossRate),
      String(f.retransmits),
      String(f.rtos),
    ]);
  }
  // The util column is goodput over the link rate for every row; the link's busy time (which also
  // counts retransmissions) is in the footer.
  rows.push([
    "all",
    "",
    formatRate(m.throughputBps),
    pct(m.throughputBps / m.rateBps),
    `${m.p95QueueDelayMs.toFixed(1)} ms`,
    pct(m.lossRate),
    "",
    "",
  ]);
  const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => r.map((x, c) => (c < 2 ? x.padEnd(w[c]!) : x.padStart(w[c]!))).join("  "));
  lines.splice(1, 0, w.map((n) => "-".repeat(n)).join("  "));
  lines.push("");
  lines.push(
    `window ${(m.fromMs / 1000).toFixed(1)}-${(m.toMs / 1000).toFixed(1)} s, link ${formatRate(m.rateBps)} ` +
      `busy ${pct(m.utilisation)}, Jain's fairness ${m.jain.toFixed(3)}, ${events} events`,
  );
  if (qdisc) {
    const st = qdisc.stats;
    const perFlow = m.flows.map((f) => `flow ${f.flow} ${f.drops ?? 0}`).join(", ");
    lines.push(
      `qdisc ${qdisc.kind}: sent ${st.packets} pkts (${st.bytes} bytes), dropped ${st.drops} (${perFlow}), ` +
        `backlog ${st.qlen} pkts; skbs ${qdisc.skbs.allocated} allocated, ${qdisc.skbs.freed} freed`,
    );
  }
  return `${[...header, ...(header.length ? [""] : []), ...lines].join("\n")}\n`;
}

/** Each change of a flow's congestion control in the trace: "flow 0 at 10.00 s: a -> b". */
export function ccChanges(trace: SimTrace): string[] {
  const out: string[] = [];
  trace.flows.forEach((f, i) => {
    for (let j = 1; j < f.cc.length; j++) {
      if (f.cc[j] !== f.cc[j - 1])
        out.push(`flow ${i} at ${(trace.t_ms[j]! / 1000).toFixed(2)} s: ${f.cc[j - 1]} -> ${f.cc[j]}`);
    }
  });
  return out;
}

/** Each requested switch as it happened: when, and per flow the congestion control before and after. */
export interface SwitchRecord {
  at_s: number;
  to: string;
  flows: { flow: number; from: string; to: string }[];
}

export function switchRecords(trace: SimTrace, switches: { atNs: number; label: string }[]): SwitchRecord[] {
  return switches.map(({ atNs, label }) => {
    const atMs = atNs / 1e6;
    // The last sample before the switch and the first at or after it.
    let before = -1;
    let after = -1;
    trace.t_ms.forEach((t, j) => {
      if (t < atMs) before = j;
      else if (after < 0) after = j;
    });
    const flows = trace.flows.map((f, i) => ({
      flow: i,
      from: before >= 0 ? (f.cc[before] ?? "") : "",
      to: after >= 0 ? (f.cc[after] ?? "") : "",
    }));
    return { at_s: atNs / 1e9, to: label, flows };
  });
}

function switchLines(recs: SwitchRecord[]): string[] {
  return recs.flatMap((r) =>
    r.flows.map(
      (f) => `switch: flow ${f.flow} at ${r.at_s.toFixed(2)} s: ${f.from || "(not started)"} -> ${f.to || r.to}`,
    ),
  );
}

/** Where each BPF congestion control came from, for the summary's header. */
function bpfHeader(o: SimCliOptions, host: BpfCcHost | undefined): string[] {
  const lines = [`scenario: ${o.rate}, ${o.delay} one-way, ${o.buffer} buffer, ${o.duration}, seed ${o.seed}`];
  for (const { spec, obj } of host?.objects ?? []) {
    const progs = obj.programs.length;
    lines.push(`bpf: ${spec} (${progs} struct_ops programs run by the BPF VM)`);
  }
  if (o.qdisc !== undefined) lines.push(`qdisc: ${o.qdisc} as the bottleneck's root`);
  return lines;
}

/** Run with an optional progress bar on a TTY. */
export async function runSim(opts: SimOptions, progress: boolean): Promise<SimResult> {
  if (!progress) return new Simulation(opts).run();
  const { SingleBar, Presets } = (await import("cli-progress")).default;
  const bar = new SingleBar(
    { format: "simulating [{bar}] {value}/{total} s", stream: process.stderr },
    Presets.shades_classic,
  );
  const total = Math.round(opts.durationNs / 1e9);
  bar.start(total, 0);
  try {
    return new Simulation({ ...opts, onProgress: (now) => bar.update(Math.round(now / 1e9)) }).run();
  } finally {
    bar.update(total);
    bar.stop();
  }
}

export function register(program: Command, deps: SimCliDeps = {}): void {
  program
    .command("sim")
    .description(
      "run TCP congestion controls over a simulated bottleneck (default: Pantheon's 12 Mbit/s, 30 ms, 45 KB)",
    )
    .option(
      "--cc <spec>",
      "congestion control: bpf-cubic (bpf/obj/tcp_cubic.bpf.o), bpf-reno, bpf-dctcp, bpf-reno-link, bpf-cubic-link, " +
        "the kernel's cubic, reno, bbr or dctcp, " +
        "or OBJ[:MAP]; a,b,... for one flow each",
      DEFAULT_CC,
    )
    .option("--rate <rate>", "bottleneck rate (kbit, mbit, gbit)", "12mbit")
    .option("--delay <time>", "one-way propagation delay", "30ms")
    .option("--buffer <size>", "droptail buffer (b, kb, mb, pkts)", "45kb")
    .option("--duration <time>", "simulated time", "30s")
    .option("--flows <n>", "number of flows (default: one per --cc entry)")
    .option("--stagger <time>", "start flow i at i * stagger", "0s")
    .option("--switch-at <time>", "switch the congestion control at this time")
    .option("--to <spec>", "the congestion control to switch to")
    .option("--seed <n>", "PRNG seed", "1")
    .option("--loss <p>", "random loss probability per packet", "0")
    .option("--ecn-threshold <size>", "mark CE above this queue length")
    .option("--ecn", "negotiate ECN on every flow")
    .option("--trace <file>", "mahimahi link trace (ms timestamps of 1500-byte delivery opportunities)")
    .option("--hz <n>", "CONFIG_HZ of the simulated kernel", "1000")
    .option("--delack", "delayed ACKs at the receivers")
    .option("--from <time>", "start of the metrics window (default: min(5 s, duration/6))")
    .option("--sample <time>", "trace sampling period", "10ms")
    .option("-j, --json", "JSON output (metrics and traces)")
    .option("--plot <path>", "write cwnd, throughput and queue over time (.svg or .png)")
    .option(
      "--qdisc <spec>",
      "the bottleneck's qdisc: pfifo, bfifo, fq, fq_codel, bpf-fifo, bpf-fq, bpf-codel, or a BPF qdisc OBJ[:MAP]",
    )
    .option(
      "--qdisc-limit <n>",
      "the built-in qdisc's limit (pfifo default: --buffer / 1500 less the packet on the wire)",
    )
    .option("--no-progress", "no progress bar")
    .action(async (_o: SimCliOptions, c: Command) => {
      const o = c.optsWithGlobals<SimCliOptions>();
      const resolve: CcResolver = (spec) => deps.resolveCc?.(spec) ?? builtinCc(spec);
      if (o.plot !== undefined) checkPlotPath(o.plot);
      const hz = simValue("hz", o.hz);
      const isBpf = (x: string) => isObjSpec(expandCcSpec(x));
      const needsKernel = o.cc.split(",").some(isBpf) || (o.to !== undefined && isBpf(o.to)) || o.qdisc !== undefined;
      const host = needsKernel ? new BpfCcHost({ CONFIG_HZ: hz }, { qdisc: o.qdisc !== undefined }) : undefined;
      const opts = simOptionsFrom(o, resolve, host);
      const tty = Boolean(process.stderr.isTTY) && o.progress !== false && !o.json && opts.durationNs >= 10e9;
      const r = await runSim(opts, tty);
      const recs = switchRecords(
        r.trace,
        (opts.switches ?? []).map((x) => ({ atNs: x.atNs, label: o.to ?? "" })),
      );
      const out = deps.out ?? ((x: string) => process.stdout.write(x));
      // The results first: a plot that cannot be written must not lose them.
      if (o.json) {
        out(
          `${JSON.stringify({ metrics: r.metrics, switches: recs, trace: r.trace, events: r.events, cc_info: r.ccInfo, ...(r.qdisc ? { qdisc: r.qdisc } : {}) })}\n`,
        );
      } else out(formatSummary(r.metrics, r.events, [...bpfHeader(o, host), ...switchLines(recs)], r.qdisc));
      if (o.plot) {
        const { writePlot } = await import("../sim/plot.js");
        const names = r.metrics.flows.map((f) => `flow ${f.flow} (${f.cc})`);
        const title = `${o.cc}${o.to ? ` -> ${o.to} at ${o.switchAt}` : ""}: ${o.rate}, ${o.delay}, ${o.buffer}${o.qdisc ? `, qdisc ${o.qdisc}` : ""}`;
        try {
          await writePlot(o.plot, r.trace, names, title, opts.switches?.map((x) => x.atNs / 1e9) ?? []);
        } catch (e) {
          throw fileError("--plot: can't write", o.plot, e);
        }
      }
    });
}

export { DEFAULT_LINK };
