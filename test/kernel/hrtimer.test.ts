import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CLOCK_MONOTONIC,
  HRTIMER_HANG_DELAY_NS,
  HRTIMER_MAX_PER_INSTANT,
  HRTIMER_MODE_ABS,
  HRTIMER_MODE_REL,
  HRTIMER_MODE_REL_PINNED,
  HRTIMER_NORESTART,
  HRTIMER_RESTART,
  type Hrtimer,
  hrtimer_active,
  hrtimer_callback_running,
  hrtimer_cancel,
  hrtimer_forward_now,
  hrtimer_is_queued,
  hrtimer_next_expiry,
  hrtimer_setup,
  hrtimer_start,
  hrtimer_try_to_cancel,
  KTIME_SAFE_MAX,
} from "../../src/kernel/hrtimer.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { EINVAL } from "../../src/uapi/errno.js";
import { throwsErrno } from "./util.js";

function kernel(): Kernel {
  return new Kernel({ noVmlinuxBtf: true, nrCpus: 4 });
}

/** A callback that runs `fn` and does not restart. */
function once(fn: () => void): () => number {
  return () => {
    fn();
    return HRTIMER_NORESTART;
  };
}

test("moving the clock fires expired timers in expiry order, ties in arming order, each at its own expiry", () => {
  const k = kernel();
  const fired: string[] = [];
  const mk = (name: string) =>
    hrtimer_setup(
      k,
      () => {
        fired.push(`${name}@${k.ktimeGetNs()}`);
        return HRTIMER_NORESTART;
      },
      CLOCK_MONOTONIC,
      HRTIMER_MODE_REL,
    );
  const a = mk("a");
  const b = mk("b");
  const c = mk("c");
  const d = mk("d");
  hrtimer_start(c, 300n, HRTIMER_MODE_REL);
  hrtimer_start(a, 100n, HRTIMER_MODE_REL);
  hrtimer_start(d, 300n, HRTIMER_MODE_ABS);
  hrtimer_start(b, 200n, HRTIMER_MODE_REL);
  assert.equal(hrtimer_next_expiry(k), 100n);
  k.setTimeNs(250n);
  assert.deepEqual(fired, ["a@100", "b@200"]);
  assert.equal(k.ktimeGetNs(), 250n, "the clock ends where it was set");
  assert.equal(hrtimer_next_expiry(k), 300n);
  k.advanceTimeNs(1000);
  assert.deepEqual(fired, ["a@100", "b@200", "c@300", "d@300"]);
  assert.equal(hrtimer_next_expiry(k), null);
  assert.equal(k.ktimeGetNs(), 1250n);
  assert.equal(k.hrtimerBase.pending, 0);
});

test("a timer set to fire exactly at the new time fires; one a nanosecond later does not", () => {
  const k = kernel();
  let n = 0;
  const t = hrtimer_setup(
    k,
    once(() => n++),
    CLOCK_MONOTONIC,
    HRTIMER_MODE_ABS,
  );
  hrtimer_start(t, 500n, HRTIMER_MODE_ABS);
  k.setTimeNs(499n);
  assert.equal(n, 0);
  assert.ok(hrtimer_is_queued(t));
  k.setTimeNs(500n);
  assert.equal(n, 1);
  assert.ok(!hrtimer_active(t));
});

test("cancel dequeues; re-arming moves the expiry; a cancelled timer never fires", () => {
  const k = kernel();
  const fired: bigint[] = [];
  const t = hrtimer_setup(
    k,
    once(() => fired.push(k.ktimeGetNs())),
    CLOCK_MONOTONIC,
    HRTIMER_MODE_REL,
  );
  hrtimer_start(t, 100n, HRTIMER_MODE_REL);
  hrtimer_start(t, 700n, HRTIMER_MODE_REL);
  assert.equal(hrtimer_next_expiry(k), 700n, "re-arming replaces the old expiry");
  k.setTimeNs(500n);
  assert.deepEqual(fired, []);
  assert.equal(hrtimer_cancel(t), 1, "it was queued");
  assert.equal(hrtimer_cancel(t), 0, "already inactive");
  k.setTimeNs(10_000n);
  assert.deepEqual(fired, []);
  assert.equal(hrtimer_next_expiry(k), null);
});

