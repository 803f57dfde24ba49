/**
 * net/sched/sch_fq.c (6.18): Fair Queue packet scheduler. Flows are sockets (skb->sk; orphan
 * packets by flow hash), each with a queue ordered by departure time and a deficit round robin
 * credit (quantum 2 * psched_mtu, initial quantum 10 * psched_mtu for a new flow) over a new-flows
 * and an old-flows list, in one of three priority bands (skb->priority through the prio2band map;
 * the bands share the link by weight, 9:3:1 by default, and each holds at most `limit` packets).
 * Packets leave no earlier than their departure time (EDT: skb->tstamp, which TCP stamps; fq marks
 * its sockets SK_PACING_FQ so they stop pacing themselves): a flow whose head packet is early is
 * throttled until then, and the watchdog wakes the device for the earliest throttled flow. A
 * packet without a timestamp is paced by fq itself at min(sk_pacing_rate, maxrate); maxrate caps
 * every flow. While no flow is eligible, up to 8 packets due now take the fast path (a FIFO served
 * first). Per-flow limit 100 packets, packets more than the horizon (10 s) ahead are dropped,
 * idle flows are collected after 3 s (flow_gc).
 */
import { psched_mtu } from "./sch_fifo.js";
import {
  NET_XMIT_SUCCESS,
  type Qdisc,
  type QdiscOps,
  type QdiscOpt,
  qdisc_drop,
  SkbQueue,
  TC_PRIO_MAX,
} from "./sch_generic.js";
import type { SkBuff } from "./skbuff.js";

const NSEC_PER_SEC = 1e9;
/** SK_PACING_FQ (enum sk_pacing). */
export const SK_PACING_FQ = 2;
const FQ_GC_AGE_NS = 3 * NSEC_PER_SEC;
const FQ_BANDS = 3;
/** ~0UL: no rate limit. */
const NO_RATE = Number.POSITIVE_INFINITY;
/** sch_default_prio2band: TC_PRIO_CONTROL and interactive traffic in band 0, bulk in 2. */
const DEFAULT_PRIO2BAND = [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];

interface FqFlow {
  key: number;
  /** Packets in departure order (the kernel's head list). */
  q: SkbQueue;
  /** The head list's last packet. */
  tail: SkBuff | null;
  /** Packets that arrived with an earlier departure time than the tail (the kernel's t_root). */
  early: SkBuff[];
  credit: number;
  /** Which list holds it: 0 detached, 1 new, 2 old, 3 throttled. */
  where: 0 | 1 | 2 | 3;
  band: number;
  timeNextPacket: number;
  /** When it went idle (detached), for flow_gc and the initial quantum refill. */
  age: number;
}

export interface FqStats {
  flows: number;
  inactiveFlows: number;
  throttledFlows: number;
  gcFlows: number;
  fastpathPackets: number;
  throttled: number;
  flowsPlimit: number;
  horizonDrops: number;
  bandDrops: number[];
  pktsTooLong: number;
}

interface Band {
  newFlows: FqFlow[];
  oldFlows: FqFlow[];
  credit: number;
  quantum: number;
}

interface FqSched {
  flows: Map<number, FqFlow>;
  /** The fast path's FIFO. */
  internal: FqFlow;
  bands: Band[];
  bandNr: number;
  bandPktCount: number[];
  prio2band: number[];
  /** Ordered by timeNextPacket (the kernel's `delayed` rbtree). */
  throttledFlows: FqFlow[];
  quantum: number;
  initialQuantum: number;
  flowPlimit: number;
  horizon: number;
  horizonDrop: boolean;
  flowRefillDelay: number;
  rateEnable: boolean;
  /** Bytes per second; NO_RATE for none. */
  flowMaxRate: number;
  lowRateThreshold: number;
  timeNextDelayedFlow: number;
  stats: FqStats;
  sock: FqSockOffsets;
}

/** Where fq reads and writes a socket: offsets in struct sock, -1 when TCP declared none. */
export interface FqSockOffsets {
  pacingStatus: number;
  pacingRate: number;
}

const q = (sch: Qdisc) => sch.priv as FqSched;

function newFlow(key: number, now: number, credit: number): FqFlow {
  return { key, q: new SkbQueue(), tail: null, early: [], credit, where: 0, band: 0, timeNextPacket: 0, age: now };
}

const skbTime = (skb: SkBuff): number => fqCb.get(skb)!.time;

/** fq_peek(): the earlier of the head list's first and the early packets' first. */
function fqPeek(f: FqFlow): SkBuff | null {
  const head = f.q.peek();
  const early = f.early[0];
  if (!early) return head;
  if (!head) return early;
  return skbTime(early) < skbTime(head) ? early : head;
}

