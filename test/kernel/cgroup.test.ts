import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { type CgroupSubsys, cgroupRoot } from "../../src/kernel/cgroup.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { memberOff, task_exit, view } from "../../src/kernel/task.js";
import type { BpfHandle } from "../../src/loader/bpf.js";
import { BpfObject } from "../../src/loader/object.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BpfError, EACCES, EBUSY, EEXIST, EINVAL, EPERM } from "../../src/uapi/errno.js";
import { repoRoot } from "../verifier/helpers.js";
import { checkRefusals, compareWithHost, hostSkip } from "../verifier/object_verdicts.js";

/**
 * cgroups (src/kernel/cgroup.ts): the hierarchy in VM memory as vmlinux BTF lays it out, task
 * membership and migration with the controllers' callbacks, references, and the BPF core's cgroup
 * kfuncs on clang output (bpf/cgrp_kfunc.bpf.c, built against the host's vmlinux.h and relocated
 * onto the simulated kernel by CO-RE), with the verdicts of 6.18's verifier on its bad programs.
 */

const OBJ = join(repoRoot(), "bpf/obj/cgrp_kfunc.bpf.o");

function boot(): { k: Kernel; h: BpfHandle; obj: BpfObject } {
  const k = new Kernel({ verifier: true });
  const h = { kernel: k, process: k.newProcess() };
  const obj = BpfObject.open(OBJ);
  obj.load(h);
  return { k, h, obj };
}

interface Out {
  ret: number;
  kn_id: bigint;
  anc_id: bigint;
  task_cgid: bigint;
  cg_level: number;
  under: number;
  found: number;
}

/** Run a program with struct cgrp_args { id, pid, level, kn_id, anc_id, task_cgid, cg_level, under, found }. */
function run(h: BpfHandle, obj: BpfObject, name: string, a: { id?: number; pid?: number; level?: number }): Out {
  const ctx = new Uint8Array(56);
  const dv = new DataView(ctx.buffer);
  dv.setBigUint64(0, BigInt(a.id ?? 0), true);
  dv.setInt32(8, a.pid ?? 0, true);
  dv.setInt32(12, a.level ?? 0, true);
  const attr = {
    prog_fd: obj.findProgram(name)?.fd ?? -1,
    ctx_in: ctx,
    ctx_size_in: ctx.length,
    retval: 0,
  };
  assert.equal(h.kernel.bpf(h.process, bpf_cmd.BPF_PROG_TEST_RUN, attr), 0, name);
  // A syscall program's ctx is copied back into ctx_in.
  const o = dv;
  return {
    ret: attr.retval | 0,
    kn_id: o.getBigUint64(16, true),
    anc_id: o.getBigUint64(24, true),
    task_cgid: o.getBigUint64(32, true),
    cg_level: o.getInt32(40, true),
    under: o.getInt32(44, true),
    found: o.getInt32(48, true),
  };
}

function errnoOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof BpfError) return e.errno;
    throw e;
  }
  return 0;
}

