import assert from "node:assert/strict";
import { test } from "node:test";
import { SimClock } from "../../../src/sim/clock.js";
import { EventQueue } from "../../../src/sim/event_queue.js";
import { Receiver } from "../../../src/sim/receiver.js";
import {
  CA_EVENT_COMPLETE_CWR,
  CA_EVENT_CWND_RESTART,
  CA_EVENT_LOSS,
  CA_EVENT_TX_START,
  TCP_CA_Disorder,
  TCP_CA_Loss,
  TCP_CA_Open,
  TCP_CA_Recovery,
} from "../../../src/subsys/tcp/btf.js";
import { TcpConn, type TcpSegment } from "../../../src/subsys/tcp/tcp.js";
import { TcpCongControl } from "../../../src/subsys/tcp/tcp_cong.js";
import { tcpCubic } from "../../../src/subsys/tcp/tcp_cubic.js";
import { tcpReno } from "../../../src/subsys/tcp/tcp_reno.js";
import { tcp_write_timer } from "../../../src/subsys/tcp/tcp_timer.js";
import { count, type SpyCall, spyCc } from "./helpers.js";

/** One sender and one receiver 10 ms apart, with a scripted network that can drop or delay transmissions. */
function harness(fate: (seg: TcpSegment, nth: number) => "drop" | number | undefined, segments = 200) {
  const ev = new EventQueue();
  const clock = new SimClock(ev);
  const cong = new TcpCongControl(tcpReno());
  const calls: SpyCall[] = [];
  cong.tcp_register_congestion_control(spyCc(tcpCubic(), calls, "spy"));
  let rtoAt = -1;
  const sent = new Map<number, number>();
  let conn!: TcpConn;
  const rx = new Receiver(ev, { flow: 0 }, (a) => ev.after(10e6, () => conn.receiveAck(a)));
  conn = new TcpConn(
    {
      clock,
      xmit: (seg) => {
        const nth = (sent.get(seg.idx) ?? 0) + 1;
        sent.set(seg.idx, nth);
        const f = fate(seg, nth);
        if (f === "drop") return;
        ev.after(10e6 + (f ?? 0), () => rx.onSegment(seg));
      },
      setRtoTimer: (_c, delay) => {
        const at = delay < 0 ? -1 : ev.now + delay;
        rtoAt = at;
        if (at >= 0)
          ev.at(at, () => {
            if (rtoAt >= 0 && rtoAt <= ev.now) {
              rtoAt = -1;
              tcp_write_timer(conn);
            }
          });
      },
    },
    cong,
    { flow: 0, segments: 0 },
  );
  cong.tcp_set_congestion_control(conn.sk, "spy");
  ev.at(0, () => {
    conn.establish();
    conn.write(segments);
  });
  const run = (ns: number) => {
    ev.runUntil(ns);
    return conn;
  };
  return { calls, run, conn, rx, ev };
}

const states = (calls: SpyCall[]) => calls.filter((c) => c.op === "set_state").map((c) => c.arg);

test("init once at establishment, TX_START on the first transmission, release once on close", () => {
  const h = harness(() => undefined);
  h.run(5e9);
  assert.equal(h.calls[0]!.op, "init");
  assert.deepEqual(h.calls[1], { op: "cwnd_event", arg: CA_EVENT_TX_START, sk: "flow 0" });
  assert.equal(count(h.calls, "init"), 1);
  assert.equal(h.conn.done(), true);
  assert.equal(count(h.calls, "release"), 0);
  h.conn.close();
  h.conn.close();
  assert.equal(count(h.calls, "release"), 1);
  assert.deepEqual(states(h.calls), [], "no loss, no state change");
  assert.ok(count(h.calls, "cong_avoid") > 0);
  assert.ok(
    h.calls.some((c) => c.op === "pkts_acked" && (c.arg ?? -1) >= 20_000),
    "RTT samples of ~20 ms",
  );
});

test("a single loss: Disorder, Recovery (ssthresh once, fast retransmit), then Open with COMPLETE_CWR", () => {
  const h = harness((seg, nth) => (seg.idx === 30 && nth === 1 ? "drop" : undefined));
  const c = h.run(5e9);
  assert.deepEqual(states(h.calls), [TCP_CA_Disorder, TCP_CA_Recovery, TCP_CA_Open]);
  assert.equal(count(h.calls, "ssthresh"), 1);
  assert.equal(count(h.calls, "cwnd_event", CA_EVENT_COMPLETE_CWR), 1);
  assert.equal(c.retransmits, 1);
  assert.equal(c.rtoCount, 0);
  assert.equal(c.done(), true);
  // no cong_avoid while in Recovery: PRR owns cwnd
  const rec = h.calls.findIndex((x) => x.op === "set_state" && x.arg === TCP_CA_Recovery);
  const open = h.calls.findIndex((x, i) => i > rec && x.op === "set_state" && x.arg === TCP_CA_Open);
  assert.equal(h.calls.slice(rec, open).filter((x) => x.op === "cong_avoid").length, 0);
});

