import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { ElfFile } from "../../src/elf/elf.js";
import { BpfError, LIBBPF_ERRNO__FORMAT } from "../../src/uapi/errno.js";
import { readObj } from "./helpers.js";

const good = readObj("dummy_ops");
const parsed = ElfFile.parse(good);

function mutate(edit: (dv: DataView, b: Uint8Array) => void, bytes = good): Uint8Array {
  const b = bytes.slice();
  edit(new DataView(b.buffer), b);
  return b;
}

/** Offset of section header `i`. */
const sh = (i: number) => parsed.header.shoff + i * 64;
const symtab = parsed.section(parsed.symtabIndex);
const relIdx = parsed.sectionByName(".rel.struct_ops")?.index ?? -1;

const cases: [string, Uint8Array, RegExp][] = [
  ["empty file", new Uint8Array(0), /not a proper ELF object/],
  ["bad magic", mutate((_, b) => void (b[1] = 0x46)), /not a proper ELF object/],
  ["32-bit class", mutate((_, b) => void (b[4] = 1)), /not a 64-bit ELF object/],
  ["unknown data encoding", mutate((_, b) => void (b[5] = 3)), /unknown ELF data encoding 3/],
  ["truncated header", good.slice(0, 40), /failed to get ELF header/],
  ["section headers past the end", mutate((dv) => dv.setBigUint64(40, 1n << 40n, true)), /past the end/],
  ["truncated section headers", good.slice(0, good.length - 10), /run past the end/],
  ["bad e_shentsize", mutate((dv) => dv.setUint16(58, 40, true)), /invalid e_shentsize 40/],
  [
    "huge e_shnum via extended numbering",
    mutate((dv) => {
      dv.setUint16(60, 0, true);
      dv.setBigUint64(sh(0) + 32, 0xffffffffffffn, true);
    }),
    /run past the end/,
  ],
  ["e_shstrndx out of range", mutate((dv) => dv.setUint16(62, 999, true)), /e_shstrndx 999/],
  ["e_shstrndx not a string table", mutate((dv) => dv.setUint16(62, symtab.index, true)), /not a string table/],
  [
    "section data past the end",
    mutate((dv) => dv.setBigUint64(sh(symtab.index) + 24, BigInt(good.length), true)),
    /section\(\d+\) data/,
  ],
  ["section size 2^63", mutate((dv) => dv.setBigUint64(sh(symtab.index) + 32, 1n << 63n, true)), /out of range/],
  [
    "section name offset past the strtab",
    mutate((dv) => dv.setUint32(sh(1), 0xfffffff, true)),
    /string offset \d+ is past the end/,
  ],
  [
    "symtab entsize mismatch",
    mutate((dv) => dv.setBigUint64(sh(symtab.index) + 56, 16n, true)),
    /invalid sh_entsize 16/,
  ],
  [
    "symtab size not a multiple of 24",
    mutate((dv) => dv.setBigUint64(sh(symtab.index) + 32, BigInt(symtab.size - 1), true)),
    /not a multiple of 24/,
  ],
  [
    "symtab's strtab link invalid",
    mutate((dv) => dv.setUint32(sh(symtab.index) + 40, 500, true)),
    /string table section\(500\) is invalid/,
  ],
  [
    "symbol name offset past strtab",
    mutate((dv) => dv.setUint32(symtab.offset + 24, 0x7fffffff, true)),
    /symbol #1 name/,
  ],
  [
    "symbol section index invalid",
    mutate((dv) => dv.setUint16(symtab.offset + 24 + 6, 0x1234, true)),
    /invalid section index 4660/,
  ],
];

for (const [what, bytes, msg] of cases) {
  test(`corrupt ELF: ${what} -> LIBBPF_ERRNO__FORMAT`, () => {
    assert.throws(
      () => ElfFile.parse(bytes),
      (e: unknown) => e instanceof BpfError && e.errno === LIBBPF_ERRNO__FORMAT && msg.test(e.message),
    );
  });
}

test("corrupt relocation sections: bad entsize, bad symbol index", () => {
  const relHdr = sh(relIdx);
  const badEnt = ElfFile.parse(mutate((dv) => dv.setBigUint64(relHdr + 56, 24n, true)));
  assert.throws(() => badEnt.relocations(badEnt.section(relIdx)), /invalid sh_entsize 24/);
  const relOff = parsed.section(relIdx).offset;
  const badSym = ElfFile.parse(mutate((dv) => dv.setUint32(relOff + 12, 100000, true)));
  assert.throws(() => badSym.relocations(badSym.section(relIdx)), /invalid symbol index 100000/);
});

test("fuzz: random byte flips and truncations give a BpfError or a parse, never anything else", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      fc.option(fc.nat(good.length), { nil: undefined }),
      (flips, cut) => {
        const b = good.slice(0, cut ?? good.length);
        for (const [at, v] of flips) if (at < b.length) b[at] = v;
        try {
          const elf = ElfFile.parse(b);
          for (const s of elf.sections) if (s.type === 9) elf.relocations(s);
        } catch (e) {
          if (!(e instanceof BpfError)) throw e;
        }
      },
    ),
    { numRuns: 3000, seed: 4242 },
  );
});

test("fuzz: mutations aimed at header and table fields", () => {
  // Offsets of every field that steers the parser: ELF header, section headers, symtab.
  const hot: number[] = [];
  for (let i = 0; i < 64; i++) hot.push(i);
  for (let s = 0; s < parsed.sections.length; s++) for (let f = 0; f < 64; f++) hot.push(sh(s) + f);
  for (let f = 0; f < Math.min(symtab.size, 24 * 8); f++) hot.push(symtab.offset + f);
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(...hot), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      (flips) => {
        const b = good.slice();
        for (const [at, v] of flips) b[at] = v;
        try {
          const elf = ElfFile.parse(b);
          for (const s of elf.sections) if (s.type === 9) elf.relocations(s);
        } catch (e) {
          if (!(e instanceof BpfError)) throw e;
        }
      },
    ),
    { numRuns: 5000, seed: 7 },
  );
});
