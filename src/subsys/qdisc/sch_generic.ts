/**
 * net/sched/sch_generic.c and include/net/sch_generic.h: `struct Qdisc` instances in VM memory
 * (limit, q.qlen, bstats, qstats where BPF programs read and write them), the ops table a
 * scheduler implements, NET_XMIT_* codes, __qdisc_drop onto the caller's to_free list,
 * qdisc_peek_dequeued (peek by dequeueing once and parking the skb in gso_skb), the qdisc watchdog
 * on the kernel's clock, qdisc_reset/qdisc_destroy, and pfifo_fast (the default qdisc).
 */
import type { Btf } from "../../btf/btf.js";
import type { MemRegion } from "../../kernel/bpf.js";
import type { VmMemory } from "../../vm/memory.js";
import type { NetDevice, NetdevQueue } from "./netdevice.js";
import { memberOffset, type SkBuff, type SkbPool, structId, structSize } from "./skbuff.js";

export const NET_XMIT_SUCCESS = 0x00;
export const NET_XMIT_DROP = 0x01;
export const NET_XMIT_CN = 0x02;
export const NET_XMIT_MASK = 0x0f;
export const __NET_XMIT_STOLEN = 0x00010000;
export const __NET_XMIT_BYPASS = 0x00020000;

export const TC_H_ROOT = 0xffffffff;
export const TC_H_UNSPEC = 0;
export const TC_H_MAJ = (h: number): number => (h & 0xffff0000) >>> 0;
export const TC_H_MIN = (h: number): number => h & 0x0000ffff;
export const TC_H_MAKE = (maj: number, min: number): number => ((maj & 0xffff0000) | (min & 0xffff)) >>> 0;

export const TCQ_F_BUILTIN = 1;
export const TCQ_F_INGRESS = 2;
export const TCQ_F_CAN_BYPASS = 4;
export const TCQ_F_MQROOT = 8;
export const TCQ_F_ONETXQUEUE = 0x10;

/** TC_PRIO_CONTROL: skb->priority of control packets (fq's prio flow). */
export const TC_PRIO_CONTROL = 7;
export const TC_PRIO_MAX = 15;

/** netlink_ext_ack: the message an operation leaves for the user. */
export interface ExtAck {
  msg?: string;
}

/** A qdisc's netlink options, as `tc qdisc add ... <kind> [limit N] ...` passes them. */
export type QdiscOpt = Readonly<Record<string, number | string | boolean | readonly number[]>>;

/** struct Qdisc_class_ops, as far as grafting children goes (mq, htb). */
export interface QdiscClassOps {
  /** The class `classid` exists (->find). */
  find(sch: Qdisc, classid: number): boolean;
  /** Replace the class's child with `child` (null: the default); returns the old one. */
  graft(sch: Qdisc, classid: number, child: Qdisc | null, extack: ExtAck): Qdisc | null;
  /** The child qdisc of a class (->leaf). */
  leaf(sch: Qdisc, classid: number): Qdisc | null;
  /** Add (or change) a class (->change), for `tc class add`. */
  change?(sch: Qdisc, classid: number, opt: QdiscOpt, extack: ExtAck): number;
}

/**
 * struct Qdisc_ops. enqueue returns NET_XMIT_*; drops go to `toFree` through __qdisc_drop.
 * init/change return 0 or -errno (message in extack).
 */
export interface QdiscOps {
  readonly id: string;
  readonly cl_ops?: QdiscClassOps;
  readonly static_flags?: number;
  enqueue(skb: SkBuff, sch: Qdisc, toFree: ToFree): number;
  dequeue(sch: Qdisc): SkBuff | null;
  peek(sch: Qdisc): SkBuff | null;
  init?(sch: Qdisc, opt: QdiscOpt | undefined, extack: ExtAck): number;
  reset?(sch: Qdisc): void;
  destroy?(sch: Qdisc): void;
  change?(sch: Qdisc, opt: QdiscOpt, extack: ExtAck): number;
  attach?(sch: Qdisc): void;
  /** try_module_get / module_put on the ops' owner (a BPF qdisc pins its struct_ops map). */
  readonly owner?: { get(): boolean; put(): void } | null;
}

/** Offsets of struct Qdisc members, read from BTF. */
export interface QdiscLayout {
  readonly size: number;
  readonly flags: number;
  readonly limit: number;
  readonly handle: number;
  readonly parent: number;
  readonly dev_queue: number;
  readonly gso_skb: number;
  readonly qlen: number;
  readonly bytes: number;
  readonly packets: number;
  readonly backlog: number;
  readonly drops: number;
  readonly requeues: number;
  readonly overlimits: number;
}

