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
import { BpfCcHost, isObjSpec } from "../sim/bpf_cc.js";
import type { SimMetrics } from "../sim/metrics.js";
import {
  builtinCc,
  type CcResolver,
  simValue as checkedValue,
  expandCcSpec as expandSpec,
  needsKernel,
  SIM_DEFAULTS,
  type SimEnv,
  SimOptionError,
  type SimText,
  simOptions,
} from "../sim/options.js";
import { expandQdiscSpec, QDISC_CHOICES, SIM_QDISCS, simQdiscOf } from "../sim/qdisc_spec.js";
import {
  DEFAULT_LINK,
  type SimOptions,
  type SimQdisc,
  type SimQdiscReport,
  type SimResult,
  type SimTrace,
  Simulation,
} from "../sim/sim.js";
import { formatRate } from "../sim/units.js";
import { CliError, fileError } from "./errors.js";

/**
 * The package root (structops' package.json; dist/cli has one of its own), from src/cli under tsx,
 * dist/src/cli or the bundle in dist/cli.
 */
function packageRoot(): string {
  const isPackageRoot = (d: string) => {
    try {
      return JSON.parse(readFileSync(join(d, "package.json"), "utf8")).name === "structops";
    } catch {
      return false;
    }
  };
  let d = dirname(fileURLToPath(import.meta.url));
  while (!isPackageRoot(d)) {
    const up = resolvePath(d, "..");
    if (up === d) break;
    d = up;
  }
  return d;
}

/** A BPF_CC_ALIASES name becomes its object's path (from any cwd); anything else is returned as is. */
export function expandCcSpec(spec: string): string {
  return expandSpec(spec, CLI_ENV);
}

export interface SimCliDeps {
  resolveCc?: CcResolver;
  /** Where output goes (default stdout). */
  out?: (s: string) => void;
}

export interface SimCliOptions extends SimText {
  json?: boolean;
  plot?: string;
  progress?: boolean;
  qdisc?: string;
  qdiscLimit?: string;
}

/** The file system under the options: our objects from the package root, files checked and read here. */
const CLI_ENV: SimEnv = {
  objectPath: (stem) => join(packageRoot(), "bpf", "obj", `${stem}.bpf.o`),
  checkObject: (opt, path) => {
    try {
      if (!statSync(path).isFile()) throw Object.assign(new Error(), { code: "EISDIR" });
    } catch (e) {
      throw fileError(`${opt}: can't read object`, path, e);
    }
  },
  exists: (path) => existsSync(path),
  readText: (what, path) => readText(what, path),
};

/** The options' one-line refusals are the command's. */
function asCli<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof SimOptionError) throw new CliError(e.message);
    throw e;
  }
}

/** Read option `name`'s text and check it against SIM_LIMITS (src/sim/options.ts). */
export function simValue(name: string, text: string): number {
  return asCli(() => checkedValue(name, text));
}

/** Build the simulation options from the command line; BPF objects go through `host` (a booted kernel). */
export function simOptionsFrom(o: SimCliOptions, resolve: CcResolver, host?: BpfCcHost): SimOptions {
  const opts = asCli(() => simOptions(o, { ...CLI_ENV, resolve }, host));
  const qdisc = o.qdisc !== undefined ? simQdisc(o, opts.link.buffer, host) : undefined;
  return { qdisc, ...opts };
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
      SIM_DEFAULTS.cc,
    )
    .option("--rate <rate>", "bottleneck rate (kbit, mbit, gbit)", SIM_DEFAULTS.rate)
    .option("--delay <time>", "one-way propagation delay", SIM_DEFAULTS.delay)
    .option("--buffer <size>", "droptail buffer (b, kb, mb, pkts)", SIM_DEFAULTS.buffer)
    .option("--duration <time>", "simulated time", SIM_DEFAULTS.duration)
    .option("--flows <n>", "number of flows (default: one per --cc entry)")
    .option("--stagger <time>", "start flow i at i * stagger", SIM_DEFAULTS.stagger)
    .option("--switch-at <time>", "switch the congestion control at this time")
    .option("--to <spec>", "the congestion control to switch to")
    .option("--seed <n>", "PRNG seed", SIM_DEFAULTS.seed)
    .option("--loss <p>", "random loss probability per packet", SIM_DEFAULTS.loss)
    .option("--ecn-threshold <size>", "mark CE above this queue length")
    .option("--ecn", "negotiate ECN on every flow")
    .option("--trace <file>", "mahimahi link trace (ms timestamps of 1500-byte delivery opportunities)")
    .option("--hz <n>", "CONFIG_HZ of the simulated kernel", SIM_DEFAULTS.hz)
    .option("--delack", "delayed ACKs at the receivers")
    .option("--rcvbuf <size>", "SO_RCVBUF of the receivers: a locked receive buffer whose window limits the sender")
    .option("--rcv-cc <spec>", "the receiving sockets' congestion control (default: the sender's)")
    .option("--from <time>", "start of the metrics window (default: min(5 s, duration/6))")
    .option("--sample <time>", "trace sampling period", SIM_DEFAULTS.sample)
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
      const kernel = needsKernel(o, CLI_ENV) || o.qdisc !== undefined;
      const host = kernel ? new BpfCcHost({ CONFIG_HZ: hz }, { qdisc: o.qdisc !== undefined }) : undefined;
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
          `${JSON.stringify({ metrics: r.metrics, switches: recs, trace: r.trace, events: r.events, cc_info: r.ccInfo, rcv_cc_info: r.rcvCcInfo, ...(r.qdisc ? { qdisc: r.qdisc } : {}) })}\n`,
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

export {
  BPF_CC_ALIASES,
  builtinCc,
  type CcResolver,
  DEFAULT_CC,
  KERNEL_CCS,
  MAX_SAMPLES,
  SIM_LIMITS,
  type SimLimit,
} from "../sim/options.js";
export { DEFAULT_LINK };
