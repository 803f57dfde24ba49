/**
 * The real-time class (kernel/sched/rt.c) for SCHED_FIFO and SCHED_RR: above fair and ext, it
 * takes a CPU whenever it has a runnable task there. Per CPU, one FIFO list per priority (the
 * running task stays queued at its list's head); the highest priority's head runs. A waking RT
 * task preempts a lower-priority or non-RT current task at once; SCHED_RR tasks rotate within
 * their priority every RR_TIMESLICE; SCHED_FIFO ones run until they block or yield.
 *
 * Placement is rt.c's select_task_rq_rt reduced to its rule: stay on the previous CPU unless an
 * RT task of equal or higher priority runs there, then the lowest-numbered allowed CPU running
 * no RT task. Not modelled: push/pull balancing between CPUs, RT throttling (sched_rt_runtime),
 * priority inheritance.
 */
import {
  ENQUEUE_HEAD,
  MAX_RT_PRIO,
  type Rq,
  SCHED_FIFO,
  SCHED_RR,
  type SchedClass,
  type SchedCore,
  type SchedTask,
} from "./sched.js";

/** RR_TIMESLICE: 100 ms. */
export const RR_TIMESLICE_NS = 100e6;

export function rt_policy(policy: number): boolean {
  return policy === SCHED_FIFO || policy === SCHED_RR;
}

/** The prio of an RT task of this rt_priority (1..99): lower is more important. */
export function rt_prio(rt_priority: number): number {
  return MAX_RT_PRIO - 1 - rt_priority;
}

interface RtRq {
  /** Queued RT tasks (running one included), by prio, each list in FIFO order. */
  queues: Map<number, SchedTask[]>;
  nr_running: number;
}

interface RtEntity {
  time_slice: number;
}

export class RtSchedClass implements SchedClass {
  readonly name = "rt";
  private readonly rqs = new Map<Rq, RtRq>();
  private readonly ents = new WeakMap<SchedTask, RtEntity>();

  constructor(private readonly core: SchedCore) {}

  private rtRq(rq: Rq): RtRq {
    let r = this.rqs.get(rq);
    if (!r) this.rqs.set(rq, (r = { queues: new Map(), nr_running: 0 }));
    return r;
  }

  private ent(p: SchedTask): RtEntity {
    let e = this.ents.get(p);
    if (!e) this.ents.set(p, (e = { time_slice: RR_TIMESLICE_NS }));
    return e;
  }

  /** RT tasks queued on this CPU (sched_rt_runnable). */
  nr_running(rq: Rq): number {
    return this.rtRq(rq).nr_running;
  }

  enqueue_task(rq: Rq, p: SchedTask, flags: number): void {
    const r = this.rtRq(rq);
    let q = r.queues.get(p.prio);
    if (!q) r.queues.set(p.prio, (q = []));
    if (flags & ENQUEUE_HEAD) q.unshift(p);
    else q.push(p);
    r.nr_running++;
  }

  dequeue_task(rq: Rq, p: SchedTask): boolean {
    const r = this.rtRq(rq);
    const q = r.queues.get(p.prio);
    const i = q?.indexOf(p) ?? -1;
    if (q && i >= 0) {
      q.splice(i, 1);
      if (!q.length) r.queues.delete(p.prio);
      r.nr_running--;
    }
    return true;
  }

  /** requeue_task_rt: to the tail of its priority's list. */
  private requeue(rq: Rq, p: SchedTask): void {
    const q = this.rtRq(rq).queues.get(p.prio);
    const i = q?.indexOf(p) ?? -1;
    if (!q || i < 0) return;
    q.splice(i, 1);
    q.push(p);
  }

  yield_task(rq: Rq): void {
    this.requeue(rq, rq.curr);
  }

  wakeup_preempt(rq: Rq, p: SchedTask): void {
    if (p.prio < rq.curr.prio) this.core.resched_curr(rq);
  }

  /** balance_rt without the pull: whether this class has a task here. */
  balance(rq: Rq): boolean {
    return this.rtRq(rq).nr_running > 0;
  }

  pick_task(rq: Rq): SchedTask | null {
    const r = this.rtRq(rq);
    let best: number | null = null;
    for (const prio of r.queues.keys()) if (best === null || prio < best) best = prio;
    return best === null ? null : r.queues.get(best)![0]!;
  }

  put_prev_task(rq: Rq): void {
    this.update_curr(rq);
  }

  set_next_task(rq: Rq, p: SchedTask): void {
    p.se.exec_start = rq.clock_task;
  }

  select_task_rq(p: SchedTask, prevCpu: number): number {
    const busyRt = (cpu: number) => {
      const curr = this.core.cpu_rq(cpu).curr;
      return curr.sched_class === this && curr.prio <= p.prio;
    };
    if (!busyRt(prevCpu)) return prevCpu;
    for (let c = 0; c < this.core.nr_cpu_ids; c++) {
      const rq = this.core.cpu_rq(c);
      if (p.cpus_mask[c] && rq.online && rq.curr.sched_class !== this) return c;
    }
    return prevCpu;
  }

  task_tick(rq: Rq, p: SchedTask): void {
    this.update_curr(rq);
    if (p.policy !== SCHED_RR) return;
    const e = this.ent(p);
    e.time_slice -= this.core.tick_nsec;
    if (e.time_slice > 0) return;
    e.time_slice = RR_TIMESLICE_NS;
    // rotate only when another task of its priority waits
    if ((this.rtRq(rq).queues.get(p.prio)?.length ?? 0) > 1) {
      this.requeue(rq, p);
      this.core.resched_curr(rq);
    }
  }

  update_curr(rq: Rq): void {
    if (rq.curr.sched_class === this) this.core.update_curr_common(rq);
  }
}
