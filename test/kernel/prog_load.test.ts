import assert from "node:assert/strict";
import { test } from "node:test";
import { BtfBuilder } from "../../src/btf/builder.js";
import type { BtfComposite } from "../../src/btf/types.js";
import { type Insn, ldImm64 } from "../../src/isa/insn.js";
import { Kernel, type Subsystem } from "../../src/kernel/kernel.js";
import { bpfDummyStructOpsSubsystem } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { BPF_DUMMY_OPS } from "../../src/subsys/dummy/btf.js";
import {
  BPF_COMPLEXITY_LIMIT_INSNS,
  BPF_F_SLEEPABLE,
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_VALUE,
  bpf_cmd,
  bpf_map_type,
  bpf_prog_type,
} from "../../src/uapi/bpf.js";
import { BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { E2BIG, EACCES, EBADF, EFAULT, EINVAL, ENOENT, ENOSPC, ENOTSUPP, EPROTO } from "../../src/uapi/errno.js";
import { boot, call, exit, ldMapFd, ldxDw, mov64, retProg, throwsErrno, u32, u64 } from "./util.js";

const C = bpf_cmd;
const SYSCALL = bpf_prog_type.BPF_PROG_TYPE_SYSCALL;

function load(k: Kernel, p: ReturnType<typeof boot>["p"], insns: Insn[], extra: object = {}): number {
  return k.bpf(p, C.BPF_PROG_LOAD, {
    prog_type: SYSCALL,
    insns,
    insn_cnt: insns.length,
    license: "GPL",
    prog_flags: BPF_F_SLEEPABLE,
    ...extra,
  });
}

function testRun(k: Kernel, p: ReturnType<typeof boot>["p"], fd: number): number {
  const attr: { prog_fd: number; retval?: number } = { prog_fd: fd };
  k.bpf(p, C.BPF_PROG_TEST_RUN, attr);
  return attr.retval! | 0;
}

test("license: GPL-compatible strings set gpl_compatible, others do not", () => {
  const { k, p } = boot();
  for (const [license, gpl] of [
    ["GPL", true],
    ["GPL v2", true],
    ["GPL and additional rights", true],
    ["Dual BSD/GPL", true],
    ["Dual MIT/GPL", true],
    ["Dual MPL/GPL", true],
    ["MIT", false],
    ["Proprietary", false],
    ["gpl", false],
  ] as const) {
    const fd = load(k, p, retProg(0), { license });
    assert.equal(k.objGetInfo(p, fd).gpl_compatible, gpl, license);
  }
});

test("insn_cnt 0 or past the limit is E2BIG; unknown program types are EINVAL", () => {
  const { k, p } = boot();
  throwsErrno(() => k.bpf(p, C.BPF_PROG_LOAD, { prog_type: SYSCALL, insns: [], insn_cnt: 0, license: "GPL" }), E2BIG);
  throwsErrno(
    () =>
      k.bpf(p, C.BPF_PROG_LOAD, {
        prog_type: SYSCALL,
        insns: retProg(0),
        insn_cnt: BPF_COMPLEXITY_LIMIT_INSNS + 1,
        license: "GPL",
      }),
    E2BIG,
  );
  throwsErrno(() => load(k, p, retProg(0), { prog_type: 999 }), EINVAL);
  throwsErrno(() => load(k, p, retProg(0), { license: null }), EFAULT, /license/);
});

test("ld_imm64: bad shapes, bad map fds and unknown pseudo sources are refused with the kernel's messages", () => {
  const { k, p } = boot();
  const m = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: bpf_map_type.BPF_MAP_TYPE_HASH,
    key_size: 4,
    value_size: 8,
    max_entries: 1,
  });
  const [lo, hi] = ldImm64(1, 0n);
  throwsErrno(() => load(k, p, [lo, { ...hi, dst: 1 }, ...retProg(0)]), EINVAL, /invalid bpf_ld_imm64 insn/);
  throwsErrno(() => load(k, p, [...retProg(0), lo]), EINVAL, /invalid bpf_ld_imm64 insn/);
  throwsErrno(() => load(k, p, [...ldMapFd(1, 77), ...retProg(0)]), EBADF, /fd 77 is not pointing to valid bpf_map/);
  const pf = load(k, p, retProg(0));
  throwsErrno(() => load(k, p, [...ldMapFd(1, pf), ...retProg(0)]), EINVAL, /not pointing to valid bpf_map/);
  throwsErrno(() => load(k, p, [...ldImm64(1, 0n, 7), ...retProg(0)]), EINVAL, /unrecognized bpf_ld_imm64 insn/);
  // map fd with a non-zero upper half
  const [a, b] = ldMapFd(1, m);
  throwsErrno(() => load(k, p, [a, { ...b, imm: 1 }, ...retProg(0)]), EINVAL, /unrecognized/);
  // direct value access needs an array with one element
  const [v0, v1] = ldImm64(1, BigInt(m), BPF_PSEUDO_MAP_VALUE);
  throwsErrno(() => load(k, p, [v0, v1, ...retProg(0)]), EINVAL, /no direct value access/);
  throwsErrno(() => load(k, p, [...ldImm64(1, 0n, BPF_PSEUDO_MAP_IDX), ...retProg(0)]), EPROTO, /fd_array/);
  throwsErrno(() => load(k, p, [...ldImm64(1, 12345n, BPF_PSEUDO_BTF_ID), ...retProg(0)]), EINVAL, /invalid btf_id/);
  // reserved fields of LDX
  throwsErrno(() => load(k, p, [{ ...ldxDw(0, 1, 0), imm: 1 }, ...retProg(0)]), EINVAL, /BPF_LDX uses reserved fields/);
  // unknown helper
  throwsErrno(() => load(k, p, [call(9999), exit()]), EINVAL, /^invalid func unknown#9999$/);
});

