import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { BpfCcHost } from "../../../src/sim/bpf_cc.js";
import { DEFAULT_LINK, type SimQdisc, simulate } from "../../../src/sim/sim.js";
import { TC_H_ROOT } from "../../../src/subsys/qdisc/sch_generic.js";
import { packetHeaders } from "../../../src/subsys/qdisc/skbuff.js";
import { BTF_KIND_DATASEC } from "../../../src/uapi/btf.js";
import { repoRoot } from "../../verifier/helpers.js";

/**
 * A BPF qdisc reading its packets (bpf/qdisc_dynptr.bpf.c): bpf_dynptr_from_skb and
 * bpf_dynptr_slice reach the bytes of every skb the simulator queues, Ethernet, IPv4 and TCP
 * headers for its flow; the dynptr is read-only (a struct_ops program may not write packets) and
 * as long as the skb.
 */
const OBJ = join(repoRoot(), "bpf/obj/sim/qdisc_dynptr.bpf.o");

test("packet headers: Ethernet, IPv4 and TCP for the flow, ECN from the segment", () => {
  const h = packetHeaders(3, 1514, { idx: 2, ect: true, ce: true });
  const dv = new DataView(h.buffer);
  assert.equal(dv.getUint16(12), 0x0800);
  assert.equal(h[14], 0x45);
  assert.equal(h[15] & 3, 3, "CE");
  assert.equal(dv.getUint16(16), 1500, "tot_len");
  assert.equal(h[23], 6, "TCP");
  assert.equal(dv.getUint32(26), 0x0a000004, "10.0.0.4");
  assert.equal(dv.getUint16(34), 40003);
  assert.equal(dv.getUint32(38), 2 * (1514 - 54));
});

test("qdisc_dynptr.bpf.o: every queued packet parsed through an skb dynptr, counted per TCP source port", () => {
  const host = new BpfCcHost({}, { qdisc: true });
  const qk = host.qdisc!;
  const kind = host.attachQdisc(OBJ);
  const qdisc: SimQdisc = {
    qk,
    attach: (dev) => qk.sched.tcQdiscAdd(dev.name, { parent: TC_H_ROOT, handle: 0x10000, kind }),
  };
  const r = simulate({
    link: DEFAULT_LINK,
    durationNs: 3e9,
    flows: [{ cc: "cubic" }, { cc: "bbr" }],
    tcp: host.tcp,
    qdisc,
  });
  const q = r.qdisc!;
  assert.equal(q.skbs.doubleFree, 0);
  assert.equal(q.skbs.allocated - q.skbs.freed, q.skbs.live);

  // The object's .bss variables by name (arrays of u64 too).
  const obj = host.objects.at(-1)!.obj;
  const btf = obj.btf!;
  const sec = btf.typeById(btf.findByNameKind(".bss", BTF_KIND_DATASEC));
  const data = host.globals(OBJ)!;
  const u64s = (name: string): number[] => {
    assert.equal(sec.kind, BTF_KIND_DATASEC);
    const v = (sec as { vars: { type: number; offset: number; size: number }[] }).vars.find(
      (x) => btf.typeById(x.type).name === name,
    )!;
    return Array.from({ length: v.size / 8 }, (_, i) => Number(data.getBigUint64(v.offset + 8 * i, true)));
  };
  const [unparsed] = u64s("unparsed");
  const [mismatch] = u64s("size_mismatch");
  const [rdonly] = u64s("rdonly");
  const pkts = u64s("port_pkts");
  const bytes = u64s("port_bytes");
  const offered = r.metrics.flows.map((f) => f.packetsSent);
  assert.equal(unparsed, 0);
  assert.equal(mismatch, 0);
  assert.deepEqual(pkts.slice(0, 2), offered, "per flow: packets the sender offered the qdisc");
  assert.deepEqual(pkts.slice(2), [0, 0, 0, 0, 0, 0]);
  assert.equal(rdonly, offered[0]! + offered[1]!, "every skb dynptr of a qdisc is read-only");
  assert.ok(bytes[0]! > 1000 * pkts[0]! && bytes[1]! > 1000 * pkts[1]!, `bytes ${bytes.slice(0, 2)}`);
});
