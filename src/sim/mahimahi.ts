/**
 * Mahimahi link traces: one integer per line, a millisecond timestamp at which one 1500-byte packet may
 * be delivered (several equal lines mean several packets in that millisecond). The trace repeats.
 */
export const MAHIMAHI_PACKET_BYTES = 1500;

export interface MahimahiTrace {
  /** Delivery opportunities in ms, non-decreasing. */
  opportunitiesMs: number[];
  /** Length of one repetition in ms (the last timestamp, at least 1). */
  periodMs: number;
}

export function parseMahimahi(text: string): MahimahiTrace {
  const ops: number[] = [];
  let lineNo = 0;
  for (const raw of text.split(/\r?\n/)) {
    lineNo++;
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const v = Number(line);
    if (!Number.isInteger(v) || v < 0)
      throw new Error(`mahimahi trace line ${lineNo}: '${line}' is not a ms timestamp`);
    if (ops.length && v < ops[ops.length - 1]!)
      throw new Error(`mahimahi trace line ${lineNo}: timestamps go backwards`);
    ops.push(v);
  }
  if (ops.length === 0) throw new Error("mahimahi trace: no delivery opportunities");
  return { opportunitiesMs: ops, periodMs: Math.max(1, ops[ops.length - 1]!) };
}

/** Average rate of a trace in bit/s. */
export function mahimahiRateBps(t: MahimahiTrace): number {
  return (t.opportunitiesMs.length * MAHIMAHI_PACKET_BYTES * 8 * 1000) / t.periodMs;
}

/** Walks the (repeating) opportunities forward in time. */
export class MahimahiCursor {
  private k = 0;
  constructor(private readonly t: MahimahiTrace) {}
  private timeNs(k: number): number {
    const n = this.t.opportunitiesMs.length;
    const rep = Math.floor(k / n);
    return (this.t.opportunitiesMs[k % n]! + rep * this.t.periodMs) * 1e6;
  }
  /** The first unused opportunity at or after `now` (ns). */
  peek(now: number): number {
    while (this.timeNs(this.k) < now) this.k++;
    return this.timeNs(this.k);
  }
  /** Use the opportunity peek() returned. */
  take(): void {
    this.k++;
  }
}