test("the failure reason lands in the log buffer; log_true_size is reported", () => {
  const { k, p } = boot();
  const log_buf = new Uint8Array(256);
  const attr = {
    prog_type: SYSCALL,
    insns: [...ldMapFd(1, 77), ...retProg(0)],
    insn_cnt: 4,
    license: "GPL",
    prog_flags: BPF_F_SLEEPABLE,
    log_buf,
    log_size: 256,
    log_level: 1,
  };
  throwsErrno(() => k.bpf(p, C.BPF_PROG_LOAD, attr), EBADF);
  const text = new TextDecoder().decode(log_buf.subarray(0, log_buf.indexOf(0)));
  assert.equal(text, "fd 77 is not pointing to valid bpf_map\n");
  assert.equal((attr as { log_true_size?: number }).log_true_size, text.length + 1);
  throwsErrno(() => load(k, p, retProg(0), { log_buf, log_size: 64, log_level: 1 }), EINVAL, /below 128/);
  throwsErrno(() => load(k, p, retProg(0), { log_level: 1 }), EINVAL);
});

test("map value ld_imm64 of a one-element array is the value's address (global data)", () => {
  const { k, p } = boot();
  const m = k.bpf(p, C.BPF_MAP_CREATE, {
    map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY,
    key_size: 4,
    value_size: 16,
    max_entries: 1,
  });
  k.bpf(p, C.BPF_MAP_UPDATE_ELEM, { map_fd: m, key: u32(0), value: new Uint8Array([...u64(1), ...u64(1234)]) });
  const [a, b] = ldImm64(1, BigInt(m), BPF_PSEUDO_MAP_VALUE);
  const prog = [a, { ...b, imm: 8 }, ldxDw(0, 1, 0), exit()];
  assert.equal(testRun(k, p, load(k, p, prog)), 1234);
  const [c, d] = ldImm64(1, BigInt(m), BPF_PSEUDO_MAP_VALUE);
  throwsErrno(
    () => load(k, p, [c, { ...d, imm: 16 }, ...retProg(0)]),
    EINVAL,
    /invalid access to map value pointer|offset/,
  );
  // fd_array with BPF_PSEUDO_MAP_IDX
  const fd = load(k, p, [...ldImm64(1, 0n, BPF_PSEUDO_MAP_IDX), ...retProg(3)], { fd_array: [m] });
  assert.deepEqual(k.objGetInfo(p, fd).map_ids, [k.objGetInfo(p, m).id]);
});

