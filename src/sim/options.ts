/**
 * The TCP simulation's options as a user types them, and the run they make: the defaults, the
 * congestion-control words (bpf-cubic is our bpf/obj/tcp_cubic.bpf.o), what each value may be (one
 * table; a failure is one line naming the option, the value and what is allowed), and the
 * SimOptions built from them. `structops sim` (src/cli/sim.ts) and the playground's TCP panel
 * (web/src/panels/tcp_run.ts) both build their runs here, so the same values give the same run.
 * What needs the file system (where our objects are, whether a file exists, a --trace file) comes
 * from the caller's SimEnv.
 */

import { tcpBbr } from "../subsys/tcp/tcp_bbr.js";
import type { TcpCongestionOps } from "../subsys/tcp/tcp_cong.js";
import { tcpCubic } from "../subsys/tcp/tcp_cubic.js";
import { tcpDctcp } from "../subsys/tcp/tcp_dctcp.js";
import { tcpReno } from "../subsys/tcp/tcp_reno.js";
import { type BpfCcHost, isObjSpec, parseObjSpec } from "./bpf_cc.js";
import { parseMahimahi } from "./mahimahi.js";
import type { FlowSpec, SimOptions, SwitchSpec } from "./sim.js";
import { parseDuration, parseRate, parseSize } from "./units.js";

/** A value the user typed that is not allowed; the message is the whole line to show. */
export class SimOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SimOptionError";
  }
}

/** Our committed BPF congestion controls by short name: bpf-cubic is bpf/obj/tcp_cubic.bpf.o. */
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

/** Turns a --cc/--to spec into ops; undefined lets the next resolver (or the built-ins) try. */
export type CcResolver = (spec: string) => TcpCongestionOps | undefined;

/** The options as text, under the command's names (`switchAt` is --switch-at). */
export interface SimText {
  cc: string;
  rate: string;
  delay: string;
  buffer: string;
  duration: string;
  /** Default: one flow per --cc entry. */
  flows?: string;
  stagger: string;
  switchAt?: string;
  to?: string;
  /** The receiving sockets' CA (default: each flow's own). */
  rcvCc?: string;
  seed: string;
  loss: string;
  ecnThreshold?: string;
  ecn?: boolean;
  trace?: string;
  hz: string;
  delack?: boolean;
  /** SO_RCVBUF of the receiving sockets (a size; default: autotuned, never limiting). */
  rcvbuf?: string;
  /** Default: min(5 s, duration / 6). */
  from?: string;
  sample: string;
}

/** Pantheon's default path (12 Mbit/s, 30 ms one way, 45 KB droptail, 30 s) with our BPF CUBIC. */
export const SIM_DEFAULTS = {
  cc: DEFAULT_CC,
  rate: "12mbit",
  delay: "30ms",
  buffer: "45kb",
  duration: "30s",
  stagger: "0s",
  seed: "1",
  loss: "0",
  hz: "1000",
  sample: "10ms",
} as const satisfies Partial<SimText>;

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
  rcvbuf: { unit: "size", min: 1, max: 0x7fffffff, allowed: "a buffer from 1 byte to 2gb (b, kb, mb)" },
  "qdisc-limit": { unit: "int", min: 1, max: 1_000_000, allowed: "a packet count from 1 to 1000000" },
};

/** Samples kept per flow at most (--duration / --sample): bounds the trace's memory. */
export const MAX_SAMPLES = 1_000_000;

/** Read option `name`'s text and check it against SIM_LIMITS; a failure is one line naming option, value and range. */
export function simValue(name: string, text: string): number {
  const lim = SIM_LIMITS[name];
  if (!lim) throw new Error(`no limits for --${name}`);
  const bad = () => new SimOptionError(`--${name} ${JSON.stringify(text)}: expected ${lim.allowed}`);
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
    if (e instanceof SimOptionError) throw e;
    throw bad();
  }
  if (!Number.isFinite(v)) throw bad();
  if (v < lim.min || (lim.minExclusive && v === lim.min)) throw bad();
  if (v > lim.max || (lim.maxExclusive && v === lim.max)) throw bad();
  if (lim.oneOf && !lim.oneOf.includes(v)) throw bad();
  return v;
}

