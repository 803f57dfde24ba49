import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import type { Insn } from "../../../src/isa/insn.js";
import type { BpfProgInfo } from "../../../src/kernel/bpf.js";
import { Kernel } from "../../../src/kernel/kernel.js";
import { bpf_map_lookup_elem, bpf_prog_get_info_by_fd } from "../../../src/loader/bpf.js";
import { BpfObject } from "../../../src/loader/object.js";
import { BpfCcHost } from "../../../src/sim/bpf_cc.js";
import { type SimOptions, Simulation } from "../../../src/sim/sim.js";
import { QdiscKernel, qdiscSubsystem } from "../../../src/subsys/qdisc/qdisc_init.js";
import { TcError } from "../../../src/subsys/qdisc/sch_api.js";
import { qdisc_reset, TC_H_ROOT } from "../../../src/subsys/qdisc/sch_generic.js";
import { TcpKernel, tcpSubsystem } from "../../../src/subsys/tcp/tcp_init.js";
import { BpfError, EINVAL } from "../../../src/uapi/errno.js";
import { printBpfInsn } from "../../../src/verifier/log.js";
import { repoRoot } from "../../verifier/helpers.js";

/**
 * What the kernel's BPF qdisc selftests (prog_tests/bpf_qdisc.c, 6.18) assert, on our own
 * programs (bpf/qdisc_fifo.bpf.c, bpf/qdisc_fq.bpf.c): a bulk transfer through a BPF fifo and a
 * BPF fq completes; a BPF qdisc attaches under mq and is refused under htb; a default qdisc of
 * mq's children runs init. Plus the kernel's prologue and epilogue in the programs, and the
 * sk_buff kptr destructor.
 */
const obj = (name: string) => join(repoRoot(), "bpf/obj/sim", `${name}.bpf.o`);

function boot() {
  const qk = new QdiscKernel();
  const k = new Kernel({ subsystems: [tcpSubsystem(new TcpKernel()), qdiscSubsystem(qk)] });
  const h = { kernel: k, process: k.newProcess() };
  const attach = (name: string) => {
    const o = BpfObject.open(obj(name));
    o.load(h);
    o.maps.find((m) => m.structOps)!.attachStructOps();
    return o;
  };
  return { k, qk, h, attach };
}

const MIB10 = 10 * 1024 * 1024;

for (const [name, kind] of [
  ["qdisc_fifo", "bpf_fifo"],
  ["qdisc_fq", "bpf_fq"],
] as const) {
  test(`${kind}: a 10 MiB transfer through it completes, and every skb is freed once`, () => {
    const host = new BpfCcHost({}, { qdisc: true });
    const qk = host.qdisc!;
    assert.equal(host.attachQdisc(obj(name)), kind);
    const mss = 1448;
    const opts: SimOptions = {
      link: { rateBps: 100e6, delayNs: 5e6, buffer: { packets: 1000 } },
      durationNs: 4e9,
      flows: [{ cc: "cubic", segments: Math.ceil(MIB10 / mss) }],
      mss,
      tcp: host.tcp,
      qdisc: { qk, attach: (dev) => void qk.sched.tcQdiscAdd(dev.name, { parent: TC_H_ROOT, kind }) },
    };
    const sim = new Simulation(opts);
    const r = sim.run();
    assert.ok(sim.conns[0]!.done(), "all data acknowledged");
    assert.ok(r.qdisc!.stats.packets >= Math.ceil(MIB10 / mss));
    // Nothing left once the qdisc is reset (its programs, then the kernel): no leak, no double free.
    const root = [...qk.sched.devices.values()][0]!.qdisc!;
    qdisc_reset(root);
    assert.deepEqual([qk.pool.stats.live, qk.pool.stats.doubleFree], [0, 0]);
    assert.equal(qk.pool.stats.allocated, qk.pool.stats.freed);
  });
}

