/**
 * The idle class (kernel/sched/idle.c): each CPU's idle task, picked when no other class has
 * anything to run. It is never enqueued; a task woken onto an idle CPU always preempts it.
 */
import type { Rq, SchedClass, SchedTask } from "./sched.js";

export class IdleSchedClass implements SchedClass {
  readonly name = "idle";

  enqueue_task(_rq: Rq, p: SchedTask): void {
    throw new Error(`the idle class cannot enqueue task ${p.pid}`);
  }

  dequeue_task(_rq: Rq, p: SchedTask): boolean {
    throw new Error(`the idle class cannot dequeue task ${p.pid}`);
  }

  wakeup_preempt(rq: Rq): void {
    rq.sched.resched_curr(rq);
  }

  pick_task(rq: Rq): SchedTask {
    return rq.idle;
  }

  put_prev_task(): void {}

  set_next_task(): void {}

  select_task_rq(p: SchedTask): number {
    return p.cpu;
  }

  task_tick(): void {}
}