/** What the options need of the platform they run on. */
export interface SimEnv {
  /** One of our committed objects by its file's stem (tcp_cubic -> .../bpf/obj/tcp_cubic.bpf.o). */
  objectPath(stem: string): string;
  /** Each object a --cc/--to word names, before anything loads: throw if it cannot be read. */
  checkObject?(opt: string, path: string): void;
  /** Whether a word names an existing file (an unknown word's message then says an object ends in .o). */
  exists?(path: string): boolean;
  /** The text of a --trace file. */
  readText?(opt: string, path: string): string;
  /** Congestion controls besides the kernel's. */
  resolve?: CcResolver;
}

/** A BPF_CC_ALIASES name becomes its object's path; anything else is returned as is. */
export function expandCcSpec(spec: string, env: SimEnv): string {
  const [word, map] = spec.split(":", 2) as [string, string | undefined];
  const obj = BPF_CC_ALIASES[word];
  if (!obj) return spec;
  const path = env.objectPath(obj);
  return map !== undefined ? `${path}:${map}` : path;
}

/** What a --cc/--to word can be, for messages. */
const CC_CHOICES = `${[...Object.keys(BPF_CC_ALIASES), ...KERNEL_CCS].join(", ")}, or a BPF object OBJ.o[:MAP]`;

const resolverOf =
  (env: SimEnv): CcResolver =>
  (spec) =>
    env.resolve?.(spec) ?? builtinCc(spec);

/** A --cc/--to word, with our aliases (bpf-cubic[:MAP]) expanded; unknown words say what is allowed. */
function checkCcWord(opt: string, word: string, env: SimEnv): string {
  if (word.trim() === "") throw new SimOptionError(`${opt} ${JSON.stringify(word)}: expected ${CC_CHOICES}`);
  const spec = expandCcSpec(word, env);
  if (isObjSpec(spec)) {
    env.checkObject?.(opt, parseObjSpec(spec).path);
    return spec;
  }
  if (KERNEL_CCS.includes(spec) || resolverOf(env)(spec)) return spec;
  const hint = env.exists?.(word) ? " (a BPF object file's name ends in .o)" : "";
  throw new SimOptionError(`${opt} ${JSON.stringify(word)}: unknown congestion control${hint}; expected ${CC_CHOICES}`);
}

/** Whether the run loads a BPF object (and so needs a booted kernel, a BpfCcHost). */
export function needsKernel(o: Pick<SimText, "cc" | "to" | "rcvCc">, env: SimEnv): boolean {
  const isBpf = (x: string) => isObjSpec(expandCcSpec(x, env));
  return (
    o.cc.split(",").some(isBpf) || (o.to !== undefined && isBpf(o.to)) || (o.rcvCc !== undefined && isBpf(o.rcvCc))
  );
}

/**
 * The simulation of these options. Every value is checked first; then the objects are loaded into
 * `host` (the flows' first, then a switch's target).
 */
