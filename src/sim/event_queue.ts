/**
 * The discrete-event core: a binary min-heap of callbacks keyed by (time, insertion sequence), so events
 * at the same instant run in the order they were scheduled and every run is reproducible.
 */
export type SimEvent = () => void;

export class EventQueue {
  private times: number[] = [];
  private seqs: number[] = [];
  private fns: SimEvent[] = [];
  private seq = 0;
  /** Current simulated time in ns. */
  now = 0;
  /** Events run so far. */
  executed = 0;
  /** Called whenever simulated time moves forward (to drive an external clock). */
  onTime?: (now: number) => void;

  get size(): number {
    return this.fns.length;
  }

  /** Schedule `fn` at absolute time `at` (ns); never in the past. */
  at(at: number, fn: SimEvent): void {
    const t = Math.max(at, this.now);
    const s = this.seq++;
    let i = this.fns.length;
    this.times.push(t);
    this.seqs.push(s);
    this.fns.push(fn);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(p, t, s)) break;
      this.move(p, i);
      i = p;
    }
    this.times[i] = t;
    this.seqs[i] = s;
    this.fns[i] = fn;
  }

  /** Schedule `fn` `delay` ns from now. */
  after(delay: number, fn: SimEvent): void {
    this.at(this.now + delay, fn);
  }

  private less(i: number, t: number, s: number): boolean {
    const ti = this.times[i]!;
    return ti < t || (ti === t && this.seqs[i]! < s);
  }

  private move(from: number, to: number): void {
    this.times[to] = this.times[from]!;
    this.seqs[to] = this.seqs[from]!;
    this.fns[to] = this.fns[from]!;
  }

  /** Time of the next event, or Infinity. */
  peekTime(): number {
    return this.fns.length ? this.times[0]! : Number.POSITIVE_INFINITY;
  }

  /** Run the earliest event; false when empty. */
  step(): boolean {
    const n = this.fns.length;
    if (n === 0) return false;
    const t0 = this.times[0]!;
    const fn = this.fns[0]!;
    const lastT = this.times.pop()!;
    const lastS = this.seqs.pop()!;
    const lastF = this.fns.pop()!;
    if (n > 1) {
      let i = 0;
      const m = n - 1;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= m) break;
        const r = l + 1;
        const c = r < m && this.less(r, this.times[l]!, this.seqs[l]!) ? r : l;
        if (!this.less(c, lastT, lastS)) break;
        this.move(c, i);
        i = c;
      }
      this.times[i] = lastT;
      this.seqs[i] = lastS;
      this.fns[i] = lastF;
    }
    if (t0 !== this.now) {
      this.now = t0;
      this.onTime?.(t0);
    }
    this.executed++;
    fn();
    return true;
  }

  /** Run every event up to and including time `until`, then set the clock to `until`. */
  runUntil(until: number): void {
    while (this.fns.length && this.times[0]! <= until) this.step();
    if (until > this.now) {
      this.now = until;
      this.onTime?.(until);
    }
  }
}