export function qdiscLayout(btf: Btf): QdiscLayout {
  const q = structId(btf, "Qdisc");
  const m = (n: string) => memberOffset(btf, q, n);
  const qOff = m("q");
  const bOff = m("bstats");
  const sOff = m("qstats");
  const head = structId(btf, "qdisc_skb_head");
  const bs = structId(btf, "gnet_stats_basic_sync");
  const qs = structId(btf, "gnet_stats_queue");
  return {
    size: structSize(btf, q),
    flags: m("flags"),
    limit: m("limit"),
    handle: m("handle"),
    parent: m("parent"),
    dev_queue: m("dev_queue"),
    gso_skb: m("gso_skb"),
    qlen: qOff + memberOffset(btf, head, "qlen"),
    bytes: bOff + memberOffset(btf, bs, "bytes"),
    packets: bOff + memberOffset(btf, bs, "packets"),
    backlog: sOff + memberOffset(btf, qs, "backlog"),
    drops: sOff + memberOffset(btf, qs, "drops"),
    requeues: sOff + memberOffset(btf, qs, "requeues"),
    overlimits: sOff + memberOffset(btf, qs, "overlimits"),
  };
}

/** A timer on the kernel's clock (hrtimer): the scheduler's environment provides them. */
export interface QdiscTimers {
  /** The kernel clock, ns. */
  now(): number;
  /** Run `fn` at absolute time `atNs`; returns a handle for cancel. */
  start(atNs: number, fn: () => void): unknown;
  cancel(handle: unknown): void;
}

/**
 * The `struct sk_buff **to_free` list in VM memory (a `struct bpf_sk_buff_ptr`): drops are linked
 * through skb->next and freed by the caller once the enqueue returned.
 */
export class ToFree {
  constructor(
    readonly mem: VmMemory,
    readonly addr: number,
  ) {}
  get head(): number {
    return this.mem.readU64Number(this.addr);
  }
  set head(v: number) {
    this.mem.writeU64(this.addr, v);
  }
}

/** struct qdisc_watchdog: an hrtimer that reschedules the root qdisc of the device. */
export class QdiscWatchdog {
  private handle: unknown = undefined;
  /** The soft expiry of the queued timer, or -1. */
  expires = -1;
  /** How often the timer fired (tests, stats). */
  fired = 0;
  constructor(readonly sch: Qdisc) {}

  /** qdisc_watchdog_schedule_range_ns(). */
  schedule(expires: number, deltaNs = 0): void {
    if (this.sch.deactivated) return;
    // A queued timer already inside [expires, expires + delta] stays.
    if (this.expires >= 0 && this.expires - expires >= 0 && this.expires - expires <= deltaNs) return;
    this.cancel();
    const timers = this.sch.timers;
    this.expires = expires;
    this.handle = timers.start(expires, () => {
      this.handle = undefined;
      this.expires = -1;
      this.fired++;
      this.sch.dev.netifSchedule();
    });
  }

  /** qdisc_watchdog_cancel(). */
  cancel(): void {
    if (this.handle !== undefined) this.sch.timers.cancel(this.handle);
    this.handle = undefined;
    this.expires = -1;
  }
}

export class Qdisc {
  readonly L: QdiscLayout;
  /** TypeScript schedulers keep their private data (qdisc_priv) here. */
  priv: unknown = undefined;
  /** The parked skb of qdisc_peek_dequeued (mirrors gso_skb in VM memory). */
  gsoSkb: SkBuff | null = null;
  readonly watchdog: QdiscWatchdog;
  /** __QDISC_STATE_DEACTIVATED: set once destroyed. */
  deactivated = false;
  /** Children the kernel tracks for `tc -s` (mq's per-queue qdiscs, htb leaves). */
  refcnt = 1;

  constructor(
    readonly mem: VmMemory,
    readonly region: MemRegion,
    readonly ops: QdiscOps,
    readonly dev: NetDevice,
    readonly devQueue: NetdevQueue,
    readonly pool: SkbPool,
    readonly timers: QdiscTimers,
    layout: QdiscLayout,
  ) {
    this.L = layout;
    this.watchdog = new QdiscWatchdog(this);
    mem.writeU64(region.addr + layout.dev_queue, devQueue.addr);
  }

  get addr(): number {
    return this.region.addr;
  }
  get id(): string {
    return this.ops.id;
  }

