/** struct_ops types owned by a module (split BTF): BPF_F_VTYPE_BTF_OBJ_FD maps and attach_btf_obj_fd programs. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import type { BtfObject } from "../../src/kernel/bpf.js";
import { delete_module, EWOULDBLOCK, load_module, type Module, module_refcount } from "../../src/kernel/module.js";
import { registerBpfStructOps } from "../../src/kernel/struct_ops.js";
import { TrampolineImage } from "../../src/kernel/struct_ops_trampoline.js";
import { objGetInfo } from "../../src/kernel/syscall.js";
import { BPF_F_LINK, BPF_F_RDONLY, BPF_F_VTYPE_BTF_OBJ_FD, bpf_cmd } from "../../src/uapi/bpf.js";
import { BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { E2BIG, EINVAL, ENOTSUPP, EPERM } from "../../src/uapi/errno.js";
import {
  boot,
  createMap,
  declareTestmodTypes,
  KEY0,
  newSpy,
  type Rig,
  TESTMOD,
  testmodOps,
  testmodValue,
  update,
  userBtfFd,
  Value,
} from "../subsys/dummy/struct_ops_fixture.js";
import { errno } from "./struct_ops_util.js";

/** A kernel whose testmod type lives in a module BTF (split on vmlinux), not in vmlinux. */
function bootModule(): Rig & { mod: BtfObject; modFd: number; module: Module } {
  const r = boot({ noTestmod: true });
  const spy = newSpy();
  const module = load_module(r.k, {
    name: "bpf_testmod",
    declareTypes: (b) => declareTestmodTypes(b),
    init: (m, k) => {
      registerBpfStructOps(k, { ...testmodOps(spy), owner: m }, m.btfObj!.btf);
    },
  });
  const mod = module.btfObj!;
  const modFd = r.k.bpf(r.proc, bpf_cmd.BPF_BTF_GET_FD_BY_ID, { btf_id: mod.id });
  return { ...r, spy, mod, modFd, module };
}

function modValueType(r: ReturnType<typeof bootModule>) {
  const id = r.mod.btf.findByNameKind(`bpf_struct_ops_${TESTMOD}`, BTF_KIND_STRUCT);
  return { id, size: (r.mod.btf.typeById(id) as { size: number }).size };
}

function modMap(r: ReturnType<typeof bootModule>, over: Record<string, number> = {}): number {
  const vt = modValueType(r);
  return r.k.bpf(r.proc, bpf_cmd.BPF_MAP_CREATE, {
    map_type: 26,
    key_size: 4,
    value_size: vt.size,
    max_entries: 1,
    map_flags: BPF_F_VTYPE_BTF_OBJ_FD | BPF_F_LINK,
    value_type_btf_obj_fd: r.modFd,
    btf_fd: userBtfFd(r),
    btf_vmlinux_value_type_id: vt.id,
    ...over,
  });
}

test("module type: a BPF_F_VTYPE_BTF_OBJ_FD map finds the type in the module BTF; info names that BTF", () => {
  const r = bootModule();
  const fd = modMap(r);
  assert.equal(objGetInfo(r.proc, fd).btf_vmlinux_id, r.mod.id);
  // Without the flag the id is looked up in vmlinux, where the type is not: ENOTSUPP.
  assert.equal(
    errno(() => modMap(r, { map_flags: BPF_F_LINK })),
    ENOTSUPP,
  );
});

test("module type: the flag needs a module BTF (vmlinux -> EINVAL) whose module is live (else EINVAL)", () => {
  const r = bootModule();
  const vmlinuxFd = r.k.bpf(r.proc, bpf_cmd.BPF_BTF_GET_FD_BY_ID, { btf_id: r.k.btfVmlinuxObj!.id });
  assert.equal(
    errno(() => modMap(r, { value_type_btf_obj_fd: vmlinuxFd })),
    EINVAL,
  );
  // The module goes; the fd still holds its BTF, but btf_try_get_module finds no live module.
  delete_module(r.k, "bpf_testmod");
  assert.equal(
    errno(() => modMap(r)),
    EINVAL,
  );
  assert.equal(module_refcount(r.module), -1);
});

test("module type: programs attach through attach_btf_obj_fd; a gone module refuses the load (ENOTSUPP)", () => {
  const r = bootModule();
  const typeId = r.mod.btf.findByNameKind(TESTMOD, BTF_KIND_STRUCT);
  const load = () => {
    const insns = assemble("mov %r0, 42\nexit");
    return r.k.bpf(r.proc, bpf_cmd.BPF_PROG_LOAD, {
      prog_type: 27,
      insns,
      insn_cnt: insns.length,
      license: "GPL",
      expected_attach_type: 0,
      attach_btf_id: typeId,
      attach_btf_obj_fd: r.modFd,
    });
  };
  const prog = load();
  const fd = modMap(r);
  const vt = modValueType(r);
  const v = new Uint8Array(vt.size);
  const dv = new DataView(v.buffer);
  dv.setBigUint64(64, BigInt(prog), true); // test_1 at data + 0
  dv.setInt32(64 + 24, 5, true); // data
  assert.equal(update(r, fd, v), 0);
  const lfd = r.k.bpf(r.proc, bpf_cmd.BPF_LINK_CREATE, { map_fd: fd, attach_type: 44 });
  assert.ok(lfd > 0);
  assert.equal(r.spy.registered.get(5)!.func("test_1")!.call(), 42);
  // The map holds the module; the program alone does not.
  assert.equal(module_refcount(r.module), 1);
  assert.equal(
    errno(() => delete_module(r.k, "bpf_testmod")),
    EWOULDBLOCK,
  );
  r.k.close(r.proc, lfd);
  r.k.close(r.proc, fd);
  r.k.quiesce();
  assert.equal(module_refcount(r.module), 0);
  delete_module(r.k, "bpf_testmod");
  assert.equal(
    errno(() => load()),
    ENOTSUPP,
  );
});

test("map fd permissions: update and delete need a writable fd, lookup a readable one (EPERM)", () => {
  const r = boot();
  const fd = createMap(r, TESTMOD);
  const id = (r.proc.files.get(fd).private_data as { id: number }).id;
  const ro = r.k.bpf(r.proc, bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: id, open_flags: BPF_F_RDONLY });
  assert.equal(
    errno(() => update(r, ro, testmodValue(r, 1))),
    EPERM,
  );
  assert.equal(
    errno(() => r.k.bpf(r.proc, bpf_cmd.BPF_MAP_DELETE_ELEM, { map_fd: ro, key: KEY0 })),
    EPERM,
  );
  const wo = r.k.bpf(r.proc, bpf_cmd.BPF_MAP_GET_FD_BY_ID, { map_id: id, open_flags: 1 << 4 });
  const value = new Value(r, TESTMOD).bytes;
  assert.equal(
    errno(() => r.k.bpf(r.proc, bpf_cmd.BPF_MAP_LOOKUP_ELEM, { map_fd: wo, key: KEY0, value })),
    EPERM,
  );
});

test("trampoline images: at most 8 pages per map (E2BIG past them)", () => {
  const img = new TrampolineImage();
  for (let i = 0; i < 8; i++) img.reserve(4096);
  assert.equal(img.pages.length, 8);
  assert.equal(
    errno(() => img.reserve(16)),
    E2BIG,
  );
  img.free();
  assert.equal(img.pages.length, 0);
});
