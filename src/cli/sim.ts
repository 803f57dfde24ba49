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
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { BpfCcHost, isObjSpec } from "../sim/bpf_cc.js";
import { parseMahimahi } from "../sim/mahimahi.js";
import type { SimMetrics } from "../sim/metrics.js";
import { writePlot } from "../sim/plot.js";
import {
  DEFAULT_LINK,
  type FlowSpec,
  type SimOptions,
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
import { BpfError, EINVAL, ENOENT } from "../uapi/errno.js";

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
  const obj = BPF_CC_ALIASES[spec];
  return obj ? join(packageRoot(), "bpf", "obj", `${obj}.bpf.o`) : spec;
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
}

/** Build the simulation options from the command line; BPF objects go through `host` (a booted kernel). */
export function simOptionsFrom(o: SimCliOptions, resolve: CcResolver, host?: BpfCcHost): SimOptions {
  const res = (spec: string): string | TcpCongestionOps => {
    if (KERNEL_CCS.includes(spec)) return spec; // the kernel's own (registered, or loaded on first use)
    if (isObjSpec(spec)) {
      if (!host) throw new BpfError(EINVAL, `${spec}: BPF objects need a kernel`);
      return host.attach(spec);
    }
    const ops = resolve(spec);
    if (!ops) {
      throw new BpfError(
        ENOENT,
        `congestion control '${spec}' not found (built-ins: ${KERNEL_CCS.join(", ")}; BPF objects need the struct_ops loader)`,
      );
    }
    return ops;
  };
  // "--cc a,b" puts the algorithms side by side: flow i runs specs[i % specs.length].
  const specs = o.cc
    .split(",")
    .filter((x) => x.length > 0)
    .map(expandCcSpec);
  const n = o.flows === undefined ? specs.length : Number(o.flows);
  if (!Number.isInteger(n) || n < 1) throw new BpfError(EINVAL, `--flows ${o.flows}: need a positive integer`);
  const stagger = parseDuration(o.stagger);
  const flows: FlowSpec[] = [];
  const ccs = specs.map(res);
  for (let i = 0; i < n; i++) flows.push({ cc: ccs[i % ccs.length]!, startNs: i * stagger });
  const switches: SwitchSpec[] = [];
  if (o.switchAt !== undefined || o.to !== undefined) {
    if (o.switchAt === undefined || o.to === undefined) throw new BpfError(EINVAL, "--switch-at and --to go together");
    const atNs = parseDuration(o.switchAt);
    const toSpec = expandCcSpec(o.to);
    if (isObjSpec(toSpec)) {
      if (!host) throw new BpfError(EINVAL, `${o.to}: BPF objects need a kernel`);
      switches.push({ atNs, apply: host.prepareSwitch(toSpec) });
    } else {
      const to = resolve(o.to) ?? builtinCc(o.to);
      if (!to) throw new BpfError(ENOENT, `congestion control '${o.to}' not found`);
      switches.push({ atNs, to });
    }
  }
  const durationNs = parseDuration(o.duration);
  return {
    link: {
      rateBps: parseRate(o.rate),
      delayNs: parseDuration(o.delay),
      buffer: parseSize(o.buffer),
      lossRate: Number(o.loss),
      ecnThreshold: o.ecnThreshold ? parseSize(o.ecnThreshold) : undefined,
      trace: o.trace ? parseMahimahi(readFileSync(o.trace, "utf8")) : undefined,
    },
    durationNs,
    flows,
    switches,
    seed: Number(o.seed),
    HZ: Number(o.hz),
    delayedAck: o.delack,
    ecn: o.ecn,
    metricsFromNs: o.from !== undefined ? parseDuration(o.from) : Math.min(5e9, durationNs / 6),
    tcp: host?.tcp,
    describeCc: host ? (ops) => host.describe(ops) : undefined,
    sampleNs: parseDuration(o.sample),
  };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** The human summary table. */
export function formatSummary(m: SimMetrics, events: number, header: string[] = []): string {
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
  rows.push([
    "all",
    "",
    formatRate(m.throughputBps),
    pct(m.utilisation),
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
    `window ${(m.fromMs / 1000).toFixed(1)}-${(m.toMs / 1000).toFixed(1)} s, link ${formatRate(m.rateBps)}, ` +
      `Jain's fairness ${m.jain.toFixed(3)}, ${events} events`,
  );
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

/** Where each BPF congestion control came from, for the summary's header. */
function bpfHeader(o: SimCliOptions, host: BpfCcHost | undefined): string[] {
  const lines = [`scenario: ${o.rate}, ${o.delay} one-way, ${o.buffer} buffer, ${o.duration}, seed ${o.seed}`];
  for (const { spec, obj } of host?.objects ?? []) {
    const progs = obj.programs.length;
    lines.push(`bpf: ${spec} (${progs} struct_ops programs run by the BPF VM)`);
  }
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
    .option("--no-progress", "no progress bar")
    .action(async (o: SimCliOptions) => {
      const resolve: CcResolver = (spec) => deps.resolveCc?.(spec) ?? builtinCc(spec);
      const isBpf = (x: string) => isObjSpec(expandCcSpec(x));
      const needsKernel = o.cc.split(",").some(isBpf) || (o.to !== undefined && isBpf(o.to));
      const host = needsKernel ? new BpfCcHost({ CONFIG_HZ: Number(o.hz) }) : undefined;
      let opts: SimOptions;
      try {
        opts = simOptionsFrom(o, resolve, host);
      } catch (e) {
        // Bad units, traces or files: report them like any other user error.
        if (e instanceof BpfError) throw e;
        throw new BpfError(EINVAL, (e as Error).message);
      }
      const tty = Boolean(process.stderr.isTTY) && o.progress !== false && !o.json && opts.durationNs >= 10e9;
      const r = await runSim(opts, tty);
      if (o.plot) {
        const names = r.metrics.flows.map((f) => `flow ${f.flow} (${f.cc})`);
        const title = `${o.cc}${o.to ? ` -> ${o.to} at ${o.switchAt}` : ""}: ${o.rate}, ${o.delay}, ${o.buffer}`;
        await writePlot(o.plot, r.trace, names, title, opts.switches?.map((x) => x.atNs / 1e9) ?? []);
      }
      const out = deps.out ?? ((x: string) => process.stdout.write(x));
      if (o.json)
        out(`${JSON.stringify({ metrics: r.metrics, trace: r.trace, events: r.events, cc_info: r.ccInfo })}\n`);
      else {
        const switched = ccChanges(r.trace).map((x) => `switch: ${x}`);
        out(formatSummary(r.metrics, r.events, [...bpfHeader(o, host), ...switched]));
      }
    });
}

export { DEFAULT_LINK };
