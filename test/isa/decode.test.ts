import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { type DecodedInsn, decodeInsn, encodeInsn } from "../../src/isa/decode.js";
import { formatInsn } from "../../src/isa/disasm.js";
import type { Insn } from "../../src/isa/insn.js";

const s = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });
const ld = (dst: number, src: number, lo: number, hi: number): Insn[] => [s(0x18, dst, src, 0, lo), s(0, 0, 0, 0, hi)];

/** [class, slots, semantic form, conformance text, llvm text] */
const CASES: [string, Insn[], DecodedInsn, string, string][] = [
  [
    "alu64 K",
    [s(0x07, 1, 0, 0, 5)],
    { kind: "alu", alu64: true, op: "add", dst: 1, src: { imm: 5 } },
    "add %r1, 5",
    "r1 += 0x5",
  ],
  [
    "alu32 X",
    [s(0x0c, 1, 2)],
    { kind: "alu", alu64: false, op: "add", dst: 1, src: { reg: 2 } },
    "add32 %r1, %r2",
    "w1 += w2",
  ],
  [
    "sub",
    [s(0x1f, 3, 4)],
    { kind: "alu", alu64: true, op: "sub", dst: 3, src: { reg: 4 } },
    "sub %r3, %r4",
    "r3 -= r4",
  ],
  [
    "mul32",
    [s(0x24, 3, 0, 0, 7)],
    { kind: "alu", alu64: false, op: "mul", dst: 3, src: { imm: 7 } },
    "mul32 %r3, 7",
    "w3 *= 0x7",
  ],
  [
    "div",
    [s(0x3f, 1, 2)],
    { kind: "alu", alu64: true, op: "div", dst: 1, src: { reg: 2 } },
    "div %r1, %r2",
    "r1 /= r2",
  ],
  [
    "sdiv64 X (off 1)",
    [s(0x3f, 1, 2, 1)],
    { kind: "alu", alu64: true, op: "sdiv", dst: 1, src: { reg: 2 } },
    "sdiv %r1, %r2",
    "r1 s/= r2",
  ],
  [
    "smod32 K (off 1)",
    [s(0x94, 1, 0, 1, -3)],
    { kind: "alu", alu64: false, op: "smod", dst: 1, src: { imm: -3 } },
    "smod32 %r1, -3",
    "w1 s%= -0x3",
  ],
  [
    "mod",
    [s(0x9f, 1, 2)],
    { kind: "alu", alu64: true, op: "mod", dst: 1, src: { reg: 2 } },
    "mod %r1, %r2",
    "r1 %= r2",
  ],
  [
    "or",
    [s(0x47, 1, 0, 0, 0xff)],
    { kind: "alu", alu64: true, op: "or", dst: 1, src: { imm: 255 } },
    "or %r1, 255",
    "r1 |= 0xff",
  ],
  [
    "and32",
    [s(0x5c, 1, 2)],
    { kind: "alu", alu64: false, op: "and", dst: 1, src: { reg: 2 } },
    "and32 %r1, %r2",
    "w1 &= w2",
  ],
  [
    "lsh",
    [s(0x67, 1, 0, 0, 3)],
    { kind: "alu", alu64: true, op: "lsh", dst: 1, src: { imm: 3 } },
    "lsh %r1, 3",
    "r1 <<= 0x3",
  ],
  [
    "rsh32",
    [s(0x7c, 1, 2)],
    { kind: "alu", alu64: false, op: "rsh", dst: 1, src: { reg: 2 } },
    "rsh32 %r1, %r2",
    "w1 >>= w2",
  ],
  [
    "arsh",
    [s(0xc7, 1, 0, 0, 3)],
    { kind: "alu", alu64: true, op: "arsh", dst: 1, src: { imm: 3 } },
    "arsh %r1, 3",
    "r1 s>>= 0x3",
  ],
  [
    "xor",
    [s(0xaf, 1, 2)],
    { kind: "alu", alu64: true, op: "xor", dst: 1, src: { reg: 2 } },
    "xor %r1, %r2",
    "r1 ^= r2",
  ],
  ["neg64", [s(0x87, 1)], { kind: "alu", alu64: true, op: "neg", dst: 1, src: { imm: 0 } }, "neg %r1", "r1 = -r1"],
  ["neg32", [s(0x84, 1)], { kind: "alu", alu64: false, op: "neg", dst: 1, src: { imm: 0 } }, "neg32 %r1", "w1 = -w1"],
  [
    "mov32 K",
    [s(0xb4, 0, 0, 0, -1)],
    { kind: "alu", alu64: false, op: "mov", dst: 0, src: { imm: -1 } },
    "mov32 %r0, -1",
    "w0 = -0x1",
  ],
  [
    "mov64 X",
    [s(0xbf, 6, 1)],
    { kind: "alu", alu64: true, op: "mov", dst: 6, src: { reg: 1 } },
    "mov %r6, %r1",
    "r6 = r1",
  ],
  [
    "movsx 64 <- s8",
    [s(0xbf, 0, 1, 8)],
    { kind: "movsx", alu64: true, bits: 8, dst: 0, src: 1 },
    "movsx864 %r0, %r1",
    "r0 = (s8)r1",
  ],
  [
    "movsx 32 <- s16",
    [s(0xbc, 0, 1, 16)],
    { kind: "movsx", alu64: false, bits: 16, dst: 0, src: 1 },
    "movsx1632 %r0, %r1",
    "w0 = (s16)w1",
  ],
  [
    "movsx 64 <- s32",
    [s(0xbf, 0, 1, 32)],
    { kind: "movsx", alu64: true, bits: 32, dst: 0, src: 1 },
    "movsx3264 %r0, %r1",
    "r0 = (s32)r1",
  ],
  [
    "addr_space_cast",
    [s(0xbf, 1, 2, 1, 1)],
    { kind: "addr_space_cast", dst: 1, src: 2, dstAs: 0, srcAs: 1 },
    "addr_space_cast %r1, %r2, 0, 1",
    "r1 = addr_space_cast(r2, 0x0, 0x1)",
  ],
  ["le16", [s(0xd4, 1, 0, 0, 16)], { kind: "end", to: "le", bits: 16, dst: 1 }, "le16 %r1", "r1 = le16 r1"],
  ["be32", [s(0xdc, 1, 0, 0, 32)], { kind: "end", to: "be", bits: 32, dst: 1 }, "be32 %r1", "r1 = be32 r1"],
  ["be64", [s(0xdc, 1, 0, 0, 64)], { kind: "end", to: "be", bits: 64, dst: 1 }, "be64 %r1", "r1 = be64 r1"],
  [
    "bswap64 (ALU64 END)",
    [s(0xd7, 1, 0, 0, 64)],
    { kind: "end", to: "bswap", bits: 64, dst: 1 },
    "bswap64 %r1",
    "r1 = bswap64 r1",
  ],
  [
    "jeq K",
    [s(0x15, 1, 0, 3, 5)],
    { kind: "jmp", jmp32: false, op: "jeq", dst: 1, src: { imm: 5 }, off: 3 },
    "jeq %r1, 5, +3",
    "if r1 == 0x5 goto +0x3",
  ],
  [
    "jsgt32 X",
    [s(0x6e, 1, 2, -2)],
    { kind: "jmp", jmp32: true, op: "jsgt", dst: 1, src: { reg: 2 }, off: -2 },
    "jsgt32 %r1, %r2, -2",
    "if w1 s> w2 goto -0x2",
  ],
  [
    "jset",
    [s(0x45, 1, 0, 1, 8)],
    { kind: "jmp", jmp32: false, op: "jset", dst: 1, src: { imm: 8 }, off: 1 },
    "jset %r1, 8, +1",
    "if r1 & 0x8 goto +0x1",
  ],
  [
    "jsle32",
    [s(0xd6, 1, 0, 1, -1)],
    { kind: "jmp", jmp32: true, op: "jsle", dst: 1, src: { imm: -1 }, off: 1 },
    "jsle32 %r1, -1, +1",
    "if w1 s<= -0x1 goto +0x1",
  ],
  [
    "jlt X",
    [s(0xad, 1, 2, 0)],
    { kind: "jmp", jmp32: false, op: "jlt", dst: 1, src: { reg: 2 }, off: 0 },
    "jlt %r1, %r2, +0",
    "if r1 < r2 goto +0x0",
  ],
  ["ja", [s(0x05, 0, 0, 2)], { kind: "ja", off: 2 }, "ja +2", "goto +0x2"],
  ["gotol (JMP32 JA)", [s(0x06, 0, 0, 0, -2)], { kind: "gotol", imm: -2 }, "ja32 -2", "gotol -0x2"],
  ["may_goto", [s(0xe5, 0, 0, 2)], { kind: "may_goto", off: 2 }, "may_goto +2", "may_goto +0x2"],
  ["call helper", [s(0x85, 0, 0, 0, 1)], { kind: "call", callee: "helper", imm: 1, off: 0 }, "call 1", "call 0x1"],
  [
    "call local",
    [s(0x85, 0, 1, 0, 3)],
    { kind: "call", callee: "local", imm: 3, off: 0 },
    "call local +3",
    "call pc+0x3",
  ],
  [
    "call kfunc",
    [s(0x85, 0, 2, 2, 100)],
    { kind: "call", callee: "kfunc", imm: 100, off: 2 },
    "call runtime 100, 2",
    "call kfunc 0x64, 0x2",
  ],
  ["callx", [s(0x8d, 2)], { kind: "callx", dst: 2 }, "callx %r2", "callx r2"],
  ["exit", [s(0x95)], { kind: "exit" }, "exit", "exit"],
  [
    "ld_imm64",
    ld(1, 0, 0x5678, 0x1234),
    { kind: "ld_imm64", dst: 1, pseudo: 0, imm: 0x5678, imm2: 0x1234, value: 0x123400005678n },
    "lddw %r1, 0x123400005678",
    "r1 = 0x123400005678 ll",
  ],
  [
    "ld_imm64 -1",
    ld(1, 0, -1, -1),
    { kind: "ld_imm64", dst: 1, pseudo: 0, imm: -1, imm2: -1, value: 0xffffffffffffffffn },
    "lddw %r1, 0xffffffffffffffff",
    "r1 = -0x1 ll",
  ],
  [
    "ld_imm64 map fd",
    ld(1, 1, 3, 0),
    { kind: "ld_imm64", dst: 1, pseudo: 1, imm: 3, imm2: 0, value: 3n },
    "lddw %r1, map_fd(3)",
    "r1 = map_fd(0x3) ll",
  ],
  [
    "ld_imm64 map value",
    ld(1, 2, 3, 8),
    { kind: "ld_imm64", dst: 1, pseudo: 2, imm: 3, imm2: 8, value: 0x800000003n },
    "lddw %r1, map_value(3, 8)",
    "r1 = map_value(0x3, 0x8) ll",
  ],
  [
    "ld_imm64 btf id",
    ld(2, 3, 77, 0),
    { kind: "ld_imm64", dst: 2, pseudo: 3, imm: 77, imm2: 0, value: 77n },
    "lddw %r2, btf_id(77)",
    "r2 = btf_id(0x4d) ll",
  ],
  [
    "ld_imm64 func",
    ld(2, 4, 2, 0),
    { kind: "ld_imm64", dst: 2, pseudo: 4, imm: 2, imm2: 0, value: 2n },
    "lddw %r2, func(+2)",
    "r2 = func(pc+0x2) ll",
  ],
  [
    "ld_imm64 map idx",
    ld(2, 5, 1, 0),
    { kind: "ld_imm64", dst: 2, pseudo: 5, imm: 1, imm2: 0, value: 1n },
    "lddw %r2, map_idx(1)",
    "r2 = map_idx(0x1) ll",
  ],
  [
    "ld_imm64 map idx value",
    ld(2, 6, 1, 16),
    { kind: "ld_imm64", dst: 2, pseudo: 6, imm: 1, imm2: 16, value: 0x1000000001n },
    "lddw %r2, map_idx_value(1, 16)",
    "r2 = map_idx_value(0x1, 0x10) ll",
  ],
  [
    "ldxb",
    [s(0x71, 0, 1, 2)],
    { kind: "ldx", size: 1, signed: false, dst: 0, src: 1, off: 2 },
    "ldxb %r0, [%r1+2]",
    "w0 = *(u8 *)(r1 + 0x2)",
  ],
  [
    "ldxh",
    [s(0x69, 0, 1, -2)],
    { kind: "ldx", size: 2, signed: false, dst: 0, src: 1, off: -2 },
    "ldxh %r0, [%r1-2]",
    "w0 = *(u16 *)(r1 - 0x2)",
  ],
  [
    "ldxw",
    [s(0x61, 0, 1, 8)],
    { kind: "ldx", size: 4, signed: false, dst: 0, src: 1, off: 8 },
    "ldxw %r0, [%r1+8]",
    "w0 = *(u32 *)(r1 + 0x8)",
  ],
  [
    "ldxdw",
    [s(0x79, 0, 10, -8)],
    { kind: "ldx", size: 8, signed: false, dst: 0, src: 10, off: -8 },
    "ldxdw %r0, [%r10-8]",
    "r0 = *(u64 *)(r10 - 0x8)",
  ],
  [
    "ldxsb (MEMSX)",
    [s(0x91, 0, 1, 0)],
    { kind: "ldx", size: 1, signed: true, dst: 0, src: 1, off: 0 },
    "ldxsb %r0, [%r1+0]",
    "r0 = *(s8 *)(r1 + 0x0)",
  ],
  [
    "ldxsh (MEMSX)",
    [s(0x89, 0, 1, 0)],
    { kind: "ldx", size: 2, signed: true, dst: 0, src: 1, off: 0 },
    "ldxsh %r0, [%r1+0]",
    "r0 = *(s16 *)(r1 + 0x0)",
  ],
  [
    "ldxsw (MEMSX)",
    [s(0x81, 0, 1, 4)],
    { kind: "ldx", size: 4, signed: true, dst: 0, src: 1, off: 4 },
    "ldxsw %r0, [%r1+4]",
    "r0 = *(s32 *)(r1 + 0x4)",
  ],
  [
    "stb",
    [s(0x72, 10, 0, -1, 7)],
    { kind: "st", size: 1, dst: 10, off: -1, imm: 7 },
    "stb [%r10-1], 7",
    "*(u8 *)(r10 - 0x1) = 0x7",
  ],
  [
    "stdw",
    [s(0x7a, 10, 0, -8, -5)],
    { kind: "st", size: 8, dst: 10, off: -8, imm: -5 },
    "stdw [%r10-8], -5",
    "*(u64 *)(r10 - 0x8) = -0x5",
  ],
  [
    "stxh",
    [s(0x6b, 10, 1, -2)],
    { kind: "stx", size: 2, dst: 10, src: 1, off: -2 },
    "stxh [%r10-2], %r1",
    "*(u16 *)(r10 - 0x2) = w1",
  ],
  [
    "stxdw",
    [s(0x7b, 10, 1, -8)],
    { kind: "stx", size: 8, dst: 10, src: 1, off: -8 },
    "stxdw [%r10-8], %r1",
    "*(u64 *)(r10 - 0x8) = r1",
  ],
  [
    "atomic add W",
    [s(0xc3, 1, 2, 0, 0x00)],
    { kind: "atomic", size: 4, op: "add", fetch: false, dst: 1, src: 2, off: 0 },
    "lock add32 [%r1+0], %r2",
    "lock *(u32 *)(r1 + 0x0) += w2",
  ],
  [
    "atomic or DW",
    [s(0xdb, 1, 2, 8, 0x40)],
    { kind: "atomic", size: 8, op: "or", fetch: false, dst: 1, src: 2, off: 8 },
    "lock or [%r1+8], %r2",
    "lock *(u64 *)(r1 + 0x8) |= r2",
  ],
  [
    "atomic and W",
    [s(0xc3, 1, 2, 0, 0x50)],
    { kind: "atomic", size: 4, op: "and", fetch: false, dst: 1, src: 2, off: 0 },
    "lock and32 [%r1+0], %r2",
    "lock *(u32 *)(r1 + 0x0) &= w2",
  ],
  [
    "atomic xor DW",
    [s(0xdb, 1, 2, 0, 0xa0)],
    { kind: "atomic", size: 8, op: "xor", fetch: false, dst: 1, src: 2, off: 0 },
    "lock xor [%r1+0], %r2",
    "lock *(u64 *)(r1 + 0x0) ^= r2",
  ],
  [
    "atomic fetch add DW",
    [s(0xdb, 1, 0, 0, 0x01)],
    { kind: "atomic", size: 8, op: "add", fetch: true, dst: 1, src: 0, off: 0 },
    "lock fetch add [%r1+0], %r0",
    "r0 = atomic_fetch_add((u64 *)(r1 + 0x0), r0)",
  ],
  [
    "atomic fetch or W",
    [s(0xc3, 1, 3, -4, 0x41)],
    { kind: "atomic", size: 4, op: "or", fetch: true, dst: 1, src: 3, off: -4 },
    "lock fetch or32 [%r1-4], %r3",
    "w3 = atomic_fetch_or((u32 *)(r1 - 0x4), w3)",
  ],
  [
    "atomic fetch and DW",
    [s(0xdb, 1, 3, 0, 0x51)],
    { kind: "atomic", size: 8, op: "and", fetch: true, dst: 1, src: 3, off: 0 },
    "lock fetch and [%r1+0], %r3",
    "r3 = atomic_fetch_and((u64 *)(r1 + 0x0), r3)",
  ],
  [
    "atomic fetch xor W",
    [s(0xc3, 1, 3, 0, 0xa1)],
    { kind: "atomic", size: 4, op: "xor", fetch: true, dst: 1, src: 3, off: 0 },
    "lock fetch xor32 [%r1+0], %r3",
    "w3 = atomic_fetch_xor((u32 *)(r1 + 0x0), w3)",
  ],
  [
    "atomic xchg W",
    [s(0xc3, 1, 2, 0, 0xe1)],
    { kind: "atomic", size: 4, op: "xchg", fetch: true, dst: 1, src: 2, off: 0 },
    "lock xchg32 [%r1+0], %r2",
    "w2 = xchg32_32(r1 + 0x0, w2)",
  ],
  [
    "atomic xchg DW",
    [s(0xdb, 1, 2, 0, 0xe1)],
    { kind: "atomic", size: 8, op: "xchg", fetch: true, dst: 1, src: 2, off: 0 },
    "lock xchg [%r1+0], %r2",
    "r2 = xchg_64(r1 + 0x0, r2)",
  ],
  [
    "atomic cmpxchg DW",
    [s(0xdb, 10, 1, -8, 0xf1)],
    { kind: "atomic", size: 8, op: "cmpxchg", fetch: true, dst: 10, src: 1, off: -8 },
    "lock cmpxchg [%r10-8], %r1",
    "r0 = cmpxchg_64(r10 - 0x8, r0, r1)",
  ],
  [
    "atomic cmpxchg W",
    [s(0xc3, 10, 1, -8, 0xf1)],
    { kind: "atomic", size: 4, op: "cmpxchg", fetch: true, dst: 10, src: 1, off: -8 },
    "lock cmpxchg32 [%r10-8], %r1",
    "w0 = cmpxchg32_32(r10 - 0x8, w0, w1)",
  ],
];

