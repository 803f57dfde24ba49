/** Rules of kernel/bpf/bpf_struct_ops.c that the other struct_ops tests leave uncovered. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { BtfBuilder } from "../../src/btf/builder.js";
import type { Kernel, Subsystem } from "../../src/kernel/kernel.js";
import {
  bpfStructOpsMapOps,
  builderFind,
  declareStructOpsValueType,
  registerBpfStructOps,
} from "../../src/kernel/struct_ops.js";
import { bpfDummyUserPtr } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BTF_FUNC_STATIC, BTF_KIND_INT } from "../../src/uapi/btf.js";
import { BpfError, EFAULT, EINVAL, ENOTSUPP, EOPNOTSUPP } from "../../src/uapi/errno.js";
import { boot, createMap, KEY0, loadProg, TESTMOD, valueTypeOf } from "../subsys/dummy/struct_ops_fixture.js";
import { errno, mapOf } from "./struct_ops_util.js";

function args(...v: bigint[]): Uint8Array {
  const b = new Uint8Array(8 * v.length);
  const dv = new DataView(b.buffer);
  for (const [i, x] of v.entries()) dv.setBigUint64(i * 8, BigInt.asUintN(64, x), true);
  return b;
}

test("batch commands and LOOKUP_AND_DELETE on a struct_ops map -> ENOTSUPP (524): no callbacks", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const size = valueTypeOf(r, TESTMOD).size;
  const batch = {
    map_fd: fd,
    keys: new Uint8Array(4),
    values: new Uint8Array(size),
    count: 1,
    in_batch: null,
    out_batch: new Uint8Array(4),
  };
  for (const cmd of [
    bpf_cmd.BPF_MAP_LOOKUP_BATCH,
    bpf_cmd.BPF_MAP_LOOKUP_AND_DELETE_BATCH,
    bpf_cmd.BPF_MAP_UPDATE_BATCH,
    bpf_cmd.BPF_MAP_DELETE_BATCH,
  ]) {
    assert.equal(
      errno(() => r.k.bpf(r.proc, cmd, { ...batch })),
      ENOTSUPP,
      `batch command ${cmd}`,
    );
  }
  assert.equal(
    errno(() =>
      r.k.bpf(r.proc, bpf_cmd.BPF_MAP_LOOKUP_AND_DELETE_ELEM, { map_fd: fd, key: KEY0, value: new Uint8Array(size) }),
    ),
    ENOTSUPP,
  );
});

test("map_mem_usage: st_map + uvalue + funcs_cnt links and ksyms + one page, whatever the image uses", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const map = mapOf(r, fd);
  const vt = valueTypeOf(r, TESTMOD).size;
  const usage = bpfStructOpsMapOps.map_mem_usage(map);
  // Only funcs_cnt (not the value type's vlen, 2) scales the pointer arrays.
  assert.equal(usage - (vt + map.funcsCnt * 16 + 4096 + vt - 64), 512, "fixed part: sizeof(struct bpf_struct_ops_map)");
  assert.ok(map.funcsCnt > 2);
});

test("test_run checks in order: dummy type (EOPNOTSUPP), ctx_size_in (EINVAL), state copy (EFAULT), NULL args (EINVAL)", () => {
  const r = boot();
  // Another type's program is refused before ctx_size_in is looked at.
  const other = loadProg(r, TESTMOD, "test_1", "mov %r0, 1\nexit");
  assert.equal(
    errno(() =>
      r.k.bpf(r.proc, bpf_cmd.BPF_PROG_TEST_RUN, { prog_fd: other, ctx_in: args(1n, 2n, 3n), ctx_size_in: 24 }),
    ),
    EOPNOTSUPP,
  );
  const t2 = loadProg(r, "bpf_dummy_ops", "test_2", "mov %r0, 0\nexit");
  const run = (ctx: Uint8Array) =>
    r.k.bpf(r.proc, bpf_cmd.BPF_PROG_TEST_RUN, { prog_fd: t2, ctx_in: ctx, ctx_size_in: ctx.length });
  // dummy_ops_init_args copies the state from the user pointer in args[0]: a bad one -> EFAULT.
  assert.equal(
    errno(() => run(args(0x1234n, 0n, 0n, 0n, 0n))),
    EFAULT,
  );
  // ... and the size check comes first.
  assert.equal(
    errno(() => run(args(0x1234n, 0n, 0n, 0n))),
    EINVAL,
  );
  // Zero scalars are fine; only a zero pointer needs __nullable.
  const ptr = bpfDummyUserPtr(r.proc, new Uint8Array(4));
  assert.equal(run(args(ptr, 0n, 0n, 0n, 0n)), 0);
});

/** A struct_ops type whose stub tags an argument __ref (bpf_testmod's test_refcounted). */
const REF_OPS = "bpf_ref_ops";
const refOpsSubsystem: Subsystem = {
  name: "bpf_ref_ops",
  declareTypes(b: BtfBuilder): void {
    const int = builderFind(b, "int", BTF_KIND_INT);
    const pObj = b.addPtr(b.addStructAuto("ref_obj", [{ name: "v", type: int }]));
    const proto = b.addFuncProto(int, [
      { name: "dummy", type: int },
      { name: "obj", type: pObj },
    ]);
    b.addStructAuto(REF_OPS, [
      { name: "test_refcounted", type: b.addPtr(proto) },
      { name: "test_plain", type: b.addPtr(proto) },
    ]);
    const stub = (argName: string) =>
      b.addFuncProto(int, [
        { name: "dummy", type: int },
        { name: argName, type: pObj },
      ]);
    b.addFunc("bpf_ref_ops_test_refcounted", stub("obj__ref"), BTF_FUNC_STATIC);
    b.addFunc("bpf_ref_ops_test_plain", stub("obj"), BTF_FUNC_STATIC);
    declareStructOpsValueType(b, REF_OPS);
  },
  register(k: Kernel): void {
    registerBpfStructOps(k, {
      name: REF_OPS,
      cfiStubs: { test_refcounted: "bpf_ref_ops_test_refcounted", test_plain: "bpf_ref_ops_test_plain" },
      initMember: () => 0,
      reg(): void {},
      unreg(): void {},
    });
  },
};

test("PROG_LOAD: a member with a __ref argument refuses a program that tail calls (EINVAL), others do not", () => {
  const r = boot({ extra: [refOpsSubsystem] });
  const TAIL_CALL = "mov %r2, 0\nmov %r3, 0\ncall 12\nmov %r0, 0\nexit";
  const loadErr = (member: string, asm: string): BpfError | undefined => {
    try {
      loadProg(r, REF_OPS, member, asm);
      return undefined;
    } catch (e) {
      if (e instanceof BpfError) return e;
      throw e;
    }
  };
  const refused = loadErr("test_refcounted", TAIL_CALL);
  assert.equal(refused?.errno, EINVAL);
  assert.match(refused?.message ?? "", /program with __ref argument cannot tail call/);
  // The same instructions on a member without __ref get past check_struct_ops_btf_id.
  assert.doesNotMatch(loadErr("test_plain", TAIL_CALL)?.message ?? "", /__ref argument/);
  // A __ref member without a tail call is not refused for it.
  assert.doesNotMatch(loadErr("test_refcounted", "mov %r0, 0\nexit")?.message ?? "", /__ref argument/);
});