function fqErase(f: FqFlow, skb: SkBuff): void {
  if (skb === f.q.peek()) f.q.shift();
  else f.early.shift();
}

/** flow_queue_add(): in order at the tail, or among the early packets by departure time. */
function flowQueueAdd(f: FqFlow, skb: SkBuff): void {
  const t = skbTime(skb);
  if (!f.q.length || t >= skbTime(f.tail!)) {
    f.q.push(skb);
    f.tail = skb;
    return;
  }
  let lo = 0;
  let hi = f.early.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (t >= skbTime(f.early[mid]!)) lo = mid + 1;
    else hi = mid;
  }
  f.early.splice(lo, 0, skb);
}

const flowLen = (f: FqFlow) => f.q.length + f.early.length;

/** fq_fastpath_check(): due now, and nothing else eligible (or nothing queued), and no maxrate. */
function fastpath(sch: Qdisc, p: FqSched, time: number, now: number): boolean {
  if (time > now) return false;
  if (sch.qlen !== 0) {
    const active = p.flows.size - p.stats.inactiveFlows - p.stats.throttledFlows;
    if (active !== 0) return false;
    if (flowLen(p.internal) >= 8) return false;
    if (p.timeNextDelayedFlow <= now) return false;
  }
  return p.flowMaxRate === NO_RATE;
}

function setPacingFq(sch: Qdisc, p: FqSched, sk: number): void {
  if (sk && p.rateEnable && p.sock.pacingStatus >= 0) sch.mem.writeU32(sk + p.sock.pacingStatus, SK_PACING_FQ);
}

/** fq_classify(): the fast path, the socket's flow, or (orphans) a flow per hash. */
function fqClassify(sch: Qdisc, skb: SkBuff, now: number): FqFlow {
  const p = q(sch);
  const sk = skb.sk;
  if (fastpath(sch, p, skbTime(skb), now)) {
    p.stats.fastpathPackets++;
    setPacingFq(sch, p, sk);
    return p.internal;
  }
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
    setPacingFq(sch, p, sk);
  }
  return f;
}

function fqGc(p: FqSched, now: number): void {
  for (const [key, f] of p.flows) {
    if (f.where === 0 && flowLen(f) === 0 && now - f.age > FQ_GC_AGE_NS) {
      p.flows.delete(key);
      p.stats.flows--;
      p.stats.inactiveFlows--;
      p.stats.gcFlows++;
    }
  }
}

function addTail(p: FqSched, f: FqFlow, old: boolean): void {
  const b = p.bands[f.band]!;
  f.where = old ? 2 : 1;
  (old ? b.oldFlows : b.newFlows).push(f);
}

/** fq_flow_set_throttled(): off the lists until its next packet's time, in time order. */
function setThrottled(p: FqSched, f: FqFlow): void {
  f.where = 3;
  const t = p.throttledFlows;
  let lo = 0;
  let hi = t.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (f.timeNextPacket >= t[mid]!.timeNextPacket) lo = mid + 1;
    else hi = mid;
  }
  t.splice(lo, 0, f);
  p.stats.throttledFlows++;
  p.stats.throttled++;
  if (p.timeNextDelayedFlow > f.timeNextPacket) p.timeNextDelayedFlow = f.timeNextPacket;
}

/** fq_check_throttled(): flows whose time came go back to the old flows, earliest first. */
function checkThrottled(p: FqSched, now: number): void {
  if (p.timeNextDelayedFlow > now) return;
  p.timeNextDelayedFlow = NO_RATE;
  let n = 0;
  for (const f of p.throttledFlows) {
    if (f.timeNextPacket > now) {
      p.timeNextDelayedFlow = f.timeNextPacket;
      break;
    }
    n++;
    p.stats.throttledFlows--;
    addTail(p, f, true);
  }
  p.throttledFlows.splice(0, n);
}

