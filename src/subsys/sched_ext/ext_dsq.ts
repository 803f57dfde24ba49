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

  constructor(
    readonly id: bigint,
    /** The CPU of a local DSQ, else -1. */
    readonly cpu = -1,
  ) {}

  get nr(): number {
    return this.list.length;
  }

  get builtin(): boolean {
    return (this.id & SCX_DSQ_FLAG_BUILTIN) !== 0n;
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
    const i = this.list.indexOf(p);
    if (i < 0) return;
    this.list.splice(i, 1);
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
