import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import { ElfFile } from "../../src/elf/elf.js";
import type { Insn } from "../../src/isa/insn.js";
import { BPF_B, BPF_CLASS, BPF_DW, BPF_H, BPF_LDX, BPF_SIZE, BPF_W } from "../../src/isa/opcodes.js";
import {
  BPF_CORE_ENUMVAL_EXISTS,
  BPF_CORE_ENUMVAL_VALUE,
  BPF_CORE_FIELD_BYTE_OFFSET,
  BPF_CORE_FIELD_BYTE_SIZE,
  BPF_CORE_FIELD_EXISTS,
  BPF_CORE_FIELD_LSHIFT_U64,
  BPF_CORE_FIELD_RSHIFT_U64,
  BPF_CORE_FIELD_SIGNED,
  BPF_CORE_TYPE_EXISTS,
  BPF_CORE_TYPE_SIZE,
} from "../../src/loader/btf_ext.js";
import { BpfObject } from "../../src/loader/object.js";
import { BPF_CORE_POISON_IMM, bpfCoreApplyRelos, type CoreReloOutcome } from "../../src/loader/relo_core.js";
import { BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { BpfError, EINVAL, ERANGE } from "../../src/uapi/errno.js";
import { objPath, ROOT } from "../elf/helpers.js";

const fixture = (name: string) => join(ROOT, "test/fixtures/elf", `${name}.bpf.o`);

function targetBtfOf(path: string): Btf {
  const elf = ElfFile.parse(new Uint8Array(readFileSync(path)));
  return Btf.parse(elf.sectionByName(".BTF")?.data as Uint8Array);
}

function relocate(target: Btf) {
  const obj = BpfObject.open(fixture("core_local"));
  const prog = obj.findProgram("core_prog");
  assert.ok(prog && obj.btf);
  const relos = obj.coreRelosFor(prog);
  const { insns, outcomes } = bpfCoreApplyRelos(prog.insns, obj.btf, target, relos, { progName: prog.name });
  return { obj, prog, insns, outcomes };
}

/** What the patched instruction now carries: LDX offset, ALU immediate or ld_imm64 value; "poison" if poisoned. */
function patched(insns: Insn[], o: CoreReloOutcome): number | "poison" {
  const i = insns[o.insnIdx] as Insn;
  if (i.code === 0x85 && i.imm === BPF_CORE_POISON_IMM) return "poison";
  if (BPF_CLASS(i.code) === BPF_LDX) return i.off;
  if (i.code === 0x18) return (i.imm >>> 0) + (insns[o.insnIdx + 1] as Insn).imm * 2 ** 32;
  return i.imm;
}

/** Outcomes keyed "<kind>:<spec path>" for readable assertions. */
function byKind(outcomes: CoreReloOutcome[], insns: Insn[]) {
  return outcomes.map((o) => ({
    kind: o.kind,
    spec: o.spec,
    value: o.res.poison ? "poison" : Number(o.res.newVal),
    insn: patched(insns, o),
  }));
}

function find(rows: ReturnType<typeof byKind>, kind: number, specPart: string) {
  const r = rows.find((x) => x.kind === kind && x.spec.includes(specPart));
  assert.ok(r, `relocation ${kind} ${specPart}`);
  return r;
}

function loadSize(insns: Insn[], idx: number): number {
  const s = BPF_SIZE((insns[idx] as Insn).code);
  return s === BPF_B ? 1 : s === BPF_H ? 2 : s === BPF_W ? 4 : s === BPF_DW ? 8 : -1;
}

test("CO-RE against the same types in another compiled layout: every kind patched to the target's values", () => {
  const target = targetBtfOf(fixture("core_target"));
  const { insns, outcomes } = relocate(target);
  const rows = byKind(outcomes, insns);
  // Plain fields: loads get the target's offsets.
  assert.deepEqual(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".a ").insn, 16);
  assert.deepEqual(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".b ").insn, 8);
  assert.deepEqual(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".in.y").insn, 32);
  assert.deepEqual(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".arr[2]").insn, 44);
  // u16 -> u32: offset patched and the load widened (unsigned: safe).
  const small = outcomes.find((o) => o.spec.includes(".small"));
  assert.ok(small);
  assert.equal(patched(insns, small), 68);
  assert.equal(loadSize(insns, small.insnIdx), 4);
  // short -> int: a signed size change cannot be fixed by resizing the load: poisoned.
  assert.equal(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".ssmall").insn, "poison");
  // A field the target lacks: exists = 0, and the guarded load is poisoned.
  assert.equal(find(rows, BPF_CORE_FIELD_EXISTS, ".gone").insn, 0);
  assert.equal(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".gone").insn, "poison");
  // Bitfield `mode`: moved to bits 167..172 of the target (6 bits wide).
  assert.equal(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".mode").value, 20);
  assert.equal(find(rows, BPF_CORE_FIELD_BYTE_SIZE, ".mode").value, 4);
  assert.equal(find(rows, BPF_CORE_FIELD_LSHIFT_U64, ".mode").insn, 51);
  assert.equal(find(rows, BPF_CORE_FIELD_RSHIFT_U64, ".mode").insn, 58);
  assert.equal(find(rows, BPF_CORE_FIELD_SIGNED, ".mode").value, 0);
  // Type and enum relocations.
  assert.equal(find(rows, BPF_CORE_TYPE_SIZE, "core_s___a").insn, 80);
  assert.equal(find(rows, BPF_CORE_ENUMVAL_VALUE, "CORE_B").insn, 20);
  assert.equal(find(rows, BPF_CORE_ENUMVAL_EXISTS, "CORE_D").insn, 0);
  assert.equal(find(rows, BPF_CORE_TYPE_EXISTS, "core_missing").insn, 0);
});

