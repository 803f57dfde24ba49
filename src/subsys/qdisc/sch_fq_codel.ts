/**
 * net/sched/sch_fq_codel.c with include/net/codel_impl.h: packets are hashed into 1024 flow
 * queues served by deficit round robin (quantum = psched_mtu, new flows before old ones), each
 * queue under CoDel (target 5 ms, interval 100 ms: once the sojourn time stays above target for
 * an interval, drop or ECN-mark at the head, the next drop interval/sqrt(count) later). Over the
 * limit (10240 packets) the fattest queue loses up to 64 packets from its head, and the enqueue
 * reports NET_XMIT_CN when the arriving packet's own queue was the one cut.
 */
import { psched_mtu } from "./sch_fifo.js";
import {
  __qdisc_drop,
  NET_XMIT_CN,
  NET_XMIT_SUCCESS,
  type Qdisc,
  type QdiscOps,
  type QdiscOpt,
  SkbQueue,
  type ToFree,
} from "./sch_generic.js";
import type { SkBuff } from "./skbuff.js";

const MS = 1e6;

interface CodelVars {
  count: number;
  lastcount: number;
  dropping: boolean;
  firstAboveTime: number;
  dropNext: number;
  ldelay: number;
}

interface FqCodelFlow {
  q: SkbQueue;
  backlog: number;
  deficit: number;
  /** In new_flows (1), old_flows (2) or neither (0). */
  where: 0 | 1 | 2;
  cvars: CodelVars;
}

export interface FqCodelStats {
  maxpacket: number;
  dropOverlimit: number;
  ecnMark: number;
  newFlowCount: number;
  codelDrops: number;
}

interface FqCodelSched {
  flows: FqCodelFlow[];
  newFlows: FqCodelFlow[];
  oldFlows: FqCodelFlow[];
  quantum: number;
  target: number;
  interval: number;
  ecn: boolean;
  dropBatch: number;
  stats: FqCodelStats;
}

const P = (sch: Qdisc) => sch.priv as FqCodelSched;
const enqueuedAt = new WeakMap<SkBuff, number>();

/** An skb's ECN codepoint lives with the packet (its IP header): the sender tells us. */
export interface EcnPacket {
  ect?: boolean;
  ce?: boolean;
}

/** INET_ECN_set_ce(): mark an ECT packet Congestion Experienced. */
function setCe(skb: SkBuff): boolean {
  const pkt = skb.meta as EcnPacket | undefined;
  if (!pkt?.ect) return false;
  pkt.ce = true;
  return true;
}

function controlLaw(t: number, interval: number, count: number): number {
  return t + interval / Math.sqrt(count);
}

function shouldDrop(sch: Qdisc, p: FqCodelSched, v: CodelVars, skb: SkBuff | null, now: number): boolean {
  if (!skb) {
    v.firstAboveTime = 0;
    return false;
  }
  const sojourn = now - (enqueuedAt.get(skb) ?? now);
  v.ldelay = sojourn;
  if (skb.pktLen > p.stats.maxpacket) p.stats.maxpacket = skb.pktLen;
  if (sojourn < p.target || sch.backlog <= p.stats.maxpacket) {
    v.firstAboveTime = 0;
    return false;
  }
  if (v.firstAboveTime === 0) {
    v.firstAboveTime = now + p.interval;
    return false;
  }
  return now >= v.firstAboveTime;
}

function flowDequeue(sch: Qdisc, f: FqCodelFlow): SkBuff | null {
  const skb = f.q.shift();
  if (!skb) return null;
  f.backlog -= skb.pktLen;
  sch.qlen = sch.qlen - 1;
  sch.backlogDec(skb);
  return skb;
}

function codelDrop(sch: Qdisc, p: FqCodelSched, skb: SkBuff): void {
  p.stats.codelDrops++;
  sch.drops = sch.drops + 1;
  sch.pool.kfree_skb(skb);
}

/** codel_dequeue() over one flow's queue. */
function codelDequeue(sch: Qdisc, p: FqCodelSched, f: FqCodelFlow, now: number): SkBuff | null {
  const v = f.cvars;
  let skb = flowDequeue(sch, f);
  if (!skb) {
    v.dropping = false;
    return null;
  }
  let drop = shouldDrop(sch, p, v, skb, now);
  if (v.dropping) {
    if (!drop) {
      v.dropping = false;
    } else if (now >= v.dropNext) {
      while (v.dropping && now >= v.dropNext) {
        v.count++;
        if (p.ecn && setCe(skb!)) {
          p.stats.ecnMark++;
          v.dropNext = controlLaw(v.dropNext, p.interval, v.count);
          return skb;
        }
        codelDrop(sch, p, skb!);
        skb = flowDequeue(sch, f);
        if (!shouldDrop(sch, p, v, skb, now)) v.dropping = false;
        else v.dropNext = controlLaw(v.dropNext, p.interval, v.count);
      }
    }
  } else if (drop) {
    if (p.ecn && setCe(skb)) {
      p.stats.ecnMark++;
    } else {
      codelDrop(sch, p, skb);
      skb = flowDequeue(sch, f);
      drop = shouldDrop(sch, p, v, skb, now);
    }
    v.dropping = true;
    const delta = v.count - v.lastcount;
    v.count = delta > 1 && now - v.dropNext < 16 * p.interval ? delta : 1;
    v.lastcount = v.count;
    v.dropNext = controlLaw(now, p.interval, v.count);
  }
  return skb;
}

