/**
 * Our schedulers running on the simulated machine, checked against what the kernel's sched_ext
 * selftests assert: a scheduler with no ops runs every task; the default select_cpu dispatches
 * wake-ups to idle CPUs itself; a bogus DSQ, a stalled task and scx_bpf_error end the scheduler
 * with the matching exit kind and every task back in the fair class; scx_bpf_exit from each op
 * reports its code; a scheduler setting every op runs. Plus weighted shares under the vtime one,
 * and the same seed giving the same run.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { BpfObject } from "../../../src/loader/object.js";
import { Machine } from "../../../src/sim/sched/machine.js";
import { PRESETS, type TaskTemplate, type Workload } from "../../../src/sim/sched/workload.js";
import {
  SCX_EXIT_ERROR,
  SCX_EXIT_ERROR_BPF,
  SCX_EXIT_ERROR_STALL,
  SCX_EXIT_UNREG,
  SCX_EXIT_UNREG_BPF,
  schedExtSubsystem,
  scxState,
} from "../../../src/subsys/sched_ext/index.js";
import { exitRecord, readGlobal, type ScxBoot, scxObj, varOffset } from "./helpers.js";

const skip = existsSync(scxObj("scx_vtime")) ? false : "bpf/obj/sim/scx_*.bpf.o not built";

function hog(name: string, instances: number, nice = 0): TaskTemplate {
  return {
    name,
    instances,
    loop: -1,
    nice,
    policy: 0,
    delay: 0,
    jitter: 0,
    events: [{ kind: "run", ns: 1e9 }],
    forkedOnly: false,
  };
}

/** A machine with sched_ext and one of our schedulers loaded and attached before the run. */
function machine(name: string, workload: Workload, opts: { cpus?: number; rodata?: Record<string, number> } = {}) {
  const m = new Machine({ cpus: opts.cpus ?? 4, workload, subsystems: [schedExtSubsystem], seed: 7 });
  const st = scxState(m.kernel);
  assert.ok(st);
  const b: ScxBoot = { kernel: m.kernel, h: { kernel: m.kernel, process: m.kernel.newProcess() }, st };
  const obj = BpfObject.open(scxObj(name));
  if (opts.rodata) {
    const ro = obj.internalMap(".rodata");
    assert.ok(ro);
    const bytes = new Uint8Array(ro.valueSize);
    for (const [v, val] of Object.entries(opts.rodata)) {
      new DataView(bytes.buffer).setInt32(varOffset(obj, ".rodata", v), val, true);
    }
    ro.setInitialValue(bytes);
  }
  obj.load(b.h);
  const sm = obj.maps.find((x) => x.structOpsValue);
  assert.ok(sm);
  const link = sm.attachStructOps();
  return { m, b, obj, link, st };
}

const classes = (m: Machine) => new Set(m.all.filter((p) => p.on_rq).map((p) => p.sched_class.name));

test("minimal (no ops): every task runs in the ext class through the kernel's defaults", { skip }, () => {
  const { m, st, link } = machine("scx_minimal", PRESETS.interactive(4));
  m.run(0.5e9);
  assert.equal(st.root?.name, "minimal");
  for (const p of m.all) assert.ok(p.se.sum_exec_runtime > 0, `${p.comm} ran`);
  assert.deepEqual(classes(m), new Set(["ext"]));
  link.detach();
  assert.deepEqual(classes(m), new Set(["fair"]));
});

test("select_cpu_dfl: no wake-up is enqueued while its CPU is idle (the default dispatched it)", { skip }, () => {
  const { m, b, obj, st, link } = machine("scx_select_cpu_dfl", PRESETS.interactive(4));
  m.run(1e9);
  assert.equal(st.root?.name, "select_cpu_dfl");
  assert.ok(readGlobal(b, obj, "nr_enqueued").getBigUint64(0, true) > 0n);
  assert.equal(readGlobal(b, obj, "saw_local").getUint8(0), 0);
  link.detach();
});

test("ddsp_bogus_dsq: direct dispatch into a missing DSQ ends the scheduler with SCX_EXIT_ERROR; tasks go on in fair", {
  skip,
}, () => {
  const { m, b, obj, st, link } = machine("scx_ddsp_bogus", PRESETS.interactive(4));
  m.run(1e9);
  assert.equal(st.root, null);
  const rec = exitRecord(b, obj);
  assert.equal(rec.kind, SCX_EXIT_ERROR);
  assert.match(rec.msg, /^non-existent DSQ 0xcafef00d for \S+\[\d+\]$/);
  assert.deepEqual(classes(m), new Set(["fair"]));
  const before = m.all.map((p) => p.se.sum_exec_runtime);
  m.run(1.5e9);
  assert.ok(m.all.some((p, i) => p.se.sum_exec_runtime > (before[i] ?? 0)));
  link.detach();
});

