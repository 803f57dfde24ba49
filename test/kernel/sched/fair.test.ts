// The fair class (EEVDF) on the simulated machine: weighted shares, balancing across CPUs, work
// conservation, wake-up placement, and the core's bookkeeping.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sched_base_slice } from "../../../src/kernel/sched/fair.js";
import { sched_prio_to_weight, TASK_DEAD } from "../../../src/kernel/sched/sched.js";
import { Machine } from "../../../src/sim/sched/machine.js";
import { PRESETS, parseWorkload } from "../../../src/sim/sched/workload.js";

const hogs = (spec: Record<string, { instance?: number; priority?: number; cpus?: number[] }>) =>
  parseWorkload(
    JSON.stringify({ tasks: Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, { ...v, run: 1e6 }])) }),
  );

/** Water-filling: each task's share of `cpus` CPUs by weight, none above one CPU. */
function fairShares(weights: number[], cpus: number): number[] {
  const share = weights.map(() => 0);
  let free = weights.map((_, i) => i);
  let cap = cpus;
  for (;;) {
    const w = free.reduce((a, i) => a + weights[i]!, 0);
    const over = free.filter((i) => (cap * weights[i]!) / w > 1);
    if (over.length === 0) {
      for (const i of free) share[i] = (cap * weights[i]!) / w;
      return share;
    }
    for (const i of over) share[i] = 1;
    cap -= over.length;
    free = free.filter((i) => !over.includes(i));
  }
}

function checkShares(m: Machine, duration: number, cpus: number): void {
  const ws = m.all.map((p) => p.se.weight);
  const want = fairShares(ws, cpus);
  m.all.forEach((p, i) => {
    const got = p.se.sum_exec_runtime / duration;
    assert.ok(
      Math.abs(got - want[i]!) <= 0.05 * want[i]!,
      `${p.comm}: share ${got.toFixed(4)}, weight says ${want[i]!.toFixed(4)}`,
    );
  });
}

describe("fair class", () => {
  it("the base slice scales with log2 of the CPUs, up to 8", () => {
    assert.equal(sched_base_slice(1), 750_000);
    assert.equal(sched_base_slice(4), 2_250_000);
    assert.equal(sched_base_slice(8), 3_000_000);
    assert.equal(sched_base_slice(64), 3_000_000);
    assert.equal(sched_prio_to_weight[20], 1024);
  });

  it("CPU hogs of mixed nice on one CPU get shares within 5% of their weights", () => {
    const m = new Machine({
      cpus: 1,
      workload: hogs({ a: { priority: -5 }, b: { priority: 0 }, c: { priority: 5 }, d: { priority: 10 } }),
    });
    m.run(2e9);
    checkShares(m, 2e9, 1);
  });

  it("mixed-nice hogs on 4 CPUs: each task's share within 5% of its weighted share of the machine", () => {
    const m = new Machine({ cpus: 4, workload: PRESETS["mixed-nice"]!(4) });
    m.run(2e9);
    checkShares(m, 2e9, 4);
  });

  it("12 equal hogs forked on 4 CPUs spread three to a CPU and share equally", () => {
    const m = new Machine({ cpus: 4, workload: hogs({ h: { instance: 12 } }) });
    m.run(2e9);
    checkShares(m, 2e9, 4);
    assert.deepEqual(m.busyNs(), [2e9, 2e9, 2e9, 2e9]);
  });

  it("hogs pinned to one CPU leave the others to the rest", () => {
    const m = new Machine({ cpus: 2, workload: hogs({ pinned: { instance: 2, cpus: [0] }, free: { instance: 1 } }) });
    m.run(1e9);
    for (const p of m.tasksNamed("pinned")) {
      assert.ok(Math.abs(p.se.sum_exec_runtime / 1e9 - 0.5) < 0.025, p.comm);
      assert.equal(p.se.nr_migrations, 0);
    }
    assert.ok(m.tasksNamed("free")[0]!.se.sum_exec_runtime > 0.95e9);
  });

  for (const preset of ["hogs", "interactive", "build", "pipe", "mixed-nice"]) {
    it(`work conservation on the ${preset} preset: no CPU idles while a task allowed on it waits over a tick`, () => {
      const m = new Machine({ cpus: 4, workload: PRESETS[preset]!(4), seed: 7, checkWorkConservation: true });
      m.run(300e6);
      assert.deepEqual(m.violations.slice(0, 3), []);
      assert.ok(m.sched.rqs.every((rq) => rq.nr_switches > 0));
    });
  }

  it("a task woken while others run goes to an idle CPU in its LLC, not behind a busy one", () => {
    const wl = parseWorkload(
      JSON.stringify({ tasks: { hog: { instance: 2, run: 1e6 }, napper: { run: 100, sleep: 5000 } } }),
    );
    const m = new Machine({ cpus: 4, workload: wl, topology: { llc: 4 } });
    m.run(200e6);
    const r = m.tasksNamed("napper")[0]!.user as { latencies: number[] };
    assert.ok(r.latencies.length > 30);
    // From an idle CPU's point of view the wait is the context switch alone.
    assert.ok(Math.max(...r.latencies) < m.sched.tick_nsec, `max wake-up latency ${Math.max(...r.latencies)}`);
  });

  it("a forked task that finishes exits: its task_struct leaves the pid hash", () => {
    const m = new Machine({ cpus: 2, workload: PRESETS.build!(2), seed: 3 });
    m.run(100e6);
    const done = m.all.filter((p) => p.__state === TASK_DEAD);
    assert.ok(done.length > 10, `${done.length} jobs exited`);
    for (const p of done) assert.equal(m.kernel.taskByPid.get(p.pid), undefined);
    assert.ok([...m.sched.tasks()].every((p) => p.__state !== TASK_DEAD));
  });

  it("run-queue wait adds up: runtime plus wait is the time a hog existed", () => {
    const m = new Machine({ cpus: 2, workload: hogs({ h: { instance: 5 } }), csCost: 0 });
    m.run(500e6);
    for (const p of m.all) assert.equal(p.se.sum_exec_runtime + p.sched_info.run_delay, 500e6, p.comm);
  });

  it("set_user_nice reweights a running hog: its share follows the new weight", () => {
    const m = new Machine({ cpus: 1, workload: hogs({ a: {}, b: {} }) });
    m.q.at(100e6, () => m.sched.set_user_nice(m.tasksNamed("a")[0]!, 5));
    m.run(1100e6);
    const a = m.tasksNamed("a")[0]!.se.sum_exec_runtime;
    const b = m.tasksNamed("b")[0]!.se.sum_exec_runtime;
    // 50 ms each, then 1 s at 335 : 1024.
    const wantA = 50e6 + (1e9 * 335) / (335 + 1024);
    assert.ok(Math.abs(a - wantA) < 0.05 * wantA, `a ran ${a}`);
    assert.ok(Math.abs(a + b - 1100e6) < 1e6);
  });

  it("the same seed gives the same run; another seed another one", () => {
    const run = (seed: number) => {
      const m = new Machine({ cpus: 4, workload: PRESETS.interactive!(4), seed });
      m.run(200e6);
      return JSON.stringify(
        m.all.map((p) => [p.comm, p.se.sum_exec_runtime, p.sched_info.run_delay, p.nvcsw, p.nivcsw]),
      );
    };
    assert.equal(run(5), run(5));
    assert.notEqual(run(5), run(6));
  });
});
