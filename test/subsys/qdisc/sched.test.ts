import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Kernel } from "../../../src/kernel/kernel.js";
import { BpfObject } from "../../../src/loader/object.js";
import { type KernelHrtimers, QdiscKernel, qdiscSubsystem } from "../../../src/subsys/qdisc/qdisc_init.js";
import { TcError } from "../../../src/subsys/qdisc/sch_api.js";
import { fqStats, SK_PACING_FQ } from "../../../src/subsys/qdisc/sch_fq.js";
import { fqCodelStats } from "../../../src/subsys/qdisc/sch_fq_codel.js";
import {
  NET_XMIT_DROP,
  NET_XMIT_SUCCESS,
  qdisc_reset,
  TC_H_MAKE,
  TC_H_ROOT,
  TCQ_F_MQROOT,
} from "../../../src/subsys/qdisc/sch_generic.js";
import { TcpKernel, tcpSubsystem } from "../../../src/subsys/tcp/tcp_init.js";
import { ManualClock, TcpSock } from "../../../src/subsys/tcp/tcp_sock.js";
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

test("fq: eight packets take the fast path, then two flows share round robin; EDT on the watchdog", () => {
  const { qk, timers } = boot();
  const dev = qk.addDevice({ name: "eth0" });
  const q = qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, kind: "fq", opt: { initial_quantum: 1514 } });
  for (let i = 0; i < 12; i++) dev.queueXmit(qk.pool.alloc({ len: 1500, flow: 1, hash: 11 }));
  for (let i = 0; i < 12; i++) dev.queueXmit(qk.pool.alloc({ len: 1500, flow: 2, hash: 22 }));
  // While no flow is eligible, packets due now go to the fast path's FIFO (at most 8 of them);
  // then a flow sends while its credit is positive: 1514 bytes of credit, then 2 * 1514 a turn,
  // are two 1500-byte packets each time.
  const order = drain(qk, dev);
  assert.equal(fqStats(q)!.fastpathPackets, 8);
  assert.deepEqual(order, [...Array(8).fill(1), 1, 1, 2, 2, 1, 1, ...Array(10).fill(2)]);
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

test("fq bands: priorities map to three bands sharing the link 9:3:1, each with its own packet limit", () => {
  const { qk, timers } = boot();
  const dev = qk.addDevice({ name: "eth0" });
  const q = qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, kind: "fq", opt: { flow_limit: 10000 } });
  // The fast path's eight first (nothing else queued yet), then three backlogged flows:
  // TC_PRIO_CONTROL (7) is band 0, TC_PRIO_BESTEFFORT (0) band 1, TC_PRIO_BULK (2) band 2.
  for (let i = 0; i < 8; i++) dev.queueXmit(qk.pool.alloc({ len: 1500, flow: 9, hash: 99 }));
  for (let i = 0; i < 800; i++)
    for (const [flow, priority] of [
      [0, 7],
      [1, 0],
      [2, 2],
    ] as const)
      dev.queueXmit(qk.pool.alloc({ len: 1500, flow, hash: 100 + flow, priority }));
  const order = drain(qk, dev).slice(8);
  const runs: [number, number][] = [];
  for (const f of order) {
    if (runs.at(-1)?.[0] === f) runs.at(-1)![1]++;
    else runs.push([f, 1]);
  }
  // A new flow joins the new-flows list of its previous packet's band (band 0 for a new flow: the
  // kernel adds it before setting f->band), so all three start in band 0, 11 packets each (the
  // initial quantum, 10 * 1514 bytes); then band 0 spends the rest of its 589824 bytes of credit,
  // and each round the bands send 589824, 196608 and 65536 bytes (9:3:1), a packet over each.
  assert.deepEqual(runs.slice(0, 9), [
    [0, 11],
    [1, 11],
    [2, 11],
    [0, 361],
    [1, 132],
    [2, 44],
    [0, 393],
    [1, 131],
    [2, 44],
  ]);
  // Each band holds at most `limit` packets: band 2 full, band 1 still takes packets.
  assert.equal(q.ops.change!(q, { limit: 3 }, {}), 0);
  // (Departing a little later, so they skip the fast path, which counts in no band.)
  const tstamp = BigInt(timers.now() + 1e6);
  const rc = [2, 2, 2, 2, 0].map((priority) =>
    dev.queueXmit(qk.pool.alloc({ len: 100, flow: 5, hash: 55, priority, tstamp })),
  );
  assert.deepEqual(rc, [0, 0, 0, NET_XMIT_DROP, 0]);
  assert.deepEqual(fqStats(q)!.bandDrops, [0, 0, 1]);
  timers.advanceTo(timers.now() + 1e6);
  assert.deepEqual(drain(qk, dev), [5, 5, 5, 5]);
  assert.equal(qk.pool.stats.live, 0);
});

