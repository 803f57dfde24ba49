/**
 * What the kernel's sched_ext selftests (tools/testing/selftests/sched_ext, 6.18) assert, on our
 * own schedulers in bpf/scx_checks.bpf.c (one sched_ext_ops map per check), run on the simulated
 * machine: direct dispatch from ops.select_cpu and its errors, vtime DSQs, SCX_DSQ_LOCAL_ON from
 * ops.dispatch, DSQ creation, the init/enable counts, scx_bpf_exit() from BPF_PROG_RUN.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { bpf_prog_test_run_opts } from "../../../src/loader/bpf.js";
import { BpfObject } from "../../../src/loader/object.js";
import { Machine } from "../../../src/sim/sched/machine.js";
import { PRESETS, type TaskTemplate, type Workload } from "../../../src/sim/sched/workload.js";
import {
  SCX_EXIT_ERROR,
  SCX_EXIT_UNREG,
  SCX_EXIT_UNREG_BPF,
  schedExtSubsystem,
  scxState,
} from "../../../src/subsys/sched_ext/index.js";
import { BpfError, EACCES } from "../../../src/uapi/errno.js";
import { bootScx, exitRecord, readGlobal, type ScxBoot, scxObj, varOffset } from "./helpers.js";

const skip = existsSync(scxObj("scx_checks")) ? false : "bpf/obj/sim/scx_checks.bpf.o not built";

/** A machine with scx_checks loaded (nr_cpus set) but nothing attached yet. */
function boot(workload: Workload, cpus = 4, timeline = false) {
  const m = new Machine({ cpus, workload, subsystems: [schedExtSubsystem], seed: 3, timeline });
  const st = scxState(m.kernel);
  assert.ok(st);
  const b: ScxBoot = { kernel: m.kernel, h: { kernel: m.kernel, process: m.kernel.newProcess() }, st };
  const obj = BpfObject.open(scxObj("scx_checks"));
  const ro = obj.internalMap(".rodata");
  assert.ok(ro);
  const bytes = new Uint8Array(ro.valueSize);
  new DataView(bytes.buffer).setUint32(varOffset(obj, ".rodata", "nr_cpus"), cpus, true);
  ro.setInitialValue(bytes);
  obj.load(b.h);
  const attach = (map: string) => {
    const sm = obj.findMap(map);
    assert.ok(sm?.structOpsValue, map);
    return sm.attachStructOps();
  };
  const u64 = (name: string) => readGlobal(b, obj, name).getBigUint64(0, true);
  return { m, b, obj, st, attach, u64 };
}

function task(name: string, events: TaskTemplate["events"], over: Partial<TaskTemplate> = {}): TaskTemplate {
  return { name, instances: 1, loop: -1, nice: 0, policy: 0, delay: 0, jitter: 0, events, forkedOnly: false, ...over };
}

test("select_cpu_dfl_nodispatch: the default selection's idle CPU reaches ops.enqueue, which dispatches locally", {
  skip,
}, () => {
  const { m, b, obj, st, attach } = boot(PRESETS.interactive(4));
  const link = attach("nodispatch_ops");
  m.run(0.5e9);
  assert.equal(st.root?.name, "nodispatch");
  assert.equal(readGlobal(b, obj, "saw_local").getUint8(0), 1);
  for (const p of m.all) assert.ok(p.se.sum_exec_runtime > 0, `${p.comm} ran`);
  link.detach();
  assert.equal(exitRecord(b, obj).kind, SCX_EXIT_UNREG);
});

test("select_cpu_dispatch: every wake-up direct-dispatched from ops.select_cpu, every task runs", { skip }, () => {
  const { m, st, attach, u64 } = boot(PRESETS.interactive(4));
  attach("ddsp_ops");
  m.run(0.5e9);
  assert.equal(st.root?.name, "ddsp");
  assert.ok(u64("nr_ddsp") > 50n, `${u64("nr_ddsp")} direct dispatches`);
  for (const p of m.all) assert.ok(p.se.sum_exec_runtime > 0, `${p.comm} ran`);
});

