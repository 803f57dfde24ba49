/**
 * bpf_testmod_st_ops and bpf_testmod_multi_st_ops, checked as the kernel's pro_epilogue and
 * test_struct_ops_id_ops_mapping selftests check them, on our own programs
 * (bpf/testmod_st_ops.bpf.c, bpf/testmod_multi_st_ops.bpf.c): the module's gen_prologue and
 * gen_epilogue around the programs (the instructions and what they compute), and kfuncs that call
 * the map of a given id.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Insn } from "../../../src/isa/insn.js";
import { bpf_program__attach_trace, bpf_program__set_attach_target } from "../../../src/loader/attach_target.js";
import {
  bpf_link_get_info_by_fd,
  bpf_map_get_info_by_fd,
  bpf_prog_test_run_opts,
  close,
} from "../../../src/loader/bpf.js";
import type { BpfObject } from "../../../src/loader/object.js";
import { bpfMapAttachStructOps } from "../../../src/loader/struct_ops_attach.js";
import { bpfTestmodState } from "../../../src/subsys/testmod/bpf_testmod.js";
import { bpf_link_type } from "../../../src/uapi/bpf.js";
import { BTF_KIND_FUNC } from "../../../src/uapi/btf.js";
import { EEXIST, EINVAL, ESRCH } from "../../../src/uapi/errno.js";
import { printBpfInsn } from "../../../src/verifier/log.js";
import { bootTestmod, bssVar, errOf, openObj, skipFor, type TestmodRig } from "./helpers.js";

/** Run a syscall program with initial_a: [its return, final_a]. */
function run(r: TestmodRig, obj: BpfObject, prog: string, a = 0): [number, number] {
  bssVar(r, obj, "initial_a", 8, a);
  const opts: { retval?: number } = {};
  assert.equal(bpf_prog_test_run_opts(r.h, obj.findProgram(prog)!.fd, opts), 0);
  return [opts.retval! | 0, bssVar(r, obj, "final_a", 8)];
}

const xlated = (r: TestmodRig, obj: BpfObject, prog: string): string[] => {
  const { insnsi } = r.proc.files.get(obj.findProgram(prog)!.fd).private_data as { insnsi: Insn[] };
  // The kernel's syntax without the opcode: "(79) r1 = ..." -> "r1 = ...".
  return insnsi.map((i, n) => printBpfInsn(i, insnsi[n + 1], {}, n).replace(/^\([0-9a-f]+\) /, ""));
};

