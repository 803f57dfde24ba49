import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import { BtfDump, btfDumpC, btfTypeDeclString } from "../../src/btf/dump_c.js";
import {
  BTF_INT_SIGNED,
  BTF_KIND_ARRAY,
  BTF_KIND_CONST,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPEDEF,
  BTF_KIND_UNION,
  BTF_KIND_VOLATILE,
} from "../../src/uapi/btf.js";
import { BpfError } from "../../src/uapi/errno.js";
import { allKindsBuilder, noClang, noVmlinux, vmlinuxBytes } from "./helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "btf-c-"));

/** Compile `header` included from a tiny BPF C file that uses `uses`. */
function compile(header: string, uses: string): void {
  writeFileSync(join(tmp, "vmlinux.h"), header);
  writeFileSync(join(tmp, "prog.c"), `#include "vmlinux.h"\n${uses}\n`);
  execFileSync("clang", ["-g", "-O2", "-target", "bpf", "-c", join(tmp, "prog.c"), "-o", join(tmp, "prog.o")], {
    stdio: "pipe",
  });
}

const TAG_KINDS = new Set([BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_ENUM, BTF_KIND_ENUM64]);

/** Whether a type embeds (not through a pointer) the compiler's __builtin_va_list. */
function hasVaList(btf: Btf, id: number, depth = 0): boolean {
  const t = btf.typeById(id);
  if (depth > 64) return false;
  if (t.name === "__builtin_va_list") return true;
  switch (t.kind) {
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
      return t.members.some((m) => hasVaList(btf, m.type, depth + 1));
    case BTF_KIND_ARRAY:
      return hasVaList(btf, t.type, depth + 1);
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_CONST:
    case BTF_KIND_VOLATILE:
      return hasVaList(btf, t.type, depth + 1);
    default:
      return false;
  }
}

/**
 * _Static_asserts that clang lays out every named struct (up to `limit`) exactly as BTF says:
 * sizeof and the offset of each named, non-bitfield member.
 */
function layoutAsserts(btf: Btf, limit = Number.POSITIVE_INFINITY): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  let n = 0;
  for (let id = 1; id <= btf.nrTypes && n < limit; id++) {
    const t = btf.typeById(id);
    if (t.kind !== BTF_KIND_STRUCT || t.name === "" || seen.has(t.name)) continue;
    // Tags seen twice (struct, union and enum share a namespace) get ___N suffixes; skip them.
    if (btf.findAllByName(t.name).filter((x) => TAG_KINDS.has(btf.kindOf(x))).length > 1) continue;
    // __builtin_va_list is the compiler's own type: its size differs between x86 and BPF.
    if (hasVaList(btf, id)) continue;
    seen.add(t.name);
    n++;
    lines.push(`_Static_assert(sizeof(struct ${t.name}) == ${t.size}, "sizeof ${t.name}");`);
    for (const m of t.members)
      if (m.name && !m.bitfieldSize)
        lines.push(
          `_Static_assert(__builtin_offsetof(struct ${t.name}, ${m.name}) == ${m.bitOffset / 8}, "${t.name}.${m.name}");`,
        );
  }
  return lines.join("\n");
}

