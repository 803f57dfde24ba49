// The simulated machine's clock: the kernel's time follows it, and hrtimers fire at their expiry
// between the machine's own events, on their CPU, with the scheduler acting on what they asked.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HRTIMER_MODE_ABS, HRTIMER_NORESTART, hrtimer_setup, hrtimer_start } from "../../../src/kernel/hrtimer.js";
import { TASK_INTERRUPTIBLE } from "../../../src/kernel/sched/sched.js";
import { Machine, type TaskRun } from "../../../src/sim/sched/machine.js";
import { parseWorkload } from "../../../src/sim/sched/workload.js";

describe("machine clock", () => {
  it("an hrtimer between events fires at its expiry on its CPU and its wake-up runs the task", () => {
    const wl = parseWorkload(JSON.stringify({ tasks: { waiter: { loop: 1, suspend: null, run: 100 } } }));
    const m = new Machine({ cpus: 2, workload: wl, csCost: 0 });
    const base = m.kernel.ktimeGetNs();
    const seen: { t: bigint; cpu: number; now: number }[] = [];
    m.kernel.onCpu(1, () => {
      const t = hrtimer_setup(
        m.kernel,
        () => {
          seen.push({ t: m.kernel.ktimeGetNs() - base, cpu: m.kernel.cpu, now: m.sched.now() });
          const w = m.tasksNamed("waiter")[0]!;
          (w.user as TaskRun).suspended = false;
          m.sched.try_to_wake_up(w, TASK_INTERRUPTIBLE);
          return HRTIMER_NORESTART;
        },
        1,
        HRTIMER_MODE_ABS,
      );
      hrtimer_start(t, base + 5_500_123n, HRTIMER_MODE_ABS);
    });
    m.run(20e6);
    assert.deepEqual(seen, [{ t: 5_500_123n, cpu: 1, now: 5_500_123 }]);
    const w = m.tasksNamed("waiter")[0]!;
    const r = w.user as TaskRun;
    // Forked at 0 (ran at once), then woken by the timer: on an idle CPU it runs at that instant.
    assert.deepEqual(r.latencies, [0, 0]);
    assert.equal(w.se.sum_exec_runtime, 100_000);
    assert.ok(r.exited);
    assert.equal(r.exitedAt, 5_500_123 + 100_000);
  });

  it("the kernel clock reads the machine's time in every event", () => {
    const wl = parseWorkload(JSON.stringify({ tasks: { t: { run: 1000, sleep: 3000 } } }));
    const m = new Machine({ cpus: 1, workload: wl });
    const base = m.kernel.ktimeGetNs();
    let checked = 0;
    m.sched.hooks.push({
      context_switch: () => {
        assert.equal(m.kernel.ktimeGetNs() - base, BigInt(m.q.now));
        checked++;
      },
    });
    m.run(50e6);
    assert.ok(checked > 20);
  });
});
