/**
 * net/sched/sch_mq.c: the multiqueue root. Its init creates one default child per tx queue with
 * qdisc_create_dflt (net.core.default_qdisc) as classes 1..n, attach grafts them onto the tx
 * queues, and TCQ_F_MQROOT tells children (a BPF qdisc's init prologue) that their parent is mq.
 */
import { EOPNOTSUPP } from "../../uapi/errno.js";
import type { Sched } from "./sch_api.js";
import {
  type Qdisc,
  type QdiscClassOps,
  type QdiscOps,
  TC_H_MAJ,
  TC_H_MAKE,
  TC_H_MIN,
  TC_H_ROOT,
  TCQ_F_MQROOT,
} from "./sch_generic.js";

interface MqSched {
  children: (Qdisc | null)[];
}

function ntxOf(sch: Qdisc, classid: number): number {
  const ntx = TC_H_MIN(classid) - 1;
  return ntx >= 0 && ntx < sch.dev.numTxQueues ? ntx : -1;
}

export function mqQdiscOps(sched: Sched): QdiscOps {
  const clOps: QdiscClassOps = {
    find: (sch, classid) => ntxOf(sch, classid) >= 0,
    leaf: (sch, classid) => {
      const i = ntxOf(sch, classid);
      return i < 0 ? null : (sch.dev.queues[i]!.qdisc ?? null);
    },
    graft(sch, classid, child) {
      const i = ntxOf(sch, classid);
      const txq = sch.dev.queues[i]!;
      const old = txq.qdisc;
      txq.qdisc = child;
      (sch.priv as MqSched).children[i] = child;
      return old;
    },
  };
  return {
    id: "mq",
    cl_ops: clOps,
    init(sch, _opt, extack) {
      if (sch.parent !== TC_H_ROOT) return -EOPNOTSUPP;
      if (!sch.dev.isMultiqueue()) return -EOPNOTSUPP;
      const priv: MqSched = { children: [] };
      sch.priv = priv;
      for (let ntx = 0; ntx < sch.dev.numTxQueues; ntx++) {
        const txq = sch.dev.queues[ntx]!;
        const child = sched.qdiscCreateDflt(
          sch.dev,
          txq,
          sched.defaultOpsFor(sch.dev, ntx),
          TC_H_MAKE(TC_H_MAJ(sch.handle), TC_H_MIN(ntx + 1)),
          extack,
        );
        if (!child) return -12;
        priv.children.push(child);
      }
      sch.flags = sch.flags | TCQ_F_MQROOT;
      return 0;
    },
    attach(sch) {
      const priv = sch.priv as MqSched;
      priv.children.forEach((child, ntx) => {
        sch.dev.queues[ntx]!.qdisc = child;
        if (child) sched.hashAdd(sch.dev, child);
      });
    },
    destroy(sch) {
      const priv = sch.priv as MqSched | undefined;
      for (const child of priv?.children ?? []) if (child) sched.qdiscPut(sch.dev, child);
    },
    // The tx queues' children carry the packets; mq itself is never enqueued to.
    enqueue: () => {
      throw new Error("mq is not enqueued to: the tx queues' qdiscs are");
    },
    dequeue: () => null,
    peek: () => null,
  };
}
