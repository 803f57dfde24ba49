import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { BtfBuilder } from "../../src/btf/builder.js";
import type { ElfSection } from "../../src/elf/elf.js";
import { ElfFile } from "../../src/elf/elf.js";
import { BpfObject, type LibbpfPrintLevel } from "../../src/loader/object.js";
import { initStructOpsMaps } from "../../src/loader/struct_ops.js";
import { bpf_prog_type } from "../../src/uapi/bpf.js";
import { BTF_KIND_DATASEC } from "../../src/uapi/btf.js";
import { BpfError, EINVAL, ENOENT, ENOTSUP, LIBBPF_ERRNO__FORMAT, LIBBPF_ERRNO__RELOC } from "../../src/uapi/errno.js";
import { objPath, ROOT } from "../elf/helpers.js";

const fixture = (name: string) => join(ROOT, "test/fixtures/elf", `${name}.bpf.o`);

function isErr(errno: number, msg: string | RegExp) {
  return (e: unknown) =>
    e instanceof BpfError && e.errno === errno && (typeof msg === "string" ? e.message === msg : msg.test(e.message));
}

test("unknown section: open succeeds with a debug message and no program type", () => {
  const log: [LibbpfPrintLevel, string][] = [];
  const obj = BpfObject.open(fixture("bad_sec"), { print: (l, m) => log.push([l, m]) });
  const p = obj.findProgram("unknown_prog");
  assert.equal(p?.type, bpf_prog_type.BPF_PROG_TYPE_UNSPEC);
  assert.equal(p?.secDef, undefined);
  assert.ok(
    log.some(([l, m]) => l === "debug" && m === "prog 'unknown_prog': unrecognized ELF section name 'foo/bar'"),
  );
});

test("struct_ops reloc to a program that is not struct_ops", () => {
  assert.throws(
    () => BpfObject.open(fixture("bad_st_ops_prog")),
    isErr(EINVAL, "struct_ops reloc bad_ops: prog not_st_ops is not struct_ops BPF program"),
  );
});

test("struct_ops reloc into a member that is not a function pointer", () => {
  assert.throws(
    () => BpfObject.open(fixture("bad_st_ops_nonfunc")),
    isErr(EINVAL, "struct_ops reloc odd: cannot relocate non func ptr data"),
  );
});

/** Patch the object's bytes: `edit` gets the file and the ELF parsed from it. */
function patched(name: string, edit: (b: Uint8Array, elf: ElfFile, dv: DataView) => void): Uint8Array {
  const b = new Uint8Array(readFileSync(objPath(name)));
  edit(b, ElfFile.parse(b), new DataView(b.buffer));
  return b;
}

/** Offset in the file of the `.BTF` type record of DATASEC `secName`. */
function datasecRecord(b: Uint8Array, elf: ElfFile, secName: string): { rec: number; strOff: (s: string) => number } {
  const btf = elf.sectionByName(".BTF") as ElfSection;
  const dv = new DataView(b.buffer, btf.offset);
  const hdr = dv.getUint32(4, true);
  const typeOff = btf.offset + hdr + dv.getUint32(8, true);
  const typeLen = dv.getUint32(12, true);
  const strStart = btf.offset + hdr + dv.getUint32(16, true);
  const strLen = dv.getUint32(20, true);
  const strOff = (s: string) => {
    const needle = new TextEncoder().encode(`\0${s}\0`);
    for (let i = strStart; i < strStart + strLen; i++) {
      if (needle.every((c, j) => b[i + j] === c)) return i + 1 - strStart;
    }
    throw new Error(`no string ${s}`);
  };
  const want = strOff(secName);
  const fdv = new DataView(b.buffer);
  for (let p = typeOff; p < typeOff + typeLen - 8; p += 4) {
    if (fdv.getUint32(p, true) === want && fdv.getUint32(p + 4, true) >>> 24 === BTF_KIND_DATASEC) {
      return { rec: p, strOff };
    }
  }
  throw new Error(`no DATASEC ${secName}`);
}