test("attach: under mq as a child of class 1:1; under htb's class refused by init's prologue", () => {
  const { qk, attach } = boot();
  attach("qdisc_fifo");
  qk.addDevice({ name: "veth0", numTxQueues: 2, noQueue: true });
  qk.sched.tcQdiscAdd("veth0", { parent: TC_H_ROOT, handle: 0x10000, kind: "mq" });
  const child = qk.sched.tcQdiscAdd("veth0", { parent: 0x10001, handle: 0x11 << 16, kind: "bpf_fifo" });
  assert.equal(qk.sched.devices.get("veth0")!.queues[0]!.qdisc, child);
  assert.equal(child.limit, 1000, "init ran");

  qk.addDevice({ name: "lo", noQueue: true });
  qk.sched.tcQdiscAdd("lo", { parent: TC_H_ROOT, handle: 0x10000, kind: "htb" });
  qk.sched.tcClassAdd("lo", { parent: 0x10000, classid: 0x10001, opt: { rate: 75_000 } });
  const extack: { msg?: string } = {};
  assert.throws(
    () => qk.sched.tcQdiscAdd("lo", { parent: 0x10001, handle: 0x8000000, kind: "bpf_fifo" }, extack),
    (e: unknown) => e instanceof TcError && e.errno === EINVAL,
  );
  assert.equal(extack.msg, "BPF qdisc only supported on root or mq");
});

test("default_qdisc = bpf_fifo: mq's children are BPF fifos, created by init", () => {
  const { qk, h, attach } = boot();
  const o = attach("qdisc_fifo");
  const bss = o.internalMap(".bss")!;
  const initCalled = () => {
    const v = new Uint8Array(bss.valueSize);
    assert.equal(bpf_map_lookup_elem(h, bss.fd, new Uint8Array(4), v), 0);
    return v[0];
  };
  assert.equal(initCalled(), 0);
  qk.sched.setDefaultQdisc("bpf_fifo");
  const dev = qk.addDevice({ name: "veth1", numTxQueues: 2, noQueue: true });
  qk.sched.tcQdiscAdd("veth1", { parent: TC_H_ROOT, handle: 0x10000, kind: "mq" });
  assert.deepEqual(
    dev.queues.map((q) => q.qdisc?.id),
    ["bpf_fifo", "bpf_fifo"],
  );
  assert.equal(initCalled(), 1);
});

test("the kernel's prologue runs first in init, its epilogue last in reset and destroy", () => {
  const { k, attach } = boot();
  attach("qdisc_fifo");
  // Program names are cut to BPF_OBJ_NAME_LEN - 1 characters.
  const prog = (n: string) => [...k.prog_idr.values()].find((p) => p.name === n.slice(0, 15))!;
  const prologueId = k.kfuncsByName.get("bpf_qdisc_init_prologue")!.btfId;
  const epilogueId = k.kfuncsByName.get("bpf_qdisc_reset_destroy_epilogue")!.btfId;
  const init = prog("bpf_fifo_init").insnsi;
  // r6 = r1; r2 = ctx[2]; r1 = ctx[0]; call bpf_qdisc_init_prologue; if r0 == 0 goto +1; exit; r1 = r6
  assert.deepEqual(
    init.slice(0, 7).map((i) => [i.code, i.dst, i.src, i.off]),
    [
      [0xbf, 6, 1, 0],
      [0x79, 2, 1, 16],
      [0x79, 1, 1, 0],
      [0x85, 0, 2, 0],
      [0x15, 0, 0, 1],
      [0x95, 0, 0, 0],
      [0xbf, 1, 6, 0],
    ],
  );
  assert.equal(init[3]!.imm, prologueId);
  for (const n of ["bpf_fifo_reset", "bpf_fifo_destroy"]) {
    const insns = prog(n).insnsi;
    // The context is saved first; every exit of the main program ends in the epilogue's call.
    assert.equal(insns[0]!.code, 0x7b);
    assert.deepEqual(
      insns.slice(-2).map((i) => [i.code, i.imm]),
      [
        [0x85, epilogueId],
        [0x95, 0],
      ],
    );
    assert.equal(insns.filter((i) => i.code === 0x95).length, 1, "the epilogue's exit is the only one");
  }
});

test("reset of bpf_fq drops its nodes, and the sk_buff kptr destructor frees the skbs they hold", () => {
  const { qk, attach } = boot();
  attach("qdisc_fq");
  const dev = qk.addDevice({ name: "eth0", noQueue: true });
  const q = qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, kind: "bpf_fq" });
  for (let i = 0; i < 20; i++) dev.queueXmit(qk.pool.alloc({ len: 1000, flow: i % 3, hash: 100 + (i % 3) }));
  assert.equal(q.qlen, 20);
  assert.equal(qk.pool.stats.live, 20);
  // Round robin over the three flows, one packet each per round.
  const first = [0, 1, 2, 3, 4, 5].map(() => {
    const skb = dev.dequeue()!;
    qk.pool.consume_skb(skb);
    return skb.flow;
  });
  assert.deepEqual(first, [0, 1, 2, 0, 1, 2]);
  qdisc_reset(q);
  assert.deepEqual([q.qlen, q.backlog, qk.pool.stats.live, qk.pool.stats.dropped], [0, 0, 0, 14]);
});