test("the hierarchy: ids from 1 (the root), levels, ancestors[] and kn->id in memory as BTF lays them out", () => {
  const k = new Kernel();
  const r = cgroupRoot(k);
  assert.ok(r);
  const a = r.mkdir(r.cgrp, "a");
  const b = r.mkdir(a, "b");
  assert.deepEqual([r.cgrp.id, a.id, b.id], [1, 2, 3]);
  assert.deepEqual([r.cgrp.level, a.level, b.level], [0, 1, 2]);
  assert.equal(b.path, "/a/b");
  assert.equal(r.lookup("/a/b"), b);
  const btf = k.btfVmlinux!;
  const rd64 = (addr: number) => Number(view(k, addr, 8).getBigUint64(0, true));
  assert.equal(view(k, b.addr + memberOff(btf, "cgroup", "level"), 4).getInt32(0, true), 2);
  const anc = b.addr + memberOff(btf, "cgroup", "ancestors");
  assert.deepEqual([rd64(anc), rd64(anc + 8), rd64(anc + 16)], [r.cgrp.addr, a.addr, b.addr]);
  const kn = rd64(b.addr + memberOff(btf, "cgroup", "kn"));
  assert.equal(rd64(kn + memberOff(btf, "kernfs_node", "id")), 3);
  assert.equal(rd64(b.addr + memberOff(btf, "cgroup_subsys_state", "cgroup")), b.addr, "self.cgroup");
  assert.equal(view(k, a.addr + memberOff(btf, "cgroup", "nr_descendants"), 4).getInt32(0, true), 1);
  assert.equal(view(k, r.cgrp.addr + memberOff(btf, "cgroup", "nr_descendants"), 4).getInt32(0, true), 2);
  assert.equal(
    errnoOf(() => r.mkdir(r.cgrp, "a")),
    EEXIST,
  );
  assert.equal(
    errnoOf(() => r.rmdir(a)),
    EBUSY,
    "a cgroup with children stays",
  );
  assert.equal(
    errnoOf(() => r.setWeight(b, 0)),
    EINVAL,
  );
  assert.equal(
    errnoOf(() => r.setWeight(b, 10001)),
    EINVAL,
  );
  r.setWeight(b, 10000);
  assert.equal(b.weight, 10000);
});

test("tasks: a child starts in its parent's cgroup; a migration every controller agrees to moves it", () => {
  const k = new Kernel();
  const r = cgroupRoot(k)!;
  const a = r.mkdir(r.cgrp, "a");
  const p = k.newProcess();
  assert.equal(r.taskCgroup(p.task!), r.cgrp);
  const calls: string[] = [];
  let refuse = 0;
  const ss: CgroupSubsys = {
    name: "cpu",
    can_attach: (ts, from, to) => {
      calls.push(`can ${ts.length} ${from[0].id}->${to.id}`);
      return refuse;
    },
    cancel_attach: () => calls.push("cancel"),
    attach: (ts, _f, to) => calls.push(`attach ${ts.length} ${to.id}`),
  };
  const other: CgroupSubsys = { name: "other", can_attach: () => -EPERM };
  r.subsys.push(ss);
  r.attach([p.task!], a);
  assert.equal(r.taskCgroup(p.task!), a);
  assert.deepEqual(calls, ["can 1 1->2", "attach 1 2"]);
  // The task's css_set names the cgroup (task->cgroups->dfl_cgrp).
  const btf = k.btfVmlinux!;
  const cset = Number(view(k, p.task!.addr + memberOff(btf, "task_struct", "cgroups"), 8).getBigUint64(0, true));
  assert.equal(Number(view(k, cset + memberOff(btf, "css_set", "dfl_cgrp"), 8).getBigUint64(0, true)), a.addr);
  // A second controller refuses: the first cancels, nothing moves.
  r.subsys.push(other);
  calls.length = 0;
  assert.equal(
    errnoOf(() => r.attach([p.task!], r.cgrp)),
    EPERM,
  );
  assert.deepEqual(calls, ["can 1 2->1", "cancel"]);
  assert.equal(r.taskCgroup(p.task!), a);
  r.subsys.pop();
  refuse = -EBUSY;
  assert.equal(
    errnoOf(() => r.attach([p.task!], r.cgrp)),
    EBUSY,
  );
  assert.equal(
    errnoOf(() => r.rmdir(a)),
    EBUSY,
    "a cgroup with tasks stays",
  );
  task_exit(p.task!);
  r.rmdir(a);
  assert.equal(a.online, false);
});

test("bpf_cgroup_from_id, _ancestor, _acquire: ids, levels and ancestors as programs read them", () => {
  const { k, h, obj } = boot();
  const r = cgroupRoot(k)!;
  const a = r.mkdir(r.cgrp, "a");
  const b = r.mkdir(a, "b");
  const refs = () => [r.cgrp.refcnt, a.refcnt, b.refcnt];
  const before = refs();
  for (const [level, anc] of [
    [0, 1n],
    [1, 2n],
    [2, 3n],
    [3, 0n],
    [-1, 0n],
  ] as const) {
    const o = run(h, obj, "cgrp_info", { id: b.id, level });
    assert.equal(o.ret, 0);
    assert.deepEqual([o.found, o.kn_id, o.cg_level, o.anc_id], [1, 3n, 2, anc], `level ${level}`);
  }
  assert.deepEqual(refs(), before, "every reference taken was put");
  assert.equal(run(h, obj, "cgrp_info", { id: 1, level: 0 }).anc_id, 1n, "the root is its own ancestor 0");
  assert.equal(run(h, obj, "cgrp_info", { id: 99 }).found, 0, "no such cgroup: NULL");
  r.rmdir(b);
  assert.equal(run(h, obj, "cgrp_info", { id: 3 }).found, 0, "a removed cgroup is not found by id");
});

