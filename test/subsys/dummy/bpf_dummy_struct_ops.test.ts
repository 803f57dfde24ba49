import assert from "node:assert/strict";
import { test } from "node:test";
import { bpfDummyUserPtr } from "../../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { bpf_cmd } from "../../../src/uapi/bpf.js";
import { BpfError, EINVAL, EOPNOTSUPP } from "../../../src/uapi/errno.js";
import { errno } from "../../kernel/struct_ops_util.js";
import { boot, createMap, loadProg, type Rig, TESTMOD, typeId, valueTypeOf } from "./struct_ops_fixture.js";

/** The selftests' dummy_st_ops_success.c test_1: NULL state -> 0xf2f3f4f5, else return val and set it to 0x5a. */
const TEST_1 = `
ldxdw %r1, [%r1+0]
jeq %r1, 0, null
ldxw %r0, [%r1+0]
stw [%r1+0], 0x5a
exit
null:
lddw %r0, 0xf2f3f4f5
exit
`;

function args(...v: bigint[]): Uint8Array {
  const b = new Uint8Array(8 * v.length);
  const dv = new DataView(b.buffer);
  for (const [i, x] of v.entries()) dv.setBigUint64(i * 8, BigInt.asUintN(64, x), true);
  return b;
}

function testRun(r: Rig, progFd: number, ctx: Uint8Array) {
  const attr = { prog_fd: progFd, ctx_in: ctx, ctx_size_in: ctx.length, retval: 0 };
  r.k.bpf(r.proc, bpf_cmd.BPF_PROG_TEST_RUN, attr);
  return attr.retval;
}

test("dummy_st_ops: the value type is struct bpf_struct_ops_bpf_dummy_ops, 128 bytes, data at 64", () => {
  const r = boot();
  const vt = valueTypeOf(r, "bpf_dummy_ops");
  assert.equal(vt.size, 128);
  assert.equal(vt.members[1].bitOffset, 512);
});

test("dummy_init_ret_value: test_1 with a NULL state (nullable) -> retval 0xf2f3f4f5", () => {
  const r = boot();
  const fd = loadProg(r, "bpf_dummy_ops", "test_1", TEST_1);
  assert.equal(testRun(r, fd, args(0n)), 0xf2f3f4f5);
});

test("test_run: flags and cpu are not struct_ops' business: bpf_struct_ops_test_run ignores them, as 6.18 does", () => {
  const r = boot();
  const fd = loadProg(r, "bpf_dummy_ops", "test_1", TEST_1);
  const ctx = args(0n);
  const attr = { prog_fd: fd, ctx_in: ctx, ctx_size_in: ctx.length, flags: 0x80, cpu: 5, retval: 0 };
  r.k.bpf(r.proc, bpf_cmd.BPF_PROG_TEST_RUN, attr);
  assert.equal(attr.retval, 0xf2f3f4f5);
});

test("dummy_init_ptr_arg: the state is copied in and out; retval is the old val", () => {
  const r = boot();
  const fd = loadProg(r, "bpf_dummy_ops", "test_1", TEST_1);
  const st = new Uint8Array(4);
  new DataView(st.buffer).setInt32(0, 0xbeef, true);
  const ptr = bpfDummyUserPtr(r.proc, st);
  assert.equal(testRun(r, fd, args(ptr)), 0xbeef);
  assert.equal(new DataView(st.buffer).getInt32(0, true), 0x5a);
});