function init(sch: Qdisc, opt: QdiscOpt | undefined, sock: FqSockOffsets): number {
  const mtu = psched_mtu(sch);
  const now = sch.timers.now();
  const p: FqSched = {
    flows: new Map(),
    internal: newFlow(-1, now, 0),
    bands: [9 << 16, 3 << 16, 1 << 16].map((quantum) => ({ newFlows: [], oldFlows: [], credit: 0, quantum })),
    bandNr: 0,
    bandPktCount: [0, 0, 0],
    prio2band: [...DEFAULT_PRIO2BAND],
    throttledFlows: [],
    quantum: 2 * mtu,
    initialQuantum: 10 * mtu,
    flowPlimit: 100,
    horizon: 10 * NSEC_PER_SEC,
    horizonDrop: true,
    flowRefillDelay: 40e6,
    rateEnable: true,
    flowMaxRate: NO_RATE,
    lowRateThreshold: 550000 / 8,
    timeNextDelayedFlow: NO_RATE,
    stats: {
      flows: 0,
      inactiveFlows: 0,
      throttledFlows: 0,
      gcFlows: 0,
      fastpathPackets: 0,
      throttled: 0,
      flowsPlimit: 0,
      horizonDrops: 0,
      bandDrops: [0, 0, 0],
      pktsTooLong: 0,
    },
    sock,
  };
  sch.priv = p;
  sch.limit = 10000;
  return change(sch, opt ?? {});
}

/**
 * fq_change(): limit, flow_limit, quantum, initial_quantum, maxrate (bytes/s; 2^32-1 is none),
 * low_rate_threshold, pacing (rate_enable), horizon, horizon_drop, priomap (16 bands 0..2),
 * weights (three, at least 1500 each).
 */
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
  if (num("maxrate") !== undefined) p.flowMaxRate = num("maxrate") === 0xffffffff ? NO_RATE : num("maxrate")!;
  if (num("low_rate_threshold") !== undefined) p.lowRateThreshold = num("low_rate_threshold")!;
  if (num("pacing") !== undefined) {
    if (num("pacing")! > 1) return -22;
    p.rateEnable = num("pacing") === 1;
  }
  if (num("horizon") !== undefined) p.horizon = num("horizon")!;
  if (num("horizon_drop") !== undefined) p.horizonDrop = num("horizon_drop") !== 0;
  const priomap = opt.priomap;
  if (typeof priomap === "object") {
    if (priomap.length !== TC_PRIO_MAX + 1 || priomap.some((b) => b >= FQ_BANDS)) return -22;
    p.prio2band = [...priomap];
  }
  const weights = opt.weights;
  if (typeof weights === "object") {
    // FQ_MIN_WEIGHT
    if (weights.length !== FQ_BANDS || weights.some((w) => w < 16384)) return -22;
    weights.forEach((w, i) => {
      p.bands[i]!.quantum = w;
    });
  }
  return 0;
}

function dequeue(sch: Qdisc): SkBuff | null {
  const p = q(sch);
  if (!sch.qlen) return null;
  const take = (f: FqFlow, skb: SkBuff): SkBuff => {
    fqErase(f, skb);
    sch.qlen = sch.qlen - 1;
    sch.backlogDec(skb);
    sch.bstatsUpdate(skb);
    return skb;
  };
  const fast = fqPeek(p.internal);
  if (fast) {
    fqCb.delete(fast);
    return take(p.internal, fast);
  }
  const now = sch.timers.now();
  checkThrottled(p, now);
  let retry = 0;
  let band = p.bands[p.bandNr]!;
  for (;;) {
    const head =
      band.credit <= 0 ? null : band.newFlows.length ? band.newFlows : band.oldFlows.length ? band.oldFlows : null;
    if (!head) {
      // The next band with credit: each gets its weight in bytes a round.
      let found = false;
      while (++retry <= FQ_BANDS) {
        p.bandNr = (p.bandNr + 1) % FQ_BANDS;
        band = p.bands[p.bandNr]!;
        band.credit = Math.min(band.credit + band.quantum, band.quantum);
        if (band.credit > 0) {
          found = true;
          break;
        }
        retry = 0;
      }
      if (found) continue;
      if (p.timeNextDelayedFlow !== NO_RATE) sch.watchdog.schedule(p.timeNextDelayedFlow, 10_000);
      return null;
    }
    const f = head[0]!;
    retry = 0;
    if (f.credit <= 0) {
      f.credit += p.quantum;
      head.shift();
      addTail(p, f, true);
      continue;
    }
    const skb = fqPeek(f);
    if (!skb) {
      head.shift();
      // Through the old flows once more, so a new flow cannot starve them; else detached.
      if (head === band.newFlows) addTail(p, f, true);
      else {
        f.where = 0;
        f.age = now;
      }
      continue;
    }
    const cb = fqCb.get(skb)!;
    const timeNext = Math.max(cb.time, f.timeNextPacket);
    if (now < timeNext) {
      head.shift();
      f.timeNextPacket = timeNext;
      setThrottled(p, f);
      continue;
    }
    take(f, skb);
    fqCb.delete(skb);
    if (flowLen(f) === 0) p.stats.inactiveFlows++;
    p.bandPktCount[cb.band]!--;
    let plen = skb.pktLen;
    f.credit -= plen;
    band.credit -= plen;
    if (!p.rateEnable) return skb;
    let rate = p.flowMaxRate;
    // With a departure time, fq paces the flow only to enforce maxrate.
    if (!skb.tstampNs) {
      if (skb.sk && p.sock.pacingRate >= 0) rate = Math.min(rate, sch.mem.readU64Number(skb.sk + p.sock.pacingRate));
      if (rate <= p.lowRateThreshold) f.credit = 0;
      else {
        plen = Math.max(plen, p.quantum);
        if (f.credit > 0) return skb;
      }
    }
    if (rate !== NO_RATE) {
      let len = rate ? Math.floor((plen * NSEC_PER_SEC) / rate) : plen * NSEC_PER_SEC;
      if (len > NSEC_PER_SEC) {
        len = NSEC_PER_SEC;
        p.stats.pktsTooLong++;
      }
      // Timer drift: the previous packet was due at time_next_packet, and now is later.
      if (f.timeNextPacket) len -= Math.min(Math.floor(len / 2), now - f.timeNextPacket);
      f.timeNextPacket = now + len;
    }
    return skb;
  }
}