for (const [name, slots, decoded, conf, llvm] of CASES) {
  test(`${name}: decode, encode, format and assemble in both syntaxes`, () => {
    assert.deepEqual(decodeInsn(slots, 0), decoded);
    assert.deepEqual(encodeInsn(decoded), slots);
    assert.equal(formatInsn(slots, 0, "conformance"), conf);
    assert.equal(formatInsn(slots, 0, "llvm"), llvm);
    assert.deepEqual(assemble(conf), slots);
    assert.deepEqual(assemble(llvm, { syntax: "llvm" }), slots);
  });
}

test("the conformance syntax's spellings the vectors use: swap16 = bswap16, call %rN = callx, mov (no suffix) = 64-bit", () => {
  assert.deepEqual(assemble("swap16 %r0"), assemble("bswap16 %r0"));
  assert.deepEqual(assemble("call %r2"), [s(0x8d, 2)]);
  assert.deepEqual(assemble("mov %r0, 1"), [s(0xb7, 0, 0, 0, 1)]);
  assert.deepEqual(assemble("mov64 %r0, 1"), [s(0xb7, 0, 0, 0, 1)]);
  assert.deepEqual(assemble("call helper 7"), [s(0x85, 0, 0, 0, 7)]);
  // u32 immediates are accepted and stored as their bit pattern.
  assert.deepEqual(assemble("mov32 %r0, 0xb1858436"), [s(0xb4, 0, 0, 0, 0xb1858436 | 0)]);
  assert.deepEqual(assemble("ldxdw %r0, [%r1]"), [s(0x79, 0, 1, 0)]);
});

