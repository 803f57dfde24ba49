import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import fc from "fast-check";
import { Btf } from "../../src/btf/btf.js";
import { ElfFile } from "../../src/elf/elf.js";
import {
  BPF_CORE_FIELD_BYTE_OFFSET,
  BPF_CORE_FIELD_LSHIFT_U64,
  BPF_CORE_FIELD_RSHIFT_U64,
  BPF_CORE_FIELD_SIGNED,
  BtfExt,
} from "../../src/loader/btf_ext.js";
import { BpfError, EINVAL } from "../../src/uapi/errno.js";
import { BE_OBJECT, OBJECTS, readObj } from "../elf/helpers.js";

function load(bytes: Uint8Array): { btf: Btf; ext: Uint8Array } {
  const elf = ElfFile.parse(bytes);
  const btf = Btf.parse(elf.sectionByName(".BTF")?.data as Uint8Array);
  return { btf, ext: elf.sectionByName(".BTF.ext")?.data as Uint8Array };
}

for (const name of OBJECTS) {
  test(`${name}: .BTF.ext parses; every func_info names a FUNC; every record is in an existing section`, () => {
    const bytes = readObj(name);
    const elf = ElfFile.parse(bytes);
    const { btf, ext } = load(bytes);
    const e = BtfExt.parse(ext, btf);
    assert.equal(e.funcInfoRecSize, 8);
    assert.equal(e.lineInfoRecSize, 16);
    for (const s of [...e.funcInfo, ...e.lineInfo, ...e.coreRelos]) assert.ok(elf.sectionByName(s.secName), s.secName);
    for (const s of e.funcInfo) for (const r of s.records) assert.equal(btf.typeById(r.typeId).kind, 12);
  });
}

test("tcp_cubic: one func_info per program in the shared section, CO-RE bitfield relocations", () => {
  const { btf, ext } = load(readObj("tcp_cubic"));
  const e = BtfExt.parse(ext, btf);
  assert.deepEqual(
    e.funcInfo.map((s) => [s.secName, s.records.length]),
    [["struct_ops", 7]],
  );
  const relos = e.coreRelosFor("struct_ops");
  assert.ok(relos.length > 10);
  const kinds = new Set(relos.map((r) => r.kind));
  for (const k of [
    BPF_CORE_FIELD_BYTE_OFFSET,
    BPF_CORE_FIELD_SIGNED,
    BPF_CORE_FIELD_LSHIFT_U64,
    BPF_CORE_FIELD_RSHIFT_U64,
  ]) {
    assert.ok(kinds.has(k), `kind ${k}`);
  }
  // Access strings are "0:n[:m...]" in .BTF's string table; the root type is a struct.
  for (const r of relos) {
    assert.match(btf.str(r.accessStrOff), /^\d+(:\d+)*$/);
    assert.ok(r.insnOff % 8 === 0);
  }
  assert.ok(relos.some((r) => btf.nameOf(r.typeId) === "tcp_sock"));
});

test("big-endian .BTF.ext reads the same records", () => {
  const be = load(new Uint8Array(readFileSync(BE_OBJECT)));
  const le = load(readObj("dummy_ops"));
  const a = BtfExt.parse(be.ext, be.btf);
  const b = BtfExt.parse(le.ext, le.btf);
  assert.equal(a.littleEndian, false);
  assert.deepEqual(a.funcInfo, b.funcInfo);
  assert.deepEqual(
    a.lineInfo.map((s) => s.records.length),
    b.lineInfo.map((s) => s.records.length),
  );
  assert.deepEqual(a.coreRelos, b.coreRelos);
});

test("corrupt .BTF.ext headers and sections are EINVAL", () => {
  const { btf, ext } = load(readObj("dummy_ops"));
  const mut = (f: (dv: DataView) => void) => {
    const c = ext.slice();
    f(new DataView(c.buffer));
    return c;
  };
  const hdrLen = new DataView(ext.buffer, ext.byteOffset).getUint32(4, true);
  const cases: [Uint8Array, RegExp][] = [
    [ext.slice(0, 4), /header not found/],
    [mut((d) => d.setUint16(0, 0x1234, true)), /Invalid BTF.ext magic/],
    [mut((d) => d.setUint8(2, 2)), /Unsupported BTF.ext version/],
    [mut((d) => d.setUint32(4, 100000, true)), /header length 100000/],
    [mut((d) => d.setUint32(12, 1 << 20, true)), /func_info section .* beyond the end/],
    [mut((d) => d.setUint32(hdrLen + d.getUint32(8, true), 3, true)), /func_info record size 3 is invalid/],
    [mut((d) => d.setUint32(hdrLen + d.getUint32(8, true) + 4, 1 << 28, true)), /section name offset \d+ is invalid/],
    [mut((d) => d.setUint32(hdrLen + d.getUint32(8, true) + 8, 1 << 20, true)), /too many records/],
  ];
  for (const [bytes, msg] of cases) {
    assert.throws(
      () => BtfExt.parse(bytes, btf),
      (e: unknown) => e instanceof BpfError && e.errno === EINVAL && msg.test(e.message),
      String(msg),
    );
  }
});

test("fuzz: .BTF.ext mutations give a BpfError or a parse", () => {
  const { btf, ext } = load(readObj("tcp_dctcp"));
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(ext.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      fc.option(fc.nat(ext.length), { nil: undefined }),
      (flips, cut) => {
        const b = ext.slice(0, cut ?? ext.length);
        for (const [at, v] of flips) if (at < b.length) b[at] = v;
        try {
          BtfExt.parse(b, btf);
        } catch (e) {
          if (!(e instanceof BpfError)) throw e;
        }
      },
    ),
    { numRuns: 2000, seed: 11 },
  );
});
