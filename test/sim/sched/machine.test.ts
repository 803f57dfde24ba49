// The simulated machine's clock: the kernel's time follows it, and hrtimers fire at their expiry
// between the machine's own events, on their CPU, with the scheduler acting on what they asked.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HRTIMER_MODE_ABS, HRTIMER_NORESTART, hrtimer_setup, hrtimer_start } from "../../../src/kernel/hrtimer.js";
import { TASK_INTERRUPTIBLE } from "../../../src/kernel/sched/sched.js";
import { memberOff } from "../../../src/kernel/task.js";
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

describe("affinity phases", () => {
  it("a phase's cpus moves the task there as the phase starts (fair class); the task_struct's mask follows", () => {
    const wl = parseWorkload(
      JSON.stringify({
        tasks: {
          t: { loop: 1, phases: { a: { cpus: [0], run: 20000 }, b: { cpus: [2, 3], run: 20000 } } },
          hog: { instance: 4, run: 100000 },
        },
      }),
    );
    assert.deepEqual(
      wl.tasks[0]!.events.map((e) => e.kind),
      ["affinity", "run", "affinity", "run"],
    );
    const m = new Machine({ cpus: 4, workload: wl, seed: 1, timeline: true });
    m.run(300e6);
    const t = m.tasksNamed("t")[0]!;
    assert.ok((t.user as TaskRun).exited, "both phases ran");
    const cpus = m.segments.filter((s) => s.pid === t.pid).map((s) => s.cpu);
    const firstB = cpus.findIndex((c) => c >= 2);
    assert.ok(firstB > 0 && cpus.slice(0, firstB).every((c) => c === 0));
    assert.ok(cpus.slice(firstB).every((c) => c === 2 || c === 3));
    // p->cpus_mask and nr_cpus_allowed in the task_struct programs read
    const btf = m.kernel.btfVmlinux!;
    const byte = m.kernel.mem.bytes(t.task.addr + memberOff(btf, "task_struct", "cpus_mask"), 1)[0];
    assert.equal(byte, 0b1100);
    const nr = m.kernel.mem.bytes(t.task.addr + memberOff(btf, "task_struct", "nr_cpus_allowed"), 4);
    assert.equal(new DataView(nr.buffer, nr.byteOffset, 4).getInt32(0, true), 2);
  });

  it("a phase's cpus must be a non-empty array", () => {
    assert.throws(
      () => parseWorkload(JSON.stringify({ tasks: { t: { phases: { a: { cpus: [], run: 1 } } } } })),
      /task t\.a: cpus must be a non-empty array/,
    );
  });
});

describe("the RT class", () => {
  it("a SCHED_FIFO task takes its CPU from fair tasks the moment it wakes and keeps it until it sleeps", () => {
    const wl = parseWorkload(
      JSON.stringify({
        tasks: {
          hog: { instance: 2, run: 1e6 },
          rt: { policy: "SCHED_FIFO", priority: 10, cpus: [0], run: 3000, sleep: 7000 },
        },
      }),
    );
    const m = new Machine({ cpus: 1, workload: wl, csCost: 0, seed: 1 });
    m.run(100e6);
    const rt = m.tasksNamed("rt")[0]!;
    assert.equal(rt.sched_class, m.sched.rt);
    assert.equal(rt.prio, 89);
    const r = rt.user as TaskRun;
    // every period: woken, on the CPU at once, 3 ms of work (10 periods)
    assert.ok(r.latencies.every((l) => l === 0));
    assert.equal(rt.se.sum_exec_runtime, 30e6);
    for (const h of m.tasksNamed("hog")) assert.ok(Math.abs(h.se.sum_exec_runtime - 35e6) < 1e6);
  });

  it("SCHED_RR tasks of one priority take turns every 100 ms; SCHED_FIFO ones do not", () => {
    for (const [policy, switches] of [
      ["SCHED_RR", true],
      ["SCHED_FIFO", false],
    ] as const) {
      const wl = parseWorkload(JSON.stringify({ tasks: { rt: { instance: 2, policy, priority: 5, run: 1e6 } } }));
      const m = new Machine({ cpus: 1, workload: wl, csCost: 0, seed: 1 });
      m.run(450e6);
      const [a, b] = m.tasksNamed("rt");
      if (switches) {
        // 100 ms each in turn: 0-100 a, 100-200 b, 200-300 a, 300-400 b, 400-450 a
        assert.equal(a!.se.sum_exec_runtime, 250e6);
        assert.equal(b!.se.sum_exec_runtime, 200e6);
      } else {
        assert.equal(a!.se.sum_exec_runtime, 450e6);
        assert.equal(b!.se.sum_exec_runtime, 0);
      }
    }
  });
});

