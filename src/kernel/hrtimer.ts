/**
 * High-resolution timers on the simulated clock (kernel/time/hrtimer.c).
 *
 * A timer has an expiry in its clock, a CPU (the one it was armed on, kept while its callback
 * re-arms it) and a callback that returns HRTIMER_RESTART or HRTIMER_NORESTART. Nothing fires
 * behind the caller's back: moving the clock (Kernel.setTimeNs/advanceTimeNs) runs every timer
 * that expired on the way, earliest first, ties in arming order, each callback on its CPU with the
 * clock at its own expiry. An event loop steps to hrtimer_next_expiry(k).
 *
 * The simulated CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME and CLOCK_TAI read the same time
 * (nothing suspends, the wall clock starts at boot), so one queue ordered by expiry serves all.
 */
import { BpfError, EINVAL } from "../uapi/errno.js";
import type { Kernel } from "./kernel.js";

export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC = 1;
export const CLOCK_BOOTTIME = 7;
export const CLOCK_TAI = 11;

/** enum hrtimer_restart */
export const HRTIMER_NORESTART = 0;
export const HRTIMER_RESTART = 1;

/** enum hrtimer_mode */
export const HRTIMER_MODE_ABS = 0x00;
export const HRTIMER_MODE_REL = 0x01;
export const HRTIMER_MODE_PINNED = 0x02;
export const HRTIMER_MODE_SOFT = 0x04;
export const HRTIMER_MODE_HARD = 0x08;
export const HRTIMER_MODE_ABS_PINNED = HRTIMER_MODE_ABS | HRTIMER_MODE_PINNED;
export const HRTIMER_MODE_REL_PINNED = HRTIMER_MODE_REL | HRTIMER_MODE_PINNED;
export const HRTIMER_MODE_ABS_SOFT = HRTIMER_MODE_ABS | HRTIMER_MODE_SOFT;
export const HRTIMER_MODE_REL_SOFT = HRTIMER_MODE_REL | HRTIMER_MODE_SOFT;
export const HRTIMER_MODE_ABS_PINNED_SOFT = HRTIMER_MODE_ABS_PINNED | HRTIMER_MODE_SOFT;
export const HRTIMER_MODE_REL_PINNED_SOFT = HRTIMER_MODE_REL_PINNED | HRTIMER_MODE_SOFT;

export const HRTIMER_STATE_INACTIVE = 0;
export const HRTIMER_STATE_ENQUEUED = 1;

/** KTIME_MAX. */
export const KTIME_MAX = (1n << 63n) - 1n;

/**
 * Callbacks run at one instant before hrtimer_interrupt's hang detection: a timer that keeps
 * re-arming itself at the current time would otherwise spin forever on a clock that only moves
 * when the simulation moves it. The kernel then delays the next timer interrupt (by at most
 * 100 ms); so do we.
 */
export const HRTIMER_MAX_PER_INSTANT = 100_000;
export const HRTIMER_HANG_DELAY_NS = 100_000_000n;

export type HrtimerFn = (timer: Hrtimer) => number;

const CLOCKS = new Set([CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI]);

export class Hrtimer {
  /** Expiry in the timer's clock (hrtimer_get_expires). */
  expires = 0n;
  /** The CPU whose base holds the timer (and runs its callback). */
  cpu = 0;
  state = HRTIMER_STATE_INACTIVE;
  /** Arming order: ties in expiry fire in this order; a stale queue entry has an older one. */
  seq = 0;
  /** The mode it was set up with (HRTIMER_MODE_SOFT: softirq expiry). */
  readonly mode: number;

  constructor(
    readonly base: HrtimerBase,
    public fn: HrtimerFn,
    readonly clockid: number,
    mode: number,
  ) {
    this.mode = mode;
  }
}

/** The timer queues of every CPU: one heap ordered by (expiry, arming order). */
export class HrtimerBase {
  private readonly exp: bigint[] = [];
  private readonly seqs: number[] = [];
  private readonly timers: Hrtimer[] = [];
  private nextSeq = 1;
  /** Timers enqueued now (heap entries of cancelled or re-armed timers are dropped lazily). */
  private live = 0;
  /** The timer whose callback is running (cpu_base->running), if any. */
  running: Hrtimer | null = null;
  /** After a hang: nothing fires before this time. */
  private hangUntil = 0n;
  private hangWarned = false;

  constructor(readonly k: Kernel) {}

  /** Timers enqueued. */
  get pending(): number {
    return this.live;
  }

