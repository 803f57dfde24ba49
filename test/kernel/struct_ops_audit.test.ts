/** Rules of kernel/bpf/bpf_struct_ops.c that the other struct_ops tests leave uncovered. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { bpfStructOpsMapOps } from "../../src/kernel/struct_ops.js";
import { bpfDummyUserPtr } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { EFAULT, EINVAL, ENOTSUPP, EOPNOTSUPP } from "../../src/uapi/errno.js";
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
