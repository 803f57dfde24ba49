/**
 * One run of a sweep, as `structops sim --json` would do it for the same arguments: the same
 * option parsing, the same congestion-control resolution (BPF objects in a fresh simulated kernel),
 * so a sweep row and a single sim of that grid point agree.
 */
import { BpfCcHost, isObjSpec } from "../sim/bpf_cc.js";
import { Simulation } from "../sim/sim.js";
import { type GridPoint, resolveBuffer, type SweepRow } from "../sim/sweep.js";
import { builtinCc, expandCcSpec, type SimCliOptions, simOptionsFrom } from "./sim.js";

export interface SweepRunOptions {
  duration: string;
  hz: string;
  /** Extra `sim` options applied to every run (loss, ECN threshold, delayed ACKs). */
  loss?: string;
  ecnThreshold?: string;
  delack?: boolean;
}

export function runPoint(p: GridPoint, o: SweepRunOptions): SweepRow {
  const buffer = resolveBuffer(p.buffer, p.rate, p.delay);
  const cli: SimCliOptions = {
    cc: p.cc,
    rate: p.rate,
    delay: p.delay,
    buffer,
    duration: o.duration,
    flows: String(p.flows),
    stagger: "0s",
    seed: String(p.seed),
    loss: o.loss ?? "0",
    ecnThreshold: o.ecnThreshold,
    hz: o.hz,
    delack: o.delack,
    // Traces are not reported: one sample per run keeps them small.
    sample: o.duration,
    qdisc: p.qdisc,
    rcvCc: p.rcvCc,
  };
  const kernel =
    [...p.cc.split(","), ...(p.rcvCc !== undefined ? [p.rcvCc] : [])].some((c) => isObjSpec(expandCcSpec(c))) ||
    p.qdisc !== undefined;
  const host = kernel ? new BpfCcHost({ CONFIG_HZ: Number(o.hz) }, { qdisc: p.qdisc !== undefined }) : undefined;
  const r = new Simulation(simOptionsFrom(cli, builtinCc, host)).run();
  return { ...p, duration: o.duration, buffer_resolved: buffer, metrics: r.metrics, events: r.events };
}