/** fq_codel_drop(): cut up to half the fattest queue's backlog (at most drop_batch packets) from its head. */
function fqCodelDrop(sch: Qdisc, p: FqCodelSched, toFree: ToFree): number {
  let fat = 0;
  for (let i = 1; i < p.flows.length; i++) if (p.flows[i]!.backlog > p.flows[fat]!.backlog) fat = i;
  const f = p.flows[fat]!;
  const threshold = f.backlog >> 1;
  let len = 0;
  let n = 0;
  do {
    const skb = flowDequeue(sch, f);
    if (!skb) break;
    len += skb.pktLen;
    __qdisc_drop(skb, toFree);
    n++;
  } while (len < threshold && n < p.dropBatch);
  sch.drops = sch.drops + n;
  p.stats.dropOverlimit += n;
  return fat;
}

function change(sch: Qdisc, opt: QdiscOpt): number {
  const p = P(sch);
  const num = (k: string): number | undefined => (typeof opt[k] === "number" ? (opt[k] as number) : undefined);
  if (num("limit") !== undefined) sch.limit = num("limit")!;
  if (num("target") !== undefined) p.target = num("target")!;
  if (num("interval") !== undefined) p.interval = num("interval")!;
  if (num("quantum") !== undefined) p.quantum = Math.max(256, num("quantum")!);
  if (typeof opt.ecn === "boolean") p.ecn = opt.ecn;
  return 0;
}

export function fqCodelQdiscOps(): QdiscOps {
  return {
    id: "fq_codel",
    init(sch, opt) {
      const flowsCnt = typeof opt?.flows === "number" ? opt.flows : 1024;
      sch.limit = 10 * 1024;
      sch.priv = {
        flows: Array.from({ length: flowsCnt }, () => ({
          q: new SkbQueue(),
          backlog: 0,
          deficit: 0,
          where: 0 as const,
          cvars: { count: 0, lastcount: 0, dropping: false, firstAboveTime: 0, dropNext: 0, ldelay: 0 },
        })),
        newFlows: [],
        oldFlows: [],
        quantum: psched_mtu(sch),
        target: 5 * MS,
        interval: 100 * MS,
        ecn: true,
        dropBatch: 64,
        stats: { maxpacket: 0, dropOverlimit: 0, ecnMark: 0, newFlowCount: 0, codelDrops: 0 },
      } satisfies FqCodelSched;
      return change(sch, opt ?? {});
    },
    change,
    enqueue(skb, sch, toFree) {
      const p = P(sch);
      const idx = (skb.hash >>> 0) % p.flows.length;
      const f = p.flows[idx]!;
      enqueuedAt.set(skb, sch.timers.now());
      f.q.push(skb);
      f.backlog += skb.pktLen;
      sch.backlogInc(skb);
      if (f.where === 0) {
        f.where = 1;
        p.newFlows.push(f);
        f.deficit = p.quantum;
        p.stats.newFlowCount++;
      }
      sch.qlen = sch.qlen + 1;
      if (sch.qlen <= sch.limit) return NET_XMIT_SUCCESS;
      const ret = fqCodelDrop(sch, p, toFree);
      return ret === idx ? NET_XMIT_CN : NET_XMIT_SUCCESS;
    },
    dequeue(sch) {
      const p = P(sch);
      const now = sch.timers.now();
      for (;;) {
        const head = p.newFlows.length ? p.newFlows : p.oldFlows.length ? p.oldFlows : null;
        if (!head) return null;
        const f = head[0]!;
        if (f.deficit <= 0) {
          f.deficit += p.quantum;
          head.shift();
          f.where = 2;
          p.oldFlows.push(f);
          continue;
        }
        const skb = codelDequeue(sch, p, f, now);
        if (!skb) {
          head.shift();
          if (head === p.newFlows && p.oldFlows.length) {
            f.where = 2;
            p.oldFlows.push(f);
          } else f.where = 0;
          continue;
        }
        f.deficit -= skb.pktLen;
        sch.bstatsUpdate(skb);
        enqueuedAt.delete(skb);
        return skb;
      }
    },
    peek(sch) {
      const p = P(sch);
      return p.newFlows[0]?.q.peek() ?? p.oldFlows[0]?.q.peek() ?? null;
    },
    reset(sch) {
      const p = P(sch);
      for (const f of p.flows) {
        for (const skb of f.q.drain()) sch.pool.kfree_skb(skb);
        f.backlog = 0;
        f.where = 0;
        f.cvars = { count: 0, lastcount: 0, dropping: false, firstAboveTime: 0, dropNext: 0, ldelay: 0 };
      }
      p.newFlows = [];
      p.oldFlows = [];
    },
  };
}

export function fqCodelStats(sch: Qdisc): FqCodelStats | undefined {
  return sch.ops.id === "fq_codel" ? { ...P(sch).stats } : undefined;
}
