import assert from "node:assert/strict";
import { test } from "node:test";
import { simulate } from "../../../src/sim/sim.js";
import { TCP_CA_Loss } from "../../../src/subsys/tcp/btf.js";
import { BICTCP, cubic_root, tcpCubic } from "../../../src/subsys/tcp/tcp_cubic.js";
import { AckSample, ManualClock, TcpSock } from "../../../src/subsys/tcp/tcp_sock.js";

test("cubic_root: table lookup plus one Newton step stays within 1% of the real cube root", () => {
  for (const a of [1n, 7n, 64n, 1000n, 123456n, 2681735677n * 27n, 2n ** 40n, 2n ** 52n]) {
    const want = Math.cbrt(Number(a));
    const got = cubic_root(a);
    assert.ok(Math.abs(got - want) <= Math.max(1, want * 0.01), `cbrt(${a}) = ${got}, want ~${want}`);
  }
});

test("struct bictcp lives in icsk_ca_priv at Linux's offsets (60 bytes)", () => {
  assert.equal(BICTCP.size, 60);
  assert.equal(BICTCP.curr_rtt, 56);
  const sk = new TcpSock(new ManualClock());
  sk.snd_cwnd = 100;
  sk.snd_nxt = 0xabc;
  sk.tcp_mstamp = 5_000_000;
  const ca = tcpCubic();
  ca.init!(sk);
  const priv = sk.inet_csk_ca();
  assert.equal(priv.getUint32(BICTCP.end_seq, true), 0xabc, "hystart round ends at snd_nxt");
  assert.equal(priv.getUint32(BICTCP.curr_rtt, true), 0xffffffff);
  assert.equal(priv.getUint32(BICTCP.round_start, true), 5_000_000);
  // ssthresh: beta = 717/1024, Wmax recorded
  assert.equal(ca.ssthresh!(sk), Math.floor((100 * 717) / 1024));
  assert.equal(priv.getUint32(BICTCP.last_max_cwnd, true), 100);
  sk.snd_cwnd = 80; // below the last max: fast convergence remembers less
  ca.ssthresh!(sk);
  assert.equal(priv.getUint32(BICTCP.last_max_cwnd, true), Math.floor((80 * (1024 + 717)) / 2048));
  ca.set_state!(sk, TCP_CA_Loss);
  assert.equal(priv.getUint32(BICTCP.last_max_cwnd, true), 0, "Loss resets the epoch state");
});

/** Least-squares fit of cwnd(t) = W + C (t - K)^3 over a grid of K. */
function fitCubic(ts: number[], ws: number[]): { W: number; C: number; K: number; maxRelErr: number } {
  let best = { W: 0, C: 0, K: 0, sse: Number.POSITIVE_INFINITY };
  const span = ts[ts.length - 1]! - ts[0]!;
  for (let K = 0; K <= span; K += 0.02) {
    // linear regression of w on x = (t - K)^3
    const xs = ts.map((t) => (t - ts[0]! - K) ** 3);
    const n = xs.length;
    const mx = xs.reduce((a, b) => a + b, 0) / n;
    const my = ws.reduce((a, b) => a + b, 0) / n;
    let sxy = 0;
    let sxx = 0;
    for (let i = 0; i < n; i++) {
      sxy += (xs[i]! - mx) * (ws[i]! - my);
      sxx += (xs[i]! - mx) ** 2;
    }
    const C = sxy / sxx;
    const W = my - C * mx;
    let sse = 0;
    for (let i = 0; i < n; i++) sse += (W + C * xs[i]! - ws[i]!) ** 2;
    if (sse < best.sse) best = { W, C, K, sse };
  }
  let maxRelErr = 0;
  ts.forEach((t, i) => {
    const pred = best.W + best.C * (t - ts[0]! - best.K) ** 3;
    maxRelErr = Math.max(maxRelErr, Math.abs(pred - ws[i]!) / ws[i]!);
  });
  return { W: best.W, C: best.C, K: best.K, maxRelErr };
}

