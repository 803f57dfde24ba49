/**
 * The bottleneck as a Linux egress: each packet becomes an sk_buff (in the simulated kernel's VM
 * memory, carrying its flow hash, its socket and the departure time TCP stamped on it) enqueued
 * on a net_device whose root qdisc is pluggable (pfifo, fq, fq_codel, or a BPF qdisc registered
 * through struct_ops). The link dequeues whenever it is idle (qdisc_run); a scheduler that holds
 * packets (pacing, EDT) wakes it through its watchdog. Drops are the skbs the kernel frees
 * without transmitting them.
 */
import type { NetDevice } from "../subsys/qdisc/netdevice.js";
import type { KernelHrtimers, QdiscKernel } from "../subsys/qdisc/qdisc_init.js";
import type { QdiscTimers } from "../subsys/qdisc/sch_generic.js";
import type { SkBuff, SkbAllocOpts } from "../subsys/qdisc/skbuff.js";
import type { TcpSegment } from "../subsys/tcp/tcp.js";
import type { EventQueue } from "./event_queue.js";
import type { LinkConfig, LinkCounters } from "./link.js";
import { MAHIMAHI_PACKET_BYTES, MahimahiCursor } from "./mahimahi.js";
import type { Prng } from "./prng.js";

/**
 * The watchdog's hrtimers on a simulation: the kernel's own, plus an event at each expiry so the
 * event queue moves the kernel clock there (which fires the timer) on time.
 */
export class EventQueueTimers implements QdiscTimers {
  constructor(
    private readonly ev: EventQueue,
    private readonly hr: KernelHrtimers,
  ) {}
  now(): number {
    return this.hr.now();
  }
  start(atNs: number, fn: () => void): unknown {
    const t = this.hr.start(atNs, fn);
    this.ev.after(Math.max(0, atNs - this.hr.now()), () => {});
    return t;
  }
  cancel(handle: unknown): void {
    this.hr.cancel(handle);
  }
}

/** The skb fields a sender's packet maps to (its socket, flow hash, departure time). */
export type SkbOf = (seg: TcpSegment) => Omit<SkbAllocOpts, "len" | "flow" | "meta">;

export class QdiscBottleneck {
  private busy = false;
  private readonly cursor?: MahimahiCursor;
  readonly perFlow = new Map<number, LinkCounters>();
  readonly txBins: number[] = [];
  onDequeue?: (seg: TcpSegment, queueDelayNs: number) => void;
  /** Called for each packet the kernel frees without transmitting it. */
  onDrop?: (seg: TcpSegment) => void;
  /** Bytes of the packet being serialised onto the wire (dequeued, not yet sent), or 0. */
  private onWire = 0;

  constructor(
    private readonly ev: EventQueue,
    private readonly cfg: LinkConfig,
    private readonly prng: Prng,
    private readonly deliver: (seg: TcpSegment) => void,
    readonly qk: QdiscKernel,
    readonly dev: NetDevice,
    private readonly skbOf: SkbOf,
  ) {
    if (cfg.trace) this.cursor = new MahimahiCursor(cfg.trace);
    // A packet the kernel frees without having sent it is a drop of its flow.
    qk.pool.onFree = (skb, consumed) => {
      if (consumed) return;
      this.counters(skb.flow).dropped++;
      if (skb.meta) this.onDrop?.(skb.meta as TcpSegment);
    };
    // The watchdog (or anything else) rescheduling the device: dequeue if the link is idle.
    dev.onSchedule = () => {
      if (!this.busy) this.startService();
    };
  }

  // What waits at the bottleneck: the qdisc's backlog and the packet on the wire, as the droptail
  // queue counts it (its head is the packet being sent).
  get queueBytes(): number {
    return this.dev.backlog + this.onWire;
  }

  get queuePackets(): number {
    return this.dev.qlen + (this.onWire ? 1 : 0);
  }

  counters(flow: number): LinkCounters {
    let c = this.perFlow.get(flow);
    if (!c) this.perFlow.set(flow, (c = { enqueued: 0, dropped: 0, randomLoss: 0, marked: 0, sentBytes: 0 }));
    return c;
  }

  /** A sender hands a packet to the device (dev_queue_xmit). */
  send(seg: TcpSegment): void {
    const c = this.counters(seg.flow);
    c.enqueued++;
    if (this.cfg.lossRate && this.prng.next() < this.cfg.lossRate) {
      c.randomLoss++;
      return;
    }
    const skb = this.qk.pool.alloc({ ...this.skbOf(seg), len: seg.bytes, flow: seg.flow, meta: seg });
    this.dev.queueXmit(skb);
    if (!this.busy) this.startService();
  }

  private startService(): void {
    const skb = this.dev.dequeue();
    if (!skb) {
      this.busy = false;
      this.onWire = 0;
      return;
    }
    this.busy = true;
    const seg = skb.meta as TcpSegment;
    this.onWire = seg.bytes;
    let done: number;
    if (this.cursor) {
      const opps = Math.max(1, Math.ceil(seg.bytes / MAHIMAHI_PACKET_BYTES));
      let t = this.ev.now;
      for (let i = 0; i < opps; i++) {
        t = this.cursor.peek(t);
        this.cursor.take();
      }
      done = t;
    } else {
      done = this.ev.now + Math.round((seg.bytes * 8 * 1e9) / this.cfg.rateBps);
    }
    this.onDequeue?.(seg, this.qk.timers.now() - skb.enqueuedAt);
    this.ev.at(done, () => this.finishService(skb, seg));
  }

  private finishService(skb: SkBuff, seg: TcpSegment): void {
    const bin = Math.floor(this.ev.now / 1e8);
    while (this.txBins.length <= bin) this.txBins.push(0);
    this.txBins[bin]! += seg.bytes;
    const c = this.counters(seg.flow);
    c.sentBytes += seg.bytes;
    // CE set on the way through (fq_codel's ECN instead of a drop).
    if (seg.ce) c.marked++;
    this.qk.pool.consume_skb(skb);
    this.ev.after(this.cfg.delayNs, () => this.deliver(seg));
    this.startService();
  }
}
