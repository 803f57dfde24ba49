import assert from "node:assert/strict";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import { btfDumpRaw } from "../../src/btf/dump_raw.js";
import {
  BTF_KIND_DATASEC,
  BTF_KIND_ENUM64,
  BTF_KIND_NAMES,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPEDEF,
  NR_BTF_KINDS,
} from "../../src/uapi/btf.js";
import { BpfError, EINVAL } from "../../src/uapi/errno.js";
import { allKindsBuilder, allTypes, noVmlinux, vmlinuxBytes } from "./helpers.js";

test("host vmlinux BTF re-encodes byte-identically", { skip: noVmlinux }, () => {
  const data = vmlinuxBytes();
  const btf = Btf.parse(data);
  assert.ok(btf.nrTypes > 1000);
  const out = btf.encode();
  assert.equal(out.length, data.length);
  assert.ok(Buffer.from(out).equals(Buffer.from(data)), "re-encoded bytes differ");
});

test("host vmlinux: lookups by name and kind", { skip: noVmlinux }, () => {
  const btf = Btf.parse(vmlinuxBytes());
  const id = btf.findByNameKind("tcp_congestion_ops", BTF_KIND_STRUCT);
  assert.ok(id > 0);
  assert.equal(btf.typeById(id).name, "tcp_congestion_ops");
  assert.equal(btf.findByName("no_such_type_hopefully"), -1);
  assert.equal(btf.findByNameKind("u32", BTF_KIND_TYPEDEF) > 0, true);
  assert.equal(btf.findByNameKind("u32", BTF_KIND_STRUCT), -1);
});

test("builder BTF reads back equal, with every kind", () => {
  const { b, ids } = allKindsBuilder();
  const btf = b.toBtf();
  assert.equal(btf.nrTypes, b.nrTypes);
  const kinds = new Set<number>();
  for (let id = 1; id <= btf.nrTypes; id++) {
    assert.deepEqual(btf.typeById(id), b.typeById(id), `type ${id}`);
    kinds.add(btf.typeById(id).kind);
  }
  for (let k = 1; k < NR_BTF_KINDS; k++) assert.ok(kinds.has(k), `kind ${BTF_KIND_NAMES[k]} covered`);
  const e = btf.typeById(ids.big);
  assert.equal(e.kind, BTF_KIND_ENUM64);
  if (e.kind === BTF_KIND_ENUM64) assert.equal(e.values[1].val, 0xffffffff00000000n);
  // encode() of the parsed object reproduces the builder's bytes.
  assert.deepEqual(btf.encode(), b.build());
});

test("builder dedups strings", () => {
  const b = new BtfBuilder();
  const a = b.addString("x");
  assert.equal(b.addString("x"), a);
  assert.equal(b.addString(""), 0);
  const i1 = b.addInt("int", 4, 1);
  const t1 = b.addTypedef("int_t", i1);
  b.addTypedef("int_t", t1);
  const raw = b.build();
  const strLen = new DataView(raw.buffer).getUint32(20, true);
  assert.equal(strLen, "\0x\0int\0int_t\0".length);
});

test("builder strings: UTF-8 names, a NUL refused, a section past its first buffer", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, 1);
  const utf = b.addTypedef("größe_t", int);
  assert.throws(
    () => b.addTypedef("a\0b", int),
    (e: unknown) => e instanceof BpfError && e.errno === EINVAL && e.message === 'BTF string "a\\u0000b" contains NUL',
  );
  const long = "n".repeat(5000);
  const ids = Array.from({ length: 40 }, (_, i) => b.addTypedef(`${long}${i}`, int));
  const raw = b.build();
  const strLen = new DataView(raw.buffer).getUint32(20, true);
  // "", "int", "größe_t" (9 bytes in UTF-8), then names 0-9 and 10-39, each with its NUL.
  assert.equal(strLen, 1 + 4 + 10 + 10 * 5002 + 30 * 5003);
  const btf = Btf.parse(raw);
  assert.equal(btf.nameOf(utf), "größe_t");
  for (const [i, id] of ids.entries()) assert.equal(btf.nameOf(id), `${long}${i}`);
});

