/**
 * The TCP simulation as `structops sim` runs it, from the page's parameters: the same defaults, the
 * same congestion-control words (bpf-cubic is bpf/obj/tcp_cubic.bpf.o, loaded into a simulated
 * kernel and attached through struct_ops), the same seed and metrics window, so a run here gives
 * the numbers of `structops sim --json` with the same values.
 */
import { BpfCcHost } from "../../../src/sim/bpf_cc.js";
import type { SimMetrics } from "../../../src/sim/metrics.js";
import {
  needsKernel,
  SIM_DEFAULTS,
  type SimEnv,
  type SimText,
  simOptions,
  simValue,
} from "../../../src/sim/options.js";
import { expandQdiscSpec, simQdiscOf } from "../../../src/sim/qdisc_spec.js";
import { type SimOptions, type SimTrace, Simulation } from "../../../src/sim/sim.js";

export { BPF_CC_ALIASES, KERNEL_CCS } from "../../../src/sim/options.js";

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
  /** The receivers' congestion control as `--rcv-cc` names it ("" for each flow's own). */
  rcvCc: string;
}

/** `structops sim`'s defaults (flows: one per --cc entry). */
export const TCP_DEFAULTS: TcpParams = {
  cc: SIM_DEFAULTS.cc,
  rate: SIM_DEFAULTS.rate,
  delay: SIM_DEFAULTS.delay,
  buffer: SIM_DEFAULTS.buffer,
  flows: "",
  seed: SIM_DEFAULTS.seed,
  duration: SIM_DEFAULTS.duration,
  to: "",
  at: "",
  qdisc: "",
  rcvCc: "",
};

/** Our objects are bundled under bpf/obj; a dropped one is a file of the page's platform. */
const PAGE_ENV: SimEnv = { objectPath: (stem) => `bpf/obj/${stem}.bpf.o` };

/** Simulation options as the command builds them; BPF objects are loaded into `host`. */
export function tcpOptions(p: TcpParams): { opts: SimOptions; host?: BpfCcHost } {
  const text: SimText = {
    ...SIM_DEFAULTS,
    cc: p.cc,
    rate: p.rate,
    delay: p.delay,
    buffer: p.buffer,
    duration: p.duration,
    seed: p.seed,
    flows: p.flows === "" ? undefined : p.flows,
    to: p.to === "" ? undefined : p.to,
    switchAt: p.to === "" ? undefined : p.at,
    rcvCc: (p.rcvCc ?? "") === "" ? undefined : p.rcvCc,
  };
  const qdisc = (p.qdisc ?? "").trim();
  const kernel = needsKernel(text, PAGE_ENV) || qdisc !== "";
  const host = kernel ? new BpfCcHost({ CONFIG_HZ: simValue("hz", text.hz) }, { qdisc: qdisc !== "" }) : undefined;
  const opts = simOptions(text, PAGE_ENV, host);
  return {
    host,
    opts: { ...opts, qdisc: qdisc !== "" ? simQdiscOf(host!, expandQdiscSpec(qdisc), opts.link.buffer) : undefined },
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
