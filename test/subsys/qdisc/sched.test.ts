import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../../src/kernel/kernel.js";
import { BpfObject } from "../../../src/loader/object.js";
import { type KernelHrtimers, QdiscKernel, qdiscSubsystem } from "../../../src/subsys/qdisc/qdisc_init.js";
import { TcError } from "../../../src/subsys/qdisc/sch_api.js";
import { fqStats } from "../../../src/subsys/qdisc/sch_fq.js";
import { fqCodelStats } from "../../../src/subsys/qdisc/sch_fq_codel.js";
import {
  NET_XMIT_DROP,
  NET_XMIT_SUCCESS,
  TC_H_MAKE,
  TC_H_ROOT,
  TCQ_F_MQROOT,
} from "../../../src/subsys/qdisc/sch_generic.js";
import { TcpKernel, tcpSubsystem } from "../../../src/subsys/tcp/tcp_init.js";
import { BpfError, EINVAL, ENOENT, EOPNOTSUPP } from "../../../src/uapi/errno.js";
import { repoRoot } from "../../verifier/helpers.js";

const SIM_OBJ = join(repoRoot(), "bpf/obj/sim");

function boot() {
  const qk = new QdiscKernel();
  const k = new Kernel({ subsystems: [tcpSubsystem(new TcpKernel()), qdiscSubsystem(qk)] });
  return { k, qk, timers: qk.timers as KernelHrtimers, h: { kernel: k, process: k.newProcess() } };
}

/** Drain the device as a link would: every packet dequeued now is consumed (transmitted). */
function drain(qk: QdiscKernel, dev: ReturnType<QdiscKernel["addDevice"]>): number[] {
  const flows: number[] = [];
  for (let skb = dev.dequeue(); skb; skb = dev.dequeue()) {
    flows.push(skb.flow);
    qk.pool.consume_skb(skb);
  }
  return flows;
}

test("pfifo: tail drop past the packet limit; every skb accounted for", () => {
  const { qk } = boot();
  const dev = qk.addDevice({ name: "eth0" });
  const q = qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, handle: 0x10000, kind: "pfifo", opt: { limit: 3 } });
  const rc = [0, 1, 2, 3, 4].map((i) => dev.queueXmit(qk.pool.alloc({ len: 1000, flow: i })));
  assert.deepEqual(rc, [NET_XMIT_SUCCESS, NET_XMIT_SUCCESS, NET_XMIT_SUCCESS, NET_XMIT_DROP, NET_XMIT_DROP]);
  assert.equal(q.qlen, 3);
  assert.equal(q.backlog, 3000);
  assert.deepEqual(drain(qk, dev), [0, 1, 2]);
  const s = q.stats();
  assert.deepEqual([s.qlen, s.backlog, s.drops, s.packets, s.bytes], [0, 0, 2, 3, 3000]);
  assert.deepEqual(qk.pool.stats, { allocated: 5, freed: 5, dropped: 2, live: 0, doubleFree: 0 });
});

test("bfifo: a byte limit; the default limit is tx_queue_len * (mtu + hard_header_len)", () => {
  const { qk } = boot();
  const dev = qk.addDevice({ name: "eth0", txQueueLen: 10 });
  const q = qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, kind: "bfifo", opt: { limit: 2500 } });
  const rc = [1000, 1000, 1000, 500].map((len) => dev.queueXmit(qk.pool.alloc({ len })));
  assert.deepEqual(rc, [0, 0, NET_XMIT_DROP, 0]);
  assert.equal(q.backlog, 2500);
  const d = qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, kind: "bfifo" });
  assert.equal(d.limit, 10 * 1514);
  // Replacing the root reset the old one: its three packets were freed.
  assert.equal(qk.pool.stats.live, 0);
});

test("fq: two flows share round robin; a packet waits for its departure time (EDT) on the watchdog", () => {
  const { qk, timers } = boot();
  const dev = qk.addDevice({ name: "eth0" });
  const q = qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, kind: "fq", opt: { initial_quantum: 1514 } });
  for (let i = 0; i < 6; i++) dev.queueXmit(qk.pool.alloc({ len: 1500, flow: 1, hash: 11 }));
  for (let i = 0; i < 6; i++) dev.queueXmit(qk.pool.alloc({ len: 1500, flow: 2, hash: 22 }));
  const order = drain(qk, dev);
  // A flow sends while its credit is positive: 1514 bytes of credit, then 2 * 1514 a turn, are
  // two 1500-byte packets each time.
  assert.deepEqual(order, [1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]);
  let woke = 0;
  dev.onSchedule = () => woke++;
  const now = timers.now();
  dev.queueXmit(qk.pool.alloc({ len: 1500, flow: 3, hash: 33, tstamp: BigInt(now + 5e6) }));
  assert.equal(dev.dequeue(), null, "held until its departure time");
  assert.equal(q.watchdog.expires, now + 5e6);
  timers.advanceTo(now + 5e6);
  assert.equal(woke, 1);
  assert.deepEqual(drain(qk, dev), [3]);
  // Beyond the horizon (10 s): dropped.
  assert.equal(dev.queueXmit(qk.pool.alloc({ len: 100, tstamp: BigInt(timers.now() + 11e9) })), NET_XMIT_DROP);
  assert.equal(fqStats(q)?.horizonDrops, 1);
  assert.equal(qk.pool.stats.live, 0);
});