test("the tag ignores map fds: the same program with different map fds has the same tag", () => {
  const { k, p } = boot();
  const attr = { map_type: bpf_map_type.BPF_MAP_TYPE_ARRAY, key_size: 4, value_size: 8, max_entries: 1 };
  const m1 = k.bpf(p, C.BPF_MAP_CREATE, attr);
  const m2 = k.bpf(p, C.BPF_MAP_CREATE, attr);
  const t1 = k.objGetInfo(p, load(k, p, [...ldMapFd(1, m1), ...retProg(0)])).tag;
  const t2 = k.objGetInfo(p, load(k, p, [...ldMapFd(1, m2), ...retProg(0)])).tag;
  const t3 = k.objGetInfo(p, load(k, p, [...ldImm64(1, BigInt(m2)), ...retProg(0)])).tag;
  assert.deepEqual(t1, t2);
  assert.notDeepEqual(t1, t3, "a plain constant is part of the tag");
  const sha1 = new Kernel({ progTagHash: "sha1" });
  const q = sha1.newProcess();
  const t4 = sha1.objGetInfo(q, load(sha1, q, retProg(7))).tag as Uint8Array;
  assert.equal(Buffer.from(t4).toString("hex"), "8923dad831f6fb51", "SHA-1 tag as kernels before v6.18");
});

test("kfunc calls bind by BTF id to the kernel's kfunc table; unknown ids and non-GPL callers are refused", () => {
  const sub: Subsystem = {
    name: "testmod",
    declareTypes(b: BtfBuilder, base) {
      const u64 = base.u64;
      const proto = b.addFuncProto(u64, [{ name: "x", type: u64 }]);
      b.addFunc("bpf_kfunc_double", proto, 1);
      b.addFunc("bpf_kfunc_missing", proto, 1);
    },
    register(k) {
      k.registerKfunc("bpf_kfunc_double", undefined, (c) => c.arg(1) * 2n);
    },
  };
  const k = new Kernel({ subsystems: [sub] });
  const p = k.newProcess();
  const id = k.btfVmlinux!.findByNameKind("bpf_kfunc_double", 12);
  const missing = k.btfVmlinux!.findByNameKind("bpf_kfunc_missing", 12);
  assert.ok(id > 0);
  assert.equal(k.kfuncsByName.get("bpf_kfunc_double")!.btfId, id);
  const prog = [mov64(1, 21), call(id, BPF_PSEUDO_KFUNC_CALL), exit()];
  assert.equal(testRun(k, p, load(k, p, prog)), 42);
  throwsErrno(() => load(k, p, prog, { license: "MIT" }), EINVAL, /non-GPL/);
  throwsErrno(
    () => load(k, p, [mov64(1, 0), call(missing, BPF_PSEUDO_KFUNC_CALL), exit()]),
    EINVAL,
    /cannot find address/,
  );
  throwsErrno(() => load(k, p, [mov64(1, 0), call(1, BPF_PSEUDO_KFUNC_CALL), exit()]), EINVAL, /is not a function/);
});

