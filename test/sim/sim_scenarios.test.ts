import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_LINK, Simulation, simulate } from "../../src/sim/sim.js";

test("Reno and CUBIC reach >= 90% utilisation after slow start on the default scenario", () => {
  for (const cc of ["reno", "cubic"]) {
    const r = simulate({ link: DEFAULT_LINK, durationNs: 30e9, flows: [{ cc }], metricsFromNs: 5e9 });
    assert.ok(r.metrics.utilisation >= 0.9, `${cc}: utilisation ${r.metrics.utilisation.toFixed(3)}`);
    assert.ok(r.metrics.flows[0]!.throughputBps >= 0.9 * 12e6, `${cc}: goodput on the wire`);
    assert.equal(r.metrics.flows[0]!.rtos, 0, `${cc}: SACK recovery handles droptail losses without RTO`);
    assert.ok(r.metrics.lossRate > 0, `${cc}: the 45 KB buffer overflows periodically`);
    // The queue never holds more than the 45 KB buffer: 45000/1500 = 30 packets, 60 ms RTT + at most 30 ms.
    assert.ok(r.metrics.p95QueueDelayMs <= 30, `${cc}: p95 queueing delay ${r.metrics.p95QueueDelayMs}`);
  }
});

test("two equal-RTT CUBIC flows share the link: Jain's index >= 0.95 over the last 20 s", () => {
  const r = simulate({
    link: DEFAULT_LINK,
    durationNs: 40e9,
    flows: [{ cc: "cubic" }, { cc: "cubic", startNs: 2e9 }],
    metricsFromNs: 20e9,
    seed: 7,
  });
  assert.ok(
    r.metrics.jain >= 0.95,
    `Jain ${r.metrics.jain.toFixed(3)}: ${r.metrics.flows.map((f) => f.throughputBps)}`,
  );
  assert.ok(r.metrics.utilisation >= 0.9);
});

test("two equal-RTT Reno flows are fair too", () => {
  const r = simulate({
    link: DEFAULT_LINK,
    durationNs: 40e9,
    flows: [{ cc: "reno" }, { cc: "reno", startNs: 3e9 }],
    metricsFromNs: 20e9,
  });
  assert.ok(r.metrics.jain >= 0.95, `Jain ${r.metrics.jain.toFixed(3)}`);
});

test("same seed gives an identical trace; random loss follows the seed", () => {
  const run = (seed: number) =>
    JSON.stringify(
      simulate({
        link: { ...DEFAULT_LINK, lossRate: 0.01 },
        durationNs: 8e9,
        flows: [{ cc: "cubic" }, { cc: "reno", startNs: 1e9 }],
        seed,
      }),
    );
  const a = run(42);
  assert.equal(a, run(42));
  assert.notEqual(a, run(43));
});

test("a finite transfer completes and closes; random loss is reported per flow", () => {
  const r = simulate({
    link: { ...DEFAULT_LINK, lossRate: 0.02 },
    durationNs: 20e9,
    flows: [{ cc: "reno", segments: 2000 }],
    seed: 3,
  });
  const f = r.metrics.flows[0]!;
  assert.ok(f.lossRate > 0.01 && f.lossRate < 0.04, `loss ${f.lossRate}`);
  assert.ok(f.retransmits > 0);
  // all 2000 segments delivered: goodput over the run equals 2000 wire packets
  assert.equal(Math.round((f.throughputBps * 20) / 8 / 1500), 2000);
});

test("a mahimahi trace sets the link rate (one 1500-byte packet per listed ms)", async () => {
  const { parseMahimahi } = await import("../../src/sim/mahimahi.js");
  // 1 packet every ms = 12 Mbit/s; the trace is 4 ms long and repeats.
  const trace = parseMahimahi("1\n2\n3\n4\n");
  const r = simulate({
    link: { ...DEFAULT_LINK, trace },
    durationNs: 20e9,
    flows: [{ cc: "cubic" }],
    metricsFromNs: 5e9,
  });
  assert.ok(Math.abs(r.metrics.rateBps - 12e6) < 1);
  assert.ok(r.metrics.utilisation > 0.9 && r.metrics.utilisation <= 1.0001, `utilisation ${r.metrics.utilisation}`);
});

test("delayed ACKs: about one ACK per two segments, and the link stays full", () => {
  const sim = new Simulation({
    link: DEFAULT_LINK,
    durationNs: 20e9,
    flows: [{ cc: "cubic" }],
    delayedAck: true,
    metricsFromNs: 5e9,
  });
  const r = sim.run();
  const rx = sim.receivers[0]!;
  const ratio = rx.acksSent / rx.uniqueSegments;
  assert.ok(ratio > 0.45 && ratio < 0.65, `ACKs per segment ${ratio.toFixed(3)}`);
  assert.ok(r.metrics.utilisation >= 0.9, `utilisation ${r.metrics.utilisation}`);
  const plain = new Simulation({ link: DEFAULT_LINK, durationNs: 5e9, flows: [{ cc: "cubic" }] });
  plain.run();
  assert.equal(plain.receivers[0]!.acksSent, plain.receivers[0]!.uniqueSegments + plain.receivers[0]!.duplicates);
});

test("traces sample cwnd, ssthresh, srtt, bytes in flight and the queue every 10 ms", () => {
  const r = simulate({ link: DEFAULT_LINK, durationNs: 2e9, flows: [{ cc: "reno" }] });
  assert.equal(r.trace.t_ms.length, 201);
  assert.equal(r.trace.t_ms[1], 10);
  const f = r.trace.flows[0]!;
  const i = 150;
  assert.equal(f.inflight_bytes[i], f.inflight[i]! * 1448);
  assert.ok(f.srtt_ms[i]! >= 60 && f.srtt_ms[i]! <= 95, `srtt ${f.srtt_ms[i]}`);
  assert.ok(r.trace.queue_bytes[i]! === r.trace.queue_pkts[i]! * 1500);
});
