import assert from "node:assert/strict";
import { test } from "node:test";
import { BpfCcHost } from "../../src/sim/bpf_cc.js";
import { DEFAULT_LINK, type SimQdisc, type SimResult, simulate } from "../../src/sim/sim.js";
import { TC_H_ROOT } from "../../src/subsys/qdisc/sch_generic.js";
import { bpfObj } from "./helpers.js";

/** A 10 s run of `ccs` (one flow each) through a root qdisc of `kind` on the bottleneck. */
function run(kindOrObj: string, ccs: string[], opt?: Record<string, number>): SimResult {
  const host = new BpfCcHost({}, { qdisc: true });
  const qk = host.qdisc!;
  const kind = kindOrObj.endsWith(".o") ? host.attachQdisc(kindOrObj) : kindOrObj;
  const qdisc: SimQdisc = {
    qk,
    attach: (dev) => {
      qk.sched.tcQdiscAdd(dev.name, { parent: TC_H_ROOT, handle: 0x10000, kind, opt });
    },
  };
  return simulate({
    link: DEFAULT_LINK,
    durationNs: 10e9,
    flows: ccs.map((cc) => ({ cc })),
    metricsFromNs: 2e9,
    tcp: host.tcp,
    qdisc,
  });
}

/** Every skb the kernel allocated was freed once, or is still queued (or on the wire). */
function assertAccounted(r: SimResult): void {
  const q = r.qdisc!;
  assert.equal(q.skbs.doubleFree, 0);
  assert.equal(q.skbs.allocated - q.skbs.freed, q.skbs.live);
  // What is still live is the backlog, plus at most the one packet being transmitted.
  assert.ok(q.skbs.live - q.stats.qlen <= 1 && q.skbs.live >= q.stats.qlen, JSON.stringify(q));
  // The qdisc's counters add up: packets in = sent + dropped + still queued (+ on the wire).
  const offered = r.metrics.flows.reduce((a, f) => a + f.packetsSent, 0);
  assert.ok(Math.abs(offered - (q.stats.packets + q.stats.drops + q.stats.qlen)) <= 1, JSON.stringify(q));
  const flowDrops = r.metrics.flows.reduce((a, f) => a + (f.drops ?? 0), 0);
  assert.equal(flowDrops, q.stats.drops);
}

const share = (r: SimResult) => r.metrics.flows.map((f) => f.throughputBps / r.metrics.throughputBps);

test("fq shares the link equally between CUBIC and BBR where a FIFO lets BBR take most of it", () => {
  const fifo = run("pfifo", ["cubic", "bbr"], { limit: 30 });
  const fq = run("fq", ["cubic", "bbr"]);
  for (const r of [fifo, fq]) assertAccounted(r);
  const [c, b] = share(fq);
  assert.ok(Math.abs(c! - 0.5) < 0.05 && Math.abs(b! - 0.5) < 0.05, `fq shares ${share(fq)}`);
  assert.ok(share(fifo)[1]! > 0.6, `fifo shares ${share(fifo)}`);
  assert.ok(fq.metrics.utilisation > 0.95);
});

test("fq_codel keeps the queueing delay near its 5 ms target where a deep FIFO fills up", () => {
  const fifo = run("pfifo", ["cubic"], { limit: 1000 });
  const codel = run("fq_codel", ["cubic"]);
  for (const r of [fifo, codel]) assertAccounted(r);
  assert.ok(codel.metrics.p95QueueDelayMs < 20, `fq_codel p95 ${codel.metrics.p95QueueDelayMs}`);
  assert.ok(fifo.metrics.p95QueueDelayMs > 100, `fifo p95 ${fifo.metrics.p95QueueDelayMs}`);
  assert.ok(codel.metrics.utilisation > 0.9);
});

test("our BPF fq gives CUBIC and BBR equal shares (within 10%) where our BPF fifo does not", () => {
  const fifo = run(bpfObj("sim/qdisc_fifo"), ["cubic", "bbr"]);
  const fq = run(bpfObj("sim/qdisc_fq"), ["cubic", "bbr"]);
  for (const r of [fifo, fq]) assertAccounted(r);
  for (const s of share(fq)) assert.ok(Math.abs(s - 0.5) < 0.05, `bpf fq shares ${share(fq)}`);
  assert.ok(Math.max(...share(fifo).map((s) => Math.abs(s - 0.5))) > 0.1, `bpf fifo shares ${share(fifo)}`);
});
