import assert from "node:assert/strict";
import { test } from "node:test";
import type { BpfProg } from "../../src/kernel/bpf.js";
import { structOpsProgAux } from "../../src/kernel/struct_ops.js";
import { BpfError, EINVAL, ENOTSUPP } from "../../src/uapi/errno.js";
import {
  boot,
  createMap,
  loadProg,
  memberIdx,
  type Rig,
  TESTMOD,
  testmodValue,
  typeId,
  update,
} from "../subsys/dummy/struct_ops_fixture.js";

function loadErr(r: Rig, member: string, o: Parameters<typeof loadProg>[4] = {}): BpfError {
  try {
    loadProg(r, TESTMOD, member, "mov %r0, 0\nexit", o);
  } catch (e) {
    if (e instanceof BpfError) return e;
    throw e;
  }
  throw new Error("load succeeded");
}

test("PROG_LOAD (check_struct_ops_btf_id): license, attach_btf_id, member index, func ptr, supported member", () => {
  const r = boot();
  let e = loadErr(r, "test_1", { license: "Proprietary" });
  assert.equal(e.errno, EINVAL);
  assert.match(e.message, /struct ops programs must have a GPL compatible license/);
  e = loadErr(r, "test_1", { attachBtfId: 0 });
  assert.equal(e.errno, ENOTSUPP);
  const intId = r.k.btfVmlinux!.findByNameKind("int", 1);
  e = loadErr(r, "test_1", { attachBtfId: intId });
  assert.equal(e.errno, ENOTSUPP);
  assert.match(e.message, new RegExp(`attach_btf_id ${intId} is not a supported struct`));
  e = loadErr(r, "test_1", { expectedAttachType: 99 });
  assert.equal(e.errno, EINVAL);
  assert.match(e.message, /attach to invalid member idx 99/);
  e = loadErr(r, "data");
  assert.equal(e.errno, EINVAL);
  assert.match(e.message, /attach to invalid member data\(@idx 3\)/);
  e = loadErr(r, "unsupported");
  assert.equal(e.errno, ENOTSUPP, "a NULL cfi stub: -ENOTSUPP (524), not EOPNOTSUPP");
  assert.match(e.message, /attach to unsupported member unsupported of struct bpf_testmod_ops/);
});

test("PROG_LOAD records the member, its func proto and ctx_arg_info (__nullable) on the program", () => {
  const r = boot();
  const fd = loadProg(r, TESTMOD, "test_ptr", "mov %r0, 0\nexit");
  const prog = r.proc.files.get(fd).private_data as BpfProg;
  const aux = structOpsProgAux(prog)!;
  assert.equal(aux.memberIdx, memberIdx(r.k, TESTMOD, "test_ptr"));
  assert.equal(aux.funcName, "test_ptr");
  assert.equal(aux.desc.typeId, typeId(r.k, TESTMOD));
  assert.deepEqual(
    aux.ctxArgInfo.map((a) => [a.offset, a.mayBeNull]),
    [[0, true]],
  );
});

/** Register a testmod map whose member `m` runs `asm`; return the installed trampoline. */
function tramp(r: Rig, m: string, asm: string) {
  const fd = createMap(r, TESTMOD);
  const v = testmodValue(r, 100 + r.spy.regs);
  v.u64(m, loadProg(r, TESTMOD, m, asm));
  update(r, fd, v);
  return [...r.spy.registered.values()].at(-1)!.func(m)!;
}

test("trampoline: arguments laid out as u64 ctx slots, r0 truncated to the return type", () => {
  const r = boot();
  const add = tramp(r, "test_2", "ldxdw %r0, [%r1+0]\nldxdw %r2, [%r1+8]\nadd %r0, %r2\nexit");
  assert.equal(add.call(3, 4), 7);
  assert.equal(add.call(-5, 2), -3, "int return is signed");
  assert.equal(add.call(0x7fffffff, 1), -0x80000000, "truncated to 32 bits");
  assert.equal(add.calls, 3);
  // Repeated calls reuse one context buffer and do not interfere.
  for (let i = 0; i < 100; i++) assert.equal(add.call(i, i), 2 * i);
});