  enqueue(t: Hrtimer): void {
    t.state = HRTIMER_STATE_ENQUEUED;
    t.seq = this.nextSeq++;
    this.live++;
    this.push(t.expires, t.seq, t);
    // Stale entries (cancelled, re-armed) are dropped when they reach the top; keep them bounded.
    if (this.timers.length > 64 && this.timers.length > 4 * this.live) this.compact();
  }

  dequeue(t: Hrtimer): void {
    if (t.state !== HRTIMER_STATE_ENQUEUED) return;
    t.state = HRTIMER_STATE_INACTIVE;
    this.live--;
  }

  /** The earliest enqueued timer, stale entries dropped. */
  private top(): Hrtimer | null {
    while (this.timers.length > 0) {
      const t = this.timers[0]!;
      if (t.state === HRTIMER_STATE_ENQUEUED && t.seq === this.seqs[0]) return t;
      this.pop();
    }
    return null;
  }

  /** When the next timer fires (never before now), or null when none is armed. */
  nextExpiry(now: bigint): bigint | null {
    const t = this.top();
    if (!t) return null;
    let at = t.expires;
    if (at < this.hangUntil) at = this.hangUntil;
    return at < now ? now : at;
  }

  /**
   * __hrtimer_run_queues up to `target`: fire every timer expiring at or before it, earliest
   * first, the clock set (through `setClock`) to each one's expiry before its callback runs.
   */
  run(target: bigint, now: bigint, setClock: (ns: bigint) => void): void {
    if (this.running) throw new Error("the clock cannot move from inside a timer callback");
    if (this.live === 0) return;
    let instant = -1n;
    let count = 0;
    for (;;) {
      const t = this.top();
      if (!t) return;
      let at = t.expires;
      if (at < this.hangUntil) at = this.hangUntil;
      if (at > target) return;
      if (at < now) at = now;
      if (at === instant) {
        if (++count > HRTIMER_MAX_PER_INSTANT) {
          this.hangUntil = at + HRTIMER_HANG_DELAY_NS;
          if (!this.hangWarned) {
            this.hangWarned = true;
            this.k.dmesg.push(`hrtimer: interrupt took ${HRTIMER_HANG_DELAY_NS} ns`);
          }
          continue;
        }
      } else {
        instant = at;
        count = 1;
      }
      if (at > now) {
        now = at;
        setClock(at);
      }
      this.pop();
      this.runOne(t);
    }
  }

  /** __run_hrtimer: the timer leaves the queue, its callback runs on its CPU, RESTART re-enqueues it. */
  private runOne(t: Hrtimer): void {
    this.dequeue(t);
    this.running = t;
    let restart: number;
    try {
      restart = this.k.onCpu(t.cpu, () => t.fn(t));
    } finally {
      this.running = null;
    }
    if (restart !== HRTIMER_NORESTART && t.state !== HRTIMER_STATE_ENQUEUED) this.enqueue(t);
  }

  private push(e: bigint, s: number, t: Hrtimer): void {
    let i = this.timers.length;
    this.exp.push(e);
    this.seqs.push(s);
    this.timers.push(t);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(p, e, s)) break;
      this.exp[i] = this.exp[p]!;
      this.seqs[i] = this.seqs[p]!;
      this.timers[i] = this.timers[p]!;
      i = p;
    }
    this.exp[i] = e;
    this.seqs[i] = s;
    this.timers[i] = t;
  }

  private less(i: number, e: bigint, s: number): boolean {
    const ei = this.exp[i]!;
    return ei < e || (ei === e && this.seqs[i]! < s);
  }

  private pop(): void {
    const n = this.timers.length - 1;
    const e = this.exp[n]!;
    const s = this.seqs[n]!;
    const t = this.timers[n]!;
    this.exp.pop();
    this.seqs.pop();
    this.timers.pop();
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(r, this.exp[l]!, this.seqs[l]!) ? r : l;
      if (!this.less(c, e, s)) break;
      this.exp[i] = this.exp[c]!;
      this.seqs[i] = this.seqs[c]!;
      this.timers[i] = this.timers[c]!;
      i = c;
    }
    this.exp[i] = e;
    this.seqs[i] = s;
    this.timers[i] = t;
  }

  private compact(): void {
    const keep: [bigint, number, Hrtimer][] = [];
    for (let i = 0; i < this.timers.length; i++) {
      const t = this.timers[i]!;
      if (t.state === HRTIMER_STATE_ENQUEUED && t.seq === this.seqs[i]) keep.push([this.exp[i]!, this.seqs[i]!, t]);
    }
    this.exp.length = 0;
    this.seqs.length = 0;
    this.timers.length = 0;
    for (const [e, s, t] of keep) this.push(e, s, t);
  }
}

