/**
 * Dispatch queues (kernel/sched/ext.c: struct scx_dispatch_q, dispatch_enqueue, task_unlink_from_dsq,
 * find_user_dsq, create_dsq): a FIFO list, or a priority queue ordered by `p->scx.dsq_vtime` (FIFO
 * among equal vtimes) for user DSQs that take vtime inserts. Each insert bumps the DSQ's `seq` and
 * stamps the task with it, which is what the DSQ iterator compares to skip tasks queued after it
 * started. The built-in DSQs (each CPU's local DSQ, the global one) are FIFO only.
 */
import { SCX_DSQ_FLAG_BUILTIN } from "./consts.js";

/** What a DSQ holds: the ext class's per-task entity. */
export interface DsqTask {
  dsq: ScxDispatchQ | null;
  /** p->scx.dsq_seq: the DSQ's seq when the task was queued. */
  dsq_seq: number;
  /** SCX_TASK_DSQ_ON_PRIQ. */
  on_priq: boolean;
  dsq_vtime: bigint;
  /** Tie-breaker of equal vtimes: insertion order. */
  priq_order: number;
}

export class ScxDispatchQ<T extends DsqTask = DsqTask> {
  /** Tasks in dispatch order (for a PRIQ DSQ, kept sorted by vtime). */
  readonly list: T[] = [];
  seq = 0;
  /** Whether it holds vtime-ordered tasks now (a DSQ must not mix the two). */
  private priqCount = 0;
  private order = 0;

  /** SCX_DSQ_FLAG_BUILTIN is set in the id. */
  readonly builtin: boolean;

  constructor(
    readonly id: bigint,
    /** The CPU of a local DSQ, else -1. */
    readonly cpu = -1,
  ) {
    this.builtin = (id & SCX_DSQ_FLAG_BUILTIN) !== 0n;
  }

  get nr(): number {
    return this.list.length;
  }

  get hasPriq(): boolean {
    return this.priqCount > 0;
  }

  get hasFifo(): boolean {
    return this.list.length > this.priqCount;
  }

  /** Insert at the tail (or head) in FIFO order. */
  pushFifo(p: T, head: boolean): void {
    p.dsq = this;
    p.on_priq = false;
    if (head) this.list.unshift(p);
    else this.list.push(p);
    this.stamp(p);
  }

  /** Insert by vtime, after every task of an equal vtime. */
  pushPriq(p: T): void {
    p.dsq = this;
    p.on_priq = true;
    p.priq_order = this.order++;
    this.priqCount++;
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.list[mid].dsq_vtime <= p.dsq_vtime) lo = mid + 1;
      else hi = mid;
    }
    this.list.splice(lo, 0, p);
    this.stamp(p);
  }

  private stamp(p: T): void {
    this.seq = (this.seq + 1) >>> 0;
    p.dsq_seq = this.seq;
  }

  /** task_unlink_from_dsq. */
  remove(p: T): void {
    const list = this.list;
    const i = list.indexOf(p);
    if (i < 0) return;
    // in place: splice would make an array of the removed element every time
    if (i === 0) list.shift();
    else {
      for (let j = i + 1; j < list.length; j++) list[j - 1] = list[j]!;
      list.pop();
    }
    if (p.on_priq) this.priqCount--;
    p.on_priq = false;
    p.dsq = null;
  }

  first(): T | undefined {
    return this.list[0];
  }

  shift(): T | undefined {
    const p = this.list[0];
    if (p) this.remove(p);
    return p;
  }
}

/**
 * The user DSQs by id (the scheduler's dsq_hash): a Map that remembers its last hit, since
 * a scheduler inserts into and consumes from the same few DSQs event after event and a bigint
 * key hashes on every lookup.
 */
export class DsqMap<T extends DsqTask = DsqTask> extends Map<bigint, ScxDispatchQ<T>> {
  private lastId = -1n;
  private lastDsq: ScxDispatchQ<T> | undefined = undefined;

  override get(id: bigint): ScxDispatchQ<T> | undefined {
    if (id === this.lastId) return this.lastDsq;
    const d = super.get(id);
    if (d !== undefined) {
      this.lastId = id;
      this.lastDsq = d;
    }
    return d;
  }

  override set(id: bigint, d: ScxDispatchQ<T>): this {
    if (id === this.lastId) this.lastDsq = d;
    return super.set(id, d);
  }

  override delete(id: bigint): boolean {
    if (id === this.lastId) {
      this.lastId = -1n;
      this.lastDsq = undefined;
    }
    return super.delete(id);
  }

  override clear(): void {
    this.lastId = -1n;
    this.lastDsq = undefined;
    super.clear();
  }
}