test("struct_ops section without its DATASEC", () => {
  // Rename the DATASEC (to "license", a name with an ELF section) so `.struct_ops` has none.
  const bytes = patched("dummy_ops", (b, elf, dv) => {
    const { rec, strOff } = datasecRecord(b, elf, ".struct_ops");
    dv.setUint32(rec, strOff("license"), true);
  });
  assert.throws(() => BpfObject.open(bytes), isErr(EINVAL, "struct_ops init: DATASEC .struct_ops not found"));
});

test("DATASEC whose ELF section does not exist", () => {
  const bytes = patched("dummy_ops", (b, elf, dv) => {
    const { rec, strOff } = datasecRecord(b, elf, ".bss");
    dv.setUint32(rec, strOff("test_2_args"), true);
  });
  assert.throws(() => BpfObject.open(bytes), isErr(ENOENT, /sec 'test_2_args': failed to determine size from ELF/));
});

test("struct_ops reloc with a misaligned target offset", () => {
  const bytes = patched("dummy_ops", (_b, elf, dv) => {
    const sym = elf.symbols.find((s) => s.name === "dummy_test_2");
    const symtab = elf.section(elf.symtabIndex);
    dv.setBigUint64(symtab.offset + (sym?.index ?? 0) * 24 + 8, 4n, true);
  });
  assert.throws(
    () => BpfObject.open(bytes),
    isErr(
      LIBBPF_ERRNO__FORMAT,
      /crosses section boundary|struct_ops reloc dummy_1: invalid target program offset 4|not aligned/,
    ),
  );
});

test("struct_ops reloc beyond every map", () => {
  const bytes = patched("dummy_ops", (_b, elf, dv) => {
    const rel = elf.sectionByName(".rel.struct_ops") as ElfSection;
    dv.setBigUint64(rel.offset, 4096n, true);
  });
  assert.throws(() => BpfObject.open(bytes), isErr(EINVAL, "struct_ops reloc: cannot find map at rel->r_offset 4096"));
});

test("struct_ops reloc at an offset that starts no member", () => {
  const bytes = patched("dummy_ops", (_b, elf, dv) => {
    const rel = elf.sectionByName(".rel.struct_ops") as ElfSection;
    dv.setBigUint64(rel.offset, 4n, true);
  });
  assert.throws(() => BpfObject.open(bytes), isErr(EINVAL, "struct_ops reloc dummy_1: cannot find member at moff 4"));
});

test("struct_ops reloc against an undefined symbol", () => {
  const bytes = patched("dummy_ops", (_b, elf, dv) => {
    const sym = elf.symbols.find((s) => s.name === "dummy_test_1");
    const symtab = elf.section(elf.symtabIndex);
    dv.setUint16(symtab.offset + (sym?.index ?? 0) * 24 + 6, 0, true);
  });
  assert.throws(
    () => BpfObject.open(bytes),
    isErr(LIBBPF_ERRNO__RELOC, "struct_ops reloc dummy_1: rel->r_offset 0 shdr_idx 0 unsupported non-static function"),
  );
});

test("program relocation against a non-ld_imm64, non-call instruction", () => {
  const bytes = patched("dummy_ops", (_b, elf, dv) => {
    // test_2's one relocation is the ld_imm64 of test_2_args; point it at insn 0 (a mov).
    const rel = elf.sections.find(
      (s) => s.type === 9 && elf.section(s.info).name === "struct_ops/test_2",
    ) as ElfSection;
    dv.setBigUint64(rel.offset, 0n, true);
  });
  assert.throws(
    () => BpfObject.open(bytes),
    isErr(LIBBPF_ERRNO__RELOC, /prog 'dummy_test_2': invalid relo against 'test_2_args' for insns\[0\]\.code 0xb7/),
  );
});

test("not a BPF object: wrong machine", () => {
  const bytes = patched("dummy_ops", (_b, _elf, dv) => dv.setUint16(18, 62, true));
  assert.throws(() => BpfObject.open(bytes), isErr(LIBBPF_ERRNO__FORMAT, "elf: mem is not a valid eBPF object file"));
});