/** hrtimer_setup: a timer of `clockid` calling `fn`; `mode` is the default of hrtimer_start. */
export function hrtimer_setup(k: Kernel, fn: HrtimerFn, clockid: number, mode: number): Hrtimer {
  if (!CLOCKS.has(clockid)) throw new BpfError(EINVAL, `hrtimer: clock id ${clockid} is not supported`);
  return new Hrtimer(k.hrtimerBase, fn, clockid, mode);
}

/** KTIME_SEC_MAX seconds: what ktime_add_safe saturates to. */
export const KTIME_SAFE_MAX = (KTIME_MAX / 1_000_000_000n) * 1_000_000_000n;

/** ktime_add_safe: a sum that overflows, or goes below either operand, saturates. */
function ktimeAddSafe(a: bigint, b: bigint): bigint {
  const r = BigInt.asIntN(64, a + b);
  return r < 0n || r < a || r < b ? KTIME_SAFE_MAX : r;
}

/**
 * hrtimer_start_range_ns: (re)arm `t` to expire at `tim` (HRTIMER_MODE_ABS) or `tim` from now
 * (HRTIMER_MODE_REL). It goes to the current CPU's base, or stays on its own while its callback
 * runs (switch_hrtimer_base).
 */
export function hrtimer_start(t: Hrtimer, tim: bigint, mode: number): void {
  const base = t.base;
  const k = base.k;
  base.dequeue(t);
  const expires = mode & HRTIMER_MODE_REL ? ktimeAddSafe(k.ktimeGetNs(), tim) : tim;
  t.expires = expires < 0n ? 0n : expires;
  if (base.running !== t) t.cpu = k.cpu;
  base.enqueue(t);
}

/** hrtimer_try_to_cancel: 1 if it was queued (now not), 0 if it was not, -1 if its callback is running. */
export function hrtimer_try_to_cancel(t: Hrtimer): number {
  if (t.base.running === t) return -1;
  if (t.state !== HRTIMER_STATE_ENQUEUED) return 0;
  t.base.dequeue(t);
  return 1;
}

/**
 * hrtimer_cancel: dequeue and wait for a running callback. Called from the timer's own callback,
 * the kernel would wait forever; callers must refuse that first (bpf_timer_cancel's -EDEADLK).
 */
export function hrtimer_cancel(t: Hrtimer): number {
  if (t.base.running === t) throw new Error("hrtimer_cancel from the timer's own callback would wait forever");
  return hrtimer_try_to_cancel(t);
}

/** hrtimer_active: queued or its callback running. */
export function hrtimer_active(t: Hrtimer): boolean {
  return t.state === HRTIMER_STATE_ENQUEUED || t.base.running === t;
}

export function hrtimer_is_queued(t: Hrtimer): boolean {
  return t.state === HRTIMER_STATE_ENQUEUED;
}

export function hrtimer_callback_running(t: Hrtimer): boolean {
  return t.base.running === t;
}

export function hrtimer_get_expires(t: Hrtimer): bigint {
  return t.expires;
}

/** hrtimer_get_remaining: expiry minus now (negative when overdue). */
export function hrtimer_get_remaining(k: Kernel, t: Hrtimer): bigint {
  return t.expires - k.ktimeGetNs();
}

/** hrtimer_set_expires, for a callback that returns HRTIMER_RESTART. */
export function hrtimer_set_expires(t: Hrtimer, expires: bigint): void {
  t.expires = expires;
}

/**
 * hrtimer_forward: move the expiry forward by whole `interval`s until it is after `now`; the
 * number of intervals (overruns) it moved. For periodic callbacks returning HRTIMER_RESTART.
 */
export function hrtimer_forward(t: Hrtimer, now: bigint, interval: bigint): bigint {
  const delta = now - t.expires;
  if (delta < 0n) return 0n;
  if (t.state === HRTIMER_STATE_ENQUEUED) throw new Error("hrtimer_forward on a queued timer");
  if (interval <= 0n) throw new Error("hrtimer_forward: interval must be positive");
  const orun = delta / interval + 1n;
  t.expires = ktimeAddSafe(t.expires, orun * interval);
  return orun;
}

export function hrtimer_forward_now(k: Kernel, t: Hrtimer, interval: bigint): bigint {
  return hrtimer_forward(t, k.ktimeGetNs(), interval);
}

/** When the next timer fires (not before now), or null: an event loop's next step. */
export function hrtimer_next_expiry(k: Kernel): bigint | null {
  return k.hrtimerBase.nextExpiry(k.ktimeGetNs());
}