test("scx_bpf_exit from select_cpu, enqueue, dispatch, enable, init_task: UNREG_BPF with each op's code", {
  skip,
}, () => {
  // Tasks that sleep, so that CPUs go idle and ops.dispatch runs.
  const sleepers = { name: "sleepers", tasks: PRESETS.interactive(2).tasks.filter((t) => t.name === "ui") };
  for (const point of [1, 2, 3, 4, 5]) {
    const { m, b, obj, st, link } = machine("scx_exit", sleepers, { rodata: { exit_point: point } });
    m.run(0.5e9);
    assert.equal(st.root?.name, undefined, `exit point ${point}`);
    const rec = exitRecord(b, obj);
    assert.equal(rec.kind, SCX_EXIT_UNREG_BPF, `exit point ${point}`);
    assert.equal(rec.exit_code, BigInt(point));
    assert.equal(rec.msg, `exit at ${point}`);
    link.detach();
  }
});

test("maximal: a scheduler with every op but tick and dump runs, and the kernel calls its ops", { skip }, () => {
  const { m, b, obj, st, link } = machine("scx_maximal", PRESETS.interactive(4));
  m.run(0.5e9);
  assert.equal(st.root?.name, "maximal");
  const calls = readGlobal(b, obj, "calls");
  const c = (i: number) => calls.getBigUint64(i * 8, true);
  // select_cpu, enqueue, dispatch, runnable, running, stopping, quiescent, init_task, enable, init
  for (const i of [0, 1, 3, 4, 5, 6, 7, 15, 17, 28]) assert.ok(c(i) > 0n, `op #${i} called`);
  link.detach();
  assert.equal(exitRecord(b, obj).kind, SCX_EXIT_UNREG);
  assert.ok(readGlobal(b, obj, "calls").getBigUint64(18 * 8, true) > 0n, "disable called at detach");
});

test("watchdog: a task the scheduler never runs ends it with SCX_EXIT_ERROR_STALL after timeout_ms", { skip }, () => {
  const w: Workload = { name: "stall", tasks: [hog("stall", 1), hog("hog", 2)] };
  const { m, b, obj, st, link } = machine("scx_bad", w, { cpus: 2, rodata: { mode: 2 } });
  m.run(0.9e9);
  assert.equal(st.root?.name, "bad", "still running before timeout_ms (1000 ms)");
  m.run(2e9);
  assert.equal(st.root, null);
  const rec = exitRecord(b, obj);
  assert.equal(rec.kind, SCX_EXIT_ERROR_STALL);
  assert.match(rec.msg, /^stall\[\d+\] failed to run for 1\.\d{3}s$/);
  assert.equal(rec.reason, "runnable task stall");
  link.detach();
});

test("watchdog, scx_bad as loaded (mode 2, every 50th enqueue dropped): 4 hogs on 2 CPUs stall it within 1.5 timeout_ms", {
  skip,
}, () => {
  const { m, b, obj, st, link } = machine("scx_bad", PRESETS.hogs(2), { cpus: 2 });
  let at = -1;
  m.onTick = () => {
    if (at < 0 && !st.root) at = m.q.now;
  };
  m.run(3e9);
  const rec = exitRecord(b, obj);
  assert.equal(rec.kind, SCX_EXIT_ERROR_STALL);
  assert.match(rec.msg, /^hog-\d\[\d+\] failed to run for 1\.\d{3}s$/);
  // dropped at the 50th enqueue (20 ms slices, two CPUs: ~0.5 s), found by a watchdog pass every 500 ms
  assert.ok(at > 1e9 && at <= 2e9, `exit at ${at}`);
  assert.deepEqual(classes(m), new Set(["fair"]));
  link.detach();
});

test("watchdog: no more runnable tasks than CPUs, nothing is enqueued after the first wake-up, nothing stalls", {
  skip,
}, () => {
  // ext.c's balance_one keeps a prev whose slice ran out when nothing else is queued (no ENQ_LAST):
  // long hogs never pass through ops.enqueue again, so the one scx_bad drops is still running.
  const w: Workload = { name: "stall", tasks: [hog("stall", 1), hog("hog", 1)] };
  const { m, st, link } = machine("scx_bad", w, { cpus: 2, rodata: { mode: 2 } });
  m.run(10e9);
  assert.equal(st.root?.name, "bad");
  for (const p of m.all) assert.ok(p.se.sum_exec_runtime > 9.9e9, `${p.comm} ran all along`);
  link.detach();
});

