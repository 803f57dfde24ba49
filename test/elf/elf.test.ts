import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ElfFile } from "../../src/elf/elf.js";
import {
  EM_BPF,
  ET_REL,
  R_BPF_64_32,
  R_BPF_64_ABS64,
  SHT_NOBITS,
  SHT_REL,
  STB_GLOBAL,
  STT_FUNC,
} from "../../src/elf/elf_consts.js";
import { BE_OBJECT, OBJECTS, objPath, readObj, run, toolMissing } from "./helpers.js";

const noReadelf = toolMissing("llvm-readelf");

for (const name of OBJECTS) {
  test(`${name}: sections, symbols and relocations match llvm-readelf`, { skip: noReadelf }, () => {
    const elf = ElfFile.parse(readObj(name));
    const sections = run("llvm-readelf", ["-S", "-W", objPath(name)]);
    const rows = [...sections.matchAll(/^\s*\[\s*(\d+)\]\s+(\S*)\s+(\S+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)/gm)];
    assert.equal(elf.sections.length, rows.length);
    for (const [, idx, secName, , off, size] of rows) {
      const s = elf.section(Number(idx));
      assert.equal(s.name, secName === "NULL" ? "" : secName);
      assert.equal(s.offset, Number.parseInt(off as string, 16));
      assert.equal(s.size, Number.parseInt(size as string, 16));
    }
    const nsyms = /Symbol table '\.symtab' contains (\d+) entries/.exec(run("llvm-readelf", ["-s", objPath(name)]));
    assert.equal(elf.symbols.length, Number(nsyms?.[1]));
    const relText = run("llvm-readelf", ["-r", objPath(name)]);
    for (const [, relName, count] of relText.matchAll(
      /Relocation section '(\S+)' at offset \S+ contains (\d+) entries/g,
    )) {
      const rel = elf.sectionByName(relName as string);
      assert.ok(rel, relName);
      assert.equal(elf.relocations(rel).length, Number(count), relName);
    }
  });
}

test("header of a clang BPF object: ET_REL, EM_BPF, little-endian", () => {
  const elf = ElfFile.parse(readObj("tcp_reno"));
  assert.equal(elf.header.type, ET_REL);
  assert.equal(elf.header.machine, EM_BPF);
  assert.equal(elf.littleEndian, true);
});

test("relocation sections are found by sh_info, whatever their name", () => {
  const elf = ElfFile.parse(readObj("tcp_cubic"));
  const progSec = elf.sectionByName("struct_ops");
  assert.ok(progSec);
  const rels = elf.relSectionsFor(progSec.index);
  assert.equal(rels.length, 1);
  assert.equal(rels[0]?.name, ".relstruct_ops"); // no dot between .rel and the name
  assert.equal(rels[0]?.type, SHT_REL);
  // The kfunc calls are R_BPF_64_32 against undefined symbols.
  const kfuncCalls = elf.relocations(rels[0] as never).filter((r) => r.type === R_BPF_64_32);
  assert.ok(kfuncCalls.length >= 3);
  for (const r of kfuncCalls) assert.equal(elf.symbols[r.sym]?.shndx, 0);
  // Function pointers in .struct_ops.link are R_BPF_64_ABS64.
  const link = elf.sectionByName(".struct_ops.link");
  assert.ok(link);
  const linkRels = elf.relSectionsFor(link.index).flatMap((s) => elf.relocations(s));
  assert.equal(linkRels.length, 7);
  assert.ok(linkRels.every((r) => r.type === R_BPF_64_ABS64));
});

test("NOBITS .bss has a size but no data", () => {
  const elf = ElfFile.parse(readObj("dummy_ops"));
  const bss = elf.sectionByName(".bss");
  assert.ok(bss);
  assert.equal(bss.type, SHT_NOBITS);
  assert.equal(bss.size, 40);
  assert.equal(bss.data.length, 0);
});

test("program symbols are GLOBAL STT_FUNC with their section and size", () => {
  const elf = ElfFile.parse(readObj("tcp_cubic"));
  const sec = elf.sectionByName("struct_ops");
  const progs = elf.symbols.filter((s) => s.type === STT_FUNC && s.bind === STB_GLOBAL);
  assert.equal(progs.length, 7);
  assert.ok(progs.every((p) => p.shndx === sec?.index && p.size > 0 && p.value % 8 === 0));
});

test("a big-endian object reads the same as the little-endian one", () => {
  const be = ElfFile.parse(new Uint8Array(readFileSync(BE_OBJECT)));
  const le = ElfFile.parse(readObj("dummy_ops"));
  assert.equal(be.littleEndian, false);
  assert.equal(be.header.machine, EM_BPF);
  assert.deepEqual(
    be.sections.map((s) => [s.name, s.type]),
    le.sections.map((s) => [s.name, s.type]),
  );
  assert.deepEqual(
    be.symbols.map((s) => [s.name, s.bind, s.type, s.size]),
    le.symbols.map((s) => [s.name, s.bind, s.type, s.size]),
  );
  const rel = be.sectionByName(".rel.struct_ops");
  assert.ok(rel);
  assert.deepEqual(
    be.relocations(rel).map((r) => [r.offset, r.type, be.symbols[r.sym]?.name]),
    [
      [0, R_BPF_64_ABS64, "dummy_test_1"],
      [8, R_BPF_64_ABS64, "dummy_test_2"],
      [16, R_BPF_64_ABS64, "dummy_test_sleepable"],
    ],
  );
});
