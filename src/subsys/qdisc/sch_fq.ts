/**
 * net/sched/sch_fq.c: Fair Queue packet scheduler. Flows are sockets (skb->sk; orphan packets by
 * flow hash), each with its own queue and a deficit round robin credit (quantum 2 * psched_mtu,
 * initial quantum 10 * psched_mtu for a new flow) over a new-flows and an old-flows list. Packets
 * leave no earlier than their departure time (EDT: skb->tstamp, which TCP stamps; fq marks its
 * sockets SK_PACING_FQ so they stop pacing themselves): a flow whose head packet is early is
 * throttled until then, and the watchdog wakes the device for the earliest throttled flow.
 * TC_PRIO_CONTROL packets go through an internal queue first. Per-flow limit 100 packets, total
 * limit 10000, packets more than the horizon (10 s) ahead are dropped. Idle flows are collected
 * after 3 s (flow_gc); the optional flow_max_rate pacing is not modelled.
 */
import { psched_mtu } from "./sch_fifo.js";
import {
  NET_XMIT_SUCCESS,
  type Qdisc,
  type QdiscOps,
  type QdiscOpt,
  qdisc_drop,
  SkbQueue,
  TC_PRIO_CONTROL,
  TC_PRIO_MAX,
} from "./sch_generic.js";
import type { SkBuff } from "./skbuff.js";

const NSEC_PER_SEC = 1e9;
/** SK_PACING_FQ (enum sk_pacing). */
export const SK_PACING_FQ = 2;
const FQ_GC_AGE_NS = 3 * NSEC_PER_SEC;

interface FqFlow {
  key: number;
  q: SkbQueue;
  credit: number;
  /** Which list holds it: 0 detached, 1 new, 2 old, 3 throttled. */
  where: 0 | 1 | 2 | 3;
  timeNextPacket: number;
  /** When it went idle (detached), for flow_gc and the initial quantum refill. */
  age: number;
}

export interface FqStats {
  flows: number;
  inactiveFlows: number;
  throttledFlows: number;
  gcFlows: number;
  highprioPackets: number;
  throttled: number;
  flowsPlimit: number;
  horizonDrops: number;
}

interface FqSched {
  flows: Map<number, FqFlow>;
  internal: FqFlow;
  newFlows: FqFlow[];
  oldFlows: FqFlow[];
  throttledFlows: FqFlow[];
  quantum: number;
  initialQuantum: number;
  flowPlimit: number;
  horizon: number;
  horizonDrop: boolean;
  flowRefillDelay: number;
  timeNextDelayedFlow: number;
  stats: FqStats;
  /** Where fq stores SK_PACING_FQ in a socket: offsetof(struct sock, sk_pacing_status), or -1. */
  pacingStatusOff: number;
}

const q = (sch: Qdisc) => sch.priv as FqSched;

function newFlow(key: number, now: number, quantum: number): FqFlow {
  return { key, q: new SkbQueue(), credit: quantum, where: 0, timeNextPacket: 0, age: now };
}

/** fq_classify(): the prio queue, the socket's flow, or (orphans) a flow per hash. */
function fqClassify(sch: Qdisc, skb: SkBuff, now: number): FqFlow {
  const p = q(sch);
  if ((skb.priority & TC_PRIO_MAX) === TC_PRIO_CONTROL) return p.internal;
  const sk = skb.sk;
  // Sockets are keyed by address (even numbers); orphans by hash with the low bit set.
  const key = sk ? sk : ((skb.hash << 1) | 1) >>> 0;
  let f = p.flows.get(key);
  if (!f) {
    // Garbage-collect idle flows as fq_gc does when the tree is walked.
    if (p.flows.size > 0 && p.flows.size % 64 === 0) fqGc(p, now);
    f = newFlow(key, now, p.initialQuantum);
    p.flows.set(key, f);
    p.stats.flows++;
    p.stats.inactiveFlows++;
    if (sk && p.pacingStatusOff >= 0) sch.mem.writeU32(sk + p.pacingStatusOff, SK_PACING_FQ);
  }
  return f;
}