for (const [map, msg] of [
  ["ddsp_bad_ops", /^non-existent DSQ 0xbad for \S+\[\d+\]$/],
  ["ddsp_twice_ops", /^\S+\[\d+\] already direct-dispatched$/],
  ["vtime_local_ops", /^cannot use vtime ordering for built-in DSQs$/],
] as const) {
  test(`${map}: SCX_EXIT_ERROR (${msg.source}), every task back in fair`, { skip }, () => {
    const { m, b, obj, st, attach } = boot(PRESETS.interactive(4));
    attach(map);
    m.run(0.5e9);
    assert.equal(st.root, null);
    const rec = exitRecord(b, obj);
    assert.equal(rec.kind, SCX_EXIT_ERROR);
    assert.equal(rec.reason, "runtime error");
    assert.match(rec.msg, msg);
    assert.ok(m.all.every((p) => p.sched_class === m.sched.fair));
  });
}

test("select_cpu_vtime: vtime-ordered direct dispatch into a user DSQ is consumed by ops.dispatch", { skip }, () => {
  const { m, st, attach, u64 } = boot(PRESETS.interactive(4));
  assert.equal(u64("nr_consumed"), 0n);
  attach("select_vtime_ops");
  m.run(0.5e9);
  assert.equal(st.root?.name, "select_vtime");
  assert.ok(u64("nr_consumed") > 0n);
});

test("dsp_local_on: ops.dispatch inserting into SCX_DSQ_LOCAL_ON | cpu runs, then unregisters cleanly", {
  skip,
}, () => {
  const { m, b, obj, st, attach, u64 } = boot(PRESETS.hogs(4));
  const link = attach("local_on_ops");
  m.run(0.5e9);
  assert.equal(st.root?.name, "local_on");
  assert.ok(u64("nr_local_on") > 50n);
  // each hog got CPU time on more than one CPU: the targets were honoured
  for (const p of m.all) assert.ok(p.se.nr_migrations > 0, `${p.comm} moved`);
  link.detach();
  assert.equal(exitRecord(b, obj).kind, SCX_EXIT_UNREG);
});

test("create_dsq: 256 DSQs created, destroyed and created again in ops.init, one per task; the same ID twice is EEXIST", {
  skip,
}, () => {
  const { m, b, obj, st, attach, u64 } = boot(PRESETS.build(2), 2);
  const link = attach("create_dsq_ops");
  m.run(0.2e9);
  assert.equal(st.root?.name, "create_dsq");
  assert.equal(u64("dsqs_created"), 512n);
  const live = [...m.sched.tasks()].length;
  assert.equal(u64("dsqs_live"), BigInt(live));
  assert.equal(st.root?.dsqs.size, 256 + live);
  link.detach();
  assert.equal(exitRecord(b, obj).kind, SCX_EXIT_UNREG);
  assert.equal(u64("dsqs_live"), 0n);
});

/** 8 sleepers there before the attach, then a parent forking 5 short children. */
function countWorkload(childPolicy: number): Workload {
  return {
    name: "count",
    tasks: [
      task(
        "pre",
        [
          { kind: "run", ns: 200e3 },
          { kind: "sleep", ns: 5e6 },
        ],
        { instances: 8 },
      ),
      task(
        "parent",
        [
          { kind: "fork", target: "child" },
          { kind: "sleep", ns: 10e6 },
        ],
        { loop: 5, delay: 100e6 },
      ),
      task("child", [{ kind: "run", ns: 1e6 }], { loop: 1, forkedOnly: true, policy: childPolicy }),
    ],
  };
}

