import assert from "node:assert/strict";
import { test } from "node:test";
import { EventQueue } from "../../src/sim/event_queue.js";
import { Bottleneck } from "../../src/sim/link.js";
import { Prng } from "../../src/sim/prng.js";
import type { TcpSegment } from "../../src/subsys/tcp/tcp.js";

const seg = (idx: number, bytes = 1514): TcpSegment => ({
  flow: 0,
  idx,
  bytes,
  ect: false,
  ce: false,
  cwr: false,
  tsval: 0,
  retrans: false,
});

/** 12 Mbit/s, 10 us one way, tbf with a one-frame bucket over a veth, 45 000-byte bfifo. */
function tbfLink() {
  const ev = new EventQueue();
  const out: [number, number][] = [];
  const link = new Bottleneck(
    ev,
    { rateBps: 12e6, delayNs: 10_000, buffer: { bytes: 45_000 }, tbf: { burstBytes: 1540 } },
    new Prng(1),
    (s) => out.push([s.idx, ev.now]),
  );
  return { ev, link, out };
}

test("tbf: a frame meeting a full bucket leaves at once; a backlog leaves one frame time apart", () => {
  const { ev, link, out } = tbfLink();
  const frameNs = Math.round((1514 * 8 * 1e9) / 12e6); // 1009333 ns at 12 Mbit/s
  link.send(seg(0));
  link.send(seg(1));
  link.send(seg(2));
  ev.runUntil(10e6);
  // The first frame only crosses the wire's delay; the bucket (1540 bytes) then holds 26 bytes of
  // tokens, so the second waits for the other 1488 bytes' worth, the third for a whole frame's.
  const credit = Math.round((1540 * 8 * 1e9) / 12e6) - frameNs;
  assert.deepEqual(out, [
    [0, 10_000],
    [1, 10_000 + frameNs - credit],
    [2, 10_000 + 2 * frameNs - credit],
  ]);
  // Idle for longer than the bucket's depth: full again, but never more than burst.
  link.send(seg(3));
  ev.runUntil(20e6);
  assert.deepEqual(out[3], [3, 10e6 + 10_000]);
});

test("tbf: the bfifo limit counts the frames waiting for tokens (29 of 1514 bytes in 45 000)", () => {
  const { ev, link, out } = tbfLink();
  for (let i = 0; i < 40; i++) link.send(seg(i));
  ev.runUntil(1e9);
  // The first leaves at once (the bucket was full), 29 wait, the other ten are dropped.
  assert.equal(out.length, 30);
  assert.equal(link.counters(0).dropped, 10);
  assert.deepEqual(
    out.map(([i]) => i),
    [...Array(30).keys()],
  );
});

test("tbf: a frame longer than the burst is dropped at enqueue, as tbf's max_size drops it", () => {
  const { ev, link, out } = tbfLink();
  link.send(seg(0, 1600));
  link.send(seg(1));
  ev.runUntil(1e9);
  assert.deepEqual(
    out.map(([i]) => i),
    [1],
  );
  assert.equal(link.counters(0).dropped, 1);
});