test("big-endian BTF: build little, byte-swap, read back equal", () => {
  const { b } = allKindsBuilder();
  const little = b.toBtf();
  const bigBytes = little.encode({ byteOrder: "big" });
  assert.equal(bigBytes[0], 0xeb);
  assert.equal(bigBytes[1], 0x9f);
  const big = Btf.parse(bigBytes);
  assert.equal(big.littleEndian, false);
  assert.deepEqual(allTypes(big), allTypes(little));
  big.validate();
  assert.equal(btfDumpRaw(big), btfDumpRaw(little));
  // and back to little reproduces the original bytes
  assert.deepEqual(big.encode({ byteOrder: "little" }), b.build());
});

test("split BTF: ids and string offsets continue after the base", () => {
  const { b, ids } = allKindsBuilder();
  const base = b.toBtf();
  const sb = new BtfBuilder({ base });
  const intId = base.findByName("int");
  const s = sb.addStructAuto("module_ops", [
    { name: "x", type: intId },
    { name: "name", type: base.findByName("u32") },
  ]);
  assert.equal(s, base.nrTypes + 1);
  const p = sb.addPtr(s);
  const fn = sb.addFunc("module_fn", ids.proto, 2);
  const split = Btf.parse(sb.build(), { base });
  assert.equal(split.startId, base.nrTypes + 1);
  assert.equal(split.nrTypes, base.nrTypes + 3);
  assert.equal(split.typeById(s).name, "module_ops");
  assert.equal(split.typeById(p).kind, 2);
  assert.equal(split.typeById(intId).name, "int", "base ids resolve through the split");
  assert.equal(split.findByNameKind("module_ops", BTF_KIND_STRUCT), s);
  assert.equal(split.findByName("int"), intId);
  assert.equal(split.findByNameKindOwn("int", 1), -1, "own lookups skip the base");
  assert.equal(split.findByNameKindOwn("module_ops", BTF_KIND_STRUCT), s);
  assert.equal(split.typeById(fn).name, "module_fn");
  assert.ok(split.typeById(s).nameOff >= base.stringsLen, "own strings after the base's");
  assert.deepEqual(split.encode(), sb.build());
  assert.throws(() => Btf.parse(sb.build()), { errno: 22 }, "a split blob needs its base");
  assert.equal(split.findByNameKind(".struct_ops", BTF_KIND_DATASEC) > 0, true);
});

test("builder: records declared first, members added later (mutual references)", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, 1);
  const a = b.addStruct("a", 16, []);
  const bb = b.addStruct("b", 8, []);
  const pa = b.addPtr(a);
  b.addField(a, "b", bb, 0);
  b.addField(a, "flag", int, 64, 1);
  b.addField(bb, "back", pa, 0);
  const btf = b.toBtf();
  const ta = btf.typeById(a);
  assert.equal(ta.kindFlag, true, "a bitfield member switches to kind_flag");
  assert.equal(ta.vlen, 2);
  if (ta.kind === BTF_KIND_STRUCT)
    assert.deepEqual(ta.members[1], {
      name: "flag",
      nameOff: ta.members[1].nameOff,
      type: int,
      bitOffset: 64,
      bitfieldSize: 1,
    });
  btf.validate();
  b.setMembers(bb, [{ name: "x", type: int, bitOffset: 0 }]);
  assert.equal(b.toBtf().typeById(bb).vlen, 1);
  assert.throws(() => b.addField(int, "x", int, 0), /not a struct or union/);
});

test("typeById: void is id 0, a bad id is EINVAL, tryTypeById gives undefined", () => {
  const btf = allKindsBuilder().b.toBtf();
  assert.equal(btf.typeById(0).kind, 0);
  assert.throws(() => btf.typeById(btf.nrTypes + 1), { errno: 22 });
  assert.throws(() => btf.typeById(-1), { errno: 22 });
  assert.equal(btf.tryTypeById(btf.nrTypes + 1), undefined);
  assert.equal(btf.tryTypeById(1)?.name, "int");
  assert.throws(() => btf.str(1 << 20), { errno: 22 });
});

test("encode() carries fixups made to decoded types (DATASEC size and offsets, as libbpf does)", () => {
  const { b, ids } = allKindsBuilder();
  const btf = b.toBtf();
  const ds = btf.typeById(ids.sec);
  assert.equal(ds.kind, BTF_KIND_DATASEC);
  if (ds.kind !== BTF_KIND_DATASEC) return;
  ds.size = 256;
  ds.vars[0].offset = 64;
  const again = Btf.parse(btf.encode());
  const ds2 = again.typeById(ids.sec);
  assert.ok(ds2.kind === BTF_KIND_DATASEC && ds2.size === 256 && ds2.vars[0].offset === 64);
});