test("conformance labels: jumps and local calls resolve to slot distances; `exit` names the first exit", () => {
  const insns = assemble(`
    lddw %r0, 1        # two slots
    ja32 done
    call local f
    jne %r0, 1, exit
  done:
    exit
  f: mov %r0, 2
    exit`);
  assert.equal(insns[2]!.imm, 2); // ja32 at slot 2 -> done at slot 5
  assert.equal(insns[3]!.imm, 2); // call local at 3 -> f at 6
  assert.equal(insns[4]!.off, 0); // jne at 4 -> first exit at 5
});

test("llvm syntax: llvm-objdump lines with slot numbers and <symbol> annotations assemble", () => {
  const insns = assemble(
    ["       0:\tif r1 > 0x5 goto +0x1 <LBB0_2>", "       1:\tr0 = 0x0 ll", "       3:\texit ; done"].join("\n"),
    { syntax: "llvm" },
  );
  assert.deepEqual(insns, [s(0x25, 1, 0, 1, 5), s(0x18), s(0), s(0x95)]);
  // Decimal (llvm-objdump 14) spellings are accepted too.
  assert.deepEqual(assemble("r0 = *(u64 *)(r1 + 8)\ncall 1", { syntax: "llvm" }), [
    s(0x79, 0, 1, 8),
    s(0x85, 0, 0, 0, 1),
  ]);
  // `call name` is a local call, as in LLVM's assembler.
  assert.deepEqual(assemble("call f\nexit\nf:\nexit", { syntax: "llvm" })[0], s(0x85, 0, 1, 0, 1));
});
