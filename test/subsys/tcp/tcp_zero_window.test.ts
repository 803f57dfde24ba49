import assert from "node:assert/strict";
import { test } from "node:test";
import { SimClock } from "../../../src/sim/clock.js";
import { EventQueue } from "../../../src/sim/event_queue.js";
import { Receiver } from "../../../src/sim/receiver.js";
import { type TcpAck, TcpConn, type TcpSegment } from "../../../src/subsys/tcp/tcp.js";
import { TcpCongControl } from "../../../src/subsys/tcp/tcp_cong.js";
import { tcpReno } from "../../../src/subsys/tcp/tcp_reno.js";
import { tcp_write_timer } from "../../../src/subsys/tcp/tcp_timer.js";

/**
 * A sender facing a closed receive window (tcp_timer.c tcp_probe_timer, tcp_output.c tcp_send_probe0
 * and tcp_write_wakeup, tcp_input.c tcp_ack_probe): it sends nothing past the window, probes with a
 * bare ACK at snd_una - 1 after max(RTO, TCP_RTO_MIN), backs off exponentially while the answers
 * keep the window shut, and sends as soon as one opens it.
 */
function harness(answer: (probeNo: number) => number) {
  const ev = new EventQueue();
  const clock = new SimClock(ev);
  const cong = new TcpCongControl(tcpReno());
  let rtoAt = -1;
  const probes: number[] = [];
  const data: { idx: number; at: number }[] = [];
  let conn!: TcpConn;
  conn = new TcpConn(
    {
      clock,
      xmit: (seg: TcpSegment) => {
        if (seg.probe) {
          probes.push(ev.now);
          assert.equal(seg.idx, conn.una - 1);
          const a: TcpAck = {
            flow: 0,
            ack: conn.una,
            sack: [],
            ece: false,
            tsecr: seg.tsval,
            win: answer(probes.length),
          };
          ev.after(10e6, () => conn.receiveAck(a));
        } else {
          data.push({ idx: seg.idx, at: ev.now });
        }
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
  ev.at(0, () => {
    conn.setPeerWindow(0, 0);
    conn.establish(20_000);
    conn.write(5);
  });
  return { ev, conn, probes, data };
}

test("a zero window: probes after the RTO, backing off, until an answer opens the window", () => {
  // The third probe's answer opens the window for two segments.
  const h = harness((n) => (n < 3 ? 0 : 2 * 1448));
  h.ev.runUntil(0.5e9);
  assert.equal(h.data.length, 0, "nothing is sent into a closed window");
  assert.equal(h.conn.rwndLimitedSince >= 0, true, "rwnd-limited from the start");
  const rto = (h.conn.sk.icsk_rto * 1e9) / 1000; // 20 ms handshake RTT: 20 + 200 ms
  assert.equal(rto, 220e6);
  h.ev.runUntil(1.6e9); // past the third answer, before the data's own RTO
  assert.equal(h.probes.length, 3);
  // The first probe after tcp_probe0_base (the RTO, at least 200 ms), then twice as long each time,
  // counted from the previous answer (tcp_ack_probe re-arms the timer).
  assert.equal(h.probes[0], rto);
  assert.equal(h.probes[1]! - h.probes[0]!, 10e6 + 2 * rto);
  assert.equal(h.probes[2]! - h.probes[1]!, 10e6 + 4 * rto);
  // The answer to the third opens the window: two segments go at once, the backoff is cleared.
  assert.deepEqual(
    h.data.slice(0, 2).map((d) => d.idx),
    [0, 1],
  );
  assert.equal(h.data[0]!.at, h.probes[2]! + 10e6);
  assert.equal(h.conn.sk.icsk_backoff, 0);
});

test("a probe reaching the receiver is answered with an ACK carrying its window, and is no data", () => {
  const ev = new EventQueue();
  const acks: TcpAck[] = [];
  const rx = new Receiver(ev, { flow: 0, rcvbuf: 4096, delayedAck: true }, (a) => acks.push(a));
  rx.establish(100);
  rx.onSegment({
    flow: 0,
    idx: -1,
    bytes: 52,
    ect: false,
    ce: false,
    cwr: false,
    tsval: 1,
    retrans: false,
    empty: true,
    probe: true,
  });
  assert.equal(acks.length, 1);
  assert.equal(acks[0]!.ack, 0);
  assert.equal(acks[0]!.win, 2896);
  assert.equal(rx.uniqueSegments, 0);
});