test("bpftool's xlated dump: init opens with the prologue, reset and destroy close with the epilogue", () => {
  const { k, h, attach } = boot();
  const o = attach("qdisc_fifo");
  const kfuncName = (id: number) => [...k.kfuncsByName.values()].find((f) => f.btfId === id)?.name;
  // BPF_OBJ_GET_INFO_BY_FD's xlated_prog_insns, printed as `bpftool prog dump xlated` does.
  const xlated = (name: string) => {
    const p = o.programs.find((x) => x.name === name)!;
    const info: Partial<BpfProgInfo> = {};
    assert.equal(bpf_prog_get_info_by_fd(h, p.fd!, info), 0);
    const insns = info.xlated_prog_insns as Insn[];
    return { insns, text: insns.map((i, n) => printBpfInsn(i, insns[n + 1], { kfuncName }, n)) };
  };
  const prologueId = k.kfuncsByName.get("bpf_qdisc_init_prologue")!.btfId;
  const epilogueId = k.kfuncsByName.get("bpf_qdisc_reset_destroy_epilogue")!.btfId;
  const init = xlated("bpf_fifo_init");
  assert.deepEqual(init.text.slice(0, 7), [
    "(bf) r6 = r1",
    "(79) r2 = *(u64 *)(r1 +16)",
    "(79) r1 = *(u64 *)(r1 +0)",
    `(85) call bpf_qdisc_init_prologue#${prologueId}`,
    "(15) if r0 == 0x0 goto pc+1",
    "(95) exit",
    "(bf) r1 = r6",
  ]);
  // The program's own first instruction follows, as the object has it.
  const own = o.programs.find((x) => x.name === "bpf_fifo_init")!.loadedInsns![0]!;
  assert.deepEqual(init.insns[7], own);
  for (const name of ["bpf_fifo_reset", "bpf_fifo_destroy"]) {
    const { text } = xlated(name);
    // The context saved on entry, reloaded by the epilogue: r1 = ctx; r1 = sch; call; exit.
    assert.match(text[0]!, /^\(7b\) \*\(u64 \*\)\(r10 -(\d+)\) = r1$/);
    const slot = /-(\d+)\)/.exec(text[0]!)![1];
    assert.deepEqual(text.slice(-4), [
      `(79) r1 = *(u64 *)(r10 -${slot})`,
      "(79) r1 = *(u64 *)(r1 +0)",
      `(85) call bpf_qdisc_reset_destroy_epilogue#${epilogueId}`,
      "(95) exit",
    ]);
  }
});

test("init_member: priv_size must be 0 and id a name (EINVAL, nothing registered); peek is the kernel's", () => {
  const { qk, h } = boot();
  const tryAttach = (edit: (m: NonNullable<ReturnType<BpfObject["maps"]["find"]>>) => void) => {
    const o = BpfObject.open(obj("qdisc_fifo"));
    const m = o.maps.find((x) => x.structOps)!;
    edit(m);
    o.load(h);
    return () => m.attachStructOps();
  };
  for (const [member, value] of [
    ["priv_size", 8],
    ["id", ""],
  ] as const) {
    const attachIt = tryAttach((m) => m.structOpsValue!.set(member, value));
    assert.throws(attachIt, (e: unknown) => e instanceof BpfError && e.errno === EINVAL, member);
    assert.equal(qk.sched.lookupOps("bpf_fifo"), undefined, member);
  }
  tryAttach(() => {})();
  // peek = qdisc_peek_dequeued: the BPF dequeue runs once, the skb is parked (still counted in
  // qlen), and the next dequeue hands out that very skb.
  const dev = qk.addDevice({ name: "eth0", noQueue: true });
  const q = qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, kind: "bpf_fifo" });
  const [a, b] = [1, 2].map((flow) => qk.pool.alloc({ len: 100, flow }));
  dev.queueXmit(a!);
  dev.queueXmit(b!);
  assert.equal(q.ops.peek(q), a);
  assert.equal(q.ops.peek(q), a);
  assert.equal(q.qlen, 2);
  for (const want of [a, b]) {
    const skb = dev.dequeue();
    assert.equal(skb, want);
    qk.pool.consume_skb(skb!);
  }
  assert.equal(q.qlen, 0);
});
