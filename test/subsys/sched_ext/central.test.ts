/**
 * The central-dispatch scheduler (bpf/scx_central.bpf.c) and the kicks it is built on, as ext.c
 * has them: scx_bpf_kick_cpu() marks the target, the irq work kicks it after the op returns;
 * SCX_KICK_IDLE wakes only an idle CPU, SCX_KICK_PREEMPT ends the target's slice, SCX_KICK_WAIT
 * holds the kicking CPU until the target's SCX task has been switched out.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { bpf_map_lookup_elem, bpf_prog_test_run_opts } from "../../../src/loader/bpf.js";
import { BpfObject } from "../../../src/loader/object.js";
import { BpfSchedHost } from "../../../src/sim/sched/bpf_sched.js";
import { Machine } from "../../../src/sim/sched/machine.js";
import { schedMetrics } from "../../../src/sim/sched/metrics.js";
import { PRESETS } from "../../../src/sim/sched/workload.js";
import {
  SCX_EXIT_ERROR,
  SCX_KICK_IDLE,
  SCX_KICK_PREEMPT,
  SCX_KICK_WAIT,
  schedExtSubsystem,
} from "../../../src/subsys/sched_ext/index.js";
import { scxObj, varOffset } from "./helpers.js";

const skip = existsSync(scxObj("scx_central")) ? false : "bpf/obj/sim/scx_central.bpf.o not built";
const SLICE = 5e6;

function boot(preset: string, cpus = 4, seed = 1) {
  const m = new Machine({
    cpus,
    workload: PRESETS[preset]!(cpus),
    seed,
    subsystems: [schedExtSubsystem],
    checkWorkConservation: true,
  });
  const h = new BpfSchedHost(m);
  m.onTick = () => h.collect();
  const obj = BpfObject.open(scxObj("scx_central"));
  obj.load(h.h);
  const map = obj.findMap("central_ops");
  assert.ok(map);
  h.attach("central", map);
  const bss = () => {
    const b = obj.internalMap(".bss");
    assert.ok(b);
    const v = new Uint8Array(b.valueSize);
    assert.equal(bpf_map_lookup_elem(h.h, b.fd, new Uint8Array(4), v), 0);
    return new DataView(v.buffer);
  };
  const u64 = (name: string, i = 0) => bss().getBigUint64(varOffset(obj, ".bss", name) + 8 * i, true);
  /** BPF_PROG_RUN of the `kick` program on `cpu`. */
  const kick = (cpu: number, target: number, flags: bigint) => {
    const prog = obj.findProgram("kick");
    assert.ok(prog);
    const ctx = new Uint8Array(16);
    const dv = new DataView(ctx.buffer);
    dv.setInt32(0, target, true);
    dv.setBigUint64(8, flags, true);
    const saved = m.kernel.cpu;
    m.kernel.cpu = cpu;
    try {
      assert.equal(bpf_prog_test_run_opts(h.h, prog.fd, { ctx_in: ctx }), 0);
    } finally {
      m.kernel.cpu = saved;
    }
  };
  return { m, h, u64, kick };
}

test("scx_central: 8 hogs on 4 CPUs each get half a CPU; CPU 0 dispatches for the others", { skip }, () => {
  const { m, h, u64 } = boot("hogs");
  m.run(200e6);
  h.collect();
  assert.deepEqual(h.exits, []);
  assert.ok([...m.sched.tasks()].every((p) => p.sched_class === m.sched.ext));
  for (const p of m.all)
    assert.ok(Math.abs(p.se.sum_exec_runtime / 200e6 - 0.5) < 0.025, `${p.comm}: ${p.se.sum_exec_runtime}`);
  // every CPU got tasks handed out by the central one; the others only asked for work
  for (let c = 0; c < 4; c++) assert.ok(u64("dispatched_to", c) > 0n, `cpu ${c}`);
  assert.ok(u64("nr_other_dispatches") > 0n);
  assert.ok(u64("nr_central_dispatches") > 0n);
  // the others run with an infinite slice: only the timer's SCX_KICK_PREEMPT ends it
  assert.ok(u64("nr_preempt_kicks") > 0n);
  assert.deepEqual(m.busyNs(), [200e6, 200e6, 200e6, 200e6]);
});

