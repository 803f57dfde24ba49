import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { SimClock } from "../../src/sim/clock.js";
import { EventQueue } from "../../src/sim/event_queue.js";
import { MahimahiCursor, mahimahiRateBps, parseMahimahi } from "../../src/sim/mahimahi.js";
import { jainIndex, percentile } from "../../src/sim/metrics.js";
import { Prng } from "../../src/sim/prng.js";
import { parseDuration, parseRate, parseSize } from "../../src/sim/units.js";

test("events run in time order, ties in scheduling order", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), (times) => {
      const q = new EventQueue();
      const ran: [number, number][] = [];
      for (const [i, t] of times.entries()) {
        q.at(t, () => {
          ran.push([q.now, i]);
        });
      }
      while (q.step());
      const want = times.map((t, i) => [t, i] as [number, number]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      assert.deepEqual(ran, want);
    }),
  );
});

test("an event scheduled in the past runs now; runUntil stops at the horizon", () => {
  const q = new EventQueue();
  const seen: number[] = [];
  q.at(10, () => q.at(5, () => seen.push(q.now)));
  q.at(100, () => seen.push(-1));
  q.runUntil(50);
  assert.deepEqual(seen, [10]);
  assert.equal(q.now, 50);
  assert.equal(q.size, 1);
});

test("the kernel clock: jiffies at CONFIG_HZ from INITIAL_JIFFIES, wrapping 32 bits five minutes after boot", () => {
  const q = new EventQueue();
  const c = new SimClock(q, 250);
  const j0 = c.jiffies();
  q.runUntil(4e6); // one jiffy at HZ=250
  assert.equal(c.jiffies() - j0, 1);
  q.runUntil(300e9);
  assert.ok(c.jiffies() >>> 0 < 1000, "tcp_jiffies32 wrapped");
  assert.throws(() => new SimClock(q, 0), /CONFIG_HZ/);
  const c300 = new SimClock(new EventQueue(), 300);
  assert.equal(c300.jiffies() - (c300.jiffies() >>> 0) >= 0, true);
});

test("the PRNG is a pure function of its seed", () => {
  const a = new Prng(5);
  const b = new Prng(5);
  const xs = Array.from({ length: 100 }, () => a.u32());
  assert.deepEqual(
    xs,
    Array.from({ length: 100 }, () => b.u32()),
  );
  assert.notDeepEqual(
    xs,
    Array.from({ length: 100 }, () => new Prng(6).u32()),
  );
  const mean = Array.from({ length: 10000 }, () => a.next()).reduce((s, x) => s + x, 0) / 10000;
  assert.ok(Math.abs(mean - 0.5) < 0.02);
});

test("units: rates, durations and buffer sizes", () => {
  assert.equal(parseRate("12mbit"), 12e6);
  assert.equal(parseRate("1.5gbit"), 1.5e9);
  assert.equal(parseRate("800kbit"), 8e5);
  assert.equal(parseDuration("30ms"), 30e6);
  assert.equal(parseDuration("30s"), 30e9);
  assert.equal(parseDuration("2"), 2e9);
  assert.deepEqual(parseSize("45kb"), { bytes: 45000 });
  assert.deepEqual(parseSize("30pkts"), { packets: 30 });
  assert.deepEqual(parseSize("1mb"), { bytes: 1e6 });
  assert.throws(() => parseRate("12 furlongs"), /invalid rate unit/);
  assert.throws(() => parseDuration("soon"), /invalid duration/);
});

test("mahimahi traces: parsing, average rate and repeating delivery opportunities", () => {
  const t = parseMahimahi("# comment\n0\n0\n5\n10\n");
  assert.equal(t.periodMs, 10);
  assert.equal(mahimahiRateBps(t), (4 * 1500 * 8 * 1000) / 10);
  const c = new MahimahiCursor(t);
  const got: number[] = [];
  for (let i = 0; i < 6; i++) {
    got.push(c.peek(0) / 1e6);
    c.take();
  }
  assert.deepEqual(got, [0, 0, 5, 10, 10, 10]);
  assert.throws(() => parseMahimahi("5\n3\n"), /backwards/);
  assert.throws(() => parseMahimahi("x"), /not a ms timestamp/);
});

test("Jain's index and percentiles", () => {
  assert.equal(jainIndex([5, 5, 5]), 1);
  assert.equal(jainIndex([1, 0]), 0.5);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95), 10);
  assert.equal(percentile([3, 1, 2], 50), 2);
});