  private u32(off: number): number {
    return this.mem.readU32(this.region.addr + off);
  }
  private setU32(off: number, v: number): void {
    this.mem.writeU32(this.region.addr + off, v >>> 0);
  }

  get flags(): number {
    return this.u32(this.L.flags);
  }
  set flags(v: number) {
    this.setU32(this.L.flags, v);
  }
  get limit(): number {
    return this.u32(this.L.limit);
  }
  set limit(v: number) {
    this.setU32(this.L.limit, v);
  }
  get handle(): number {
    return this.u32(this.L.handle);
  }
  set handle(v: number) {
    this.setU32(this.L.handle, v);
  }
  get parent(): number {
    return this.u32(this.L.parent);
  }
  set parent(v: number) {
    this.setU32(this.L.parent, v);
  }
  /** sch->q.qlen */
  get qlen(): number {
    return this.u32(this.L.qlen);
  }
  set qlen(v: number) {
    this.setU32(this.L.qlen, v);
  }
  /** sch->qstats.backlog */
  get backlog(): number {
    return this.u32(this.L.backlog);
  }
  set backlog(v: number) {
    this.setU32(this.L.backlog, v);
  }
  get drops(): number {
    return this.u32(this.L.drops);
  }
  set drops(v: number) {
    this.setU32(this.L.drops, v);
  }
  get requeues(): number {
    return this.u32(this.L.requeues);
  }
  get overlimits(): number {
    return this.u32(this.L.overlimits);
  }
  set overlimits(v: number) {
    this.setU32(this.L.overlimits, v);
  }
  get bytes(): number {
    return this.mem.readU64Number(this.region.addr + this.L.bytes);
  }
  get packets(): number {
    return this.mem.readU64Number(this.region.addr + this.L.packets);
  }

  /** bstats_update(): one more packet (qdisc_pkt_len bytes) went out. */
  bstatsUpdate(skb: SkBuff): void {
    const a = this.region.addr;
    this.mem.writeU64(a + this.L.bytes, this.mem.readU64Number(a + this.L.bytes) + skb.pktLen);
    this.mem.writeU64(a + this.L.packets, this.mem.readU64Number(a + this.L.packets) + 1);
  }

  /** qdisc_qstats_backlog_inc/dec */
  backlogInc(skb: SkBuff): void {
    this.backlog = this.backlog + skb.pktLen;
  }
  backlogDec(skb: SkBuff): void {
    this.backlog = this.backlog - skb.pktLen;
  }

  /** Every counter the kernel reports (`tc -s qdisc`). */
  stats(): QdiscStats {
    return {
      qlen: this.qlen,
      backlog: this.backlog,
      drops: this.drops,
      requeues: this.requeues,
      overlimits: this.overlimits,
      bytes: this.bytes,
      packets: this.packets,
    };
  }
}

export interface QdiscStats {
  qlen: number;
  backlog: number;
  drops: number;
  requeues: number;
  overlimits: number;
  bytes: number;
  packets: number;
}

/** __qdisc_drop(): link the skb onto the caller's to_free list. */
export function __qdisc_drop(skb: SkBuff, toFree: ToFree): void {
  skb.next = toFree.head;
  toFree.head = skb.addr;
}

/** qdisc_drop(): count the drop and defer the free. */
export function qdisc_drop(skb: SkBuff, sch: Qdisc, toFree: ToFree): number {
  __qdisc_drop(skb, toFree);
  sch.drops = sch.drops + 1;
  return NET_XMIT_DROP;
}

/** qdisc_peek_dequeued(): dequeue once and park the skb, counted as still queued. */
export function qdisc_peek_dequeued(sch: Qdisc): SkBuff | null {
  if (!sch.gsoSkb) {
    const skb = sch.ops.dequeue(sch);
    if (skb) {
      sch.gsoSkb = skb;
      sch.mem.writeU64(sch.addr + sch.L.gso_skb, skb.addr);
      sch.backlogInc(skb);
      sch.qlen = sch.qlen + 1;
    }
  }
  return sch.gsoSkb;
}

/** qdisc_dequeue_peeked(): the parked skb if any, else a fresh dequeue. */
export function qdisc_dequeue_peeked(sch: Qdisc): SkBuff | null {
  const skb = sch.gsoSkb;
  if (skb) {
    sch.gsoSkb = null;
    sch.mem.writeU64(sch.addr + sch.L.gso_skb, 0);
    sch.backlogDec(skb);
    sch.qlen = sch.qlen - 1;
    return skb;
  }
  return sch.ops.dequeue(sch);
}