test("missing file", () => {
  assert.throws(() => BpfObject.open("/nonexistent/x.bpf.o"), isErr(ENOENT, /elf: failed to open \/nonexistent/));
});

/** A `.struct_ops` section and its BTF, built by hand, for the init_struct_ops_maps checks. */
function stOpsCase(varType: (b: BtfBuilder, int: number) => number, secSize = 8): () => unknown {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, 1);
  const v = b.addVar("ops", varType(b, int), 1);
  b.addDatasec(".struct_ops", secSize, [{ type: v, offset: 0, size: 8 }]);
  const btf = b.toBtf();
  const sec = { index: 3, name: ".struct_ops", size: secSize, data: new Uint8Array(secSize) } as ElfSection;
  return () => initStructOpsMaps(btf, sec);
}

test("struct_ops init: variable types libbpf refuses", () => {
  assert.throws(
    stOpsCase((b, int) => b.addStruct("", 8, [{ name: "a", type: int, bitOffset: 0 }])),
    isErr(ENOTSUP, "struct_ops init: anonymous type is not supported"),
  );
  assert.throws(
    stOpsCase((b, int) => b.addTypedef("myint", int)),
    isErr(EINVAL, "struct_ops init: int is not a struct"),
  );
  assert.throws(
    stOpsCase((b, int) => b.addStruct("ops_t", 16, [{ name: "a", type: int, bitOffset: 0 }])),
    isErr(EINVAL, "struct_ops init: var ops is beyond the end of DATASEC .struct_ops"),
  );
  // A typedef naming itself: btf__resolve_type fails.
  assert.throws(
    stOpsCase((b, int) => b.addTypedef("loop", int + 1)),
    isErr(EINVAL, "struct_ops init: Cannot resolve var type_id 3 in DATASEC .struct_ops"),
  );
  const ok = stOpsCase((b, int) => b.addConst(b.addStruct("ops_t", 8, [{ name: "a", type: int, bitOffset: 0 }])))();
  assert.equal((ok as { name: string }[])[0]?.name, "ops");
});

test("struct_ops reloc to a symbol where no program starts", () => {
  // Point the first function-pointer reloc at test_2_args, a .bss object.
  const bytes = patched("dummy_ops", (_b, elf, dv) => {
    const rel = elf.sectionByName(".rel.struct_ops") as ElfSection;
    const sym = elf.symbols.find((s) => s.name === "test_2_args");
    assert.ok(sym);
    dv.setUint32(rel.offset + 12, sym.index, true);
  });
  const bss = ElfFile.parse(bytes).sectionByName(".bss")?.index;
  assert.throws(
    () => BpfObject.open(bytes),
    isErr(EINVAL, `struct_ops reloc dummy_1: cannot find prog at shdr_idx ${bss} to relocate func ptr test_1`),
  );
});

test("an object without a symbol table (stripped) is libbpf's ENOENT", () => {
  const bytes = patched("dummy_ops", (_b, elf, dv) => {
    dv.setUint32(elf.header.shoff + elf.symtabIndex * 64 + 4, 1, true); // SHT_SYMTAB -> SHT_PROGBITS
  });
  assert.throws(
    () => BpfObject.open(bytes),
    isErr(ENOENT, /^elf: couldn't find symbol table in .*, stripped object file\?$/),
  );
});

test("a legacy 'maps' section is refused (libbpf v1.0+)", () => {
  const bytes = patched("features", (_b, elf, dv) => {
    const maps = elf.sectionByName(".maps") as ElfSection;
    const at = elf.header.shoff + maps.index * 64;
    dv.setUint32(at, dv.getUint32(at, true) + 1, true); // ".maps" -> "maps"
  });
  assert.throws(
    () => BpfObject.open(bytes),
    isErr(ENOTSUP, "elf: legacy map definitions in 'maps' section are not supported by libbpf v1.0+"),
  );
});