test("a tail loss: the loss probe draws a SACK and RACK marks the rest lost (Recovery, no RTO)", () => {
  // Everything after segment 40 is lost once; the probe (a second transmission) gets through.
  const h = harness((seg, nth) => (seg.idx >= 40 && nth === 1 ? "drop" : undefined), 80);
  const c = h.run(10e9);
  assert.equal(c.lossProbes, 1);
  assert.equal(c.rtoCount, 0);
  const st = states(h.calls);
  // the probe's SACK shows everything sent before it overdue by more than RTT + min_rtt/4
  assert.deepEqual(st, [TCP_CA_Recovery, TCP_CA_Open]);
  assert.equal(c.done(), true);
});

test("fewer than three segments after a loss: RACK's reordering timer (min_rtt/4) starts recovery", () => {
  const h = harness((seg, nth) => (seg.idx === 77 && nth === 1 ? "drop" : undefined), 80);
  const c = h.run(10e9);
  assert.equal(c.rtoCount, 0);
  assert.equal(c.lossProbes, 0, "the REO timer fires before a probe would");
  assert.deepEqual(states(h.calls), [TCP_CA_Disorder, TCP_CA_Recovery, TCP_CA_Open]);
  assert.equal(c.retransmits, 1);
  assert.equal(c.done(), true);
});

test("a tail blackout: the probe is lost too, the RTO enters Loss (CA_EVENT_LOSS after ssthresh), then Open", () => {
  // Segments 40.. are lost once, and the probe (segment 79 again) as well.
  const h = harness(
    (seg, nth) => ((seg.idx >= 40 && nth === 1) || (seg.idx === 79 && nth === 2) ? "drop" : undefined),
    80,
  );
  const c = h.run(10e9);
  assert.equal(c.lossProbes, 1);
  assert.equal(c.rtoCount, 1);
  const st = states(h.calls);
  assert.deepEqual(st, [TCP_CA_Loss, TCP_CA_Open]);
  const loss = h.calls.findIndex((x) => x.op === "cwnd_event" && x.arg === CA_EVENT_LOSS);
  assert.ok(loss > 0);
  assert.equal(h.calls[loss - 1]!.op, "ssthresh", "ssthresh is asked right before CA_EVENT_LOSS");
  assert.equal(c.done(), true);
});

test("a reordered segment triggers a spurious fast retransmit; the D-SACK undoes it via undo_cwnd", () => {
  // Segment 30 arrives 15 ms late: three later segments are SACKed first.
  const h = harness((seg, nth) => (seg.idx === 30 && nth === 1 ? 15e6 : undefined));
  const c = h.run(5e9);
  const st = states(h.calls);
  assert.ok(st.includes(TCP_CA_Recovery), `states ${st}`);
  assert.equal(count(h.calls, "undo_cwnd"), 1);
  assert.equal(c.undos, 1);
  assert.equal(st[st.length - 1], TCP_CA_Open);
  assert.ok(h.rx.duplicates >= 1);
});

test("a delay spike longer than the RTO: the spurious RTO is undone (timestamps / D-SACK)", () => {
  // Every first transmission during [60, 300) ms is held until 1.2 s, as a stalled link would.
  let now = () => 0;
  const h = harness((_seg, nth) => {
    const t = now();
    return nth === 1 && t >= 60e6 && t < 300e6 ? 1.2e9 - t : undefined;
  }, 400);
  now = () => h.ev.now;
  const c = h.run(10e9);
  assert.ok(c.rtoCount >= 1, "the RTO fired");
  const st = states(h.calls);
  assert.ok(st.includes(TCP_CA_Loss), `states ${st}`);
  assert.ok(count(h.calls, "undo_cwnd") >= 1, "the reduction was undone");
  assert.equal(st[st.length - 1], TCP_CA_Open);
  assert.equal(c.done(), true);
  assert.ok(c.undos >= 1);
});

test("writing again after idling longer than the RTO: CWND_RESTART shrinks cwnd, then TX_START", () => {
  const h = harness(() => undefined, 200);
  const c = h.run(2e9);
  assert.equal(c.done(), true);
  const cwndBefore = c.sk.snd_cwnd;
  assert.ok(cwndBefore > 10);
  const n = h.calls.length;
  h.ev.at(3e9, () => c.write(50));
  h.run(5e9);
  const after = h.calls.slice(n).filter((x) => x.op === "cwnd_event");
  assert.deepEqual(
    after.slice(0, 2).map((x) => x.arg),
    [CA_EVENT_CWND_RESTART, CA_EVENT_TX_START],
  );
  assert.ok(c.sk.snd_ssthresh >= (cwndBefore >>> 1) + (cwndBefore >>> 2), "ssthresh keeps 3/4 of the old cwnd");
  assert.equal(c.done(), true);
});