test("fq_codel: a standing queue above target for an interval is cut at the head", () => {
  const { qk, timers } = boot();
  const dev = qk.addDevice({ name: "eth0" });
  const q = qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, kind: "fq_codel", opt: { ecn: false } });
  // A link sending one packet a millisecond, fed two a millisecond for 200 ms (a 200-packet,
  // 200 ms queue), then exactly at its rate: without AQM the queue would stand for good.
  let out = 0;
  for (let t = 0; t < 5000; t++) {
    for (let j = 0; j < (t < 200 ? 2 : 1); j++) dev.queueXmit(qk.pool.alloc({ len: 1500, flow: 1, hash: 7 }));
    timers.advanceTo(timers.now() + 1e6);
    const skb = dev.dequeue();
    if (skb) {
      out++;
      qk.pool.consume_skb(skb);
    }
  }
  const st = fqCodelStats(q)!;
  // Drops at a growing rate (interval / sqrt(count)) until the sojourn time is under target
  // (5 ms: five packets here) again.
  assert.ok(st.codelDrops > 150, `codel drops ${st.codelDrops}`);
  assert.ok(q.qlen <= 10, `qlen ${q.qlen}`);
  assert.equal(q.drops, st.codelDrops + st.dropOverlimit);
  assert.equal(qk.pool.stats.allocated, out + q.drops + q.qlen);
});

test("mq: one default child per tx queue; net.core.default_qdisc picks the kind", () => {
  const { qk } = boot();
  const dev = qk.addDevice({ name: "veth0", numTxQueues: 2, noQueue: true });
  qk.sched.setDefaultQdisc("fq_codel");
  const mq = qk.sched.tcQdiscAdd("veth0", { parent: TC_H_ROOT, handle: 0x10000, kind: "mq" });
  assert.ok(mq.flags & TCQ_F_MQROOT);
  assert.deepEqual(
    dev.queues.map((t) => [t.qdisc?.id, t.qdisc?.parent]),
    [
      ["fq_codel", TC_H_MAKE(0x10000, 1)],
      ["fq_codel", TC_H_MAKE(0x10000, 2)],
    ],
  );
  assert.throws(
    () => qk.sched.setDefaultQdisc("nope"),
    (e: unknown) => e instanceof BpfError && e.errno === ENOENT,
  );
  // mq only as the root of a multiqueue device.
  qk.addDevice({ name: "eth1" });
  assert.throws(
    () => qk.sched.tcQdiscAdd("eth1", { parent: TC_H_ROOT, kind: "mq" }),
    (e: unknown) => e instanceof TcError && e.errno === EOPNOTSUPP,
  );
  // An unknown kind.
  const extack: { msg?: string } = {};
  assert.throws(
    () => qk.sched.tcQdiscAdd("eth1", { parent: TC_H_ROOT, kind: "bpf_nope" }, extack),
    (e: unknown) => e instanceof TcError && e.errno === ENOENT,
  );
  assert.equal(extack.msg, "Specified qdisc kind is unknown");
});

test("htb: a class under htb takes a child qdisc", () => {
  const { qk } = boot();
  qk.addDevice({ name: "lo", noQueue: true });
  qk.sched.tcQdiscAdd("lo", { parent: TC_H_ROOT, handle: 0x10000, kind: "htb" });
  assert.throws(
    () => qk.sched.tcQdiscAdd("lo", { parent: 0x10001, kind: "pfifo" }),
    (e: unknown) => e instanceof TcError && e.errno === ENOENT,
    "no class 1:1 yet",
  );
  qk.sched.tcClassAdd("lo", { parent: 0x10000, classid: 0x10001, opt: { rate: 75_000 } });
  const child = qk.sched.tcQdiscAdd("lo", { parent: 0x10001, handle: 0x110000, kind: "pfifo" });
  assert.equal(child.parent, 0x10001);
});

test("incompl: a Qdisc_ops without init loads, and registering it fails with EINVAL", () => {
  const { qk, h } = boot();
  const obj = BpfObject.open(join(SIM_OBJ, "qdisc_incompl.bpf.o"));
  obj.load(h);
  const map = obj.maps.find((m) => m.structOps)!;
  assert.throws(
    () => map.attachStructOps(),
    (e: unknown) => e instanceof BpfError && e.errno === EINVAL,
  );
  assert.equal(qk.sched.lookupOps("bpf_qdisc_test"), undefined);
});