test("init_enable_count: init_task/exit_task and enable/disable pair up; transitions outnumber forks", { skip }, () => {
  const { m, attach, u64 } = boot(countWorkload(0));
  let link: ReturnType<typeof attach> | undefined;
  m.at(50e6, () => {
    link = attach("count_ops");
  });
  m.run(400e6);
  assert.equal(m.tasksNamed("child").length, 5);
  link?.detach();
  const init = u64("init_task_cnt");
  assert.ok(init >= 8n + 1n + 5n, `init_task ${init}`);
  assert.equal(u64("exit_task_cnt"), init);
  assert.ok(u64("enable_cnt") >= 2n * 5n);
  assert.equal(u64("disable_cnt"), u64("enable_cnt"));
  assert.ok(u64("init_fork_cnt") >= 5n);
  assert.ok(u64("init_transition_cnt") > u64("init_fork_cnt"));
});

test("init_enable_count, SCX_OPS_SWITCH_PARTIAL: every task initialised, only the 5 SCHED_EXT children enabled", {
  skip,
}, () => {
  const { m, attach, u64 } = boot(countWorkload(7));
  let link: ReturnType<typeof attach> | undefined;
  m.at(50e6, () => {
    link = attach("count_partial_ops");
  });
  m.run(400e6);
  link?.detach();
  assert.equal(u64("enable_cnt"), 5n);
  assert.equal(u64("disable_cnt"), 5n);
  assert.equal(u64("exit_task_cnt"), u64("init_task_cnt"));
  assert.ok(u64("init_transition_cnt") > u64("init_fork_cnt"));
});

test("cpu_release/cpu_acquire: an RT task takes a CPU from sched_ext (reason RT, the task) and gives it back", {
  skip,
}, () => {
  const rt = task(
    "rt",
    [
      { kind: "run", ns: 2e6 },
      { kind: "sleep", ns: 8e6 },
    ],
    { policy: 1, rtPriority: 50, cpus: [1], delay: 1e6 },
  );
  const workload: Workload = { name: "rt", tasks: [task("hog", [{ kind: "run", ns: 1e9 }], { instances: 4 }), rt] };
  const { m, b, obj, st, attach, u64 } = boot(workload, 2);
  attach("release_ops");
  m.run(200e6);
  assert.equal(st.root?.name, "release");
  const r = m.tasksNamed("rt")[0]!;
  assert.equal(r.sched_class, m.sched.rt);
  // 20 periods: each wake-up takes CPU 1 from an SCX task, each sleep gives it back
  assert.equal(u64("nr_release"), 20n);
  assert.equal(u64("nr_release_rt"), 20n);
  assert.equal(u64("nr_acquire"), 20n);
  assert.equal(readGlobal(b, obj, "release_pid").getInt32(0, true), r.pid);
  // the preempted task, at the head of CPU 1's local DSQ, went back through ops.enqueue
  assert.ok(u64("nr_reenq") >= 20n);
  // the RT task never waits: it runs its 2 ms as soon as it wakes
  assert.ok(r.sched_info.run_delay < 20 * 5e3, `run_delay ${r.sched_info.run_delay}`);
  assert.ok(r.se.sum_exec_runtime >= 40e6);
  for (const p of m.tasksNamed("hog")) assert.ok(p.se.sum_exec_runtime > 0);
});

/** BPF_PROG_RUN of scx_checks' select_cpu_of for a pid. */
function selectCpuOf(b: ScxBoot, obj: BpfObject, pid: number): number {
  const prog = obj.findProgram("select_cpu_of");
  assert.ok(prog);
  const opts: { ctx_in: Uint8Array; retval?: number } = { ctx_in: new Uint8Array(new Int32Array([pid]).buffer) };
  assert.equal(bpf_prog_test_run_opts(b.h, prog.fd, opts), 0);
  return opts.retval! | 0;
}

test("enq_select_cpu: scx_bpf_select_cpu_dfl() from ops.enqueue puts tasks on the idle CPUs it finds", { skip }, () => {
  const { m, st, attach, u64 } = boot(PRESETS.pipe(4));
  attach("enq_select_ops");
  m.run(0.1e9);
  assert.equal(st.root?.name, "enq_select");
  assert.ok(u64("nr_enq_idle") > 0n, "an idle CPU was found from ops.enqueue");
  for (const p of m.all) assert.ok(p.se.sum_exec_runtime > 0, `${p.comm} ran`);
});

