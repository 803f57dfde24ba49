/**
 * The bottleneck: a droptail FIFO (limit in bytes or packets) in front of a fixed-rate or trace-driven
 * link, with instantaneous ECN marking above a threshold, optional random loss, and a propagation delay.
 */
import type { TcpSegment } from "../subsys/tcp/tcp.js";
import type { EventQueue } from "./event_queue.js";
import { MAHIMAHI_PACKET_BYTES, MahimahiCursor, type MahimahiTrace } from "./mahimahi.js";
import type { Prng } from "./prng.js";

export interface LinkConfig {
  /** bit/s (ignored with a trace). */
  rateBps: number;
  /** One-way propagation delay, ns. */
  delayNs: number;
  /** Droptail limit. */
  buffer: { bytes: number } | { packets: number };
  /** Mark CE on ECT packets when the queue holds at least this much on arrival. */
  ecnThreshold?: { bytes: number } | { packets: number };
  /** Random loss probability per packet, 0..1. */
  lossRate?: number;
  trace?: MahimahiTrace;
  /**
   * A tbf qdisc on an infinitely fast device (a veth) instead of a serialising link: a packet leaves
   * as soon as the bucket holds its length in tokens (up to `burstBytes`, refilled at `rateBps`), so it
   * takes no transmission time of its own; the queue (`buffer`) holds the packets waiting for tokens.
   */
  tbf?: { burstBytes: number };
}

export interface LinkCounters {
  enqueued: number;
  dropped: number;
  randomLoss: number;
  marked: number;
  sentBytes: number;
}

interface Queued {
  seg: TcpSegment;
  enqueuedAt: number;
}

export class Bottleneck {
  private readonly q: Queued[] = [];
  private head = 0;
  queueBytes = 0;
  private busy = false;
  private readonly cursor?: MahimahiCursor;
  /** tbf: tokens in ns of transmission time (q->tokens) as of tokensAt (q->t_c). */
  private tokensNs = 0;
  private tokensAt = 0;
  readonly perFlow = new Map<number, LinkCounters>();
  /** Busy (transmitted) bytes per 100 ms bin, for utilisation. */
  readonly txBins: number[] = [];
  /** Called for each packet when it leaves the queue: its queueing delay. */
  onDequeue?: (seg: TcpSegment, queueDelayNs: number) => void;
  /** Called for each packet the queue drops (not random loss). */
  onDrop?: (seg: TcpSegment) => void;

  constructor(
    private readonly ev: EventQueue,
    private readonly cfg: LinkConfig,
    private readonly prng: Prng,
    private readonly deliver: (seg: TcpSegment) => void,
  ) {
    if (cfg.trace) this.cursor = new MahimahiCursor(cfg.trace);
    if (cfg.tbf) this.tokensNs = this.nsOf(cfg.tbf.burstBytes);
  }

  private nsOf(bytes: number): number {
    return Math.round((bytes * 8 * 1e9) / this.cfg.rateBps);
  }

  get queuePackets(): number {
    return this.q.length - this.head;
  }

  counters(flow: number): LinkCounters {
    let c = this.perFlow.get(flow);
    if (!c) this.perFlow.set(flow, (c = { enqueued: 0, dropped: 0, randomLoss: 0, marked: 0, sentBytes: 0 }));
    return c;
  }

  private over(limit: { bytes: number } | { packets: number }, extraBytes: number, extraPkts: number): boolean {
    return "bytes" in limit
      ? this.queueBytes + extraBytes > limit.bytes
      : this.queuePackets + extraPkts > limit.packets;
  }

  /** A sender hands a packet to the bottleneck. */
  send(seg: TcpSegment): void {
    const c = this.counters(seg.flow);
    c.enqueued++;
    if (this.cfg.lossRate && this.prng.next() < this.cfg.lossRate) {
      c.randomLoss++;
      return;
    }
    // tbf_enqueue: a packet the bucket could never hold (longer than max_size, the burst) is dropped.
    if (this.over(this.cfg.buffer, seg.bytes, 1) || (this.cfg.tbf && seg.bytes > this.cfg.tbf.burstBytes)) {
      c.dropped++;
      this.onDrop?.(seg);
      return;
    }
    const k = this.cfg.ecnThreshold;
    if (seg.ect && k && ("bytes" in k ? this.queueBytes >= k.bytes : this.queuePackets >= k.packets)) {
      seg.ce = true;
      c.marked++;
    }
    this.q.push({ seg, enqueuedAt: this.ev.now });
    this.queueBytes += seg.bytes;
    if (!this.busy) this.startService();
  }

  private startService(): void {
    if (this.queuePackets === 0) {
      this.busy = false;
      return;
    }
    this.busy = true;
    const item = this.q[this.head]!;
    let done: number;
    if (this.cursor) {
      // Trace-driven: the packet leaves at the next delivery opportunity (one per 1500 bytes).
      const opps = Math.max(1, Math.ceil(item.seg.bytes / MAHIMAHI_PACKET_BYTES));
      let t = this.ev.now;
      for (let i = 0; i < opps; i++) {
        t = this.cursor.peek(t);
        this.cursor.take();
      }
      done = t;
    } else if (this.cfg.tbf) {
      // tbf_dequeue: toks = min(now - t_c, buffer) + tokens; the packet goes once toks >= its length.
      const bufferNs = this.nsOf(this.cfg.tbf.burstBytes);
      const lenNs = this.nsOf(item.seg.bytes);
      const now = this.ev.now;
      const toks = Math.min(this.tokensNs + (now - this.tokensAt), bufferNs);
      done = toks >= lenNs ? now : now + (lenNs - toks);
      this.tokensNs = Math.min(this.tokensNs + (done - this.tokensAt), bufferNs) - lenNs;
      this.tokensAt = done;
      const depart = () => {
        this.onDequeue?.(item.seg, this.ev.now - item.enqueuedAt);
        this.finishService();
      };
      // With tokens to spare the enqueue's own qdisc_run sends it: it never occupies the queue.
      if (done === now) depart();
      else this.ev.at(done, depart);
      return;
    } else {
      done = this.ev.now + Math.round((item.seg.bytes * 8 * 1e9) / this.cfg.rateBps);
    }
    this.onDequeue?.(item.seg, this.ev.now - item.enqueuedAt);
    this.ev.at(done, () => this.finishService());
  }

  private finishService(): void {
    const item = this.q[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.q.length) {
      this.q.splice(0, this.head);
      this.head = 0;
    }
    this.queueBytes -= item.seg.bytes;
    const bin = Math.floor(this.ev.now / 1e8);
    while (this.txBins.length <= bin) this.txBins.push(0);
    this.txBins[bin]! += item.seg.bytes;
    this.counters(item.seg.flow).sentBytes += item.seg.bytes;
    const seg = item.seg;
    this.ev.after(this.cfg.delayNs, () => this.deliver(seg));
    this.startService();
  }
}
