import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { assemble } from "../../../src/isa/asm.js";
import { Kernel } from "../../../src/kernel/kernel.js";
import { BpfCcHost } from "../../../src/sim/bpf_cc.js";
import { DEFAULT_LINK, type SimQdisc, simulate } from "../../../src/sim/sim.js";
import { bpfDummyStructOpsSubsystem } from "../../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { QdiscKernel, qdiscSubsystem } from "../../../src/subsys/qdisc/qdisc_init.js";
import { TC_H_ROOT } from "../../../src/subsys/qdisc/sch_generic.js";
import { packetHeaders } from "../../../src/subsys/qdisc/skbuff.js";
import { TcpKernel, tcpSubsystem } from "../../../src/subsys/tcp/tcp_init.js";
import { bpf_cmd, bpf_prog_type } from "../../../src/uapi/bpf.js";
import { BTF_KIND_DATASEC, BTF_KIND_STRUCT } from "../../../src/uapi/btf.js";
import { BpfError, EACCES, EINVAL } from "../../../src/uapi/errno.js";
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

/** A struct_ops program for `member` of `ops`, verified alone: its fd's errno (0: loaded) and last log line. */
function verify(ops: string, member: string, asm: string): { errno: number; msg: string } {
  const k = new Kernel({
    subsystems: [tcpSubsystem(new TcpKernel()), bpfDummyStructOpsSubsystem, qdiscSubsystem(new QdiscKernel())],
  });
  const btf = k.btfVmlinux!;
  const opsId = btf.findByNameKind(ops, BTF_KIND_STRUCT);
  const t = btf.typeById(opsId) as { members: { name: string }[] };
  const kf = (name: string) => k.kfuncsByName.get(name)!.btfId;
  const insns = assemble(asm.replace(/kfunc\((\w+)\)/g, (_m, n: string) => `kfunc ${kf(n)}`));
  const logBuf = new Uint8Array(1 << 16);
  let errno = 0;
  try {
    k.bpf(k.newProcess(), bpf_cmd.BPF_PROG_LOAD, {
      prog_type: bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS,
      insns,
      insn_cnt: insns.length,
      license: "GPL",
      expected_attach_type: t.members.findIndex((m) => m.name === member),
      attach_btf_id: opsId,
      log_level: 1,
      log_buf: logBuf,
      log_size: logBuf.length,
    });
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
    errno = e.errno;
  }
  const lines = new TextDecoder()
    .decode(logBuf.subarray(0, logBuf.indexOf(0)))
    .split("\n")
    .filter((l) => l && !l.startsWith("processed "));
  return { errno, msg: lines.at(-1) ?? "" };
}

/** enqueue: r6 = ctx, r7 = skb; an skb dynptr at fp-16. */
const FROM_SKB = `mov %r6, %r1
  ldxdw %r7, [%r6+0]
  mov %r1, %r7
  mov %r2, 0
  mov %r3, %r10
  add %r3, -16
  call kfunc(bpf_dynptr_from_skb)`;
const SLICE = (kfunc: string) => `mov %r1, %r10
  add %r1, -16
  mov %r2, 0
  mov %r3, 0
  mov %r4, 14
  call kfunc(${kfunc})`;
const DROP = `ldxdw %r2, [%r6+16]
  mov %r1, %r7
  call kfunc(bpf_qdisc_skb_drop)`;

test("Qdisc_ops: bpf_dynptr_from_skb on the skb, read-only slices; no other struct_ops type may call it", () => {
  const read = verify(
    "Qdisc_ops",
    "enqueue",
    `${FROM_SKB}\n${SLICE("bpf_dynptr_slice")}
    jeq %r0, 0, +1
    ldxb %r8, [%r0+13]
    ${DROP}\nmov %r0, 1\nexit`,
  );
  assert.deepEqual(read, { errno: 0, msg: "" });
  const write = verify(
    "Qdisc_ops",
    "enqueue",
    `${FROM_SKB}\n${SLICE("bpf_dynptr_slice")}
    jeq %r0, 0, +2
    mov %r1, 0
    stxb [%r0+0], %r1
    ${DROP}\nmov %r0, 1\nexit`,
  );
  assert.deepEqual(write, { errno: EACCES, msg: "R0 cannot write into rdonly_mem" });
  const rdwr = verify(
    "Qdisc_ops",
    "enqueue",
    `${FROM_SKB}\n${SLICE("bpf_dynptr_slice_rdwr")}\n${DROP}\nmov %r0, 1\nexit`,
  );
  assert.deepEqual(rdwr, { errno: EINVAL, msg: "the prog does not allow writes to packet data" });
  // dequeue has no skb: its Qdisc is no __sk_buff (nor the sk_buff that stands for one).
  const sch = verify(
    "Qdisc_ops",
    "dequeue",
    `ldxdw %r1, [%r1+0]
    mov %r2, 0
    mov %r3, %r10
    add %r3, -16
    call kfunc(bpf_dynptr_from_skb)
    mov %r0, 0\nexit`,
  );
  assert.deepEqual(sch, {
    errno: EINVAL,
    msg: "kernel function bpf_dynptr_from_skb args#0 expected pointer to STRUCT __sk_buff but R1 has a pointer to STRUCT Qdisc",
  });
  const dummy = verify(
    "bpf_dummy_ops",
    "test_1",
    `mov %r1, 0\nmov %r2, 0\nmov %r3, %r10\nadd %r3, -16
    call kfunc(bpf_dynptr_from_skb)\nmov %r0, 0\nexit`,
  );
  assert.deepEqual(dummy, { errno: EACCES, msg: "calling kernel function bpf_dynptr_from_skb is not allowed" });
});

test("6.18: an skb dynptr does not follow the skb's reference, so a slice after the drop still loads", () => {
  // bpf_qdisc_fail__invalid_dynptr (a later kernel refuses it: "Expected an initialized dynptr as R1").
  const r = verify(
    "Qdisc_ops",
    "enqueue",
    `${FROM_SKB}\n${DROP}\n${SLICE("bpf_dynptr_slice")}
    jeq %r0, 0, +1
    ldxb %r8, [%r0+12]
    mov %r0, 1\nexit`,
  );
  assert.deepEqual(r, { errno: 0, msg: "" });
});