test("between losses CUBIC's cwnd follows W_max + C(t-K)^3 with C = 0.4 and beta = 0.7", () => {
  // A path where the cubic term, not TCP friendliness, drives growth: 50 Mbit/s, 100 ms RTT, 1 BDP buffer.
  const r = simulate({
    link: { rateBps: 50e6, delayNs: 50e6, buffer: { packets: 417 } },
    durationNs: 40e9,
    flows: [{ cc: "cubic" }],
    sampleNs: 50e6,
  });
  const f = r.trace.flows[0]!;
  const t = r.trace.t_ms;
  // Epoch boundaries: samples where ssthresh changed (a loss was detected).
  const cuts: number[] = [];
  for (let i = 1; i < t.length; i++)
    if (f.ssthresh[i] !== f.ssthresh[i - 1] && f.ssthresh[i - 1]! < 0x7fffffff) cuts.push(i);
  assert.ok(cuts.length >= 3, `expected several loss epochs, got ${cuts.length}`);
  // The epoch between the second and third loss, skipping the recovery itself.
  const a = cuts[1]!;
  const b = cuts[2]!;
  const before = f.cwnd[a - 1]!;
  assert.ok(Math.abs(f.ssthresh[a]! / before - 0.7) < 0.02, `beta: ssthresh ${f.ssthresh[a]} after cwnd ${before}`);
  const ts: number[] = [];
  const ws: number[] = [];
  for (let i = a; i < b - 1; i++) {
    if (f.ca_state[i] !== 0) continue; // only Open: in recovery PRR sets cwnd
    ts.push(t[i]! / 1000);
    ws.push(f.cwnd[i]!);
  }
  const fit = fitCubic(ts, ws);
  assert.ok(Math.abs(fit.C - 0.4) < 0.08, `C = ${fit.C.toFixed(3)}`);
  assert.ok(fit.maxRelErr < 0.03, `max relative error ${fit.maxRelErr.toFixed(4)}`);
  // K = cbrt((W_max - cwnd_start) / C): the plateau is reached when the model predicts.
  const K = Math.cbrt((fit.W - ws[0]!) / 0.4);
  assert.ok(Math.abs(K - fit.K) < 1, `K fitted ${fit.K.toFixed(2)} s, from W_max ${K.toFixed(2)} s`);
});

/** An ack_sample of one packet with this RTT. */
function rtt(us: number): AckSample {
  const s = new AckSample();
  s.pkts_acked = 1;
  s.rtt_us = us;
  return s;
}

test("HyStart ACK train: slow start ends once closely spaced ACKs span delay_min/2, compared as Linux does (u32)", () => {
  const setup = () => {
    const sk = new TcpSock(new ManualClock());
    sk.snd_cwnd = 20; // above hystart_low_window
    sk.snd_ssthresh = 0x7fffffff;
    sk.snd_nxt = 1000;
    sk.snd_una = 1000;
    sk.tcp_mstamp = 5_000_000;
    const ca = tcpCubic();
    ca.init!(sk);
    return { sk, ca };
  };
  const { sk, ca } = setup();
  // delay_min = 60 ms: without pacing the train must span more than 30 ms
  let n = 0;
  while (sk.snd_ssthresh === 0x7fffffff && n < 100) {
    ca.pkts_acked!(sk, rtt(60_000));
    sk.tcp_mstamp += 1000;
    n++;
  }
  assert.equal(n, 32, "the ACK 31 ms into the round (> 30 000 us) ends slow start");
  assert.equal(sk.snd_ssthresh, 20);
  assert.equal(sk.inet_csk_ca().getUint8(BICTCP.found), 1);
  // (s32)(now - round_start) > threshold promotes the s32 to u32: a stamp before round_start is "past" it.
  const b = setup();
  b.ca.pkts_acked!(b.sk, rtt(60_000)); // delay_min = 60 ms
  b.sk.tcp_mstamp -= 500;
  b.ca.pkts_acked!(b.sk, rtt(60_000));
  assert.equal(b.sk.snd_ssthresh, 20);
});
