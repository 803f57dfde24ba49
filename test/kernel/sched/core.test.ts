// The core with a class in the ext slot: 6.12+ class order (fair > ext > idle), every normal task
// moved into ext when it is enabled without partial switching and back to fair when disabled,
// SCHED_EXT tasks alone when partial, balance() before every pick, and a class's own CPU choice.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Kernel } from "../../../src/kernel/kernel.js";
import {
  type Rq,
  SCHED_EXT,
  type SchedClass,
  type SchedCore,
  type SchedTask,
  set_ext_sched_class,
} from "../../../src/kernel/sched/sched.js";
import { Machine } from "../../../src/sim/sched/machine.js";
import { parseWorkload } from "../../../src/sim/sched/workload.js";

/** A global FIFO with a 5-tick slice: enough of a scheduling class to exercise the core. */
class FifoClass implements SchedClass {
  readonly name = "ext";
  readonly queue: SchedTask[] = [];
  readonly calls = new Map<string, number>();
  readonly ticks = new Map<SchedTask, number>();
  /** Enqueued in this class (SCX_TASK_QUEUED), curr included. */
  readonly queued = new Set<SchedTask>();
  constructor(readonly core: SchedCore) {}
  private count(op: string): void {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
  }
  enqueue_task(_rq: Rq, p: SchedTask): void {
    this.count("enqueue_task");
    this.queued.add(p);
    this.queue.push(p);
    // An idle CPU allowed for p picks it up (what a BPF scheduler's kick does).
    for (let c = 0; c < this.core.nr_cpu_ids; c++) {
      if (p.cpus_mask[c] && this.core.idle_cpu(c)) {
        this.core.kick_cpu(c);
        break;
      }
    }
  }
  dequeue_task(_rq: Rq, p: SchedTask): boolean {
    this.count("dequeue_task");
    this.queued.delete(p);
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
    return true;
  }
  wakeup_preempt(): void {}
  balance(rq: Rq): boolean {
    this.count("balance");
    // Pull the first queued task allowed here onto this CPU's run queue.
    const p = this.queue.find((t) => t.cpus_mask[rq.cpu] && t.cpu !== rq.cpu && t !== this.core.cpu_rq(t.cpu).curr);
    if (p) this.core.move_queued_task(this.core.task_rq(p), p, rq.cpu);
    return this.queue.some((t) => t.cpu === rq.cpu);
  }
  pick_task(rq: Rq): SchedTask | null {
    this.count("pick_task");
    return this.queue.find((t) => t.cpu === rq.cpu) ?? null;
  }
  put_prev_task(rq: Rq, p: SchedTask): void {
    this.update_curr(rq);
    if (this.queued.has(p)) this.queue.push(p);
  }
  set_next_task(rq: Rq, p: SchedTask): void {
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
    this.ticks.set(p, 0);
    p.se.exec_start = rq.clock_task;
  }
  update_curr(rq: Rq): void {
    this.core.update_curr_common(rq);
  }
  select_task_rq(p: SchedTask, prev: number): number {
    for (let c = 0; c < this.core.nr_cpu_ids; c++) if (p.cpus_mask[c] && this.core.idle_cpu(c)) return c;
    return prev;
  }
  task_tick(rq: Rq, p: SchedTask): void {
    this.update_curr(rq);
    const n = (this.ticks.get(p) ?? 0) + 1;
    this.ticks.set(p, n);
    if (n >= 5 && this.queue.length) this.core.resched_curr(rq);
  }
}

function withFifo(k: Kernel): { cls: () => FifoClass } {
  let made: FifoClass | null = null;
  set_ext_sched_class(k, (core) => {
    made = new FifoClass(core);
    return made;
  });
  return { cls: () => made! };
}

const hogs = (n: number, extra: Record<string, unknown> = {}) =>
  parseWorkload(JSON.stringify({ tasks: { hog: { instance: n, run: 1e6 }, ...extra } }));

describe("scheduler core with an ext class", () => {
  it("enabled without partial, ext takes every normal task; disabled, fair takes them back", () => {
    let slot!: { cls: () => FifoClass };
    const m = new Machine({
      cpus: 2,
      workload: hogs(4),
      subsystems: [
        {
          name: "fifo",
          register: (k) => {
            slot = withFifo(k);
          },
        },
      ],
    });
    const s = m.sched;
    const fifo = slot.cls();
    assert.equal(s.ext, fifo, "the slot filled the core's ext class");
    const classes: string[][] = [];
    const snap = () => classes.push(m.all.map((p) => p.sched_class.name));
    m.q.at(100e6, () => {
      snap();
      s.ext_enabled = true;
      s.ext_switched_all = true;
      s.reclass_all();
      snap();
    });
    m.q.at(200e6, () => {
      s.ext_enabled = false;
      s.ext_switched_all = false;
      s.reclass_all();
      snap();
    });
    m.run(300e6);
    assert.deepEqual(classes, [Array(4).fill("fair"), Array(4).fill("ext"), Array(4).fill("fair")]);
    // Under FIFO with 5-tick slices the hogs kept both CPUs busy and shared them.
    assert.deepEqual(m.busyNs(), [300e6, 300e6]);
    for (const p of m.all)
      assert.ok(Math.abs(p.se.sum_exec_runtime - 150e6) < 10e6, `${p.comm} ${p.se.sum_exec_runtime}`);
    assert.ok((fifo.calls.get("balance") ?? 0) > 0, "balance() runs before the ext class picks");
    assert.equal(fifo.queue.length, 0, "nothing left behind in the class on disable");
  });

  it("partial: only SCHED_EXT tasks go to ext, and fair runs first", () => {
    let slot!: { cls: () => FifoClass };
    const wl = parseWorkload(
      JSON.stringify({ tasks: { normal: { run: 1e6, cpus: [0] }, ext: { policy: "SCHED_EXT", run: 1e6, cpus: [0] } } }),
    );
    const m = new Machine({
      cpus: 1,
      workload: wl,
      subsystems: [{ name: "fifo", register: (k) => void (slot = withFifo(k)) }],
    });
    m.q.at(50e6, () => {
      m.sched.ext_enabled = true;
      m.sched.reclass_all();
    });
    m.run(150e6);
    const [normal, ext] = [m.tasksNamed("normal")[0]!, m.tasksNamed("ext")[0]!];
    assert.equal(normal.sched_class.name, "fair");
    assert.equal(ext.sched_class.name, "ext");
    assert.equal(ext.policy, SCHED_EXT);
    // Until 50 ms both were fair and shared the CPU; then fair, above ext, starves the ext task.
    assert.ok(Math.abs(ext.se.sum_exec_runtime - 25e6) < 4e6, `ext ran ${ext.se.sum_exec_runtime}`);
    assert.ok(normal.se.sum_exec_runtime > 120e6);
    assert.ok(slot.cls().calls.get("enqueue_task")! >= 1);
  });

  it("without an ext class, SCHED_EXT tasks run in fair (scx is not enabled)", () => {
    const wl = parseWorkload(JSON.stringify({ tasks: { e: { policy: "SCHED_EXT", run: 1e6 } } }));
    const m = new Machine({ cpus: 1, workload: wl });
    m.run(10e6);
    assert.equal(m.all[0]!.sched_class.name, "fair");
    assert.equal(m.sched.ext, null);
  });
});
