/**
 * net/sched/sch_fifo.c: pfifo (a packet limit, default the device's tx_queue_len) and bfifo (a
 * byte limit, default tx_queue_len * (mtu + hard_header_len)); tail drop past the limit.
 */
import {
  type Qdisc,
  type QdiscOps,
  type QdiscOpt,
  qdisc_dequeue_head,
  qdisc_drop,
  qdisc_enqueue_tail,
  qdisc_reset_queue,
  SkbQueue,
} from "./sch_generic.js";

/** psched_mtu(): the largest packet the device sends, link-layer header included. */
export function psched_mtu(sch: Qdisc): number {
  return sch.dev.mtu + sch.dev.hardHeaderLen;
}

function fifoInit(bytes: boolean) {
  return (sch: Qdisc, opt: QdiscOpt | undefined): number => {
    sch.priv = new SkbQueue();
    const limit = opt?.limit;
    if (limit === undefined) {
      const txql = Math.max(sch.dev.txQueueLen, 1);
      sch.limit = bytes ? txql * psched_mtu(sch) : txql;
    } else {
      if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0) return -22;
      sch.limit = limit;
    }
    return 0;
  };
}

const fifoCommon = {
  dequeue: (sch: Qdisc) => qdisc_dequeue_head(sch, sch.priv as SkbQueue),
  peek: (sch: Qdisc) => (sch.priv as SkbQueue).peek(),
  reset: (sch: Qdisc) => qdisc_reset_queue(sch, sch.priv as SkbQueue),
};

export const pfifo_qdisc_ops: QdiscOps = {
  id: "pfifo",
  init: fifoInit(false),
  change: (sch, opt) => fifoInit(false)(sch, opt),
  enqueue(skb, sch, toFree) {
    if (sch.qlen < sch.limit) return qdisc_enqueue_tail(skb, sch, sch.priv as SkbQueue);
    return qdisc_drop(skb, sch, toFree);
  },
  ...fifoCommon,
};

export const bfifo_qdisc_ops: QdiscOps = {
  id: "bfifo",
  init: fifoInit(true),
  change: (sch, opt) => fifoInit(true)(sch, opt),
  enqueue(skb, sch, toFree) {
    if (sch.backlog + skb.pktLen <= sch.limit) return qdisc_enqueue_tail(skb, sch, sch.priv as SkbQueue);
    return qdisc_drop(skb, sch, toFree);
  },
  ...fifoCommon,
};
