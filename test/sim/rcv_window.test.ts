import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Simulation } from "../../src/sim/sim.js";
import { RcvWindow, VETH_SKB_TRUESIZE } from "../../src/subsys/tcp/tcp_rcv_window.js";
import { repoRoot } from "./helpers.js";

/**
 * Captures of fidelity/tcp_rwnd/capture.py on a 6.18 host: CUBIC over a 12 Mbit/s tbf between two
 * network namespaces, the receiver's listener with SO_RCVBUF 4096, 16384 or 65536 set before listen()
 * (the buffer locked, no autotuning), the sender's TCP_INFO every 10 ms, the receiver's at the end.
 */
interface Capture {
  rcvbuf: number;
  sk_rcvbuf: number;
  receiver: { rcv_wnd: number; rcv_ssthresh: number; rcv_wscale: number };
  syn_window: number;
  snd_wnd_samples: Record<string, number>;
  cwnd_max: number;
  final: {
    cwnd: number;
    snd_wnd: number;
    bytes_acked: number;
    rwnd_limited_us: number;
    busy_time_us: number;
    snd_wscale: number;
    total_rto: number;
  };
  seconds: number;
  repeats?: { seconds: number; bytes_acked: number }[];
}
const host = JSON.parse(readFileSync(join(repoRoot(), "test", "fixtures", "tcp", "host_rwnd_cubic.json"), "utf8")) as {
  captures: Capture[];
};
const capture = (rcvbuf: number) => host.captures.find((c) => c.rcvbuf === rcvbuf)!;
/** The windows the sender saw in most samples, most often first. */
const steadyWindows = (c: Capture) =>
  Object.entries(c.snd_wnd_samples)
    .sort((a, b) => b[1] - a[1])
    .map(([w]) => Number(w));

test("SO_RCVBUF: the buffer, the SYN-ACK's window, the window scale and the steady window as the host's", () => {
  for (const c of host.captures) {
    const w = new RcvWindow(c.rcvbuf, 1448);
    assert.equal(w.rcvbuf, c.sk_rcvbuf, `${c.rcvbuf}: sk_rcvbuf`);
    assert.equal(w.synWindow(), c.syn_window, `${c.rcvbuf}: SYN-ACK window`);
    assert.equal(w.rcvWscale, c.receiver.rcv_wscale, `${c.rcvbuf}: rcv_wscale`);
    assert.equal(w.rcvWscale, c.final.snd_wscale, `${c.rcvbuf}: the sender's snd_wscale`);
    // Established; full-sized segments arrive one at a time and the reader takes each at once.
    w.initBufferSpace();
    w.measureRatio(1448, VETH_SKB_TRUESIZE);
    let nxt = 0;
    let field = 0;
    for (let i = 0; i < 100; i++) {
      nxt += 1448;
      w.grow(1448, VETH_SKB_TRUESIZE, VETH_SKB_TRUESIZE);
      field = w.select(nxt, VETH_SKB_TRUESIZE, 1448).field;
    }
    const seen = steadyWindows(c);
    if (c.rcvbuf === 65536) {
      // The segment still queued as the ACK goes out: the buffer's share less one skb, the host's second
      // most frequent window. Its most frequent is the full share (82944, its final rcv_wnd and
      // rcv_ssthresh): there the skbs it charged were often smaller (condensed in the socket backlog).
      assert.equal(field * 2 ** w.rcvWscale, seen[1], `${c.rcvbuf}: the window of an ACK sent before the read`);
      assert.equal(w.windowClamp, c.receiver.rcv_wnd);
      assert.ok(w.rcvSsthresh <= c.receiver.rcv_ssthresh);
    } else {
      assert.equal(field * 2 ** w.rcvWscale, seen[0], `${c.rcvbuf}: the window ACKs carry`);
      assert.equal(w.rcvWnd, c.receiver.rcv_wnd);
    }
    if (c.rcvbuf === 4096) assert.equal(w.rcvSsthresh, c.receiver.rcv_ssthresh);
  }
});

