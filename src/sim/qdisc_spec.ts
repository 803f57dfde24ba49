/**
 * `--qdisc` words as every front end takes them (`structops sim`, `structops sweep`, the
 * playground): a built-in kind of the simulated kernel, one of our committed BPF qdiscs by short
 * name, or any BPF object OBJ[:MAP]. The result puts that qdisc at the bottleneck device's root,
 * as `tc qdisc add dev D root handle 1: KIND [limit N]` would.
 */
import { TC_H_ROOT } from "../subsys/qdisc/sch_generic.js";
import { type BpfCcHost, isObjSpec } from "./bpf_cc.js";
import type { SimQdisc } from "./sim.js";

/** The kernel's qdisc kinds `--qdisc` takes by name. */
export const SIM_QDISCS = ["pfifo", "bfifo", "fq", "fq_codel"];

/** Our committed BPF qdiscs (bpf/obj/sim/NAME.bpf.o) by short name. */
export const BPF_QDISC_ALIASES: Readonly<Record<string, string>> = {
  "bpf-fifo": "qdisc_fifo",
  "bpf-fq": "qdisc_fq",
  "bpf-codel": "qdisc_codel",
};

/** A BPF_QDISC_ALIASES name becomes its object's path under `objDir`; anything else is returned as is. */
export function expandQdiscSpec(spec: string, objDir = "bpf/obj"): string {
  const [word, map] = spec.split(":", 2) as [string, string | undefined];
  const obj = BPF_QDISC_ALIASES[word];
  if (!obj) return spec;
  return `${objDir}/sim/${obj}.bpf.o${map !== undefined ? `:${map}` : ""}`;
}

/** Every word `--qdisc` knows, for messages. */
export const QDISC_CHOICES = `${[...SIM_QDISCS, ...Object.keys(BPF_QDISC_ALIASES)].join(", ")} or a BPF object OBJ.o[:MAP]`;

/**
 * The limit a built-in fifo gets from the link's buffer when none is given, so that it drops
 * exactly where the droptail queue does. The droptail buffer holds the packet being sent as well
 * (its head leaves when the last bit is on the wire); a qdisc has handed that packet to the device
 * and counts only those waiting. So pfifo gets the buffer in 1500-byte packets less one (`--buffer
 * 45kb`: 29 waiting and 1 on the wire, the droptail's 30), bfifo the buffer in bytes less one
 * packet. (Exact while packets are full-sized: a short one on the wire leaves a byte-limited
 * droptail more room than bfifo.) fq and fq_codel keep their own defaults; a BPF qdisc sets its
 * limit in init.
 */
export function defaultQdiscLimit(kind: string, buffer: { bytes: number } | { packets: number }): number | undefined {
  const pkts = "packets" in buffer ? buffer.packets : Math.floor(buffer.bytes / 1500);
  const bytes = "bytes" in buffer ? buffer.bytes : buffer.packets * 1500;
  if (kind === "pfifo") return Math.max(1, pkts - 1);
  if (kind === "bfifo") return Math.max(1, bytes - 1500);
  return undefined;
}

/**
 * The bottleneck's root qdisc of `spec` (already expanded: a kind or OBJ[:MAP]); a BPF object is
 * loaded into `host` and its struct_ops map registered (its `id` is the kind). Throws on a word
 * that is neither.
 */
export function simQdiscOf(
  host: BpfCcHost,
  spec: string,
  buffer: { bytes: number } | { packets: number },
  limit?: number,
): SimQdisc {
  const qk = host.qdisc;
  if (!qk) throw new Error(`qdisc ${JSON.stringify(spec)}: needs a kernel with the packet scheduler`);
  const bpf = isObjSpec(spec);
  if (!bpf && !SIM_QDISCS.includes(spec))
    throw new Error(`qdisc ${JSON.stringify(spec)}: unknown qdisc; expected ${QDISC_CHOICES}`);
  if (bpf && limit !== undefined) throw new Error("qdisc limit: a BPF qdisc sets its own limit in init");
  const lim = limit ?? defaultQdiscLimit(spec, buffer);
  const kind = bpf ? host.attachQdisc(spec) : spec;
  return {
    qk,
    attach: (dev) => {
      qk.sched.tcQdiscAdd(dev.name, {
        parent: TC_H_ROOT,
        handle: 0x10000,
        kind,
        opt: lim === undefined ? undefined : { limit: lim },
      });
    },
  };
}