test("enq_select_cpu: from a syscall program, an idle CPU (claimed), -EBUSY when none is idle, -EINVAL for no task", {
  skip,
}, () => {
  const sleeper = task("sleeper", [
    { kind: "run", ns: 1e5 },
    { kind: "sleep", ns: 50e6 },
  ]);
  const hog = task("hog", [{ kind: "run", ns: 1e9 }], { instances: 4, delay: 20e6 });
  const { m, b, obj, st, attach, u64 } = boot({ name: "idle", tasks: [sleeper, hog] });
  attach("enq_select_ops");
  const got: number[] = [];
  const pid = () => m.tasksNamed("sleeper")[0]!.pid;
  m.at(10e6, () => got.push(selectCpuOf(b, obj, pid()), selectCpuOf(b, obj, pid())));
  m.at(30e6, () => got.push(selectCpuOf(b, obj, pid()), selectCpuOf(b, obj, 99999)));
  m.run(40e6);
  assert.equal(st.root?.name, "enq_select");
  // two idle CPUs, the first claimed by the first call; then four hogs busy everywhere
  assert.equal(got.length, 4);
  assert.ok(got[0]! >= 0 && got[1]! >= 0 && got[0] !== got[1], `${got}`);
  assert.deepEqual(got.slice(2), [-16, -22]);
  assert.ok(u64("nr_enq_busy") + u64("nr_enq_idle") > 0n);
});

test("allowed_cpus: scx_bpf_select_cpu_and() picks idle CPUs only in its domain and claims them; still running", {
  skip,
}, () => {
  const { m, st, attach, u64 } = boot(PRESETS.interactive(4));
  attach("allowed_ops");
  m.run(1e9);
  assert.equal(st.root?.name, "allowed");
  assert.ok(u64("nr_in_domain") > 0n);
  assert.ok(u64("nr_domain_busy") > 0n);
  for (const p of m.all) assert.ok(p.se.sum_exec_runtime > 0, `${p.comm} ran`);
});

test("prog_run: scx_bpf_exit() from a syscall program run with BPF_PROG_RUN ends the scheduler (UNREG_BPF)", {
  skip,
}, () => {
  const { m, b, obj, st, attach } = boot(PRESETS.interactive(2), 2);
  attach("ddsp_ops");
  m.run(0.1e9);
  assert.equal(st.root?.name, "ddsp");
  const prog = obj.findProgram("exit_from_syscall");
  assert.ok(prog);
  const opts: { retval?: number } = {};
  assert.equal(bpf_prog_test_run_opts(b.h, prog.fd, opts), 0);
  assert.equal(opts.retval, 0);
  m.run(0.2e9);
  assert.equal(st.root, null);
  const rec = exitRecord(b, obj);
  assert.equal(rec.kind, SCX_EXIT_UNREG_BPF);
  assert.equal(rec.exit_code, 0xdeadbeefn);
  assert.equal(rec.msg, "exit from a syscall program");
});

test("maybe_null: ops.dispatch's prev and ops.yield's to read without a NULL check are refused by the verifier", {
  skip,
}, () => {
  for (const name of ["scx_null_dsp", "scx_null_yld"]) {
    const b = bootScx(2);
    const obj = BpfObject.open(scxObj(name));
    assert.throws(
      () => obj.load(b.h),
      (e: unknown) =>
        e instanceof BpfError && e.errno === EACCES && /R1 invalid mem access 'trusted_ptr_or_null_'/.test(e.message),
      name,
    );
  }
  // the same read behind a check loads: scx_vtime's dispatch tests prev first
  const b = bootScx(2);
  BpfObject.open(scxObj("scx_vtime")).load(b.h);
});