test("ksym addresses through BPF_PSEUDO_BTF_ID", () => {
  const sub: Subsystem = {
    name: "ksym",
    declareTypes(b, base) {
      b.addVar("bpf_test_ksym", base.u64, 1);
    },
  };
  const k = new Kernel({ subsystems: [sub] });
  const p = k.newProcess();
  const id = k.btfVmlinux!.findByNameKind("bpf_test_ksym", 14);
  throwsErrno(
    () => load(k, p, [...ldImm64(0, BigInt(id), BPF_PSEUDO_BTF_ID), exit()]),
    ENOENT,
    /failed to find the address/,
  );
  const region = k.mem.alloc(8, { perm: "rw", kind: "kobj" });
  k.ksyms.set("bpf_test_ksym", region.addr);
  const fd = load(k, p, [...ldImm64(0, BigInt(id), BPF_PSEUDO_BTF_ID), exit()]);
  assert.equal(testRun(k, p, fd), region.addr);
  throwsErrno(() => load(k, p, [...ldImm64(0, 1n, BPF_PSEUDO_BTF_ID), exit()]), EINVAL, /isn't KIND_VAR or KIND_FUNC/);
});

test("attach_btf_id: only for tracing/lsm/struct_ops/ext; struct_ops without struct_ops support is ENOTSUPP; sleepable kept", () => {
  const { k, p } = boot();
  throwsErrno(() => load(k, p, retProg(0), { attach_btf_id: 5 }), EINVAL);
  throwsErrno(
    () => load(k, p, retProg(0), { prog_type: bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS, attach_btf_id: 5 }),
    ENOTSUPP,
  );
  // A kernel with struct_ops (bpf_dummy_ops): the PROG_LOAD hook is seen with the attach id, and
  // the verifier finds the same type and member (test_sleepable, the one member that may sleep).
  const dk = new Kernel({ subsystems: [bpfDummyStructOpsSubsystem] });
  const dp = dk.newProcess();
  const stId = dk.btfVmlinux!.findByNameKind(BPF_DUMMY_OPS, BTF_KIND_STRUCT);
  const stIdx = (dk.btfVmlinux!.typeById(stId) as BtfComposite).members.findIndex((m) => m.name === "test_sleepable");
  const calls: number[] = [];
  const hooks = dk.structOps!;
  dk.structOps = {
    ...hooks,
    checkAttach: (prog, log) => {
      calls.push(prog.aux.attach_btf_id);
      hooks.checkAttach(prog, log);
    },
  };
  const fd = load(dk, dp, retProg(0), {
    prog_type: bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS,
    attach_btf_id: stId,
    expected_attach_type: stIdx,
    prog_flags: BPF_F_SLEEPABLE,
  });
  assert.deepEqual(calls, [stId]);
  const info = dk.objGetInfo(dp, fd);
  assert.equal(info.attach_btf_id, stId);
  assert.equal(info.attach_btf_obj_id, dk.btfVmlinuxObj!.id);
  const prog = dk.prog_idr.find(info.id as number)!;
  assert.equal(prog.sleepable, true);
  assert.equal(prog.expected_attach_type, stIdx);
  const bk = new Kernel({ noVmlinuxBtf: true });
  const q = bk.newProcess();
  throwsErrno(
    () => load(bk, q, retProg(0), { prog_type: bpf_prog_type.BPF_PROG_TYPE_TRACING, attach_btf_id: 5 }),
    EINVAL,
  );
});

test("the verifier hook sees every load and can refuse it", () => {
  const { k, p } = boot();
  const seen: number[] = [];
  k.verifier = (env) => {
    seen.push(env.insns.length);
    if (env.insns.length > 2) {
      env.log.log("too long for this test");
      throw Object.assign(new Error("x"), {});
    }
    return "ok";
  };
  const fd = load(k, p, retProg(0));
  assert.equal(k.prog_idr.find(k.objGetInfo(p, fd).id as number)!.aux.verifier_result, "ok");
  assert.throws(() => load(k, p, [mov64(1, 0), ...retProg(0)]));
  assert.deepEqual(seen, [2, 3]);
  assert.equal(k.prog_idr.size, 1, "the refused program has no id");
});

test("the log rotates (keeps its end) unless BPF_LOG_FIXED; a truncated log turns a good load into ENOSPC", () => {
  const { k, p } = boot({ verifier: true });
  const insns = [mov64(0, 0), mov64(1, 1), mov64(2, 2), exit()];
  const full = new Uint8Array(4096);
  const attr = {
    prog_type: SYSCALL,
    insns,
    insn_cnt: 4,
    license: "GPL",
    prog_flags: BPF_F_SLEEPABLE,
    log_level: 2,
    log_buf: full,
    log_size: 4096,
  };
  k.bpf(p, C.BPF_PROG_LOAD, attr);
  const text = new TextDecoder().decode(full.subarray(0, full.indexOf(0)));
  assert.ok(text.length > 128, "level 2 logs every instruction");
  const trueSize = (attr as { log_true_size?: number }).log_true_size!;
  assert.equal(trueSize, text.length + 1);
  const small = new Uint8Array(128);
  throwsErrno(() => k.bpf(p, C.BPF_PROG_LOAD, { ...attr, log_buf: small, log_size: 128 }), ENOSPC);
  assert.equal(new TextDecoder().decode(small.subarray(0, 127)), text.slice(text.length - 127), "the tail is kept");
  const fixed = new Uint8Array(128);
  throwsErrno(() => k.bpf(p, C.BPF_PROG_LOAD, { ...attr, log_level: 2 | 8, log_buf: fixed, log_size: 128 }), ENOSPC);
  assert.equal(new TextDecoder().decode(fixed.subarray(0, 127)), text.slice(0, 127), "BPF_LOG_FIXED keeps the head");
  throwsErrno(
    () => k.bpf(p, C.BPF_PROG_LOAD, { ...attr, log_buf: undefined, log_size: 0, log_level: 0, insn_cnt: 5 }),
    EFAULT,
  );
});

test("func_info/line_info: checked against the program's BTF and kept; prog_btf_fd is ignored without them", () => {
  const { k, p } = boot();
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, 1);
  const proto = b.addFuncProto(int, []);
  const main = b.addFunc("main", proto, 1);
  const file = b.addString("prog.c");
  const line = b.addString("return 0;");
  const blob = b.build();
  const btfFd = k.bpf(p, C.BPF_BTF_LOAD, { btf: blob, btf_size: blob.length });
  const fi = (off: number, id: number) => {
    const r = new Uint8Array(8);
    new DataView(r.buffer).setUint32(0, off, true);
    new DataView(r.buffer).setUint32(4, id, true);
    return r;
  };
  const li = (off: number, fileOff = file, lineOff = line) => {
    const r = new Uint8Array(16);
    const dv = new DataView(r.buffer);
    dv.setUint32(0, off, true);
    dv.setUint32(4, fileOff, true);
    dv.setUint32(8, lineOff, true);
    return r;
  };
  const withInfo = (extra: object) =>
    load(k, p, retProg(0), { prog_btf_fd: btfFd, func_info_rec_size: 8, line_info_rec_size: 16, ...extra });
  const fd = withInfo({ func_info: fi(0, main), func_info_cnt: 1, line_info: li(0), line_info_cnt: 1 });
  const info = k.objGetInfo(p, fd);
  assert.equal(info.btf_id, k.objGetInfo(p, btfFd).id);
  assert.equal(info.nr_func_info, 1);
  assert.equal(info.nr_line_info, 1);
  throwsErrno(() => withInfo({ func_info: fi(1, main), func_info_cnt: 1 }), EINVAL, /nonzero insn_off 1/);
  throwsErrno(() => withInfo({ func_info: fi(0, int), func_info_cnt: 1 }), EINVAL, /invalid type id/);
  throwsErrno(() => withInfo({ func_info: fi(0, main), func_info_cnt: 1, func_info_rec_size: 6 }), EINVAL, /rec size/);
  throwsErrno(() => withInfo({ line_info: li(2), line_info_cnt: 1 }), EINVAL, /Invalid line_info\[0\]\.insn_off/);
  throwsErrno(() => withInfo({ line_info: li(0, 99999), line_info_cnt: 1 }), EINVAL, /file_name_off/);
  const vmlinux = k.bpf(p, C.BPF_BTF_GET_FD_BY_ID, { btf_id: k.btfVmlinuxObj!.id });
  throwsErrno(() => withInfo({ prog_btf_fd: vmlinux, func_info: fi(0, main), func_info_cnt: 1 }), EACCES);
  // Without func_info or line_info the fd is not even looked at.
  const plain = load(k, p, retProg(0), { prog_btf_fd: 999 });
  assert.equal(k.objGetInfo(p, plain).btf_id, 0);
});

test("check_attach_btf_id: only some hooks may sleep; tracing programs must name their target", () => {
  const { k, p } = boot();
  throwsErrno(
    () => load(k, p, retProg(0), { prog_type: bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER }),
    EINVAL,
    /can be sleepable/,
  );
  throwsErrno(() => load(k, p, retProg(0), { prog_type: SYSCALL, prog_flags: 0 }), EINVAL, /only be sleepable/);
  throwsErrno(
    () => load(k, p, retProg(0), { prog_type: bpf_prog_type.BPF_PROG_TYPE_TRACING, prog_flags: 0 }),
    EINVAL,
    /must provide btf_id/,
  );
  load(k, p, retProg(0), { prog_type: bpf_prog_type.BPF_PROG_TYPE_KPROBE });
});