function fqGc(p: FqSched, now: number): void {
  for (const [key, f] of p.flows) {
    if (f.where === 0 && f.q.length === 0 && now - f.age > FQ_GC_AGE_NS) {
      p.flows.delete(key);
      p.stats.flows--;
      p.stats.inactiveFlows--;
      p.stats.gcFlows++;
    }
  }
}

/** fq_flow_set_throttled(): off the lists until its next packet's time. */
function setThrottled(p: FqSched, f: FqFlow): void {
  f.where = 3;
  p.throttledFlows.push(f);
  p.stats.throttledFlows++;
  p.stats.throttled++;
  if (p.timeNextDelayedFlow > f.timeNextPacket) p.timeNextDelayedFlow = f.timeNextPacket;
}

/** fq_check_throttled(): flows whose time came go back to the old flows. */
function checkThrottled(p: FqSched, now: number): void {
  if (p.timeNextDelayedFlow > now) return;
  p.timeNextDelayedFlow = Number.POSITIVE_INFINITY;
  const still: FqFlow[] = [];
  for (const f of p.throttledFlows) {
    if (f.timeNextPacket > now) {
      still.push(f);
      if (f.timeNextPacket < p.timeNextDelayedFlow) p.timeNextDelayedFlow = f.timeNextPacket;
      continue;
    }
    f.where = 2;
    p.oldFlows.push(f);
    p.stats.throttledFlows--;
  }
  p.throttledFlows = still;
}

function init(sch: Qdisc, opt: QdiscOpt | undefined): number {
  const mtu = psched_mtu(sch);
  const now = sch.timers.now();
  const p: FqSched = {
    flows: new Map(),
    internal: newFlow(-1, now, 0),
    newFlows: [],
    oldFlows: [],
    throttledFlows: [],
    quantum: 2 * mtu,
    initialQuantum: 10 * mtu,
    flowPlimit: 100,
    horizon: 10 * NSEC_PER_SEC,
    horizonDrop: true,
    flowRefillDelay: 40e6,
    timeNextDelayedFlow: Number.POSITIVE_INFINITY,
    stats: {
      flows: 0,
      inactiveFlows: 0,
      throttledFlows: 0,
      gcFlows: 0,
      highprioPackets: 0,
      throttled: 0,
      flowsPlimit: 0,
      horizonDrops: 0,
    },
    pacingStatusOff: -1,
  };
  sch.priv = p;
  sch.limit = 10000;
  return change(sch, opt ?? {});
}

function change(sch: Qdisc, opt: QdiscOpt): number {
  const p = q(sch);
  const num = (k: string): number | undefined => (typeof opt[k] === "number" ? (opt[k] as number) : undefined);
  if (num("limit") !== undefined) sch.limit = num("limit")!;
  if (num("flow_limit") !== undefined) p.flowPlimit = num("flow_limit")!;
  if (num("quantum") !== undefined) {
    if (num("quantum")! <= 0 || num("quantum")! > 1 << 20) return -22;
    p.quantum = num("quantum")!;
  }
  if (num("initial_quantum") !== undefined) p.initialQuantum = num("initial_quantum")!;
  if (num("horizon") !== undefined) p.horizon = num("horizon")!;
  if (typeof opt.pacing_status_off === "number") p.pacingStatusOff = opt.pacing_status_off;
  return 0;
}