test("fq maxrate: packets without a departure time are paced by fq, a quantum at a time past the credit", () => {
  const { qk, timers } = boot();
  const dev = qk.addDevice({ name: "eth0" });
  const maxrate = 150_000; // bytes/s
  const q = qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, kind: "fq", opt: { maxrate, flow_limit: 1000 } });
  for (let i = 0; i < 200; i++) dev.queueXmit(qk.pool.alloc({ len: 1500, flow: 1, hash: 11 }));
  assert.equal(fqStats(q)!.fastpathPackets, 0, "no fast path under maxrate");
  const t0 = timers.now();
  let sent = 0;
  const times: number[] = [];
  while (timers.now() - t0 < 1e9) {
    for (let skb = dev.dequeue(); skb; skb = dev.dequeue()) {
      sent += skb.len;
      times.push(timers.now() - t0);
      qk.pool.consume_skb(skb);
    }
    assert.ok(q.watchdog.expires > timers.now(), "throttled until the watchdog");
    timers.advanceTo(q.watchdog.expires);
  }
  // The initial quantum (10 * 1514 bytes) goes at once; then 2 * 1514 bytes every
  // 2 * 1514 / maxrate seconds.
  assert.deepEqual(times.slice(0, 11), Array(11).fill(0));
  assert.equal(times[11], Math.floor((2 * 1514 * 1e9) / maxrate));
  const expected = 10 * 1514 + maxrate;
  assert.ok(Math.abs(sent - expected) <= 2 * 1514, `sent ${sent}, expected about ${expected}`);
  qdisc_reset(q);
  assert.equal(qk.pool.stats.live, 0);
});

test("fq paces a socket's unstamped packets at its sk_pacing_rate, and marks it SK_PACING_FQ", () => {
  const qk = new QdiscKernel();
  const tcp = new TcpKernel();
  new Kernel({ subsystems: [tcpSubsystem(tcp), qdiscSubsystem(qk)] });
  const timers = qk.timers as KernelHrtimers;
  const sk = new TcpSock(new ManualClock(), "sk", tcp.alloc);
  const rate = 150_000; // bytes/s
  sk.sk_pacing_rate = rate;
  const dev = qk.addDevice({ name: "eth0" });
  const q = qk.sched.tcQdiscAdd("eth0", { parent: TC_H_ROOT, kind: "fq", opt: { flow_limit: 1000 } });
  for (let i = 0; i < 300; i++) dev.queueXmit(qk.pool.alloc({ len: 1500, flow: 1, sk: sk.addr }));
  assert.equal(sk.sk_pacing_status, SK_PACING_FQ);
  const t0 = timers.now();
  const times: number[] = [];
  while (timers.now() - t0 < 1e9) {
    for (let skb = dev.dequeue(); skb; skb = dev.dequeue()) {
      times.push(timers.now() - t0);
      qk.pool.consume_skb(skb);
    }
    timers.advanceTo(q.watchdog.expires);
  }
  // The fast path's 8 and the flow's initial quantum go at once, then a quantum (2 * 1514 bytes)
  // every quantum / sk_pacing_rate.
  assert.equal(fqStats(q)!.fastpathPackets, 8);
  assert.deepEqual(times.slice(0, 19), Array(19).fill(0));
  assert.equal(times[19], Math.floor((2 * 1514 * 1e9) / rate));
  // A slower socket rate takes effect at the next packet.
  sk.sk_pacing_rate = rate / 2;
  const before = times.length;
  const t1 = timers.now();
  while (timers.now() - t1 < 1e9) {
    for (let skb = dev.dequeue(); skb; skb = dev.dequeue()) {
      times.push(timers.now() - t0);
      qk.pool.consume_skb(skb);
    }
    timers.advanceTo(q.watchdog.expires);
  }
  const perSecond = (times.length - before) * 1500;
  assert.ok(Math.abs(perSecond - rate / 2) <= 2 * 1514, `${perSecond} bytes in the second second`);
  qdisc_reset(q);
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
