import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Simulation } from "../../src/sim/sim.js";
import type { TcpConn } from "../../src/subsys/tcp/tcp.js";
import { TCPCB_LOST, TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS } from "../../src/subsys/tcp/tcp_skb.js";

/** The scoreboard counters in tcp_sock agree with the retransmission queue (tcp_verify_left_out and more). */
function checkScoreboard(c: TcpConn): void {
  const sk = c.sk;
  let sacked = 0;
  let lost = 0;
  let retrans = 0;
  c.rtx.forEach((skb, i) => {
    assert.equal(skb.idx, c.una + i, "the queue is contiguous from snd_una");
    if (skb.sacked & TCPCB_SACKED_ACKED) sacked++;
    if (skb.sacked & TCPCB_LOST) lost++;
    if (skb.sacked & TCPCB_SACKED_RETRANS) retrans++;
    assert.ok(!(skb.sacked & TCPCB_SACKED_ACKED && skb.sacked & TCPCB_LOST), "sacked and lost");
  });
  assert.equal(sk.packets_out, c.rtx.length, "packets_out");
  assert.equal(sk.sacked_out, sacked, "sacked_out");
  assert.equal(sk.lost_out, lost, "lost_out");
  assert.equal(sk.retrans_out, retrans, "retrans_out");
  assert.ok(sk.sacked_out + sk.lost_out <= sk.packets_out, "left_out <= packets_out");
  assert.ok(c.inFlight() >= 0);
  assert.ok(sk.snd_cwnd >= 1 && sk.snd_cwnd < 1e6, `cwnd ${sk.snd_cwnd}`);
  assert.equal(sk.snd_una, c.seqOf(c.una));
  assert.equal(sk.snd_nxt, c.seqOf(c.nxt));
}

test("random paths, losses and flow mixes keep the scoreboard consistent and finish finite transfers", () => {
  fc.assert(
    fc.property(
      fc.record({
        rateMbit: fc.integer({ min: 2, max: 50 }),
        delayMs: fc.integer({ min: 1, max: 80 }),
        bufferPkts: fc.integer({ min: 2, max: 200 }),
        loss: fc.constantFrom(0, 0.001, 0.01, 0.05),
        ecn: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
        flows: fc.array(
          fc.record({
            cc: fc.constantFrom("reno", "cubic"),
            start: fc.integer({ min: 0, max: 2000 }),
            segments: fc.constantFrom(600, Number.POSITIVE_INFINITY),
          }),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        seed: fc.integer({ min: 1, max: 1000 }),
        delack: fc.boolean(),
      }),
      (p) => {
        const sim = new Simulation({
          link: {
            rateBps: p.rateMbit * 1e6,
            delayNs: p.delayMs * 1e6,
            buffer: { packets: p.bufferPkts },
            lossRate: p.loss,
            ecnThreshold: p.ecn === undefined ? undefined : { packets: p.ecn },
          },
          durationNs: 30e9,
          flows: p.flows.map((f) => ({ cc: f.cc, startNs: f.start * 1e6, segments: f.segments })),
          seed: p.seed,
          ecn: p.ecn !== undefined,
          delayedAck: p.delack,
          sampleNs: 100e6,
        });
        for (let t = 50e6; t < 30e9; t += 50e6) sim.ev.at(t, () => sim.conns.forEach(checkScoreboard));
        const r = sim.run();
        // Finite transfers must finish unless a bulk flow shares the link (droptail can lock a flow out).
        const bulk = p.flows.some((f) => !Number.isFinite(f.segments));
        sim.conns.forEach((c, i) => {
          if (!bulk) assert.ok(c.done(), `flow ${i} finished (${c.una}/600)`);
        });
        assert.ok(r.metrics.utilisation <= 1.0001);
      },
    ),
    { numRuns: 30, seed: 4242 },
  );
});