/** The dequeue the device runs (dequeue_skb): a parked skb first. */
export function qdisc_dequeue(sch: Qdisc): SkBuff | null {
  return sch.gsoSkb ? qdisc_dequeue_peeked(sch) : sch.ops.dequeue(sch);
}

/** qdisc_reset(): ops->reset, then the parked skb goes and qlen/backlog are zeroed. */
export function qdisc_reset(sch: Qdisc): void {
  sch.ops.reset?.(sch);
  if (sch.gsoSkb) {
    const skb = sch.gsoSkb;
    sch.gsoSkb = null;
    sch.mem.writeU64(sch.addr + sch.L.gso_skb, 0);
    sch.pool.kfree_skb(skb);
  }
  sch.qlen = 0;
  sch.backlog = 0;
}

/** qdisc_destroy(): reset, ops->destroy, the owner released, the memory freed. */
export function qdisc_destroy(sch: Qdisc): void {
  qdisc_reset(sch);
  sch.ops.destroy?.(sch);
  sch.deactivated = true;
  sch.watchdog.cancel();
  sch.ops.owner?.put();
  sch.mem.bytes(sch.addr, sch.L.size).fill(0);
}

/** qdisc_enqueue_tail / qdisc_dequeue_head over a TypeScript list, as sch_fifo and pfifo_fast use. */
export class SkbQueue {
  private readonly items: SkBuff[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(skb: SkBuff): void {
    this.items.push(skb);
  }
  unshift(skb: SkBuff): void {
    if (this.head > 0) this.items[--this.head] = skb;
    else this.items.unshift(skb);
  }
  peek(): SkBuff | null {
    return this.head < this.items.length ? this.items[this.head]! : null;
  }
  shift(): SkBuff | null {
    if (this.head >= this.items.length) return null;
    const skb = this.items[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return skb;
  }
  /** Every queued skb, head first, emptying the queue. */
  drain(): SkBuff[] {
    const out = this.items.slice(this.head);
    this.items.length = 0;
    this.head = 0;
    return out;
  }
}

/** __qdisc_enqueue_tail + backlog, as sch_fifo's qdisc_enqueue_tail. */
export function qdisc_enqueue_tail(skb: SkBuff, sch: Qdisc, q: SkbQueue): number {
  q.push(skb);
  sch.backlogInc(skb);
  sch.qlen = sch.qlen + 1;
  return NET_XMIT_SUCCESS;
}

/** qdisc_dequeue_head: bstats counted as the packet leaves. */
export function qdisc_dequeue_head(sch: Qdisc, q: SkbQueue): SkBuff | null {
  const skb = q.shift();
  if (skb) {
    sch.qlen = sch.qlen - 1;
    sch.backlogDec(skb);
    sch.bstatsUpdate(skb);
  }
  return skb;
}

/** __qdisc_reset_queue: every queued skb freed. */
export function qdisc_reset_queue(sch: Qdisc, q: SkbQueue): void {
  for (const skb of q.drain()) sch.pool.kfree_skb(skb);
}

/** The prio2band map of pfifo_fast (sch_generic.c). */
export const PRIO2BAND = [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
const PFIFO_FAST_BANDS = 3;

/** pfifo_fast: three FIFO bands by skb->priority, limit = the device's tx_queue_len. */
export const pfifo_fast_ops: QdiscOps = {
  id: "pfifo_fast",
  static_flags: TCQ_F_CAN_BYPASS,
  init(sch) {
    sch.priv = Array.from({ length: PFIFO_FAST_BANDS }, () => new SkbQueue());
    return 0;
  },
  enqueue(skb, sch, toFree) {
    const bands = sch.priv as SkbQueue[];
    if (sch.qlen >= sch.dev.txQueueLen) return qdisc_drop(skb, sch, toFree);
    const band = PRIO2BAND[skb.priority & TC_PRIO_MAX]!;
    return qdisc_enqueue_tail(skb, sch, bands[band]!);
  },
  dequeue(sch) {
    for (const q of sch.priv as SkbQueue[]) {
      if (q.length) return qdisc_dequeue_head(sch, q);
    }
    return null;
  },
  peek(sch) {
    for (const q of sch.priv as SkbQueue[]) {
      if (q.length) return q.peek();
    }
    return null;
  },
  reset(sch) {
    for (const q of sch.priv as SkbQueue[]) qdisc_reset_queue(sch, q);
  },
};