test("CO-RE against a builder-made target BTF with yet another layout", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const uint = b.addInt("unsigned int", 4);
  const long = b.addInt("long", 8, BTF_INT_SIGNED);
  const ushort = b.addInt("unsigned short", 2);
  const short = b.addInt("short", 2, BTF_INT_SIGNED);
  const inner = b.addStruct("core_inner", 8, [
    { name: "y", type: int, bitOffset: 0 },
    { name: "x", type: int, bitOffset: 32 },
  ]);
  const idx = b.addInt("__ARRAY_SIZE_TYPE__", 4);
  const arr = b.addArray(int, idx, 4);
  b.addStruct("core_s", 112, [
    { name: "b", type: long, bitOffset: 0 },
    { name: "mode", type: uint, bitOffset: 200, bitfieldSize: 5 },
    { name: "flags", type: uint, bitOffset: 205, bitfieldSize: 3 },
    { name: "a", type: int, bitOffset: 320 },
    { name: "in", type: inner, bitOffset: 384 },
    { name: "arr", type: arr, bitOffset: 512 },
    { name: "small", type: ushort, bitOffset: 800 },
    { name: "ssmall", type: short, bitOffset: 816 },
    { name: "gone", type: int, bitOffset: 832 },
  ]);
  b.addEnum("core_e", 4, [
    { name: "CORE_D", val: 9 },
    { name: "CORE_B", val: 7 },
  ]);
  b.addStruct("core_missing", 4, [{ name: "x", type: int, bitOffset: 0 }]);
  const { insns, outcomes } = relocate(b.toBtf());
  const rows = byKind(outcomes, insns);
  assert.equal(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".a ").insn, 40);
  assert.equal(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".b ").insn, 0);
  assert.equal(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".in.y").insn, 48);
  assert.equal(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".arr[2]").insn, 72);
  const small = outcomes.find((o) => o.spec.includes(".small"));
  assert.equal(small && patched(insns, small), 100);
  assert.equal(small && loadSize(insns, small.insnIdx), 2);
  assert.equal(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".ssmall").insn, 102); // same size now: fine
  assert.equal(find(rows, BPF_CORE_FIELD_EXISTS, ".gone").insn, 1);
  assert.equal(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".gone").insn, 104);
  // mode: bits 200..204 -> 4-byte load at byte 24, shifted left 64-(200+5-192)=51, right 59.
  assert.equal(find(rows, BPF_CORE_FIELD_BYTE_OFFSET, ".mode").value, 24);
  assert.equal(find(rows, BPF_CORE_FIELD_LSHIFT_U64, ".mode").insn, 51);
  assert.equal(find(rows, BPF_CORE_FIELD_RSHIFT_U64, ".mode").insn, 59);
  assert.equal(find(rows, BPF_CORE_TYPE_SIZE, "core_s___a").insn, 112);
  assert.equal(find(rows, BPF_CORE_ENUMVAL_VALUE, "CORE_B").insn, 7);
  assert.equal(find(rows, BPF_CORE_ENUMVAL_EXISTS, "CORE_D").insn, 1);
  assert.equal(find(rows, BPF_CORE_TYPE_EXISTS, "core_missing").insn, 1);
});

test("CO-RE against a target without the struct poisons every field access", () => {
  const b = new BtfBuilder();
  b.addInt("int", 4, BTF_INT_SIGNED);
  const { insns, outcomes } = relocate(b.toBtf());
  const offsets = outcomes.filter((o) => o.kind === BPF_CORE_FIELD_BYTE_OFFSET);
  assert.ok(offsets.length >= 7);
  for (const o of offsets) assert.equal(patched(insns, o), "poison", o.spec);
  // Existence checks resolve to 0 rather than poisoning.
  for (const o of outcomes.filter((x) => x.kind === BPF_CORE_FIELD_EXISTS || x.kind === BPF_CORE_TYPE_EXISTS)) {
    assert.equal(patched(insns, o), 0);
  }
});

test("the input instructions are not modified (pure function)", () => {
  const obj = BpfObject.open(fixture("core_local"));
  const prog = obj.findProgram("core_prog");
  assert.ok(prog && obj.btf);
  const before = JSON.stringify(prog.insns);
  bpfCoreApplyRelos(prog.insns, obj.btf, targetBtfOf(fixture("core_target")), obj.coreRelosFor(prog));
  assert.equal(JSON.stringify(prog.insns), before);
});

