/**
 * The real-time class (kernel/sched/rt.c) for SCHED_FIFO and SCHED_RR: above fair and ext, it
 * takes a CPU whenever it has a runnable task there. Per CPU, one FIFO list per priority (the
 * running task stays queued at its list's head); the highest priority's head runs. A waking RT
 * task preempts a lower-priority or non-RT current task at once; SCHED_RR tasks rotate within
 * their priority every RR_TIMESLICE; SCHED_FIFO ones run until they block or yield.
 *
 * Placement is rt.c's select_task_rq_rt reduced to its rule: stay on the previous CPU unless an
 * RT task of equal or higher priority runs there, then the lowest-numbered allowed CPU running
 * no RT task. Push/pull balancing (push_rt_task, pull_rt_task) in the small: an RT task left
 * waiting behind another one (woken where a higher one runs, or preempted by one) is pushed to
 * the allowed CPU running the least important work, cpupri's order: idle, then a normal task,
 * then a lower RT priority (the CPU sharing the LLC first, then the lowest-numbered); a CPU whose
 * RT task blocks pulls the most important RT task waiting on another CPU that would run there.
 * Not modelled: RT throttling (sched_rt_runtime), priority inheritance, RT_PUSH_IPI.
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
  TASK_ON_RQ_QUEUED,
} from "./sched.js";

/** cpupri levels below every RT priority (CPUPRI_NORMAL, then CPUPRI_IDLE, the least important). */
const CPUPRI_NORMAL = MAX_RT_PRIO;
const CPUPRI_IDLE = MAX_RT_PRIO + 1;

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

  /** rq->rt.highest_prio.curr: the most important queued RT priority (MAX_RT_PRIO: none). */
  private highestPrio(rq: Rq): number {
    let best = MAX_RT_PRIO;
    for (const prio of this.rtRq(rq).queues.keys()) if (prio < best) best = prio;
    return best;
  }

  /** cpupri's level of a CPU: its most important queued RT priority, else normal work, else idle. */
  private cpupri(rq: Rq): number {
    const hp = this.highestPrio(rq);
    if (hp < MAX_RT_PRIO) return hp;
    return rq.curr === rq.idle && !rq.nr_running ? CPUPRI_IDLE : CPUPRI_NORMAL;
  }

  /** The queued, not running RT tasks of rq that may move (pushable), most important first. */
  private pushable(rq: Rq): SchedTask[] {
    const r = this.rtRq(rq);
    const out: SchedTask[] = [];
    for (const prio of [...r.queues.keys()].sort((a, b) => a - b))
      for (const p of r.queues.get(prio)!) if (p !== rq.curr && p.nr_cpus_allowed > 1) out.push(p);
    return out;
  }

  /**
   * find_lowest_rq: the allowed online CPU at the lowest cpupri level, below p's priority; of
   * those, p's own CPU, then one sharing its LLC, then the lowest-numbered. -1: none.
   */
  private findLowestRq(p: SchedTask): number {
    let level = p.prio;
    let cpus: number[] = [];
    for (let c = 0; c < this.core.nr_cpu_ids; c++) {
      const rq = this.core.cpu_rq(c);
      if (!p.cpus_mask[c] || !rq.online) continue;
      const l = this.cpupri(rq);
      if (l > level) {
        level = l;
        cpus = [c];
      } else if (l === level && cpus.length) cpus.push(c);
    }
    if (!cpus.length) return -1;
    if (cpus.includes(p.cpu)) return p.cpu;
    return cpus.find((c) => this.core.cpus_share_cache(c, p.cpu)) ?? cpus[0]!;
  }

  /** push_rt_task: move rq's most important waiting RT task to a CPU running less important work. */
  private pushRtTask(rq: Rq): boolean {
    const next = this.pushable(rq)[0];
    if (!next) return false;
    // it preempts here instead
    if (next.prio < rq.curr.prio) {
      this.core.resched_curr(rq);
      return false;
    }
    const cpu = this.findLowestRq(next);
    if (cpu < 0 || cpu === rq.cpu) return false;
    this.core.move_queued_task(rq, next, cpu);
    return true;
  }

  /** push_rt_tasks. */
  private pushRtTasks(rq: Rq): void {
    for (let n = 0; n < this.core.nr_cpu_ids && this.pushRtTask(rq); n++);
  }

  /**
   * pull_rt_task: from every other CPU with RT tasks waiting, take the most important one that may
   * run here if it is more important than what this CPU would run and than what runs there.
   */
  private pullRtTask(rq: Rq): void {
    let best = this.highestPrio(rq);
    for (let c = 0; c < this.core.nr_cpu_ids; c++) {
      const src = this.core.cpu_rq(c);
      if (src === rq || this.rtRq(src).nr_running < 2) continue;
      const p = this.pushable(src).find((t) => t.cpus_mask[rq.cpu] === 1);
      if (!p || p.prio >= best || p.prio < src.curr.prio) continue;
      this.core.move_queued_task(src, p, rq.cpu);
      best = p.prio;
    }
  }

  task_woken(rq: Rq, p: SchedTask): void {
    // task_woken_rt: it waits behind an RT task at least as important, which it cannot preempt
    const curr = rq.curr;
    if (curr !== p && !rq.need_resched && p.nr_cpus_allowed > 1 && curr.sched_class === this && curr.prio <= p.prio)
      this.pushRtTasks(rq);
  }

  /** balance_rt: a CPU whose RT task stops running pulls (need_pull_rt_task); has this class a task here? */
  balance(rq: Rq, prev: SchedTask): boolean {
    if (prev.sched_class === this && prev.on_rq !== TASK_ON_RQ_QUEUED && this.highestPrio(rq) > prev.prio)
      this.pullRtTask(rq);
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

  set_next_task(rq: Rq, p: SchedTask, first: boolean): void {
    p.se.exec_start = rq.clock_task;
    // rt_queue_push_tasks: the tasks it leaves waiting are pushed once the switch is done
    if (first && this.pushable(rq).length) this.core.irq_work_queue(rq.cpu, () => this.pushRtTasks(rq));
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