test("format c of the host vmlinux compiles with clang -target bpf", { skip: noVmlinux || noClang }, () => {
  const btf = Btf.parse(vmlinuxBytes());
  const h = btfDumpC(btf);
  assert.match(h, /^#ifndef __VMLINUX_H__\n/);
  assert.match(h, /#pragma clang attribute push \(__attribute__\(\(preserve_access_index\)\), apply_to = record\)/);
  assert.match(h, /^struct tcp_congestion_ops \{$/m);
  compile(
    h,
    "int f(struct tcp_congestion_ops *o, struct sk_buff *s) { return sizeof(*o) + sizeof(*s) + o->flags; }\n" +
      layoutAsserts(btf),
  );
});

test("format c: a builder blob with bitfields, anonymous unions, func pointers compiles", { skip: noClang }, () => {
  const { b } = allKindsBuilder();
  const h = btfDumpC(b.toBtf());
  assert.match(h, /\tu32 \(\*ssthresh\)\(struct sock \*sk, u32 ack\);/);
  assert.match(h, /\tunsigned int a: 3;\n\tunsigned int b: 5;/);
  assert.match(h, /\tunion \{\n\t\tlong long unsigned int a;\n\t\tstruct \{\n\t\t\tint x;\n\t\t\} s;\n\t\};/);
  assert.match(h, /\tchar name\[16\];/);
  compile(h, `${layoutAsserts(b.toBtf())}\nint f(struct flags *x) { return x->d + x->a; }`);
});

test("format c: ordering, forward declarations and self references", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  // struct a { struct b *pb; }; struct b { struct a a; struct b *next; };
  const pa = b.nextId + 2;
  const sa = b.addStruct("a", 8, [{ name: "pb", type: b.nextId + 2, bitOffset: 0 }]);
  const sb = b.addStruct("b", 16, [
    { name: "a", type: sa, bitOffset: 0 },
    { name: "next", type: b.nextId + 1, bitOffset: 64 },
  ]);
  assert.equal(b.addPtr(sb), pa);
  b.addTypedef("b_t", sb);
  b.addEnum("", 4, [{ name: "CONST_A", val: 1 }]);
  const char = b.addInt("char", 1, 0);
  b.addStruct("pk", 5, [
    { name: "c", type: char, bitOffset: 0 },
    { name: "x", type: int, bitOffset: 8 },
  ]);
  const h = btfDumpC(b.toBtf(), { header: false });
  assert.equal(
    h,
    "struct b;\n\n" +
      "struct a {\n\tstruct b *pb;\n};\n\n" +
      "struct b {\n\tstruct a a;\n\tstruct b *next;\n};\n\n" +
      "typedef struct b b_t;\n\n" +
      "enum {\n\tCONST_A = 1,\n};\n\n" +
      "struct pk {\n\tchar c;\n\tint x;\n} __attribute__((packed));\n\n",
  );
});

test("format c: duplicate names get ___N suffixes", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  b.addStruct("dup", 4, [{ name: "x", type: int, bitOffset: 0 }]);
  b.addStruct("dup", 8, [{ name: "y", type: int, bitOffset: 32 }]);
  const h = btfDumpC(b.toBtf(), { header: false });
  assert.match(h, /^struct dup \{$/m);
  assert.match(h, /^struct dup___2 \{\n\tint: 32;\n\tint y;\n\};$/m);
});

test("format c: declarators for arrays of pointers and pointers to arrays", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const pint = b.addPtr(int);
  const arrOfPtr = b.addArray(pint, int, 4);
  const arr = b.addArray(int, int, 3);
  const ptrToArr = b.addPtr(arr);
  const cint = b.addConst(int);
  const pcint = b.addPtr(cint);
  const proto = b.addFuncProto(0, []);
  const decl = (id: number, name: string) => btfTypeDeclString(b.toBtf(), id, name);
  assert.equal(decl(arrOfPtr, "a"), "int *a[4]");
  assert.equal(decl(ptrToArr, "p"), "int (*p)[3]");
  assert.equal(decl(pcint, "c"), "const int *c");
  assert.equal(decl(b.addPtr(proto), "fn"), "void (*fn)(void)");
  const sig = b.addFuncProto(int, [
    { name: "p", type: pint },
    { name: "", type: 0 },
  ]);
  assert.equal(decl(b.addPtr(sig), ""), "int (*)(int *p, ...)");
  const d = new BtfDump(b.toBtf());
  d.emitTypeDecl(arr, "", 0);
  assert.equal(d.toString(), "int[3]");
});

test("format c: a pathologically deep graph is a BpfError, not a stack overflow", () => {
  const b = new BtfBuilder();
  const n = 40000;
  // struct { struct { ... } *p; } nested through pointers to anonymous records.
  const first = b.nextId;
  for (let i = 0; i < n; i++) {
    b.addStruct("", 8, [{ name: "p", type: b.nextId + 1, bitOffset: 0 }]);
    b.addPtr(b.nextId + 1);
  }
  b.addStruct("", 8, [{ name: "end", type: b.nextId + 1, bitOffset: 0 }]);
  b.addInt("long", 8, BTF_INT_SIGNED);
  b.addTypedef("deep_t", first);
  assert.throws(
    () => btfDumpC(b.toBtf()),
    (e: unknown) => e instanceof BpfError && /too deep/.test(e.message),
  );
});

test("format c: a loop through prototypes, pointers and typedefs alone is an unsatisfiable cycle (ELOOP)", () => {
  // No C spelling exists for a prototype taking itself or a typedef of a pointer to itself; a
  // loop through a named record (typedef struct s { struct s_t *next; } s_t) stays fine.
  const loops: [string, (b: BtfBuilder) => void][] = [
    ["prototype taking itself", (b) => b.addFuncProto(b.nextId, [{ name: "x", type: b.nextId }])],
    [
      "typedef of a pointer to itself",
      (b) => {
        b.addTypedef("t", b.nextId + 1);
        b.addPtr(b.nextId - 1);
      },
    ],
    [
      "const array of itself",
      (b) => {
        const int = b.addInt("int", 4, BTF_INT_SIGNED);
        b.addConst(b.nextId + 1);
        b.addArray(b.nextId - 1, int, 2);
      },
    ],
  ];
  for (const [what, build] of loops) {
    const b = new BtfBuilder();
    build(b);
    // ELOOP, not the E2BIG "too deep" an exhausted stack gives.
    assert.throws(
      () => btfDumpC(b.toBtf()),
      (e: unknown) => e instanceof BpfError && e.errno === 40 && /unsatisfiable type cycle/.test(e.message),
      what,
    );
  }
  const b = new BtfBuilder();
  const s = b.addStruct("s", 8, [{ name: "next", type: b.nextId + 2, bitOffset: 0 }]);
  b.addTypedef("s_t", s);
  b.addPtr(s + 1);
  assert.match(btfDumpC(b.toBtf(), { header: false }), /typedef struct s s_t;/);
});