export function fqQdiscOps(sock: FqSockOffsets = { pacingStatus: -1, pacingRate: -1 }): QdiscOps {
  return {
    id: "fq",
    init: (sch, opt) => init(sch, opt, sock),
    change,
    enqueue(skb, sch, toFree) {
      const p = q(sch);
      const band = p.prio2band[skb.priority & TC_PRIO_MAX]!;
      if (p.bandPktCount[band]! >= sch.limit) {
        p.stats.bandDrops[band]!++;
        return qdisc_drop(skb, sch, toFree);
      }
      const now = sch.timers.now();
      let time = skb.tstampNs;
      if (!time) {
        time = now;
      } else if (time > now + p.horizon) {
        // fq_packet_beyond_horizon(): drop, or cap at the horizon.
        if (p.horizonDrop) {
          p.stats.horizonDrops++;
          return qdisc_drop(skb, sch, toFree);
        }
        time = now + p.horizon;
        skb.tstamp = BigInt(time);
      }
      fqCb.set(skb, { time, band });
      const f = fqClassify(sch, skb, now);
      if (f !== p.internal) {
        if (flowLen(f) >= p.flowPlimit) {
          fqCb.delete(skb);
          p.stats.flowsPlimit++;
          return qdisc_drop(skb, sch, toFree);
        }
        if (f.where === 0) {
          addTail(p, f, false);
          if (now - f.age > p.flowRefillDelay) f.credit = Math.max(f.credit, p.quantum);
        }
        f.band = band;
        p.bandPktCount[band]!++;
        if (flowLen(f) === 0) p.stats.inactiveFlows--;
      }
      flowQueueAdd(f, skb);
      sch.qlen = sch.qlen + 1;
      sch.backlogInc(skb);
      return NET_XMIT_SUCCESS;
    },
    dequeue,
    peek(sch) {
      const p = q(sch);
      const b = p.bands[p.bandNr]!;
      return (
        fqPeek(p.internal) ??
        (b.newFlows[0] && fqPeek(b.newFlows[0])) ??
        (b.oldFlows[0] && fqPeek(b.oldFlows[0])) ??
        null
      );
    },
    reset(sch) {
      const p = q(sch);
      for (const f of [p.internal, ...p.flows.values()]) {
        for (const skb of [...f.q.drain(), ...f.early.splice(0)]) {
          fqCb.delete(skb);
          sch.pool.kfree_skb(skb);
        }
      }
      p.flows.clear();
      for (const b of p.bands) {
        b.newFlows = [];
        b.oldFlows = [];
      }
      p.bandPktCount = [0, 0, 0];
      p.throttledFlows = [];
      p.timeNextDelayedFlow = NO_RATE;
      p.stats.flows = 0;
      p.stats.inactiveFlows = 0;
      p.stats.throttledFlows = 0;
    },
    destroy(sch) {
      sch.watchdog.cancel();
    },
  };
}

/** fq_skb_cb(skb): time_to_send and band. */
const fqCb = new WeakMap<SkBuff, { time: number; band: number }>();

/** fq's counters (`tc -s qdisc show` of an fq). */
export function fqStats(sch: Qdisc): FqStats | undefined {
  return sch.ops.id === "fq" ? { ...q(sch).stats, bandDrops: [...q(sch).stats.bandDrops] } : undefined;
}