export function fqQdiscOps(pacingStatusOff = -1): QdiscOps {
  return {
    id: "fq",
    init: (sch, opt) => {
      const err = init(sch, opt);
      if (!err && q(sch).pacingStatusOff < 0) q(sch).pacingStatusOff = pacingStatusOff;
      return err;
    },
    change,
    enqueue(skb, sch, toFree) {
      const p = q(sch);
      if (sch.qlen >= sch.limit) return qdisc_drop(skb, sch, toFree);
      const now = sch.timers.now();
      let timeToSend = skb.tstampNs;
      if (!timeToSend) {
        timeToSend = now;
      } else if (timeToSend > now + p.horizon) {
        // fq_packet_beyond_horizon(): drop (or cap with horizon_cap).
        if (p.horizonDrop) {
          p.stats.horizonDrops++;
          return qdisc_drop(skb, sch, toFree);
        }
        timeToSend = now + p.horizon;
      }
      skbTime.set(skb, timeToSend);
      const f = fqClassify(sch, skb, now);
      if (f !== p.internal && f.q.length >= p.flowPlimit) {
        p.stats.flowsPlimit++;
        return qdisc_drop(skb, sch, toFree);
      }
      if (f !== p.internal && f.where === 0) {
        // fq_flow_is_detached: back to the new flows, refilling the credit after an idle period.
        if (now - f.age > p.flowRefillDelay) f.credit = Math.max(f.credit, p.quantum);
        f.where = 1;
        p.newFlows.push(f);
        p.stats.inactiveFlows--;
      }
      if (f === p.internal) p.stats.highprioPackets++;
      f.q.push(skb);
      sch.qlen = sch.qlen + 1;
      sch.backlogInc(skb);
      return NET_XMIT_SUCCESS;
    },
    dequeue(sch) {
      const p = q(sch);
      if (!sch.qlen) return null;
      const now = sch.timers.now();
      const take = (f: FqFlow): SkBuff => {
        const skb = f.q.shift()!;
        sch.qlen = sch.qlen - 1;
        sch.backlogDec(skb);
        sch.bstatsUpdate(skb);
        skbTime.delete(skb);
        return skb;
      };
      if (p.internal.q.length) return take(p.internal);
      checkThrottled(p, now);
      for (;;) {
        const head = p.newFlows.length ? p.newFlows : p.oldFlows.length ? p.oldFlows : null;
        if (!head) {
          if (p.throttledFlows.length) sch.watchdog.schedule(p.timeNextDelayedFlow, 0);
          return null;
        }
        const f = head[0]!;
        if (f.credit <= 0) {
          f.credit += p.quantum;
          head.shift();
          f.where = 2;
          p.oldFlows.push(f);
          continue;
        }
        const skb = f.q.peek();
        if (skb) {
          const timeNext = Math.max(skbTime.get(skb) ?? now, f.timeNextPacket);
          if (now < timeNext) {
            head.shift();
            f.timeNextPacket = timeNext;
            setThrottled(p, f);
            continue;
          }
          const out = take(f);
          f.credit -= out.pktLen;
          return out;
        }
        // An empty flow: to the old flows (so a new flow cannot starve them), else detached.
        head.shift();
        if (head === p.newFlows && p.oldFlows.length) {
          f.where = 2;
          p.oldFlows.push(f);
        } else {
          f.where = 0;
          f.age = now;
          p.stats.inactiveFlows++;
        }
      }
    },
    peek(sch) {
      const p = q(sch);
      return p.internal.q.peek() ?? p.newFlows[0]?.q.peek() ?? p.oldFlows[0]?.q.peek() ?? null;
    },
    reset(sch) {
      const p = q(sch);
      for (const f of [p.internal, ...p.flows.values()]) for (const skb of f.q.drain()) sch.pool.kfree_skb(skb);
      p.flows.clear();
      p.newFlows = [];
      p.oldFlows = [];
      p.throttledFlows = [];
      p.timeNextDelayedFlow = Number.POSITIVE_INFINITY;
      p.stats.flows = 0;
      p.stats.inactiveFlows = 0;
      p.stats.throttledFlows = 0;
    },
    destroy(sch) {
      sch.watchdog.cancel();
    },
  };
}

/** fq_skb_cb(skb)->time_to_send. */
const skbTime = new WeakMap<SkBuff, number>();

/** fq's counters (`tc -s qdisc show` of an fq). */
export function fqStats(sch: Qdisc): FqStats | undefined {
  return sch.ops.id === "fq" ? { ...q(sch).stats } : undefined;
}