describe("RT push/pull", () => {
  it("push: an RT task preempted by a more important one moves to the CPU running a fair task", () => {
    const wl = parseWorkload(
      JSON.stringify({
        tasks: {
          lo: { policy: "SCHED_FIFO", priority: 10, run: 1e6 },
          hog: { instance: 2, run: 1e6 },
          hi: { policy: "SCHED_FIFO", priority: 50, delay: 10000, loop: 1, run: 20000 },
        },
      }),
    );
    const m = new Machine({ cpus: 2, workload: wl, csCost: 0, migrationCost: 0, seed: 1 });
    m.run(100e6);
    const lo = m.tasksNamed("lo")[0]!;
    const hi = m.tasksNamed("hi")[0]!;
    assert.equal(hi.se.sum_exec_runtime, 20e6);
    // hi took lo's CPU; lo went on running on the other one, where a fair hog gave way
    assert.equal(lo.se.nr_migrations, 1);
    assert.ok(lo.sched_info.run_delay < 1e6, `lo waited ${lo.sched_info.run_delay} ns`);
    assert.ok(lo.se.sum_exec_runtime > 99e6, `lo ran ${lo.se.sum_exec_runtime} ns`);
  });

  it("pull: a CPU whose RT task sleeps takes an RT task waiting behind a more important one elsewhere", () => {
    const wl = parseWorkload(
      JSON.stringify({
        tasks: {
          mid: { policy: "SCHED_FIFO", priority: 60, cpus: [1], run: 10000, sleep: 10000 },
          hi: { policy: "SCHED_FIFO", priority: 50, cpus: [0], run: 1e6 },
          lo: { policy: "SCHED_FIFO", priority: 10, run: 1e6 },
        },
      }),
    );
    const m = new Machine({ cpus: 2, workload: wl, csCost: 0, migrationCost: 0, seed: 1, checkWorkConservation: true });
    m.run(100e6);
    const lo = m.tasksNamed("lo")[0]!;
    // CPU 1 runs lo whenever mid sleeps: half the time; without the pull it would idle then
    assert.ok(Math.abs(lo.se.sum_exec_runtime - 50e6) < 1e6, `lo ran ${lo.se.sum_exec_runtime} ns`);
    assert.deepEqual(m.busyNs(), [100e6, 100e6]);
  });
});

describe("CPU hotplug", () => {
  it("a CPU taken offline runs nothing until it comes back; its tasks move, a pinned one loses its affinity", () => {
    const wl = parseWorkload(
      JSON.stringify({
        tasks: { hog: { instance: 4, run: 1e6 }, pinned: { cpus: [1], run: 1e6 } },
        hotplug: [
          { at: 20000, cpu: 1, online: false },
          { at: 60000, cpu: 1, online: true },
        ],
      }),
    );
    const m = new Machine({ cpus: 2, workload: wl, csCost: 0, seed: 1, timeline: true });
    m.run(100e6);
    const on1 = m.segments.filter((s) => s.cpu === 1);
    assert.ok(on1.some((s) => s.end <= 20e6) && on1.some((s) => s.start >= 60e6));
    assert.ok(on1.every((s) => s.end <= 20e6 || s.start >= 60e6));
    // busy until it went, idle while away, busy again after (the fair class balances onto it)
    assert.equal(m.busyNs()[0], 100e6);
    assert.ok(m.busyNs()[1]! > 55e6 && m.busyNs()[1]! <= 60e6);
    const pinned = m.tasksNamed("pinned")[0]!;
    assert.deepEqual([...pinned.cpus_mask], [1, 0]);
    assert.ok(pinned.se.sum_exec_runtime > 0);
  });

  it("the last online CPU cannot go", () => {
    const wl = parseWorkload(
      JSON.stringify({ tasks: { hog: { run: 1e6 } }, hotplug: [{ at: 1000, cpu: 0, online: false }] }),
    );
    const m = new Machine({ cpus: 1, workload: wl });
    assert.throws(() => m.run(5e6), /the last online CPU/);
  });
});