test("reload_loop: attaching and detaching a scheduler 100 times while tasks run; each ends UNREG, the next attaches", {
  skip,
}, () => {
  const m = new Machine({ cpus: 2, workload: PRESETS.interactive(2), subsystems: [schedExtSubsystem], seed: 3 });
  const st = scxState(m.kernel);
  assert.ok(st);
  const b: ScxBoot = { kernel: m.kernel, h: { kernel: m.kernel, process: m.kernel.newProcess() }, st };
  const obj = BpfObject.open(scxObj("scx_maximal"));
  obj.load(b.h);
  const sm = obj.maps.find((x) => x.structOpsValue);
  assert.ok(sm);
  for (let i = 0; i < 100; i++) {
    m.at(i * 2e6, () => {
      const link = sm.attachStructOps();
      m.at(i * 2e6 + 1e6, () => link.detach());
    });
  }
  m.run(250e6);
  assert.equal(st.history.length, 100);
  assert.ok(st.history.every((s) => s.disabled && s.exitInfo.kind === SCX_EXIT_UNREG));
  assert.equal(st.root, null);
  assert.ok(m.all.every((p) => p.sched_class === m.sched.fair));
  for (const p of m.all) assert.ok(p.se.sum_exec_runtime > 0);
});

test("set_cpumask: an affinity phase calls ops.set_cpumask with p->cpus_ptr as changed; the task runs only there", {
  skip,
}, () => {
  const workload: Workload = {
    name: "affinity",
    tasks: [
      task("hog", [{ kind: "run", ns: 1e9 }], { instances: 2 }),
      task(
        "mover",
        [
          { kind: "affinity", cpus: [0] },
          { kind: "run", ns: 40e6 },
          { kind: "affinity", cpus: [1] },
          { kind: "run", ns: 40e6 },
        ],
        { loop: 1 },
      ),
    ],
  };
  const { m, b, obj, st, attach } = boot(workload, 2, true);
  attach("cpumask_ops");
  m.run(0.4e9);
  const g = (n: string) => readGlobal(b, obj, n);
  assert.equal(st.root?.name, "cpumask");
  const mover = m.tasksNamed("mover")[0]!;
  assert.equal(g("nr_set_cpumask").getBigUint64(0, true), 2n);
  assert.equal(g("last_set_pid").getInt32(0, true), mover.pid);
  assert.equal(g("last_mask").getBigUint64(0, true), 0b10n);
  assert.equal(g("last_nr_allowed").getInt32(0, true), 1);
  assert.ok(mover.se.sum_exec_runtime >= 80e6, "both phases ran");
  const segs = m.segments.filter((s) => s.pid === mover.pid);
  const cpus = new Set(segs.map((s) => s.cpu));
  assert.deepEqual(cpus, new Set([0, 1]));
  // after the first segment on CPU 1 it never runs on CPU 0 again
  const firstOn1 = segs.findIndex((s) => s.cpu === 1);
  assert.ok(segs.slice(firstOn1).every((s) => s.cpu === 1));
});

test("scx_bpf_dsq_move[_vtime] from the DSQ iterator: set_slice/set_vtime apply to the move, a moved task cannot be moved again", {
  skip,
}, () => {
  const { m, st, attach, u64 } = boot(PRESETS.hogs(2), 2);
  attach("move_ops");
  m.run(0.5e9);
  assert.equal(st.root?.name, "move");
  const moved = u64("nr_moved");
  const movedVtime = u64("nr_moved_vtime");
  assert.ok(moved > 20n && movedVtime > 5n, `${moved} moves, ${movedVtime} vtime moves`);
  assert.equal(u64("nr_refused"), moved + movedVtime);
  // three runs in four get the quarter slice (5 ms), the vtime ones keep 20 ms: 1 s of CPU time in
  // runs of 8.75 ms on average is ~114 switches, where 20 ms slices alone would give 50
  const csw = m.all.reduce((n, p) => n + p.nvcsw + p.nivcsw, 0);
  assert.ok(csw > 100 && csw < 130, `${csw} context switches`);
  for (const p of m.all) assert.ok(p.se.sum_exec_runtime > 0.15e9, `${p.comm}: ${p.se.sum_exec_runtime}`);
});
