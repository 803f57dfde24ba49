import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import type { Btf } from "../../src/btf/btf.js";
import type { BtfComposite } from "../../src/btf/types.js";
import { SimTarget } from "../../src/fidelity/sim.js";
import { Kernel } from "../../src/kernel/kernel.js";
import { type BpfHandle, bpf_map_lookup_elem } from "../../src/loader/bpf.js";
import { BpfObject, type LibbpfPrintLevel } from "../../src/loader/object.js";
import type { BpfProgram } from "../../src/loader/program.js";
import { bpfDummyStructOpsSubsystem } from "../../src/subsys/dummy/bpf_dummy_struct_ops.js";

import { BPF_PSEUDO_KFUNC_CALL, BPF_PSEUDO_MAP_VALUE } from "../../src/uapi/bpf.js";
import { BTF_KIND_FUNC, BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { BpfError, EINVAL, ENOTSUP, ESRCH } from "../../src/uapi/errno.js";
import { objPath, ROOT } from "../elf/helpers.js";

const fixture = (name: string) => join(ROOT, "test/fixtures/elf", `${name}.bpf.o`);

function dummyKernel(): BpfHandle {
  const kernel = new Kernel({ subsystems: [bpfDummyStructOpsSubsystem] });
  return { kernel, process: kernel.newProcess() };
}

function structId(h: BpfHandle, name: string): number {
  return h.kernel.btfVmlinux?.findByNameKind(name, BTF_KIND_STRUCT) ?? -1;
}

test("load: struct_ops programs are bound to the kernel type and member index; fds land in the kernel value", () => {
  const h = dummyKernel();
  const obj = BpfObject.open(objPath("dummy_ops"));
  obj.load(h);
  const id = structId(h, "bpf_dummy_ops");
  assert.ok(id > 0);
  assert.deepEqual(
    obj.programs.map((p) => [p.name, p.attachBtfId, p.expectedAttachType, p.fd > 0]),
    [
      ["dummy_test_1", id, 0, true],
      ["dummy_test_2", id, 1, true],
      ["dummy_test_sleepable", id, 2, true],
    ],
  );
  const map = obj.findMap("dummy_1");
  assert.ok(map && map.fd > 0);
  // The map's value is the kernel's struct bpf_struct_ops_bpf_dummy_ops (128 bytes, data at 64).
  assert.equal(map.valueSize, 128);
  assert.equal(
    map.btfVmlinuxValueTypeId,
    h.kernel.btfVmlinux?.findByNameKind("bpf_struct_ops_bpf_dummy_ops", BTF_KIND_STRUCT),
  );
  const kv = map.structOps?.kernVdata;
  assert.ok(kv);
  const dv = new DataView(kv.buffer);
  obj.programs.forEach((p, i) => {
    assert.equal(dv.getBigUint64(64 + 8 * i, true), BigInt(p.fd));
  });
  // Global data: .bss was created and filled; the program's ld_imm64 now points at it.
  const bss = obj.internalMap(".bss");
  assert.ok(bss && bss.fd > 0);
  const v = new Uint8Array(40);
  assert.equal(bpf_map_lookup_elem(h, bss.fd, new Uint8Array(4), v), 0);
  const t2 = obj.findProgram("dummy_test_2") as BpfProgram;
  const ld = t2.loadedInsns?.find((i) => i.code === 0x18 && i.src === BPF_PSEUDO_MAP_VALUE);
  assert.equal(ld?.imm, bss.fd);
  // After load, the object refuses changes libbpf refuses.
  assert.throws(() => map.setAutocreate(false), /cannot change autocreate after load/);
  assert.throws(() => t2.setAutoload(false), /cannot change autoload after load/);
  assert.throws(() => obj.load(h), /loaded twice/);
  obj.close();
  assert.equal(t2.fd, -1);
});

test("load: a struct_ops program no map references fails to load (unused_program)", () => {
  const log: [LibbpfPrintLevel, string][] = [];
  const obj = BpfObject.open(fixture("st_ops_autoload"), { print: (l, m) => log.push([l, m]) });
  assert.equal(obj.findProgram("unused")?.autoload, true);
  assert.throws(
    () => obj.load(dummyKernel()),
    (e: unknown) =>
      e instanceof BpfError &&
      e.errno === EINVAL &&
      e.message === `prog 'unused': SEC("struct_ops") program isn't referenced anywhere, did you forget to use it?`,
  );
  assert.ok(log.some(([, m]) => m === "prog 'unused': failed to load: -22"));
});

test("load: autoload follows the maps that are created (optional maps, shadow edits)", () => {
  const open = () => {
    const obj = BpfObject.open(fixture("st_ops_autoload"));
    obj.findProgram("unused")?.setAutoload(false);
    return obj;
  };
  // Defaults: plain_map (created) binds bar; opt_map (not created) binds foo.
  let obj = open();
  obj.load(dummyKernel());
  assert.deepEqual(
    obj.programs.map((p) => [p.name, p.autoload, p.fd > 0]),
    [
      ["foo", false, false],
      ["bar", true, true],
      ["unused", false, false],
    ],
  );
  assert.equal(obj.findMap("opt_map")?.fd, -1);
  // Turning the optional map on loads foo as well.
  obj = open();
  obj.findMap("opt_map")?.setAutocreate(true);
  obj.load(dummyKernel());
  assert.deepEqual(
    obj.programs.map((p) => p.autoload),
    [true, true, false],
  );
  // A shadow edit replacing bar with foo loads foo and leaves bar out (autoload_and_shadow_vars).
  obj = open();
  const foo = obj.findProgram("foo") as BpfProgram;
  obj.findMap("plain_map")?.structOps?.value.set("test_1", foo);
  obj.load(dummyKernel());
  assert.deepEqual(
    obj.programs.map((p) => p.autoload),
    [true, false, false],
  );
  const kv = obj.findMap("plain_map")?.structOps?.kernVdata as Uint8Array;
  assert.equal(new DataView(kv.buffer).getBigUint64(64, true), BigInt(foo.fd));
});

test("load: local members the kernel lacks must be zero (struct_ops_not_zeroed), flavour stripped", () => {
  const cantFind = (m: string) => (e: unknown) =>
    e instanceof BpfError &&
    e.errno === ENOTSUP &&
    e.message === `struct_ops init_kern z: Cannot find member ${m} in kernel BTF`;
  let obj = BpfObject.open(fixture("st_ops_kern"));
  assert.equal(obj.findMap("z")?.structOps?.tname, "bpf_dummy_ops___zeroed");
  assert.throws(() => obj.load(dummyKernel()), cantFind("zeroed_op"));
  obj = BpfObject.open(fixture("st_ops_kern"));
  obj.findMap("z")?.structOps?.value.set("zeroed_op", null);
  assert.throws(() => obj.load(dummyKernel()), cantFind("zeroed"));
  obj = BpfObject.open(fixture("st_ops_kern"));
  const v = obj.findMap("z")?.structOps?.value;
  v?.set("zeroed_op", null);
  v?.set("zeroed", 0);
  const h = dummyKernel();
  obj.load(h);
  assert.equal(obj.findProgram("zop")?.autoload, false);
  assert.equal(obj.findProgram("zop")?.fd, -1);
  const t1 = obj.findProgram("t1");
  assert.deepEqual([t1?.attachBtfId, t1?.expectedAttachType], [structId(h, "bpf_dummy_ops"), 0]);
});

test("load: a program in an unknown section cannot load", () => {
  const obj = BpfObject.open(fixture("bad_sec"));
  assert.throws(
    () => obj.load(dummyKernel()),
    (e: unknown) =>
      e instanceof BpfError &&
      e.errno === EINVAL &&
      e.message === "prog 'unknown_prog': missing BPF prog type, check ELF section name 'foo/bar'",
  );
});

test("load: the kernel refuses struct_ops programs without a GPL licence", () => {
  const log: string[] = [];
  const o2 = BpfObject.open(fixture("st_ops_shadow"), { print: (_l, m) => log.push(m) });
  o2.findProgram("unused")?.setAutoload(false);
  assert.throws(
    () => o2.load(dummyKernel()),
    (e: unknown) => e instanceof BpfError && e.errno === EINVAL,
  );
  assert.ok(
    log.some((m) => m.includes("GPL")),
    log.join("\n"),
  );
});

test("load: kfunc externs missing from kernel BTF are libbpf's ESRCH", () => {
  const obj = BpfObject.open(objPath("tcp_reno"));
  assert.throws(
    () => obj.load(dummyKernel()),
    (e: unknown) =>
      e instanceof BpfError &&
      e.errno === ESRCH &&
      /extern \(func ksym\) 'tcp_\w+': not found in kernel or module BTFs/.test(e.message),
  );
});

/** The simulated TCP kernel, when it boots and binds the TCP kfuncs (skip with the reason otherwise). */
function tcpTarget(): { t?: SimTarget; why: string | false } {
  try {
    const t = new SimTarget();
    const ok = (t.kernel.btfVmlinux?.findByNameKind("tcp_slow_start", BTF_KIND_FUNC) ?? -1) > 0;
    return ok ? { t, why: false } : { why: "the simulated kernel declares no TCP kfuncs (tcp_slow_start) yet" };
  } catch (e) {
    return { why: `the simulated TCP kernel does not boot: ${(e as Error).message}` };
  }
}
const tcp = tcpTarget();

test("load: tcp_reno end to end: CO-RE to the kernel's tcp_sock, kfunc calls by BTF id, attach registers it", {
  skip: tcp.why,
}, () => {
  const t = tcp.t as SimTarget;
  const cong = t.cong;
  const h: BpfHandle = { kernel: t.kernel, process: t.kernel.newProcess() };
  const obj = BpfObject.open(objPath("tcp_reno"));
  obj.load(h);
  const kbtf = h.kernel.btfVmlinux as Btf;
  const tcpSock = kbtf.typeById(kbtf.findByNameKind("tcp_sock", BTF_KIND_STRUCT)) as BtfComposite;
  assert.ok(tcpSock.members.length > 0);
  const ca = obj.findProgram("so_reno_cong_avoid") as BpfProgram;
  const kcalls = ca.loadedInsns?.filter((i) => i.code === 0x85 && i.src === BPF_PSEUDO_KFUNC_CALL) ?? [];
  assert.deepEqual(
    kcalls.map((i) => kbtf.nameOf(i.imm)),
    ["tcp_slow_start", "tcp_cong_avoid_ai"],
  );
  const link = obj.findMap("so_reno")?.attachStructOps();
  assert.ok(link && !link.isRealLink);
  assert.ok(cong.tcp_ca_find("so_reno"));
  link.detach();
  assert.equal(cong.tcp_ca_find("so_reno"), undefined);
});