test("pro_epilogue: the module's prologue (+1000) and epilogue (+10000, x2) around inc10 and a subprogram", {
  skip: skipFor("testmod_st_ops"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_st_ops");
  obj.load(r.h);
  // No map registered: the kfuncs answer -1 and leave args alone.
  assert.deepEqual(run(r, obj, "run_prologue"), [-1, 0]);
  const link = bpfMapAttachStructOps(obj.findMap("pro_epi")!, r.h);
  // PROLOGUE 1000 + inc10 + subprogram 1.
  assert.deepEqual(run(r, obj, "run_prologue"), [1011, 1011]);
  // (inc10 + 1 + EPILOGUE 10000) * 2.
  assert.deepEqual(run(r, obj, "run_epilogue"), [20022, 10011]);
  assert.deepEqual(run(r, obj, "run_pro_epilogue"), [22022, 11011]);
  // A second bpf_testmod_st_ops cannot register while one is.
  assert.equal(errOf(() => bpfMapAttachStructOps(obj.findMap("two_exits")!, r.h)).errno, EEXIST);
  link.detach();
  assert.equal(bpfTestmodState(r.k)!.st.stOps, null);

  // The prologue's four instructions come first, then the program from its first instruction.
  const pro = xlated(r, obj, "pe_prologue");
  assert.deepEqual(pro.slice(0, 5), [
    "r6 = *(u64 *)(r1 +0)",
    "r7 = *(u64 *)(r6 +0)",
    "r7 += 1000",
    "*(u64 *)(r6 +0) = r7",
    "r6 = *(u64 *)(r1 +0)",
  ]);
  // The epilogue: the context saved below the program's stack first, reloaded at the end.
  const epi = xlated(r, obj, "pe_epilogue");
  assert.match(epi[0], /^\*\(u64 \*\)\(r10 -(\d+)\) = r1$/);
  const slot = /-(\d+)/.exec(epi[0])![1];
  assert.deepEqual(epi.slice(-8), [
    `r1 = *(u64 *)(r10 -${slot})`,
    "r1 = *(u64 *)(r1 +0)",
    "r6 = *(u64 *)(r1 +0)",
    "r6 += 10000",
    "*(u64 *)(r1 +0) = r6",
    "r0 = r6",
    "r0 *= 2",
    "exit",
  ]);
  // test_pro_epilogue: prologue, then the context save, then the program.
  const both = xlated(r, obj, "pe_pro_epilogue");
  assert.equal(both[3], "*(u64 *)(r6 +0) = r7");
  assert.equal(both[4], `*(u64 *)(r10 -${slot}) = r1`);
});

test("pro_epilogue_goto_start: a jump back to the first instruction does not run the prologue again", {
  skip: skipFor("testmod_st_ops"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_st_ops");
  obj.load(r.h);
  const link = bpfMapAttachStructOps(obj.findMap("loop_start")!, r.h);
  assert.deepEqual(run(r, obj, "run_prologue"), [0, 1000]);
  assert.deepEqual(run(r, obj, "run_epilogue"), [20000, 10000]);
  assert.deepEqual(run(r, obj, "run_pro_epilogue"), [22000, 11000]);
  link.detach();
  // goto -3 at insn 4+2 lands on 4: the program's first instruction, after the prologue.
  const x = xlated(r, obj, "loop_prologue");
  assert.deepEqual(x.slice(4, 7), ["if r1 == 0x0 goto pc+2", "r1 = 0", "goto pc-3"]);
});

test("epilogue_exit: every exit of the program goes through the epilogue, which reloads the context", {
  skip: skipFor("testmod_st_ops"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_st_ops");
  obj.load(r.h);
  const link = bpfMapAttachStructOps(obj.findMap("two_exits")!, r.h);
  // a != 0: a = 5, first exit; a == 0: a = 7, r1 = 0, second exit.
  assert.deepEqual(run(r, obj, "run_epilogue", 1), [20010, 10005]);
  assert.deepEqual(run(r, obj, "run_epilogue", 0), [20014, 10007]);
  // Members without a program: -1.
  assert.deepEqual(run(r, obj, "run_prologue", 3), [-1, 3]);
  link.detach();
});

test("id_ops_mapping: bpf_kfunc_multi_st_ops_test_1(args, id) calls the map of that id", {
  skip: skipFor("testmod_multi_st_ops"),
}, () => {
  const r = bootTestmod();
  const objs = [1234, 5678].map((magic) => {
    const { obj } = openObj("testmod_multi_st_ops");
    obj.load(r.h);
    bssVar(r, obj, "magic", 4, magic);
    const info: { id?: number } = {};
    assert.equal(bpf_map_get_info_by_fd(r.h, obj.findMap("st_ops_map")!.fd, info), 0);
    bssVar(r, obj, "map_id", 4, info.id!);
    return obj;
  });
  const call = (obj: BpfObject) => {
    assert.equal(bpf_prog_test_run_opts(r.h, obj.findProgram("call_by_id")!.fd, {}), 0);
    return [bssVar(r, obj, "last_ret", 4), bssVar(r, obj, "mismatches", 4)];
  };
  // Not registered yet: no map of that id, -1.
  assert.deepEqual(call(objs[0]), [-1, 1]);
  const links = objs.map((o) => bpfMapAttachStructOps(o.findMap("st_ops_map")!, r.h));
  assert.deepEqual(call(objs[0]), [1234, 1]);
  assert.deepEqual(call(objs[1]), [5678, 0]);
  // Gone from the module's list at unregistration.
  links[1].detach();
  assert.deepEqual(call(objs[1]), [-1, 1]);
  links[0].detach();
  assert.equal(bpfTestmodState(r.k)!.st.multi.size, 0);
});

test("bpf_testmod_multi_st_ops without test_1 cannot register (EINVAL)", {
  skip: skipFor("testmod_multi_st_ops"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_multi_st_ops");
  obj.findMap("no_test_1")!.setAutocreate(true);
  obj.load(r.h);
  assert.equal(errOf(() => bpfMapAttachStructOps(obj.findMap("no_test_1")!, r.h)).errno, EINVAL);
  assert.equal(bpfTestmodState(r.k)!.st.multi.size, 0);
});

test("pro_epilogue_with_kfunc: a test_kfunc_ program's prologue and epilogue call bpf_cgroup_from_id themselves", {
  skip: skipFor("testmod_st_ops"),
}, () => {
  const r = bootTestmod();
  const { obj } = openObj("testmod_st_ops");
  obj.load(r.h);
  const link = bpfMapAttachStructOps(obj.findMap("kfunc_pro_epi")!, r.h);
  // No cgroup has id 0: both add, as the plain ones do. (1000 + inc10 + 1 + 10000) * 2.
  assert.deepEqual(run(r, obj, "run_pro_epilogue"), [22022, 11011]);
  link.detach();
  const x = xlated(r, obj, "test_kfunc_pe");
  // A kfunc call by its vmlinux BTF id (the log's "call kernel-function#<id>").
  const call = (name: string) =>
    new RegExp(`^call kernel-function#${r.k.btfVmlinux!.findByNameKind(name, BTF_KIND_FUNC)}$`);
  // The prologue: the context kept in r8 across the lookup, restored before the program starts.
  assert.deepEqual(x.slice(0, 2), ["r8 = r1", "r1 = 0"]);
  assert.match(x[2], call("bpf_cgroup_from_id"));
  assert.deepEqual(x.slice(3, 10), [
    "if r0 != 0x0 goto pc+5",
    "r6 = *(u64 *)(r8 +0)",
    "r7 = *(u64 *)(r6 +0)",
    "r7 += 1000",
    "*(u64 *)(r6 +0) = r7",
    "goto pc+2",
    "r1 = r0",
  ]);
  assert.match(x[10], call("bpf_cgroup_release"));
  assert.equal(x[11], "r1 = r8");
  // Then the context's save for the epilogue and the program's first instruction.
  assert.match(x[12], /^\*\(u64 \*\)\(r10 -\d+\) = r1$/);
  const plain = xlated(r, obj, "pe_pro_epilogue");
  assert.equal(x[13], plain[5]);
  // The epilogue: r6 = 0 before the lookup, so a found cgroup returns 0.
  const epi = x.slice(-15);
  assert.deepEqual(epi.slice(0, 2), ["r1 = 0", "r6 = 0"]);
  assert.match(epi[2], call("bpf_cgroup_from_id"));
  assert.deepEqual(epi.slice(3, 10), [
    "if r0 != 0x0 goto pc+6",
    `r1 = *(u64 *)(r10 ${/-\d+/.exec(x[12])![0]})`,
    "r1 = *(u64 *)(r1 +0)",
    "r6 = *(u64 *)(r1 +0)",
    "r6 += 10000",
    "*(u64 *)(r1 +0) = r6",
    "goto pc+2",
  ]);
  assert.match(epi[11], call("bpf_cgroup_release"));
  assert.deepEqual(epi.slice(12), ["r0 = r6", "r0 *= 2", "exit"]);
  // The same program under another name gets the plain prologue.
  assert.deepEqual(plain.slice(0, 3), ["r6 = *(u64 *)(r1 +0)", "r7 = *(u64 *)(r6 +0)", "r7 += 1000"]);
});

test("id_ops_mapping (tp_btf): the sys_enter raw tracepoint calls the map of each object's id", {
  skip: skipFor("testmod_multi_st_ops"),
}, () => {
  const r = bootTestmod();
  const objs = [1234, 5678].map((magic) => {
    const { obj } = openObj("testmod_multi_st_ops");
    obj.load(r.h);
    bssVar(r, obj, "magic", 4, magic);
    const info: { id?: number } = {};
    assert.equal(bpf_map_get_info_by_fd(r.h, obj.findMap("st_ops_map")!.fd, info), 0);
    bssVar(r, obj, "map_id", 4, info.id!);
    return obj;
  });
  const maps = objs.map((o) => bpfMapAttachStructOps(o.findMap("st_ops_map")!, r.h));
  const tps = objs.map((o) => bpf_program__attach_trace(r.h, o.findProgram("on_sys_enter")!));
  for (const fd of tps) assert.ok(fd > 0, `attach: ${fd}`);
  // A raw tracepoint link, named after the tracepoint.
  const info: { type?: number; raw_tracepoint?: { tp_name: string } } = {};
  assert.equal(bpf_link_get_info_by_fd(r.h, tps[0], info), 0);
  assert.equal(info.type, bpf_link_type.BPF_LINK_TYPE_RAW_TRACEPOINT);
  assert.equal(info.raw_tracepoint?.tp_name, "sys_enter");
  // Not watching yet: each bpf() below enters through sys_enter, but for no watched pid.
  assert.equal(bssVar(r, objs[0], "tp_runs", 4), 0);
  for (const o of objs) bssVar(r, o, "watch_pid", 4, r.proc.task!.pid);
  // Each bpf() call of this process now runs both programs once at its entry: the .bss reads
  // below are bpf() calls too, so read each counter once and compare with what came before.
  const runs0 = bssVar(r, objs[0], "tp_runs", 4);
  const runs1 = bssVar(r, objs[0], "tp_runs", 4);
  assert.equal(runs1, runs0 + 1);
  for (const o of objs) {
    assert.equal(bssVar(r, o, "tp_mismatches", 4), 0);
    assert.equal(bssVar(r, o, "tp_last_nr", 8), 321 /* __NR_bpf */);
  }
  // Another process's syscalls are not watched.
  const other = r.k.newProcess();
  const before = bssVar(r, objs[1], "tp_runs", 4);
  bpf_map_get_info_by_fd({ kernel: r.k, process: other }, 0, {});
  assert.equal(bssVar(r, objs[1], "tp_runs", 4), before + 1);
  // With the second map gone, its object's calls find no map: -1 is not its magic.
  maps[1].detach();
  const m0 = bssVar(r, objs[1], "tp_mismatches", 4);
  assert.ok(bssVar(r, objs[1], "tp_mismatches", 4) > m0);
  assert.equal(bssVar(r, objs[0], "tp_mismatches", 4), 0);
  // Detached, the program runs no more.
  for (const o of objs) bssVar(r, o, "watch_pid", 4, 0);
  close(r.h, tps[0]);
  close(r.h, tps[1]);
  maps[0].detach();
});

test("tp_btf: attach targets are checked as bpf_check_attach_target does", {
  skip: skipFor("testmod_multi_st_ops"),
}, () => {
  const r = bootTestmod();
  const load = (target: string) => {
    const { obj, log } = openObj("testmod_multi_st_ops");
    for (const p of obj.allPrograms) if (p.name !== "on_sys_enter") p.setAutoload(false);
    obj.findMap("st_ops_map")!.setAutocreate(false);
    bpf_program__set_attach_target(r.h, obj.findProgram("on_sys_enter")!, 0, target);
    return { obj, log };
  };
  // A tracepoint the kernel lacks: libbpf finds no btf_trace_ typedef.
  const missing = errOf(() => load("no_such_tp"));
  assert.equal(missing.errno, ESRCH);
  const ok = load("sys_enter");
  ok.obj.load(r.h);
  const fd = bpf_program__attach_trace(r.h, ok.obj.findProgram("on_sys_enter")!);
  assert.ok(fd > 0);
  // Twice on the same tracepoint: EEXIST.
  assert.equal(bpf_program__attach_trace(r.h, ok.obj.findProgram("on_sys_enter")!), -EEXIST);
  close(r.h, fd);
});
