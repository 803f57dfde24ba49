/**
 * include/linux/netdevice.h and net/core/dev.c as far as the packet scheduler goes: a `struct
 * net_device` with its `struct netdev_queue`s in VM memory, the root qdisc and the qdisc hash
 * (qdisc_lookup by handle), __dev_queue_xmit's enqueue with the to_free list freed after the
 * enqueue returns, the device's dequeue (qdisc_run, round robin over the tx queues' qdiscs) and
 * __netif_schedule, which the watchdog calls to have the device dequeue again.
 */
import type { Btf } from "../../btf/btf.js";
import type { MemRegion } from "../../kernel/bpf.js";
import type { VmMemory } from "../../vm/memory.js";
import { IFNAMSIZ } from "./btf.js";
import {
  NET_XMIT_MASK,
  NET_XMIT_SUCCESS,
  type Qdisc,
  type QdiscLayout,
  type QdiscTimers,
  qdisc_dequeue,
  TC_H_MAJ,
  ToFree,
} from "./sch_generic.js";
import { memberOffset, type SkBuff, type SkbPool, structId, structSize } from "./skbuff.js";

/** What a device needs from the kernel it lives in. */
export interface NetDeviceEnv {
  readonly mem: VmMemory;
  readonly pool: SkbPool;
  readonly timers: QdiscTimers;
  readonly qdiscLayout: QdiscLayout;
  readonly btf: Btf;
  alloc(size: number, name: string): MemRegion;
  free(region: MemRegion): void;
}

export class NetdevQueue {
  /** txq->qdisc: where packets for this queue are enqueued (the root, or mq's child). */
  qdisc: Qdisc | null = null;
  constructor(
    readonly dev: NetDevice,
    readonly index: number,
    readonly region: MemRegion,
  ) {}
  get addr(): number {
    return this.region.addr;
  }
}

export interface NetDeviceOpts {
  name: string;
  ifindex: number;
  mtu?: number;
  hardHeaderLen?: number;
  numTxQueues?: number;
  txQueueLen?: number;
  /** IFF_NO_QUEUE (loopback, veth): noqueue until a qdisc is added. */
  noQueue?: boolean;
}

export class NetDevice {
  readonly name: string;
  readonly ifindex: number;
  readonly region: MemRegion;
  readonly queues: NetdevQueue[] = [];
  readonly noQueue: boolean;
  readonly hardHeaderLen: number;
  /** dev->qdisc: the root (null: noqueue). */
  qdisc: Qdisc | null = null;
  /** qdisc_hash: every non-root qdisc of the device by handle major, with the root. */
  readonly hash = new Map<number, Qdisc>();
  /** __netif_schedule(): the transmitter wants to be told the qdisc may dequeue again. */
  onSchedule?: () => void;
  /** Packets __dev_queue_xmit passed straight through (noqueue). */
  onDirectXmit?: (skb: SkBuff) => void;
  private rr = 0;
  private readonly toFree: ToFree;

  constructor(
    readonly env: NetDeviceEnv,
    o: NetDeviceOpts,
  ) {
    this.name = o.name;
    this.ifindex = o.ifindex;
    this.noQueue = o.noQueue ?? false;
    this.hardHeaderLen = o.hardHeaderLen ?? 14;
    const btf = env.btf;
    const devId = structId(btf, "net_device");
    const m = (n: string) => memberOffset(btf, devId, n);
    const size = structSize(btf, devId);
    this.region = env.alloc(size, "net_device");
    const a = this.region.addr;
    const mem = env.mem;
    mem.writeBytes(a + m("name"), new TextEncoder().encode(o.name.slice(0, IFNAMSIZ - 1)));
    mem.writeU32(a + m("ifindex"), o.ifindex);
    mem.writeU32(a + m("mtu"), o.mtu ?? 1500);
    mem.writeU16(a + m("hard_header_len"), this.hardHeaderLen);
    const ntx = o.numTxQueues ?? 1;
    mem.writeU32(a + m("num_tx_queues"), ntx);
    mem.writeU32(a + m("real_num_tx_queues"), ntx);
    mem.writeU32(a + m("tx_queue_len"), o.txQueueLen ?? 1000);
    const qId = structId(btf, "netdev_queue");
    const qSize = structSize(btf, qId);
    const qDev = memberOffset(btf, qId, "dev");
    for (let i = 0; i < ntx; i++) {
      const r = env.alloc(qSize, "netdev_queue");
      mem.writeU64(r.addr + qDev, a);
      this.queues.push(new NetdevQueue(this, i, r));
    }
    const tf = env.alloc(8, "bpf_sk_buff_ptr");
    this.toFree = new ToFree(mem, tf.addr);
    this.fields = { mtu: a + m("mtu"), txQueueLen: a + m("tx_queue_len") };
  }
  private readonly fields: { mtu: number; txQueueLen: number };