test("a window never shrinks; one that would is offered whole until the data fills it, and reads reopen it", () => {
  const w = new RcvWindow(16384, 1448);
  w.initBufferSpace();
  w.measureRatio(1448, VETH_SKB_TRUESIZE);
  const first = w.select(0, 0, 1448).field;
  assert.ok(first > 0);
  // Eight segments held out of order (a hole at the front): the free space is below half the buffer,
  // but the right edge already offered stays.
  const held = 8 * VETH_SKB_TRUESIZE;
  const r = w.select(0, held, 1448);
  assert.equal(r.field, first);
  assert.equal(r.quickOff, true);
  // The promised window filled and queued: less than a segment free, a zero window.
  const full = w.select(first, 14 * VETH_SKB_TRUESIZE, 1448);
  assert.equal(full.field, 0);
  // The reader copies it all: the window is worth an update.
  assert.equal(w.readFreedWindow(first, 0, 1448).ack, true);
});

function run(rcvbuf: number | undefined, seconds: number) {
  const sim = new Simulation({
    link: { rateBps: 12e6, delayNs: 42_500, buffer: { bytes: 45_000 }, tbf: { burstBytes: 1540 } },
    wireBytes: 1514,
    delayedAck: true,
    durationNs: seconds * 1e9,
    flows: [{ cc: "cubic" }],
    seed: 1,
    sampleNs: 10e6,
    ...(rcvbuf !== undefined ? { rcvbuf } : {}),
  });
  const r = sim.run();
  const conn = sim.conns[0]!;
  const goodputBps = (r.metrics.flows[0]!.throughputBps * 1448) / 1514;
  return { r, conn, goodputBps, cwndMax: Math.max(...r.trace.flows[0]!.cwnd) };
}

test("a small receive buffer limits the sender as on the host: snd_wnd, cwnd not growing, rwnd-limited time", () => {
  const seconds = 5;
  for (const rcvbuf of [4096, 16384]) {
    const c = capture(rcvbuf);
    const s = run(rcvbuf, seconds);
    assert.equal(s.conn.windowed, true);
    assert.equal(s.conn.sk.snd_wnd, c.final.snd_wnd, `${rcvbuf}: the last window`);
    // Never cwnd-limited: cwnd grows only while it is below twice what was ever in flight.
    assert.ok(s.cwndMax <= c.cwnd_max, `${rcvbuf}: cwnd reached ${s.cwndMax}, the host's ${c.cwnd_max}`);
    assert.ok(s.cwndMax >= Math.min(c.cwnd_max, 10), `${rcvbuf}: cwnd ${s.cwndMax}`);
    const limited = s.conn.rwndLimitedTotalUs() / (seconds * 1e6);
    const hostLimited = c.final.rwnd_limited_us / c.final.busy_time_us;
    // The simulated writer never lets its queue run dry, so it is rwnd-limited at least as long as the
    // host's (whose sender was otherwise waiting for its own writes half the time at 16384).
    assert.ok(limited >= Math.min(hostLimited, 0.95), `${rcvbuf}: rwnd-limited ${limited}, the host ${hostLimited}`);
    assert.equal(s.conn.rtoCount, c.final.total_rto);
  }
});

test("with two segments of window the link is not filled: goodput within the host's captures", () => {
  const c = capture(4096);
  const seconds = 5;
  const s = run(4096, seconds);
  const hostRates = (c.repeats ?? []).map((h) => (h.bytes_acked * 8) / h.seconds);
  const lo = Math.min(...hostRates);
  const hi = Math.max(...hostRates);
  assert.ok(s.goodputBps < 11.5e6, `goodput ${s.goodputBps}`);
  assert.ok(s.goodputBps >= lo * 0.8 && s.goodputBps <= hi * 1.2, `goodput ${s.goodputBps}, host ${lo}..${hi}`);
});

test("without --rcvbuf ACKs carry no window and the sender is never rwnd-limited", () => {
  const s = run(undefined, 1);
  assert.equal(s.conn.windowed, false);
  assert.equal(s.conn.sk.snd_wnd, 0xffffffff);
  assert.equal(s.conn.rwndLimitedTotalUs(), 0);
});