test("bogus DSQ from enqueue and scx_bpf_error: ERROR and ERROR_BPF with their messages", { skip }, () => {
  let r = machine("scx_bad", PRESETS.hogs(2), { cpus: 2, rodata: { mode: 1 } });
  r.m.run(0.2e9);
  let rec = exitRecord(r.b, r.obj);
  assert.equal(rec.kind, SCX_EXIT_ERROR);
  assert.match(rec.msg, /^non-existent DSQ 0xdeadbeef for hog-\d\[\d+\]$/);
  r.link.detach();
  r = machine("scx_bad", PRESETS.interactive(2), { cpus: 2, rodata: { mode: 3 } });
  r.m.run(2e9);
  rec = exitRecord(r.b, r.obj);
  assert.equal(rec.kind, SCX_EXIT_ERROR_BPF);
  assert.match(rec.msg, /^enqueue #100 of pid \d+$/);
  assert.equal(rec.reason, "scx_bpf_error");
  r.link.detach();
});

test("debug dump of an error exit: the exit, then ops.dump, each busy CPU with ops.dump_cpu, its tasks with ops.dump_task", {
  skip,
}, () => {
  const { m, st } = machine("scx_bad", PRESETS.interactive(2), { cpus: 2, rodata: { mode: 3 } });
  m.run(2e9);
  const ei = st.history[0]!.exitInfo;
  assert.equal(ei.kind, SCX_EXIT_ERROR_BPF);
  const lines = ei.dump.split("\n");
  assert.match(lines[0]!, /^\S+\[\d+\] triggered exit kind 1025:$/);
  assert.equal(lines[1], `  scx_bpf_error (${ei.msg})`);
  // ops.dump: a blank line first, one line written in two calls, the last line flushed at the end
  assert.ok(
    ei.dump.includes(
      "\nBacktrace:\n\nbad: mode 3, exit kind 1025, 100 enqueued\nbad: 0 dropped\n\nCPU states\n----------\n",
    ),
  );
  const cpus = lines.filter((l) => /^CPU \d +: nr_run=\d+ ops_qseq=\d+$/.test(l));
  assert.ok(cpus.length >= 1);
  // ops.dump_cpu's lines indented by two, ops.dump_task's by four, after the task's own lines
  assert.equal(lines.filter((l) => /^ {2}queued on the shared DSQ: \d+$/.test(l)).length, cpus.length);
  const tasks = lines.filter((l) => /^ [* ][RS] \S+\[\d+\] [+-]\d+ms$/.test(l));
  assert.ok(tasks.length >= cpus.length);
  assert.equal(lines.filter((l) => /^ {4}pid \d+ weight 100$/.test(l)).length, tasks.length);
  assert.ok(lines.includes("Event counters"));
});

test("scx_bpf_dump() outside ops.dump*: SCX_EXIT_ERROR", { skip }, () => {
  const { m, b, obj } = machine("scx_bad", PRESETS.interactive(2), { cpus: 2, rodata: { mode: 4 } });
  m.run(0.1e9);
  const rec = exitRecord(b, obj);
  assert.equal(rec.kind, SCX_EXIT_ERROR);
  assert.equal(rec.msg, "scx_bpf_dump() must only be called from ops.dump() and friends");
});

test("vtime: CPU time follows weight (4 hogs at nice 0 against 4 at nice 5 on 2 CPUs: 100 to 33), within 5%", {
  skip,
}, () => {
  const w: Workload = { name: "w", tasks: [hog("n0", 4, 0), hog("n5", 4, 5)] };
  const { m, link } = machine("scx_vtime", w, { cpus: 2 });
  m.run(2e9);
  const sum = (n: string) => m.tasksNamed(n).reduce((t, p) => t + p.se.sum_exec_runtime, 0);
  const share = sum("n0") / (sum("n0") + sum("n5"));
  const want = 100 / (100 + 33);
  assert.ok(Math.abs(share - want) / want < 0.05, `share ${share.toFixed(3)}, want ${want.toFixed(3)}`);
  link.detach();
});

test("fifo: every hog gets a share; the same seed gives the same run", { skip }, () => {
  const once = () => {
    const { m, link } = machine("scx_fifo", PRESETS.hogs(2), { cpus: 2 });
    m.run(1e9);
    link.detach();
    return m.all.map((p) => [p.comm, p.se.sum_exec_runtime, p.nvcsw + p.nivcsw]);
  };
  const a = once();
  for (const [, rt] of a) assert.ok((rt as number) > 0.2e9);
  assert.deepEqual(once(), a);
});