export function simOptions(o: SimText, env: SimEnv, host?: BpfCcHost): SimOptions {
  const resolve = resolverOf(env);
  const res = (spec: string): string | TcpCongestionOps => {
    if (KERNEL_CCS.includes(spec)) return spec; // the kernel's own (registered, or loaded on first use)
    if (isObjSpec(spec)) {
      if (!host) throw new SimOptionError(`${spec}: BPF objects need a kernel`);
      return host.attach(spec);
    }
    return resolve(spec)!;
  };
  const durationNs = simValue("duration", o.duration);
  // "--cc a,b" puts the algorithms side by side: flow i runs specs[i % specs.length].
  const specs = o.cc.split(",").map((w) => checkCcWord("--cc", w, env));
  const rcvSpec = o.rcvCc !== undefined ? checkCcWord("--rcv-cc", o.rcvCc, env) : undefined;
  const n = o.flows === undefined ? specs.length : simValue("flows", o.flows);
  if (n > SIM_LIMITS.flows!.max) {
    throw new SimOptionError(`--cc: ${n} flows: expected at most ${SIM_LIMITS.flows!.max}`);
  }
  const stagger = simValue("stagger", o.stagger);
  const sampleNs = simValue("sample", o.sample);
  if (sampleNs > durationNs || durationNs / sampleNs > MAX_SAMPLES) {
    throw new SimOptionError(
      `--sample ${JSON.stringify(o.sample)}: expected a period from --duration/${MAX_SAMPLES} (${durationNs / MAX_SAMPLES / 1e6} ms) up to --duration`,
    );
  }
  const from = o.from !== undefined ? simValue("from", o.from) : Math.min(5e9, durationNs / 6);
  if (from >= durationNs)
    throw new SimOptionError(`--from ${JSON.stringify(o.from)}: expected a time before --duration ${o.duration}`);
  const rateBps = simValue("rate", o.rate);
  const delayNs = simValue("delay", o.delay);
  simValue("buffer", o.buffer);
  const lossRate = simValue("loss", o.loss);
  if (o.ecnThreshold !== undefined) simValue("ecn-threshold", o.ecnThreshold);
  const rcvbuf = o.rcvbuf !== undefined ? Math.floor(simValue("rcvbuf", o.rcvbuf)) : undefined;
  if (rcvbuf !== undefined && "packets" in parseSize(o.rcvbuf!))
    throw new SimOptionError(`--rcvbuf ${JSON.stringify(o.rcvbuf)}: expected a size in bytes (b, kb, mb)`);
  const readTrace = (path: string) => {
    if (!env.readText) throw new SimOptionError("--trace: link traces are not available here");
    return parseMahimahi(env.readText("--trace: can't read trace", path));
  };
  const link = {
    rateBps,
    delayNs,
    buffer: parseSize(o.buffer),
    lossRate,
    ecnThreshold: o.ecnThreshold !== undefined ? parseSize(o.ecnThreshold) : undefined,
    trace: o.trace ? readTrace(o.trace) : undefined,
  };
  const seed = simValue("seed", o.seed);
  const HZ = simValue("hz", o.hz);
  // Every value checked: now load the objects, the flows' first, then a switch's target.
  const flows: FlowSpec[] = [];
  const ccs = specs.map(res);
  // The same word as a --cc entry is that entry's CA (its object is loaded once).
  const rcvCc =
    rcvSpec === undefined ? undefined : specs.includes(rcvSpec) ? ccs[specs.indexOf(rcvSpec)]! : res(rcvSpec);
  for (let i = 0; i < n; i++) {
    flows.push({ cc: ccs[i % ccs.length]!, startNs: i * stagger, ...(rcvCc !== undefined ? { rcvCc } : {}) });
  }
  const switches: SwitchSpec[] = [];
  if (o.switchAt !== undefined || o.to !== undefined) {
    if (o.switchAt === undefined || o.to === undefined) throw new SimOptionError("--switch-at and --to go together");
    const atNs = simValue("switch-at", o.switchAt);
    if (atNs >= durationNs) {
      throw new SimOptionError(
        `--switch-at ${JSON.stringify(o.switchAt)}: expected a time before --duration ${o.duration}`,
      );
    }
    const toSpec = checkCcWord("--to", o.to, env);
    if (isObjSpec(toSpec)) {
      if (!host) throw new SimOptionError(`${o.to}: BPF objects need a kernel`);
      switches.push({ atNs, apply: host.prepareSwitch(toSpec) });
    } else {
      const to = resolve(toSpec);
      if (!to) {
        throw new SimOptionError(`--to ${JSON.stringify(o.to)}: unknown congestion control; expected ${CC_CHOICES}`);
      }
      switches.push({ atNs, to });
    }
  }
  return {
    link,
    durationNs,
    flows,
    switches,
    seed,
    HZ,
    delayedAck: o.delack,
    ...(rcvbuf !== undefined ? { rcvbuf } : {}),
    ecn: o.ecn,
    metricsFromNs: from,
    tcp: host?.tcp,
    describeCc: host ? (ops) => host.describe(ops) : undefined,
    sampleNs,
  };
}