test("a relocation whose instruction does not hold the local value is an error", () => {
  const obj = BpfObject.open(fixture("core_local"));
  const prog = obj.findProgram("core_prog");
  assert.ok(prog && obj.btf);
  const relos = obj.coreRelosFor(prog);
  const first = relos.find((r) => r.kind === BPF_CORE_FIELD_BYTE_OFFSET);
  assert.ok(first);
  const insns = prog.insns.map((i) => ({ ...i }));
  const at = insns[first.insnOff / 8] as Insn;
  at.off += 1;
  assert.throws(
    () => bpfCoreApplyRelos(insns, obj.btf as Btf, targetBtfOf(fixture("core_target")), [first], { progName: "p" }),
    (e: unknown) =>
      e instanceof BpfError &&
      e.errno === EINVAL &&
      /prog 'p': relo #0: unexpected insn #\d+ \(LDX\/ST\/STX\) value/.test(e.message),
  );
  assert.throws(
    () => bpfCoreApplyRelos(prog.insns, obj.btf as Btf, obj.btf as Btf, [{ ...first, insnOff: 4 }]),
    /not aligned/,
  );
});

const vmlinux = "/sys/kernel/btf/vmlinux";
let hostBtf: Btf | undefined;
let noVmlinux: string | false = false;
try {
  hostBtf = Btf.parse(new Uint8Array(readFileSync(vmlinux)));
} catch {
  noVmlinux = `${vmlinux} is not readable`;
}

for (const name of ["tcp_reno", "tcp_cubic", "tcp_dctcp", "dummy_ops", "features"]) {
  test(`${name}: CO-RE against the host kernel it was compiled for changes no offset`, { skip: noVmlinux }, () => {
    const obj = BpfObject.open(objPath(name));
    assert.ok(obj.btf && hostBtf);
    let n = 0;
    for (const prog of obj.allPrograms) {
      const relos = obj.coreRelosFor(prog);
      const { insns, outcomes } = bpfCoreApplyRelos(prog.insns, obj.btf, hostBtf, relos, { progName: prog.name });
      for (const o of outcomes) {
        assert.equal(o.res.poison, false, `${prog.name}: ${o.spec}`);
        assert.equal(o.res.newVal, o.res.origVal, `${prog.name}: ${o.spec}`);
      }
      assert.deepEqual(insns, prog.insns);
      n += outcomes.length;
    }
    if (name !== "features" && name !== "dummy_ops") assert.ok(n > 5);
  });
}

test("a field offset beyond a load's 16-bit offset is libbpf's ERANGE", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  // Every other field of core_s is missing (those accesses are poisoned); `a` sits at byte 40000.
  b.addStruct("core_s", 40008, [{ name: "a", type: int, bitOffset: 40000 * 8 }]);
  assert.throws(
    () => relocate(b.toBtf()),
    (e: unknown) =>
      e instanceof BpfError &&
      e.errno === ERANGE &&
      /^prog 'core_prog': relo #\d+: insn #\d+ \(LDX\/ST\/STX\) value too big: 40000$/.test(e.message),
  );
});

test("CO-RE through a member at an unaligned bit offset truncates like libbpf's integer division, then validates", () => {
  // struct s { int a; int b at bit 319; }: a corrupted local layout (no bitfield, kind_flag 0)
  const lb = new BtfBuilder();
  const li = lb.addInt("int", 4, BTF_INT_SIGNED);
  const ls = lb.addStruct("s", 48, [
    { name: "a", type: li, bitOffset: 0 },
    { name: "b", type: li, bitOffset: 319 },
  ]);
  const spec = lb.addString("0:1");
  const local = lb.toBtf();
  const tbld = new BtfBuilder();
  const ti = tbld.addInt("int", 4, BTF_INT_SIGNED);
  tbld.addStructAuto("s", [
    { name: "a", type: ti },
    { name: "b", type: ti },
  ]);
  const target = tbld.toBtf();
  const ldx = (off: number): Insn => ({ code: 0x61, dst: 0, src: 1, off, imm: 0 });
  const relo = { insnOff: 0, typeId: ls, accessStrOff: spec, kind: BPF_CORE_FIELD_BYTE_OFFSET };
  // 319 / 8 is 39 in C: the compiled offset 39 matches and is patched to the target's 4
  const ok = bpfCoreApplyRelos([ldx(39)], local, target, [relo], { progName: "p" });
  assert.equal(ok.insns[0]?.off, 4);
  assert.equal(ok.outcomes[0]?.res.origVal, 39n);
  assert.throws(
    () => bpfCoreApplyRelos([ldx(40)], local, target, [relo], { progName: "p" }),
    (e: unknown) =>
      e instanceof BpfError &&
      e.errno === EINVAL &&
      e.message === "prog 'p': relo #0: unexpected insn #0 (LDX/ST/STX) value: got 40, exp 39 -> 4",
  );
  // BYTE_SIZE of the same member is unaffected
  const size = bpfCoreApplyRelos([{ ...ldx(0), code: 0xb7, src: 0, imm: 4 }], local, target, [
    { ...relo, kind: BPF_CORE_FIELD_BYTE_SIZE },
  ]);
  assert.equal(size.insns[0]?.imm, 4);
});