test("a callback re-arms its timer (HRTIMER_RESTART with hrtimer_forward_now, or hrtimer_start); it stays on its CPU", () => {
  const k = kernel();
  const ticks: [bigint, number][] = [];
  const periodic = hrtimer_setup(
    k,
    (t) => {
      ticks.push([k.ktimeGetNs(), k.cpu]);
      if (ticks.length === 5) return HRTIMER_NORESTART;
      hrtimer_forward_now(k, t, 1000n);
      return HRTIMER_RESTART;
    },
    CLOCK_MONOTONIC,
    HRTIMER_MODE_REL,
  );
  k.onCpu(3, () => hrtimer_start(periodic, 1000n, HRTIMER_MODE_REL_PINNED));
  let again = 0;
  const oneShot: Hrtimer = hrtimer_setup(
    k,
    (t) => {
      assert.ok(hrtimer_callback_running(t));
      assert.equal(hrtimer_try_to_cancel(t), -1, "a running callback cannot be cancelled");
      if (++again < 3) hrtimer_start(t, 1500n, HRTIMER_MODE_REL);
      return HRTIMER_NORESTART;
    },
    CLOCK_MONOTONIC,
    HRTIMER_MODE_REL,
  );
  k.onCpu(1, () => hrtimer_start(oneShot, 1500n, HRTIMER_MODE_REL));
  // Step as an event loop would: always to the next expiry.
  const steps: bigint[] = [];
  for (let next = hrtimer_next_expiry(k); next !== null; next = hrtimer_next_expiry(k)) {
    steps.push(next);
    k.setTimeNs(next);
  }
  assert.deepEqual(
    ticks,
    [1000n, 2000n, 3000n, 4000n, 5000n].map((t) => [t, 3]),
  );
  assert.equal(again, 3);
  assert.deepEqual(steps, [1000n, 1500n, 2000n, 3000n, 4000n, 4500n, 5000n]);
  assert.equal(k.cpu, 0, "the CPU is restored after each callback");
});

test("a long jump fires a periodic timer at every period on the way (each seeing its own expiry)", () => {
  const k = kernel();
  const seen: bigint[] = [];
  const t = hrtimer_setup(
    k,
    (t) => {
      seen.push(k.ktimeGetNs());
      hrtimer_start(t, 250n, HRTIMER_MODE_REL);
      return HRTIMER_NORESTART;
    },
    CLOCK_MONOTONIC,
    HRTIMER_MODE_REL,
  );
  hrtimer_start(t, 250n, HRTIMER_MODE_REL);
  k.setTimeNs(1100n);
  assert.deepEqual(seen, [250n, 500n, 750n, 1000n]);
  assert.equal(hrtimer_next_expiry(k), 1250n);
});

test("a timer armed in the past fires at the next clock move, at the current time", () => {
  const k = kernel();
  k.setTimeNs(1000n);
  const seen: bigint[] = [];
  const t = hrtimer_setup(
    k,
    once(() => seen.push(k.ktimeGetNs())),
    CLOCK_MONOTONIC,
    HRTIMER_MODE_ABS,
  );
  hrtimer_start(t, 10n, HRTIMER_MODE_ABS);
  assert.equal(hrtimer_next_expiry(k), 1000n, "never before now");
  k.setTimeNs(1000n);
  assert.deepEqual(seen, [1000n]);
});

test("a callback that re-arms itself at the current time forever trips the hang detection instead of spinning", () => {
  const k = kernel();
  let n = 0;
  const t = hrtimer_setup(
    k,
    (t) => {
      n++;
      hrtimer_start(t, 0n, HRTIMER_MODE_REL);
      return HRTIMER_NORESTART;
    },
    CLOCK_MONOTONIC,
    HRTIMER_MODE_REL,
  );
  hrtimer_start(t, 10n, HRTIMER_MODE_REL);
  k.setTimeNs(20n);
  assert.equal(n, HRTIMER_MAX_PER_INSTANT);
  assert.equal(hrtimer_next_expiry(k), 10n + HRTIMER_HANG_DELAY_NS);
  assert.match(k.dmesg.join("\n"), /hrtimer: interrupt took/);
  hrtimer_cancel(t);
});

test("the clock cannot move from inside a callback; an unknown clock id is EINVAL", () => {
  const k = kernel();
  const t = hrtimer_setup(
    k,
    once(() => k.advanceTimeNs(1)),
    CLOCK_MONOTONIC,
    HRTIMER_MODE_REL,
  );
  hrtimer_start(t, 10n, HRTIMER_MODE_REL);
  assert.throws(() => k.setTimeNs(10n), /inside a timer callback/);
  assert.equal(k.hrtimerBase.running, null, "the base is consistent after a throwing callback");
  throwsErrno(() => hrtimer_setup(k, () => 0, 3, HRTIMER_MODE_REL), EINVAL);
});

test("a relative expiry that overflows or is negative saturates at KTIME_SEC_MAX (ktime_add_safe)", () => {
  const k = kernel();
  k.setTimeNs(1000n);
  const t = hrtimer_setup(
    k,
    once(() => {}),
    CLOCK_MONOTONIC,
    HRTIMER_MODE_REL,
  );
  hrtimer_start(t, -5n, HRTIMER_MODE_REL);
  assert.equal(hrtimer_next_expiry(k), KTIME_SAFE_MAX);
  hrtimer_start(t, (1n << 63n) - 10n, HRTIMER_MODE_REL);
  assert.equal(hrtimer_next_expiry(k), KTIME_SAFE_MAX);
  hrtimer_start(t, 5n, HRTIMER_MODE_REL);
  assert.equal(hrtimer_next_expiry(k), 1005n);
});
