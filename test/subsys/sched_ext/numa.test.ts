/**
 * What the kernel's `numa` selftest asserts, on our bpf/scx_numa.bpf.c, on a machine with NUMA
 * nodes: with SCX_OPS_BUILTIN_IDLE_PER_NODE, idle CPUs are picked (and claimed) within a node,
 * per-node DSQs keep every task in its node, and the scheduler is still running after a second.
 * Without the flag, the per-node kfuncs end the scheduler with an error.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { BpfObject } from "../../../src/loader/object.js";
import { Machine } from "../../../src/sim/sched/machine.js";
import { PRESETS, parseWorkload, type Workload } from "../../../src/sim/sched/workload.js";
import { SCX_EXIT_ERROR, schedExtSubsystem, scxState } from "../../../src/subsys/sched_ext/index.js";
import { exitRecord, readGlobal, type ScxBoot, scxObj } from "./helpers.js";

const skip = existsSync(scxObj("scx_numa")) ? false : "bpf/obj/sim/scx_numa.bpf.o not built";

/** Six tasks start on each node (forked pinned there), then may run anywhere. */
const spread: Workload = parseWorkload(
  JSON.stringify({
    tasks: Object.fromEntries(
      [
        ["a", [0, 1, 2, 3]],
        ["b", [4, 5, 6, 7]],
      ].map(([name, cpus]) => [
        name,
        {
          instance: 6,
          loop: 1,
          cpus,
          phases: { free: { cpus: [0, 1, 2, 3, 4, 5, 6, 7], loop: 100000, run: 700, sleep: 500 } },
        },
      ]),
    ),
  }),
);

function boot(cpus: number, node: number, flags?: bigint, workload: Workload = PRESETS.interactive(cpus)) {
  const m = new Machine({
    cpus,
    workload,
    subsystems: [schedExtSubsystem],
    seed: 2,
    topology: { node },
    timeline: true,
  });
  const st = scxState(m.kernel);
  assert.ok(st);
  const b: ScxBoot = { kernel: m.kernel, h: { kernel: m.kernel, process: m.kernel.newProcess() }, st };
  const obj = BpfObject.open(scxObj("scx_numa"));
  const map = obj.findMap("numa_ops");
  assert.ok(map?.structOpsValue);
  if (flags !== undefined) map.structOpsValue.set("flags", flags);
  obj.load(b.h);
  map.attachStructOps();
  const u64 = (name: string) => readGlobal(b, obj, name).getBigUint64(0, true);
  return { m, b, obj, st, u64 };
}

test("numa: two nodes of four CPUs: idle CPUs picked in the task's node, tasks never leave it; still running after 1 s", {
  skip,
}, () => {
  const { m, st, u64 } = boot(8, 4, undefined, spread);
  m.run(1e9);
  assert.equal(st.root?.name, "numa");
  assert.equal(u64("nr_dsqs"), 2n);
  assert.ok(u64("nr_idle_picks") > 0n);
  const nodes = new Map<number, Set<number>>();
  for (const s of m.segments) {
    let set = nodes.get(s.pid);
    if (!set) nodes.set(s.pid, (set = new Set()));
    set.add(Math.floor(s.cpu / 4));
  }
  assert.equal(nodes.size, m.all.length);
  for (const [pid, set] of nodes) assert.equal(set.size, 1, `pid ${pid} ran on nodes ${[...set]}`);
  // each group stayed where it started, though allowed everywhere after its first phase
  for (const p of m.tasksNamed("b")) assert.deepEqual([...nodes.get(p.pid)!], [1]);
  for (const p of m.tasksNamed("a")) assert.deepEqual([...nodes.get(p.pid)!], [0]);
});

test("numa: one node is the whole machine", { skip }, () => {
  const { m, st, u64 } = boot(4, 4);
  m.run(0.3e9);
  assert.equal(st.root?.name, "numa");
  assert.equal(u64("nr_dsqs"), 1n);
  for (const p of m.all) assert.ok(p.se.sum_exec_runtime > 0, `${p.comm} ran`);
});

test("numa: without SCX_OPS_BUILTIN_IDLE_PER_NODE the per-node kfuncs are an error exit", { skip }, () => {
  const { m, b, obj, st } = boot(8, 4, 0n, spread);
  m.run(0.1e9);
  assert.equal(st.root, null);
  const rec = exitRecord(b, obj);
  assert.equal(rec.kind, SCX_EXIT_ERROR);
  assert.equal(rec.msg, "per-node idle tracking is disabled");
});
