/**
 * sched_ext_ops as a struct_ops type: the kernel's BTF for it, CO-RE of our schedulers onto it,
 * init_member's checks of the data members, check_member's sleepable members, one scheduler at a
 * time, no in-place update, and the exits the kernel's selftests assert that need no running tasks
 * (ENQ_LAST without enqueue ejected at attach, scx_bpf_exit from ops.init, detach = UNREG).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import type { BtfComposite } from "../../../src/btf/types.js";
import { bpf_prog_load } from "../../../src/loader/bpf.js";
import { BpfObject } from "../../../src/loader/object.js";
import type { BpfProgram } from "../../../src/loader/program.js";
import {
  SCX_DSQ_LOCAL,
  SCX_EXIT_ERROR,
  SCX_EXIT_UNREG,
  SCX_EXIT_UNREG_BPF,
  SCX_SLICE_DFL,
} from "../../../src/subsys/sched_ext/index.js";
import { BPF_PSEUDO_KFUNC_CALL, bpf_prog_type } from "../../../src/uapi/bpf.js";
import { BTF_KIND_ENUM64, BTF_KIND_STRUCT } from "../../../src/uapi/btf.js";
import { BpfError, E2BIG, EBUSY, EINVAL, EOPNOTSUPP } from "../../../src/uapi/errno.js";
import { KF_ACQUIRE, KF_RCU, KF_SLEEPABLE } from "../../../src/verifier/env.js";
import { attachScx, bootScx, exitRecord, loadScx, scxObj } from "./helpers.js";

const skip = existsSync(scxObj("scx_vtime")) ? false : "bpf/obj/sim/scx_*.bpf.o not built";

const errno = (n: number) => (e: unknown) => e instanceof BpfError && e.errno === n;

test("sched_ext BTF: task_struct.scx, the ops struct with 34 ops and its data members, the enums as 64-bit", () => {
  const { kernel } = bootScx();
  const btf = kernel.btfVmlinux!;
  const ops = btf.typeById(btf.findByNameKind("sched_ext_ops", BTF_KIND_STRUCT)) as BtfComposite;
  const names = ops.members.map((m) => m.name);
  assert.equal(names.indexOf("dispatch_max_batch"), 34);
  assert.deepEqual(names.slice(34), [
    "dispatch_max_batch",
    "flags",
    "timeout_ms",
    "exit_dump_len",
    "hotplug_seq",
    "name",
    "priv",
  ]);
  const task = btf.typeById(btf.findByNameKind("task_struct", BTF_KIND_STRUCT)) as BtfComposite;
  const scx = task.members.find((m) => m.name === "scx");
  assert.ok(scx);
  const ent = btf.typeById(scx.type) as BtfComposite;
  for (const f of ["slice", "dsq_vtime", "weight", "disallow", "flags"])
    assert.ok(ent.members.some((m) => m.name === f));
  const dsqFlags = btf.typeById(btf.findByNameKind("scx_dsq_id_flags", BTF_KIND_ENUM64)) as unknown as {
    values: { name: string; val: bigint }[];
  };
  assert.equal(dsqFlags.values.find((v) => v.name === "SCX_DSQ_LOCAL")?.val, SCX_DSQ_LOCAL);
  const pub = btf.typeById(btf.findByNameKind("scx_public_consts", BTF_KIND_ENUM64)) as unknown as {
    values: { name: string; val: bigint }[];
  };
  assert.equal(pub.values.find((v) => v.name === "SCX_SLICE_DFL")?.val, SCX_SLICE_DFL);
});

test("sched_ext kfuncs: 6.18 names with their flags; the sleepable one, the acquiring ones", () => {
  const { kernel } = bootScx();
  const kf = (n: string) => kernel.kfuncsByName.get(n);
  assert.ok((kf("scx_bpf_create_dsq")?.flags ?? 0) & KF_SLEEPABLE);
  assert.ok((kf("scx_bpf_dsq_insert")?.flags ?? 0) & KF_RCU);
  assert.ok((kf("scx_bpf_get_idle_cpumask")?.flags ?? 0) & KF_ACQUIRE);
  // The pre-6.13 names are gone: schedulers' ___compat fallbacks must resolve as absent.
  for (const old of ["scx_bpf_dispatch", "scx_bpf_consume", "scx_bpf_dispatch_vtime"]) assert.equal(kf(old), undefined);
  // A kfunc has a kernel address (what bpf_ksym_exists tests).
  assert.ok(kernel.ksyms.get("scx_bpf_dsq_insert"));
});

test("scx_vtime loads: CO-RE onto task_struct.scx, weak ___compat kfuncs pruned, attach enables it, detach exits UNREG", {
  skip,
}, () => {
  const b = bootScx();
  const obj = loadScx(b, "scx_vtime");
  const btf = b.kernel.btfVmlinux!;
  const enq = obj.findProgram("vtime_select_cpu") as BpfProgram;
  const calls = (enq.loadedInsns ?? []).filter((i) => i.code === 0x85 && i.src === BPF_PSEUDO_KFUNC_CALL);
  assert.deepEqual(
    calls.map((i) => btf.nameOf(i.imm)),
    ["scx_bpf_select_cpu_dfl", "scx_bpf_dsq_insert"],
  );
  const link = attachScx(obj);
  assert.equal(b.st.root?.name, "vtime");
  link.detach();
  assert.equal(b.st.root, null);
  const rec = exitRecord(b, obj);
  assert.equal(rec.kind, SCX_EXIT_UNREG);
  assert.equal(rec.reason, "unregistered from user space");
});

test("one scheduler at a time: a second attach is EBUSY; after the first detaches it attaches", { skip }, () => {
  const b = bootScx();
  const a = loadScx(b, "scx_vtime");
  const f = loadScx(b, "scx_fifo");
  const la = attachScx(a);
  assert.throws(() => attachScx(f), errno(EBUSY));
  assert.equal(b.st.root?.name, "vtime");
  la.detach();
  const lf = attachScx(f);
  assert.equal(b.st.root?.name, "fifo");
  assert.equal(b.st.root?.timeoutMs, 5000);
  lf.detach();
});

test("bpf_scx_update: a loaded scheduler is not replaced in place (EOPNOTSUPP)", { skip }, () => {
  const b = bootScx();
  const a = loadScx(b, "scx_vtime");
  const f = loadScx(b, "scx_fifo");
  const link = attachScx(a);
  const fm = f.maps.find((m) => m.structOpsValue);
  assert.ok(fm);
  assert.throws(() => link.updateMap(fm), errno(EOPNOTSUPP));
  assert.equal(b.st.root?.name, "vtime");
  link.detach();
});

test("init_member: timeout_ms above 30 s is E2BIG, unknown flags and bad names EINVAL; exit_dump_len 0 is the default", {
  skip,
}, () => {
  const tryLoad = (set: (v: NonNullable<BpfObject["maps"][number]["structOpsValue"]>) => void) => {
    const b = bootScx();
    const obj = BpfObject.open(scxObj("scx_fifo"));
    const v = obj.maps.find((x) => x.structOpsValue)?.structOpsValue;
    assert.ok(v);
    set(v);
    obj.load(b.h);
    // The kernel sees the value (init_member) when the map is updated, at attach.
    return { b, obj, link: attachScx(obj) };
  };
  assert.throws(() => tryLoad((v) => v.set("timeout_ms", 30_001)), errno(E2BIG));
  assert.throws(() => tryLoad((v) => v.set("flags", 1n << 20n)), errno(EINVAL));
  assert.throws(() => tryLoad((v) => v.set("name", "no spaces")), errno(EINVAL));
  assert.throws(() => tryLoad((v) => v.set("name", "")), errno(EINVAL));
  const ok = tryLoad((v) => v.set("timeout_ms", 30_000));
  assert.equal(ok.b.st.root?.timeoutMs, 30_000);
  assert.equal(ok.b.st.root?.exitDumpLen, 32768);
  ok.link.detach();
});

test("check_member: only init_task, cgroup_init/exit/prep_move, cpu_online/offline, init and exit may be sleepable", () => {
  const { h, kernel } = bootScx();
  const btf = kernel.btfVmlinux!;
  const opsId = btf.findByNameKind("sched_ext_ops", BTF_KIND_STRUCT);
  const ops = btf.typeById(opsId) as BtfComposite;
  const insns = [
    { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 }, // r0 = 0
    { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 }, // exit
  ];
  const load = (member: string) =>
    bpf_prog_load(h, bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS, "scx_sleep", "GPL", insns, {
      expected_attach_type: ops.members.findIndex((m) => m.name === member),
      attach_btf_id: opsId,
      prog_flags: 1 << 4, // BPF_F_SLEEPABLE
    });
  for (const m of ["init", "exit", "init_task", "cpu_online", "cgroup_init"]) assert.ok(load(m) > 0, m);
  for (const m of ["enqueue", "dispatch", "select_cpu", "running", "exit_task"]) assert.equal(load(m), -EINVAL, m);
});

test("SCX_OPS_ENQ_LAST without ops.enqueue: attach succeeds and the scheduler is ejected with an error exit", {
  skip,
}, () => {
  const b = bootScx();
  const obj = loadScx(b, "scx_enq_last");
  const link = attachScx(obj);
  assert.equal(b.st.root, null);
  const rec = exitRecord(b, obj);
  assert.equal(rec.kind, SCX_EXIT_ERROR);
  assert.equal(rec.reason, "runtime error");
  assert.equal(rec.msg, "SCX_OPS_ENQ_LAST requires ops.enqueue() to be implemented");
  link.detach();
  // Gone for good: another scheduler may attach now.
  const l2 = attachScx(loadScx(b, "scx_fifo"));
  l2.detach();
});

test("scx_bpf_exit from ops.init: UNREG_BPF with the code and the formatted message", { skip }, () => {
  const b = bootScx();
  const obj = loadScx(b, "scx_exit", { exit_point: 6 });
  const link = attachScx(obj);
  const rec = exitRecord(b, obj);
  assert.equal(rec.kind, SCX_EXIT_UNREG_BPF);
  assert.equal(rec.exit_code, 6n);
  assert.equal(rec.msg, "exit at 6");
  assert.equal(rec.reason, "unregistered from BPF");
  link.detach();
});