test("trampoline: narrow signed arguments are sign-extended into their slot, unsigned zero-extended", () => {
  const r = boot();
  const hi = tramp(r, "test_2", "ldxdw %r0, [%r1+0]\nrsh %r0, 32\nexit");
  assert.equal(hi.call(-1, 0), -1, "int -1 fills the upper half");
  assert.equal(hi.call(5, 0), 0);
  assert.equal(hi.callU64(-1, 0), 0xffffffffn, "callU64: the full r0");
});

test("trampoline: a short return is sign-extended from 16 bits; long args are 64-bit", () => {
  const r = boot();
  const s = tramp(r, "test_short", "ldxdw %r0, [%r1+0]\nexit");
  assert.equal(s.call(0x18001), -32767);
  assert.equal(s.call(5), 5);
  const r2 = boot();
  const l = tramp(r2, "test_short", "ldxdw %r0, [%r1+0]\nrsh %r0, 32\nexit");
  assert.equal(l.call(0x1234_0000_0000n), 0x1234);
  assert.equal(l.call(2 ** 40), 256);
});

test("trampoline: the number path (callx3) lays arguments out and narrows r0 as call() does, in every tier", () => {
  for (const tier of ["interp", "jit", "wasm"] as const) {
    const r = boot();
    const hi = tramp(r, "test_2", "ldxdw %r0, [%r1+0]\nrsh %r0, 32\nldxdw %r2, [%r1+8]\nadd %r0, %r2\nexit");
    const l = tramp(r, "test_short", "ldxdw %r0, [%r1+0]\nrsh %r0, 16\nexit");
    for (const p of r.k.prog_idr.values()) r.k.vm!.setTier(p.vmProg as never, tier);
    for (const [a, b] of [
      [-1, 0],
      [5, 7],
      [0x7fffffff, 1],
      [-0x80000000, -1],
      [2 ** 33 + 3, 0],
    ]) {
      assert.equal(hi.callx3(a, b), hi.call(a, b), `${tier}: test_2(${a}, ${b})`);
    }
    for (const x of [2 ** 40, -1, 0x1_8001_0000, 2 ** 52 + 2 ** 20])
      assert.equal(l.callx3(x), l.call(x), `${tier}: ${x}`);
    assert.equal(l.callx3(0x1_8001_0000), -32767, `${tier}: a short return is sign-extended`);
  }
});

test("trampoline: run_cnt and run_time_ns count only while kernel.bpf_stats_enabled is set (update_prog_stats)", () => {
  const r = boot();
  const t = tramp(r, "test_2", "mov %r0, 1\nexit");
  const prog = t.prog as BpfProg;
  for (let i = 0; i < 3; i++) t.callx3(1, 2);
  assert.equal(prog.run_cnt, 0, "no statistics unless kernel.bpf_stats_enabled");
  r.k.sysctl.bpfStatsEnabled = 1;
  for (let i = 0; i < 4; i++) t.callx3(1, 2);
  t.call(1, 2);
  r.k.sysctl.bpfStatsEnabled = 0;
  t.callx3(1, 2);
  assert.equal(prog.run_cnt, 5);
  assert.equal(prog.run_time_ns, 0n, "no simulated time passed inside the program");
  assert.equal(prog.active, 0, "no run left in flight");
});

test("trampoline: the ksym name is bpf__<struct>_<member>, visible once the update succeeded", () => {
  const r = boot();
  const t = tramp(r, "test_2", "mov %r0, 0\nexit");
  assert.equal(t.name, "bpf__bpf_testmod_ops_test_2");
  assert.ok(t.addr > 0n);
  assert.ok(t.size > 0);
});
