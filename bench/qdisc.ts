/**
 * The packet scheduler as the simulator's bottleneck: simulated packets per wall second through our
 * BPF qdiscs (bpf/obj/sim/qdisc_fifo.bpf.o and qdisc_fq.bpf.o: enqueue and dequeue run as BPF, every
 * packet an sk_buff kptr in an allocated node) against the built-in TypeScript pfifo and fq, all
 * measured in this run on the same scenario (12 Mbit/s, 30 ms, two CUBIC flows, 10 s, seed 1).
 * bpf/qdisc_dynptr.bpf.c, the FIFO that reads each packet's headers through an skb dynptr, against
 * the plain BPF FIFO. And the qdisc alone, without TCP around it: skbs of 16 flows enqueued and dequeued on a device,
 * 64 at a time, through the BPF qdisc and the built-in one.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { BpfCcHost } from "../src/sim/bpf_cc.js";
import { DEFAULT_LINK, flowHash, simulate } from "../src/sim/sim.js";
import { TC_H_ROOT } from "../src/subsys/qdisc/sch_generic.js";
import type { BenchResult } from "./bench.js";

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json"))) {
    const up = resolve(d, "..");
    if (up === d) break;
    d = up;
  }
  return d;
}

const DURATION_NS = 10e9;
const ROUNDS = 3;

/** Best of ROUNDS runs: packets the qdisc sent per wall second, and the packet count. */
function pps(qdisc: string): { pps: number; packets: number; wallMs: number } {
  let best = Number.POSITIVE_INFINITY;
  let packets = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const host = new BpfCcHost({}, { qdisc: true });
    const qk = host.qdisc!;
    const kind = qdisc.endsWith(".o") ? host.attachQdisc(qdisc) : qdisc;
    const t0 = performance.now();
    const r = simulate({
      link: DEFAULT_LINK,
      durationNs: DURATION_NS,
      flows: [{ cc: "cubic" }, { cc: "cubic" }],
      seed: 1,
      tcp: host.tcp,
      qdisc: {
        qk,
        attach: (dev) =>
          void qk.sched.tcQdiscAdd(dev.name, {
            parent: TC_H_ROOT,
            kind,
            opt: kind === "pfifo" ? { limit: 1000 } : undefined,
          }),
      },
    });
    best = Math.min(best, performance.now() - t0);
    packets = r.qdisc!.stats.packets;
  }
  return { pps: packets / (best / 1000), packets, wallMs: best };
}

const BATCH = 64;
const PACKETS = 200_000;

/** Best of ROUNDS: packets per wall second through enqueue and dequeue alone (PACKETS of them). */
function qdiscPps(qdisc: string): { pps: number; wallMs: number } {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < ROUNDS; i++) {
    const host = new BpfCcHost({}, { qdisc: true });
    const qk = host.qdisc!;
    const kind = qdisc.endsWith(".o") ? host.attachQdisc(qdisc) : qdisc;
    const dev = qk.addDevice({ name: "eth0", noQueue: true });
    qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, kind, opt: kind === "pfifo" ? { limit: 1000 } : undefined });
    let sent = 0;
    const t0 = performance.now();
    for (let n = 0; n < PACKETS; n += BATCH) {
      for (let j = 0; j < BATCH; j++) dev.queueXmit(qk.pool.alloc({ len: 1500, flow: j & 15, hash: flowHash(j & 15) }));
      for (let skb = dev.dequeue(); skb; skb = dev.dequeue()) {
        qk.pool.consume_skb(skb);
        sent++;
      }
    }
    best = Math.min(best, performance.now() - t0);
    if (sent !== PACKETS || qk.pool.stats.live !== 0) throw new Error(`${qdisc}: ${sent} of ${PACKETS} packets out`);
  }
  return { pps: PACKETS / (best / 1000), wallMs: best };
}

export async function run(): Promise<BenchResult[]> {
  const obj = (n: string) => join(repoRoot(), "bpf/obj/sim", `${n}.bpf.o`);
  const out: BenchResult[] = [];
  for (const [bpf, builtin] of [
    ["qdisc_fifo", "pfifo"],
    ["qdisc_fq", "fq"],
  ] as const) {
    if (!existsSync(obj(bpf))) continue;
    const base = pps(builtin);
    const ours = pps(obj(bpf));
    out.push({
      name: `sim packets/s through bpf/${bpf}.bpf.c`,
      value: ours.pps,
      unit: "pkt/s",
      baseline: { name: `built-in ${builtin}`, value: base.pps },
      ratio: ours.pps / base.pps,
      note: `best of ${ROUNDS}; ${ours.packets} vs ${base.packets} packets in 10 s simulated (${ours.wallMs.toFixed(0)} vs ${base.wallMs.toFixed(0)} ms wall); ratio = BPF / built-in`,
    });
    const q0 = qdiscPps(builtin);
    const q1 = qdiscPps(obj(bpf));
    out.push({
      name: `enqueue+dequeue packets/s through bpf/${bpf}.bpf.c alone`,
      value: q1.pps,
      unit: "pkt/s",
      baseline: { name: `built-in ${builtin}`, value: q0.pps },
      ratio: q1.pps / q0.pps,
      note: `best of ${ROUNDS}; ${PACKETS} skbs of 16 flows, ${BATCH} enqueued then all dequeued, no TCP (${q1.wallMs.toFixed(0)} vs ${q0.wallMs.toFixed(0)} ms wall); ratio = BPF / built-in`,
    });
  }
  // What reading every packet's headers through an skb dynptr costs: the dynptr FIFO against the plain one.
  if (existsSync(obj("qdisc_dynptr")) && existsSync(obj("qdisc_fifo"))) {
    const base = pps(obj("qdisc_fifo"));
    const ours = pps(obj("qdisc_dynptr"));
    out.push({
      name: "sim packets/s through bpf/qdisc_dynptr.bpf.c (headers read through an skb dynptr)",
      value: ours.pps,
      unit: "pkt/s",
      baseline: { name: "bpf/qdisc_fifo.bpf.c", value: base.pps },
      ratio: ours.pps / base.pps,
      note: `best of ${ROUNDS}; ${ours.packets} vs ${base.packets} packets in 10 s simulated (${ours.wallMs.toFixed(0)} vs ${base.wallMs.toFixed(0)} ms wall); each packet: bpf_dynptr_from_skb, three bpf_dynptr_slice, size and is_rdonly; ratio = dynptr FIFO / plain FIFO`,
    });
  }
  return out;
}
