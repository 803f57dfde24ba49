import assert from "node:assert/strict";
import { test } from "node:test";
import type { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import type { ElfSection } from "../../src/elf/elf.js";
import type { BpfMap } from "../../src/loader/maps.js";
import { BpfProgram } from "../../src/loader/program.js";
import { initStructOpsMaps } from "../../src/loader/struct_ops.js";
import { adjustStructOpsAutoload, initKernStructOps } from "../../src/loader/struct_ops_kern.js";
import { bpf_prog_type } from "../../src/uapi/bpf.js";
import { BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { BpfError, EINVAL, ENOENT, ENOTSUP, ESRCH } from "../../src/uapi/errno.js";

interface Member {
  name: string;
  kind: "fn" | "int" | "long" | "ptr" | "bf";
}

/** `struct <name> { members }` (+ its bpf_struct_ops_ value type when `value`), as a kernel or an object declares it. */
function declare(b: BtfBuilder, name: string, members: Member[], value = false): number {
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const long = b.addInt("long", 8, BTF_INT_SIGNED);
  const fn = b.addPtr(b.addFuncProto(int, []));
  const ptr = b.addPtr(int);
  let off = 0;
  const ms = members.map((m) => {
    const type = m.kind === "fn" ? fn : m.kind === "long" ? long : m.kind === "ptr" ? ptr : int;
    const size = m.kind === "int" || m.kind === "bf" ? 4 : 8;
    off = Math.ceil(off / size) * size;
    const r = { name: m.name, type, bitOffset: off * 8, ...(m.kind === "bf" ? { bitfieldSize: 3 } : {}) };
    off += size;
    return r;
  });
  const id = b.addStruct(name, Math.ceil(off / 8) * 8, ms);
  if (value) {
    const common = b.addStruct("bpf_struct_ops_common_value", 8, [{ name: "refcnt", type: int, bitOffset: 0 }]);
    b.addStruct(`bpf_struct_ops_${name}`, 8 + Math.ceil(off / 8) * 8, [
      { name: "common", type: common, bitOffset: 0 },
      { name: "data", type: id, bitOffset: 64 },
    ]);
  }
  return id;
}

function kernel(members: Member[], name = "demo_ops"): Btf {
  const b = new BtfBuilder();
  declare(b, name, members, true);
  return b.toBtf();
}

/** A local object with one `.struct_ops` var of type `tname`, its bytes, and a program per fn member. */
function local(tname: string, members: Member[], init: (dv: DataView) => void = () => {}) {
  const b = new BtfBuilder();
  const id = declare(b, tname, members);
  const size = (b.typeById(id) as { size: number }).size;
  const v = b.addVar("ops", id, 1);
  b.addDatasec(".struct_ops", size, [{ type: v, offset: 0, size }]);
  const btf = b.toBtf();
  const data = new Uint8Array(size);
  init(new DataView(data.buffer));
  const [map] = initStructOpsMaps(btf, { index: 5, name: ".struct_ops", size, data } as ElfSection) as [BpfMap];
  const st = map.structOps;
  assert.ok(st);
  const progs = st.type.members.map((m, i) => {
    if (members[i]?.kind !== "fn") return null;
    const p = new BpfProgram({
      name: `p_${m.name}`,
      secName: "struct_ops",
      secIdx: 3,
      secInsnOff: i * 2,
      insns: [],
      symGlobal: true,
      isSubprog: false,
    });
    p.type = bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS;
    st.progs[i] = p;
    st.origProgs[i] = p;
    return p;
  });
  return { btf, map, progs };
}

const noPrint = () => {};
const err = (errno: number, msg: string) => (e: unknown) =>
  e instanceof BpfError && e.errno === errno && e.message === msg;

test("init_kern: members matched by name, scalars copied to the kernel offsets, programs bound to member indices", () => {
  const kbtf = kernel([
    { name: "b", kind: "fn" },
    { name: "data", kind: "int" },
    { name: "a", kind: "fn" },
  ]);
  const { btf, map, progs } = local(
    "demo_ops___v2",
    [
      { name: "a", kind: "fn" },
      { name: "data", kind: "int" },
      { name: "b", kind: "fn" },
    ],
    (dv) => dv.setInt32(8, 77, true),
  );
  initKernStructOps(map, btf, kbtf, noPrint);
  const st = map.structOps;
  assert.ok(st?.kernVdata);
  assert.equal(map.valueSize, 32); // the kernel value type's size
  assert.equal(new DataView(st.kernVdata.buffer).getInt32(8 + 8, true), 77); // data at kernel offset 8 after 8 bytes of common
  const kid = kbtf.findByNameKind("demo_ops", 4);
  assert.deepEqual(
    progs.filter((p) => p).map((p) => [p?.name, p?.attachBtfId, p?.expectedAttachType]),
    [
      ["p_a", kid, 2],
      ["p_b", kid, 0],
    ],
  );
  assert.deepEqual(st.kernFuncOff, [8 + 16, 0, 8 + 0]);
});

test("init_kern: libbpf's errors", () => {
  const cases: [Member[], Member[], (dv: DataView) => void, number, string][] = [
    [
      [{ name: "a", kind: "fn" }],
      [
        { name: "a", kind: "fn" },
        { name: "x", kind: "int" },
      ],
      (dv) => dv.setInt32(8, 1, true),
      ENOTSUP,
      "struct_ops init_kern ops: Cannot find member x in kernel BTF",
    ],
    [
      [{ name: "x", kind: "long" }],
      [{ name: "x", kind: "int" }],
      () => {},
      ENOTSUP,
      "struct_ops init_kern ops: Error in size of member x: 4 != 8(kernel)",
    ],
    [
      [{ name: "x", kind: "ptr" }],
      [{ name: "x", kind: "int" }],
      () => {},
      ENOTSUP,
      "struct_ops init_kern ops: Unmatched member type x 1 != 2(kernel)",
    ],
    [
      [{ name: "x", kind: "bf" }],
      [{ name: "x", kind: "int" }],
      () => {},
      ENOTSUP,
      "struct_ops init_kern ops: bitfield x is not supported",
    ],
    [
      [{ name: "a", kind: "ptr" }],
      [{ name: "a", kind: "fn" }],
      () => {},
      ENOTSUP,
      "struct_ops init_kern ops: kernel member a is not a func ptr",
    ],
  ];
  for (const [kms, lms, init, errno, msg] of cases) {
    const { btf, map } = local("demo_ops", lms, init);
    assert.throws(() => initKernStructOps(map, btf, kernel(kms), noPrint), err(errno, msg), msg);
  }
  const { btf, map } = local("other_ops", [{ name: "a", kind: "fn" }]);
  assert.throws(
    () => initKernStructOps(map, btf, kernel([{ name: "a", kind: "fn" }]), noPrint),
    err(ESRCH, "struct_ops init_kern: struct other_ops is not found in kernel BTF"),
  );
  const b = new BtfBuilder();
  declare(b, "other_ops", [{ name: "a", kind: "fn" }], false);
  assert.throws(
    () => initKernStructOps(map, btf, b.toBtf(), noPrint),
    err(ENOENT, "struct_ops init_kern: struct bpf_struct_ops_other_ops is not found in kernel BTF"),
  );
});

test("init_kern: one program in two maps must bind the same kernel member (invalid_prog_reuse)", () => {
  const kbtf = kernel([
    { name: "a", kind: "fn" },
    { name: "b", kind: "fn" },
  ]);
  const one = local("demo_ops", [
    { name: "a", kind: "fn" },
    { name: "b", kind: "fn" },
  ]);
  const two = local("demo_ops", [
    { name: "a", kind: "fn" },
    { name: "b", kind: "fn" },
  ]);
  const st2 = two.map.structOps;
  assert.ok(st2);
  // Map two binds map one's `a` program to its member `b`.
  st2.progs[1] = one.progs[0] ?? null;
  initKernStructOps(one.map, one.btf, kbtf, noPrint);
  assert.throws(
    () => initKernStructOps(two.map, two.btf, kbtf, noPrint),
    (e: unknown) =>
      e instanceof BpfError &&
      e.errno === EINVAL &&
      /^struct_ops init_kern ops func ptr b: invalid reuse of prog p_a in sec struct_ops with type 27: expected_attach_type 0 != kern_member_idx 1$/.test(
        e.message,
      ),
  );
});

test("adjust_struct_ops_autoload: loaded iff some referencing map is created; unreferenced programs untouched", () => {
  const kbtf = kernel([{ name: "a", kind: "fn" }]);
  const x = local("demo_ops", [{ name: "a", kind: "fn" }]);
  const p = x.progs[0] as BpfProgram;
  const lonely = new BpfProgram({
    name: "lonely",
    secName: "struct_ops",
    secIdx: 3,
    secInsnOff: 9,
    insns: [],
    symGlobal: true,
    isSubprog: false,
  });
  lonely.type = bpf_prog_type.BPF_PROG_TYPE_STRUCT_OPS;
  lonely.autoload = false;
  x.map.autocreate = false;
  p.autoload = true;
  adjustStructOpsAutoload([p, lonely], [x.map]);
  assert.deepEqual([p.autoload, lonely.autoload], [false, false]);
  x.map.autocreate = true;
  initKernStructOps(x.map, x.btf, kbtf, noPrint);
  adjustStructOpsAutoload([p, lonely], [x.map]);
  assert.deepEqual([p.autoload, lonely.autoload], [true, false]);
});

test("init_kern: the value type must hold the struct (data is not found), errors are printed at warn level", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  declare(b, "demo_ops", [{ name: "a", kind: "fn" }]);
  // A value type without a member of type demo_ops.
  b.addStruct("bpf_struct_ops_demo_ops", 8, [{ name: "refcnt", type: int, bitOffset: 0 }]);
  const { btf, map } = local("demo_ops", [{ name: "a", kind: "fn" }]);
  const warns: string[] = [];
  const msg = "struct_ops init_kern: struct demo_ops data is not found in struct bpf_struct_ops_demo_ops";
  assert.throws(
    () => initKernStructOps(map, btf, b.toBtf(), (l, m) => l === "warn" && warns.push(m)),
    err(EINVAL, msg),
  );
  assert.deepEqual(warns, [msg]);
});

test("init_kern: a slot may only hold a struct_ops program of this object (is_valid_st_ops_program)", () => {
  const kbtf = kernel([{ name: "a", kind: "fn" }]);
  const msg = "struct_ops init_kern ops: member a is not a struct_ops program";
  // A program of another object.
  const x = local("demo_ops", [{ name: "a", kind: "fn" }]);
  const other = local("demo_ops", [{ name: "a", kind: "fn" }]);
  const st = x.map.structOps;
  assert.ok(st);
  st.progs[0] = other.progs[0] ?? null;
  assert.throws(
    () =>
      initKernStructOps(
        x.map,
        x.btf,
        kbtf,
        noPrint,
        x.progs.flatMap((p) => (p ? [p] : [])),
      ),
    err(ENOTSUP, msg),
  );
  // A program of this object that is not STRUCT_OPS.
  const y = local("demo_ops", [{ name: "a", kind: "fn" }]);
  const p = y.progs[0] as BpfProgram;
  p.type = bpf_prog_type.BPF_PROG_TYPE_SYSCALL;
  assert.throws(() => initKernStructOps(y.map, y.btf, kbtf, noPrint, [p]), err(ENOTSUP, msg));
  // The object's own struct_ops program binds.
  const z = local("demo_ops", [{ name: "a", kind: "fn" }]);
  initKernStructOps(z.map, z.btf, kbtf, noPrint, [z.progs[0] as BpfProgram]);
  assert.equal(z.progs[0]?.expectedAttachType, 0);
});

test("init_kern: a zero member the kernel lacks is skipped with libbpf's info message; its program stops loading", () => {
  const kbtf = kernel([{ name: "a", kind: "fn" }]);
  const x = local("demo_ops", [
    { name: "a", kind: "fn" },
    { name: "gone", kind: "fn" },
  ]);
  const st = x.map.structOps;
  assert.ok(st);
  const gone = x.progs[1] as BpfProgram;
  st.progs[1] = null; // the shadow cleared it
  const infos: string[] = [];
  initKernStructOps(x.map, x.btf, kbtf, (l, m) => l === "info" && infos.push(m));
  assert.equal(gone.autoload, false);
  assert.deepEqual(infos, ["struct_ops ops: member gone not found in kernel, skipping it as it's set to zero"]);
});
