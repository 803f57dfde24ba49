/**
 * net/sched/sch_htb.c, as a parent only: classes added with `tc class add ... htb rate R` get a
 * default pfifo leaf that another qdisc may replace. Packets go to the class whose id is
 * skb->priority, else straight through (htb's direct queue); rates are recorded, not enforced.
 */
import type { Sched } from "./sch_api.js";
import {
  type Qdisc,
  type QdiscClassOps,
  type QdiscOps,
  qdisc_dequeue,
  qdisc_dequeue_head,
  qdisc_enqueue_tail,
  qdisc_reset,
  qdisc_reset_queue,
  SkbQueue,
  TC_H_MAJ,
} from "./sch_generic.js";

interface HtbClass {
  classid: number;
  rate: number;
  leaf: Qdisc | null;
}
interface HtbSched {
  classes: Map<number, HtbClass>;
  direct: SkbQueue;
}

export function htbQdiscOps(sched: Sched, pfifo: () => QdiscOps): QdiscOps {
  const priv = (sch: Qdisc) => sch.priv as HtbSched;
  const clOps: QdiscClassOps = {
    find: (sch, classid) => priv(sch).classes.has(classid),
    leaf: (sch, classid) => priv(sch).classes.get(classid)?.leaf ?? null,
    graft(sch, classid, child) {
      const cl = priv(sch).classes.get(classid)!;
      const old = cl.leaf;
      cl.leaf = child;
      return old;
    },
    change(sch, classid, opt) {
      if (TC_H_MAJ(classid) !== TC_H_MAJ(sch.handle)) return -22;
      const cl = priv(sch).classes.get(classid);
      const rate = typeof opt.rate === "number" ? opt.rate : 0;
      if (cl) {
        cl.rate = rate;
        return 0;
      }
      const leaf = sched.qdiscCreateDflt(sch.dev, sch.devQueue, pfifo(), classid, {});
      priv(sch).classes.set(classid, { classid, rate, leaf });
      return 0;
    },
  };
  return {
    id: "htb",
    cl_ops: clOps,
    init(sch) {
      sch.priv = { classes: new Map(), direct: new SkbQueue() } satisfies HtbSched;
      return 0;
    },
    enqueue(skb, sch, toFree) {
      const cl = priv(sch).classes.get(skb.priority);
      if (cl?.leaf) {
        const rc = cl.leaf.ops.enqueue(skb, cl.leaf, toFree);
        if (rc === 0) {
          sch.qlen = sch.qlen + 1;
          sch.backlogInc(skb);
        } else sch.drops = sch.drops + 1;
        return rc;
      }
      return qdisc_enqueue_tail(skb, sch, priv(sch).direct);
    },
    dequeue(sch) {
      const p = priv(sch);
      if (p.direct.length) return qdisc_dequeue_head(sch, p.direct);
      for (const cl of p.classes.values()) {
        const skb = cl.leaf ? qdisc_dequeue(cl.leaf) : null;
        if (skb) {
          sch.qlen = sch.qlen - 1;
          sch.backlogDec(skb);
          sch.bstatsUpdate(skb);
          return skb;
        }
      }
      return null;
    },
    peek: (sch) => priv(sch).direct.peek(),
    reset(sch) {
      const p = priv(sch);
      qdisc_reset_queue(sch, p.direct);
      for (const cl of p.classes.values()) if (cl.leaf) qdisc_reset(cl.leaf);
    },
    destroy(sch) {
      for (const cl of priv(sch)?.classes.values() ?? []) if (cl.leaf) sched.qdiscPut(sch.dev, cl.leaf);
    },
  };
}
