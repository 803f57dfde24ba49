/**
 * What the kernel's own sched_ext schedulers and selftests need of the kernel beyond the ops,
 * checked on our bpf/scx_conform.bpf.c: an ops name longer than a BPF object name (the selftests'
 * `select_cpu_dfl_nodispatch`, `enq_last_no_enq_fails`, ... attach), the bit iterator that
 * common.bpf.h's for_each_online_cpu is built on, task_struct.migration_disabled for CO-RE, the
 * vmlinux.h enumerators `true`/`false`/BPF_MAX_LOOPS, and the bpf_cpumask kfuncs the
 * `allowed_cpus` selftest calls (bpf_cpumask_subset, ...).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { kernelCpumasks } from "../../../src/kernel/cpumask.js";
import { bpf_prog_test_run_opts } from "../../../src/loader/bpf.js";
import { BpfObject } from "../../../src/loader/object.js";
import { Machine } from "../../../src/sim/sched/machine.js";
import { PRESETS } from "../../../src/sim/sched/workload.js";
import { schedExtSubsystem, scxState } from "../../../src/subsys/sched_ext/index.js";
import { E2BIG, EACCES, EINVAL } from "../../../src/uapi/errno.js";
import { readGlobal, type ScxBoot, scxObj } from "./helpers.js";

const skip = existsSync(scxObj("scx_conform")) ? false : "bpf/obj/sim/scx_conform.bpf.o not built";

function boot(cpus = 4) {
  const m = new Machine({ cpus, workload: PRESETS.interactive(cpus), subsystems: [schedExtSubsystem], seed: 4 });
  const st = scxState(m.kernel);
  assert.ok(st);
  const b: ScxBoot = { kernel: m.kernel, h: { kernel: m.kernel, process: m.kernel.newProcess() }, st };
  const obj = BpfObject.open(scxObj("scx_conform"));
  obj.load(b.h);
  const g = (name: string, sec = ".bss") => readGlobal(b, obj, name, sec);
  const g32 = (name: string) => g(name).getUint32(0, true);
  const run = (prog: string) => {
    const p = obj.programs.find((x) => x.name === prog);
    assert.ok(p);
    const opts: { retval?: number } = {};
    assert.equal(bpf_prog_test_run_opts(b.h, p.fd, opts), 0);
    return opts.retval;
  };
  return { m, b, obj, st, g, g32, run };
}

test("sched_ext_ops.name holds up to 127 characters (bpf_obj_name_cpy with the field's size, not 16)", {
  skip,
}, () => {
  const { m, obj, st } = boot();
  // read through a function: TypeScript would narrow st.root after the first assert
  const root = () => st.root;
  const long = obj.findMap("long_name_ops");
  assert.ok(long);
  const link = long.attachStructOps();
  assert.equal(root()?.name, "structops_conformance_with_a_long_ops_name");
  m.run(20e6);
  link.detach();
  assert.equal(st.root, null);
  const max = obj.findMap("max_name_ops");
  assert.ok(max);
  const link2 = max.attachStructOps();
  assert.equal(root()?.name.length, 127);
  link2.detach();
  assert.equal(st.root, null);
});

test("for_each_online_cpu: bpf_iter_bits over scx_bpf_get_online_cpumask() yields every online CPU once", {
  skip,
}, () => {
  const { m, obj, g, g32 } = boot(4);
  m.sched.cpu_down(2);
  const link = obj.findMap("long_name_ops")?.attachStructOps();
  assert.ok(link);
  m.run(30e6);
  assert.equal(g32("online_seen"), 3);
  assert.equal(g("online_mask").getBigUint64(0, true), 0b1011n);
  assert.equal(g32("online_expected"), 4);
  // CO-RE finds task_struct.migration_disabled; no simulated task ever has it set
  assert.ok(g("enqueued").getBigUint64(0, true) > 0n);
  assert.equal(g("has_migration_disabled").getUint8(0), 1);
  assert.equal(g("migration_disabled_seen").getBigUint64(0, true), 0n);
  // BPF_MAX_LOOPS from vmlinux.h's enum, as include/linux/bpf.h exposes it
  assert.equal(g("max_loops", ".data").getBigUint64(0, true), 8n * 1024n * 1024n);
  link.detach();
});

test("bpf_iter_bits: set bits of several words in order, one word in the iterator, -EINVAL / -E2BIG", { skip }, () => {
  const { g, g32, run } = boot();
  assert.equal(run("bits"), 0);
  assert.equal(g32("nr_positions"), 4);
  const pos = g("positions");
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => pos.getInt32(i * 4, true)),
    [0, 63, 128 + 4, 128 + 5],
  );
  assert.equal(g32("one_word_bits"), 4 + 5);
  assert.equal(g("ret_zero_words").getInt32(0, true), -EINVAL);
  assert.equal(g("ret_too_many").getInt32(0, true), -E2BIG);
  assert.equal(g("ret_null").getInt32(0, true), -EINVAL);
  assert.equal(g("ret_one").getInt32(0, true), 0);
});

test("bpf_cpumask two-mask and whole-mask kfuncs (subset, intersects, equal, full, and, or, xor, copy, ...)", {
  skip,
}, () => {
  const { g, g32, run, b } = boot(4);
  assert.equal(run("cpumask_ops"), 0);
  // a = {0, 2}, b = {0, 1, 2, 3}
  assert.equal(g32("r_subset_ab"), 1);
  assert.equal(g32("r_subset_ba"), 0);
  assert.equal(g32("r_intersects"), 1);
  assert.equal(g32("r_equal"), 0);
  assert.equal(g32("r_full_b"), 1);
  assert.equal(g32("r_full_a"), 0);
  assert.equal(g32("r_first_zero_a"), 1);
  assert.equal(g32("r_first_and"), 0);
  assert.equal(g32("r_and"), 1);
  assert.equal(g32("r_xor_weight"), 2);
  // a & (a ^ b) is empty: bpf_cpumask_and returns false
  assert.equal(g32("r_and_empty"), 0);
  assert.equal(g32("r_or_weight"), 2);
  assert.equal(g32("r_equal_copy"), 1);
  assert.equal(g32("r_tas_old"), 0);
  assert.equal(g32("r_tas_new"), 1);
  assert.equal(g32("r_tac"), 1);
  // any_distribute rotates over the set CPUs {0, 2}
  const d = g("r_distribute");
  const picks = [0, 1, 2, 3].map((i) => d.getUint32(i * 4, true));
  assert.ok(picks.every((c) => c === 0 || c === 2));
  assert.notEqual(picks[0], picks[1]);
  assert.equal(g32("r_cleared_weight"), 0);
  // every mask released
  assert.equal(kernelCpumasks(b.kernel).count(), 0);
});

test("bpf_strncmp: struct_ops and syscall programs compare against .rodata literals; a writable string is refused", {
  skip,
}, () => {
  const { m, obj, g, run } = boot(4);
  assert.equal(run("strncmp_run"), 0);
  const i32 = (name: string) => g(name, ".data").getInt32(0, true);
  assert.equal(i32("r_eq"), 0);
  assert.equal(g("r_lt").getInt32(0, true), -1);
  assert.equal(g("r_gt").getInt32(0, true), 1);
  assert.equal(i32("r_prefix"), 0);
  assert.equal(g("r_nul").getInt32(0, true), -1);
  // select_cpu_dfl's use: p->comm (a trusted task pointer) against a literal, from ops.enqueue
  const link = obj.findMap("long_name_ops")?.attachStructOps();
  assert.ok(link);
  m.run(30e6);
  const hogs = g("hogs_enqueued").getBigUint64(0, true);
  assert.ok(hogs > 0n && hogs < g("enqueued").getBigUint64(0, true), `${hogs} hogs`);
  link.detach();

  const bad = BpfObject.open(scxObj("scx_conform"));
  const p = bad.programs.find((x) => x.name === "strncmp_rw_str");
  assert.ok(p);
  p.setAutoload(true);
  const k = m.kernel;
  assert.throws(
    () => bad.load({ kernel: k, process: k.newProcess() }),
    (e: Error & { errno?: number }) => e.errno === EACCES && /R3 does not point to a readonly map'/.test(e.message),
  );
});
