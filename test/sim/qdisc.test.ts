import assert from "node:assert/strict";
import { test } from "node:test";
import { BpfCcHost } from "../../src/sim/bpf_cc.js";
import { plotSpec } from "../../src/sim/plot.js";
import { simQdiscOf } from "../../src/sim/qdisc_spec.js";
import { DEFAULT_LINK, type SimQdisc, type SimResult, Simulation, simulate } from "../../src/sim/sim.js";
import { fqStats, SK_PACING_FQ } from "../../src/subsys/qdisc/sch_fq.js";
import { TC_H_ROOT } from "../../src/subsys/qdisc/sch_generic.js";
import { SK_PACING_NEEDED, SK_PACING_NONE } from "../../src/subsys/tcp/btf.js";
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
  // The trace's per-flow drops, bin by bin, are the same drops.
  r.trace.drops.forEach((bins, i) => {
    assert.equal(
      bins.reduce((a, b) => a + b, 0),
      r.metrics.flows[i]!.drops,
    );
  });
}

/** The mean of a flow's per-bin queueing delays from `fromS` on (bins where it sent nothing left out). */
function meanDelay(r: SimResult, flow: number, fromS: number): number {
  const xs = r.trace.queue_delay_ms[flow]!.slice(fromS * 10).filter((x): x is number => x !== null);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
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
  // Over time too: the flow's queueing delay, 100 ms at a time, and the plot's panel of it.
  assert.ok(meanDelay(codel, 0, 2) < 10, `fq_codel mean ${meanDelay(codel, 0, 2)}`);
  assert.ok(meanDelay(fifo, 0, 2) > 100, `fifo mean ${meanDelay(fifo, 0, 2)}`);
  const spec = plotSpec(codel.trace, ["flow 0"], "fq_codel") as { vconcat: { data: { values: { v: number }[] } }[] };
  const panel = spec.vconcat[3]!.data.values.map((x) => x.v);
  assert.deepEqual(
    panel,
    codel.trace.queue_delay_ms[0]!.filter((x) => x !== null),
  );
  assert.ok(codel.metrics.utilisation > 0.9);
});

test("our BPF fq gives CUBIC and BBR equal shares (within 10%) where our BPF fifo does not", () => {
  const fifo = run(bpfObj("sim/qdisc_fifo"), ["cubic", "bbr"]);
  const fq = run(bpfObj("sim/qdisc_fq"), ["cubic", "bbr"]);
  for (const r of [fifo, fq]) assertAccounted(r);
  for (const s of share(fq)) assert.ok(Math.abs(s - 0.5) < 0.05, `bpf fq shares ${share(fq)}`);
  assert.ok(Math.max(...share(fifo).map((s) => Math.abs(s - 0.5))) > 0.1, `bpf fifo shares ${share(fifo)}`);
});

test("pfifo with its default limit drops where the droptail queue does: the same run to the byte", () => {
  const flows = [{ cc: "cubic" }, { cc: "bbr" }];
  const base = { link: DEFAULT_LINK, durationNs: 10e9, flows, metricsFromNs: 2e9 };
  const plain = new BpfCcHost({}, { qdisc: true });
  const droptail = simulate({ ...base, tcp: plain.tcp });
  const host = new BpfCcHost({}, { qdisc: true });
  const pfifo = simulate({ ...base, tcp: host.tcp, qdisc: simQdiscOf(host, "pfifo", DEFAULT_LINK.buffer) });
  assertAccounted(pfifo);
  assert.ok(pfifo.qdisc!.stats.drops > 0, "the buffer overflowed");
  assert.equal(JSON.stringify(pfifo.metrics), JSON.stringify(droptail.metrics));
  assert.equal(JSON.stringify(pfifo.trace), JSON.stringify(droptail.trace));
  assert.equal(pfifo.events, droptail.events);
});

test("pacing as in Linux: over fq every socket is SK_PACING_FQ and fq holds its EDT-stamped packets; over pfifo BBR paces itself", () => {
  const flows = [{ cc: "cubic" }, { cc: "bbr" }];
  const base = { link: DEFAULT_LINK, durationNs: 4e9, flows };
  const fqHost = new BpfCcHost({}, { qdisc: true });
  const fq = new Simulation({ ...base, tcp: fqHost.tcp, qdisc: simQdiscOf(fqHost, "fq", DEFAULT_LINK.buffer) });
  fq.run();
  assert.deepEqual(
    fq.conns.map((c) => c.sk.sk_pacing_status),
    [SK_PACING_FQ, SK_PACING_FQ],
  );
  const root = fqHost.qdisc!.sched.devices.values().next().value!.qdisc!;
  const st = fqStats(root)!;
  // Packets waited for their departure times (throttled flows), woken by the watchdog (once the
  // queue stands, most packets are past their time when they reach its head).
  assert.ok(st.throttled > 10, `throttled ${st.throttled}`);
  assert.ok(root.watchdog.fired > 10, `watchdog ${root.watchdog.fired}`);
  const pfHost = new BpfCcHost({}, { qdisc: true });
  const pf = new Simulation({ ...base, tcp: pfHost.tcp, qdisc: simQdiscOf(pfHost, "pfifo", DEFAULT_LINK.buffer) });
  pf.run();
  assert.deepEqual(
    pf.conns.map((c) => c.sk.sk_pacing_status),
    [SK_PACING_NONE, SK_PACING_NEEDED],
  );
});