test("scx_central: the BPF timer fires every slice on the simulated clock", { skip }, () => {
  const { m, u64 } = boot("hogs");
  m.run(42e6);
  assert.equal(u64("timer_err"), 0n);
  assert.equal(u64("nr_fires"), 8n);
  for (let i = 0; i < 8; i++) assert.equal(u64("fire_at", i), BigInt((i + 1) * SLICE));
});

for (const [preset, ns] of [
  ["interactive", 300e6],
  ["build", 300e6],
  ["pipe", 60e6],
] as const) {
  test(`scx_central on ${preset}: every task runs, no CPU idles while a task waits over a tick, one run per seed`, {
    skip,
  }, () => {
    const run = () => {
      const { m, h } = boot(preset, 4, 7);
      m.run(ns);
      h.collect();
      assert.deepEqual(h.exits, []);
      assert.deepEqual(m.violations.slice(0, 3), []);
      for (const p of m.all) assert.ok(p.se.sum_exec_runtime > 0, `${p.comm} ran`);
      return JSON.stringify(schedMetrics(m, ns));
    };
    assert.equal(run(), run());
  });
}

test("SCX_KICK_IDLE with PREEMPT or WAIT is an error exit", { skip }, () => {
  const { m, h, kick } = boot("hogs", 2);
  m.at(3e6, () => kick(0, 1, SCX_KICK_IDLE | SCX_KICK_PREEMPT));
  m.run(10e6);
  h.collect();
  assert.equal(h.exits.length, 1);
  assert.equal(h.exits[0]!.kind, SCX_EXIT_ERROR);
  assert.equal(h.exits[0]!.msg, "PREEMPT/WAIT cannot be used with SCX_KICK_IDLE");
});

test("SCX_KICK_IDLE leaves a busy CPU alone; SCX_KICK_PREEMPT switches its task out at once", { skip }, () => {
  const { m, kick } = boot("hogs", 4);
  const seen: number[] = [];
  // CPU 1 runs a hog with an infinite slice between the timer's fires (at 5 ms and 10 ms)
  m.at(6e6, () => {
    seen.push(m.sched.cpu_rq(1).nr_switches);
    kick(2, 1, SCX_KICK_IDLE);
  });
  m.at(6.5e6, () => {
    seen.push(m.sched.cpu_rq(1).nr_switches);
    kick(2, 1, SCX_KICK_PREEMPT);
  });
  m.at(6.6e6, () => seen.push(m.sched.cpu_rq(1).nr_switches));
  m.run(8e6);
  assert.equal(seen[1], seen[0]);
  assert.ok(seen[2]! > seen[1]!);
});

test("SCX_KICK_WAIT: the kicking CPU spins until the target's task is switched out, never for itself", {
  skip,
}, () => {
  const { m, kick } = boot("hogs", 4);
  const rq2 = m.sched.cpu_rq(2);
  const rq3 = m.sched.cpu_rq(3);
  const states: [string, boolean][] = [];
  // CPU 1's hog keeps its CPU until the timer preempts it at 10 ms: CPU 2 spins until then
  m.at(6e6, () => kick(2, 1, SCX_KICK_WAIT));
  m.at(6.1e6, () => states.push(["cpu 2 kicked cpu 1", rq2.stalled]));
  m.at(9.9e6, () => states.push(["before the timer", rq2.stalled]));
  m.at(10.1e6, () => states.push(["after the timer", rq2.stalled]));
  m.at(11e6, () => kick(3, 3, SCX_KICK_WAIT | SCX_KICK_PREEMPT));
  m.at(11e6 + 1, () => states.push(["cpu 3 kicked itself", rq3.stalled]));
  m.run(12e6);
  assert.deepEqual(states, [
    ["cpu 2 kicked cpu 1", true],
    ["before the timer", true],
    ["after the timer", false],
    ["cpu 3 kicked itself", false],
  ]);
});