test("a task's cgroup through task->cgroups->dfl_cgrp; bpf_task_under_cgroup", () => {
  const { k, h, obj } = boot();
  const r = cgroupRoot(k)!;
  const a = r.mkdir(r.cgrp, "a");
  const b = r.mkdir(a, "b");
  const c = r.mkdir(r.cgrp, "c");
  const p = k.newProcess();
  r.attach([p.task!], b);
  for (const [cg, under] of [
    [r.cgrp, 1],
    [a, 1],
    [b, 1],
    [c, 0],
  ] as const) {
    const o = run(h, obj, "task_cgrp", { pid: p.pid, id: cg.id });
    assert.equal(o.ret, 0);
    assert.equal(o.task_cgid, BigInt(b.id));
    assert.equal(o.under, under, `under ${cg.path}`);
  }
  assert.equal(run(h, obj, "task_cgrp", { pid: p.pid, id: 77 }).under, -1);
  r.attach([p.task!], c);
  assert.equal(run(h, obj, "task_cgrp", { pid: p.pid, id: a.id }).task_cgid, BigInt(c.id));
});

test("a map element holding a cgroup keeps it after rmdir; the map going puts it, then it is freed", () => {
  const { k, h, obj } = boot();
  const r = cgroupRoot(k)!;
  const a = r.mkdir(r.cgrp, "a");
  assert.equal(run(h, obj, "stash_cgrp", { id: a.id }).ret, 0);
  assert.equal(a.refcnt, 2, "the online reference and the map's");
  assert.equal(run(h, obj, "unstash_cgrp", {}).kn_id, BigInt(a.id));
  assert.equal(a.refcnt, 1);
  assert.equal(run(h, obj, "unstash_cgrp", {}).found, 0);
  assert.equal(run(h, obj, "stash_cgrp", { id: a.id }).ret, 0);
  r.rmdir(a);
  k.quiesce();
  assert.equal(a.refcnt, 1);
  assert.equal(a.freed, false, "the map's reference keeps it");
  assert.equal(r.cgrp.refcnt, 2, "a cgroup pins its parent");
  k.exit(h.process);
  k.quiesce();
  assert.equal(a.refcnt, 0);
  assert.equal(a.freed, true);
  assert.equal(r.cgrp.refcnt, 1);
});

/** Linux 6.18's answers (errno, last log lines, instruction), taken from the host kernel. */
const BAD: [string, number, string[], number][] = [
  [
    "leak",
    EINVAL,
    ["Unreleased reference id=2 alloc_insn=2", "BPF_EXIT instruction in main prog would lead to reference leak"],
    7,
  ],
  ["unchecked", EACCES, ["R0 invalid mem access 'ptr_or_null_'"], 3],
  ["release_unreferenced", EINVAL, ["R1 must be referenced or trusted"], 7],
  ["acquire_untrusted", EINVAL, ["R1 must be a rcu pointer"], 6],
  ["release_twice", EINVAL, ["arg#0 pointer type STRUCT cgroup must point to scalar, or struct with scalar"], 7],
];

test("cgrp_kfunc bad programs: refused with the kernel's errno, message and instruction", () => {
  checkRefusals(OBJ, BAD);
});

test("the host kernel gives the same verdicts for the cgroup kfunc programs", { skip: hostSkip() }, () => {
  compareWithHost(OBJ, ["cgrp_info", "task_cgrp", "stash_cgrp", "unstash_cgrp"], BAD);
});