test("dummy_multiple_args: test_2 sees each u64 argument slot as passed", () => {
  const r = boot();
  const st = new Uint8Array(4);
  new DataView(st.buffer).setInt32(0, 7, true);
  const ptr = bpfDummyUserPtr(r.proc, st);
  const a = [ptr, -100n, 0x8a5fn, 99n /* 'c' */, 0x1234567887654321n];
  // state->val
  const p0 = loadProg(r, "bpf_dummy_ops", "test_2", "ldxdw %r1, [%r1+0]\nldxw %r0, [%r1+0]\nexit");
  assert.equal(testRun(r, p0, args(...a)), 7);
  // The program casts each slot to its C type: int, unsigned short, char, unsigned long (low 32 bits of r0 here).
  const expect = [0xffffff9c, 0x8a5f, 99, 0x87654321];
  for (let i = 1; i <= 4; i++) {
    const p = loadProg(r, "bpf_dummy_ops", "test_2", `ldxdw %r0, [%r1+${8 * i}]\nexit`);
    assert.equal(testRun(r, p, args(...a)), expect[i - 1], `arg ${i}`);
  }
  // The high half of the unsigned long arrives intact.
  const hi = loadProg(r, "bpf_dummy_ops", "test_2", "ldxdw %r0, [%r1+32]\nrsh %r0, 32\nexit");
  assert.equal(testRun(r, hi, args(...a)), 0x12345678);
});

test("test_run: ctx_size_in must be 8 * nargs (else EINVAL); NULL only for __nullable args (test_2 -> EINVAL)", () => {
  const r = boot();
  const t1 = loadProg(r, "bpf_dummy_ops", "test_1", TEST_1);
  assert.equal(
    errno(() => testRun(r, t1, args(0n, 0n))),
    EINVAL,
  );
  const t2 = loadProg(r, "bpf_dummy_ops", "test_2", "mov %r0, 0\nexit");
  assert.equal(
    errno(() => testRun(r, t2, args(0n, 1n, 2n, 3n, 4n))),
    EINVAL,
  );
  assert.equal(
    errno(() => testRun(r, t2, args(0n))),
    EINVAL,
  );
});

test("dummy_sleepable: struct_ops.s on test_sleepable loads and runs; a NULL state is rejected (EINVAL)", () => {
  const r = boot();
  const fd = loadProg(r, "bpf_dummy_ops", "test_sleepable", "mov %r0, 0\nexit", { sleepable: true });
  const ptr = bpfDummyUserPtr(r.proc, new Uint8Array(4));
  assert.equal(testRun(r, fd, args(ptr)), 0);
  assert.equal(
    errno(() => testRun(r, fd, args(0n))),
    EINVAL,
  );
});

test("dummy_st_ops_fail: a sleepable program on test_2 is refused at load (check_member, EINVAL)", () => {
  const r = boot();
  const log = new Uint8Array(4096);
  let err: unknown;
  try {
    r.k.bpf(r.proc, bpf_cmd.BPF_PROG_LOAD, {
      prog_type: 27,
      insns: [
        { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
        { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
      ],
      insn_cnt: 2,
      license: "GPL",
      expected_attach_type: 1,
      attach_btf_id: typeId(r.k, "bpf_dummy_ops"),
      prog_flags: 1 << 4,
      log_buf: log,
      log_size: log.length,
      log_level: 1,
    });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof BpfError);
  assert.equal(err.errno, EINVAL);
  assert.match(new TextDecoder().decode(log), /attach to unsupported member test_2 of struct bpf_dummy_ops/);
});

test("test_run of a struct_ops program of another type -> EOPNOTSUPP", () => {
  const r = boot();
  const fd = loadProg(r, TESTMOD, "test_1", "mov %r0, 1\nexit");
  assert.equal(
    errno(() => r.k.bpf(r.proc, bpf_cmd.BPF_PROG_TEST_RUN, { prog_fd: fd })),
    EOPNOTSUPP,
  );
});

test("dummy_st_ops_attach: a bpf_dummy_ops map update fails with EOPNOTSUPP (init_member)", () => {
  const r = boot();
  const vt = valueTypeOf(r, "bpf_dummy_ops");
  const fd = createMap(r, "bpf_dummy_ops");
  assert.equal(
    errno(() =>
      r.k.bpf(r.proc, bpf_cmd.BPF_MAP_UPDATE_ELEM, {
        map_fd: fd,
        key: new Uint8Array(4),
        value: new Uint8Array(vt.size),
        flags: 0,
      }),
    ),
    EOPNOTSUPP,
  );
});