  get addr(): number {
    return this.region.addr;
  }
  get mtu(): number {
    return this.env.mem.readU32(this.fields.mtu);
  }
  get txQueueLen(): number {
    return this.env.mem.readU32(this.fields.txQueueLen);
  }
  get numTxQueues(): number {
    return this.queues.length;
  }

  /** netif_is_multiqueue() */
  isMultiqueue(): boolean {
    return this.queues.length > 1;
  }

  /** qdisc_lookup(dev, handle): the root or a hashed qdisc whose handle major matches. */
  qdiscLookup(handle: number): Qdisc | null {
    const maj = TC_H_MAJ(handle);
    if (this.qdisc && TC_H_MAJ(this.qdisc.handle) === maj) return this.qdisc;
    return this.hash.get(maj) ?? null;
  }

  /** __netif_schedule() */
  netifSchedule(): void {
    this.onSchedule?.();
  }

  /** The tx queue an skb goes to (netdev_pick_tx: skb->queue_mapping, else the flow hash). */
  pickTx(skb: SkBuff): NetdevQueue {
    const n = this.queues.length;
    return n === 1 ? this.queues[0]! : this.queues[(skb.hash >>> 0) % n]!;
  }

  /**
   * __dev_queue_xmit(): enqueue into the tx queue's qdisc; whatever the qdisc dropped onto to_free
   * is freed after the enqueue returned (outside the root lock). Returns the NET_XMIT code.
   */
  queueXmit(skb: SkBuff): number {
    const txq = this.pickTx(skb);
    const q = txq.qdisc;
    if (!q) {
      // noqueue: straight to the driver.
      this.onDirectXmit?.(skb);
      return NET_XMIT_SUCCESS;
    }
    this.toFree.head = 0;
    skb.enqueuedAt = this.env.timers.now();
    const rc = q.ops.enqueue(skb, q, this.toFree);
    const head = this.toFree.head;
    this.toFree.head = 0;
    if (head) this.env.pool.kfree_skb_list(head);
    return rc & NET_XMIT_MASK;
  }

  /** The distinct qdiscs packets are dequeued from (the root, or each tx queue's under mq). */
  private txQdiscs(): Qdisc[] {
    const out: Qdisc[] = [];
    for (const txq of this.queues) if (txq.qdisc && !out.includes(txq.qdisc)) out.push(txq.qdisc);
    return out;
  }

  /** qdisc_run(): the next packet for the wire, tx queues served round robin; null when none may go now. */
  dequeue(): SkBuff | null {
    const qs = this.txQdiscs();
    for (let i = 0; i < qs.length; i++) {
      const q = qs[(this.rr + i) % qs.length]!;
      const skb = qdisc_dequeue(q);
      if (skb) {
        this.rr = (this.rr + i + 1) % qs.length;
        return skb;
      }
    }
    return null;
  }

  /** Packets queued on the device (sum of the tx queues' qdiscs). */
  get qlen(): number {
    let n = 0;
    for (const q of this.txQdiscs()) n += q.qlen;
    return n;
  }
  get backlog(): number {
    let n = 0;
    for (const q of this.txQdiscs()) n += q.backlog;
    return n;
  }
}
