/**
 * The dummy_st_ops selftests on the compiled object bpf/obj/dummy_ops.bpf.o (clang-built, loaded
 * by the libbpf-like loader): test_run of each program, values read back from .bss.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { BpfObject } from "../../../src/loader/object.js";
import { bpfMapAttachStructOps } from "../../../src/loader/struct_ops_attach.js";
import { bpfDummyUserPtr } from "../../../src/subsys/dummy/bpf_dummy_struct_ops.js";
import { bpf_cmd } from "../../../src/uapi/bpf.js";
import { BpfError, EINVAL, EOPNOTSUPP } from "../../../src/uapi/errno.js";
import { boot, type Rig } from "./struct_ops_fixture.js";

const OBJ = "bpf/obj/dummy_ops.bpf.o";
const skip = existsSync(OBJ) ? false : `${OBJ} is missing (run bpf/build.sh)`;

function loaded(): { r: Rig; obj: BpfObject } {
  const r = boot();
  const obj = BpfObject.open(OBJ);
  obj.load({ kernel: r.k, process: r.proc });
  return { r, obj };
}

function args(...v: bigint[]): Uint8Array {
  const b = new Uint8Array(8 * v.length);
  const dv = new DataView(b.buffer);
  for (const [i, x] of v.entries()) dv.setBigUint64(i * 8, BigInt.asUintN(64, x), true);
  return b;
}

function run(r: Rig, fd: number, ctx: Uint8Array): number {
  const attr = { prog_fd: fd, ctx_in: ctx, ctx_size_in: ctx.length, retval: 0 };
  r.k.bpf(r.proc, bpf_cmd.BPF_PROG_TEST_RUN, attr);
  return attr.retval;
}

function progFd(obj: BpfObject, name: string): number {
  const p = obj.findProgram(name);
  assert.ok(p && p.fd > 0, `${name} loaded`);
  return p.fd;
}

test("dummy_ops.bpf.o: test_1 with NULL and with a state (dummy_init_ret_value, dummy_init_ptr_arg)", { skip }, () => {
  const { r, obj } = loaded();
  const fd = progFd(obj, "dummy_test_1");
  assert.equal(run(r, fd, args(0n)), 0xf2f3f4f5);
  const st = new Uint8Array(4);
  new DataView(st.buffer).setInt32(0, 0xbeef, true);
  assert.equal(run(r, fd, args(bpfDummyUserPtr(r.proc, st))), 0xbeef);
  assert.equal(new DataView(st.buffer).getInt32(0, true), 0x5a);
});

test("dummy_ops.bpf.o: test_2 records each argument cast to its C type in .bss (dummy_multiple_args)", { skip }, () => {
  const { r, obj } = loaded();
  const fd = progFd(obj, "dummy_test_2");
  const st = new Uint8Array(4);
  new DataView(st.buffer).setInt32(0, 7, true);
  const a = [bpfDummyUserPtr(r.proc, st), -100n, 0x8a5fn, 99n, 0x1234567887654321n];
  assert.equal(run(r, fd, args(...a)), 0);
  const bss = obj.maps.find((m) => m.name.endsWith(".bss"))!;
  const value = new Uint8Array(40);
  r.k.bpf(r.proc, bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: bss.fd, key: new Uint8Array(4), value });
  const dv = new DataView(value.buffer);
  const got = [0, 1, 2, 3, 4].map((i) => dv.getBigUint64(i * 8, true));
  assert.deepEqual(got, [7n, BigInt.asUintN(64, -100n), 0x8a5fn, 99n, 0x1234567887654321n]);
});

test("dummy_ops.bpf.o: the sleepable test_sleepable runs; a NULL state is refused (EINVAL)", { skip }, () => {
  const { r, obj } = loaded();
  const fd = progFd(obj, "dummy_test_sleepable");
  assert.equal(run(r, fd, args(bpfDummyUserPtr(r.proc, new Uint8Array(4)))), 0);
  assert.throws(
    () => run(r, fd, args(0n)),
    (e: unknown) => e instanceof BpfError && e.errno === EINVAL,
  );
});

test("dummy_ops.bpf.o: attaching the bpf_dummy_ops map fails with EOPNOTSUPP (dummy_st_ops_attach)", { skip }, () => {
  const { r, obj } = loaded();
  const map = obj.findMap("dummy_1")!;
  let errno = 0;
  try {
    bpfMapAttachStructOps(map, { kernel: r.k, process: r.proc });
  } catch (e) {
    errno = e instanceof BpfError ? e.errno : -1;
  }
  assert.equal(errno, EOPNOTSUPP);
});
