/** fast-check generators of valid semantic instructions (canonical encodings only). */
import fc from "fast-check";
import type { AluOp, AtomicOp, DecodedInsn, JmpOp, MemSize } from "../../src/isa/decode.js";

const reg = fc.integer({ min: 0, max: 10 });
const imm = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const off = fc.integer({ min: -0x8000, max: 0x7fff });
const size = fc.constantFrom<MemSize>(1, 2, 4, 8);
// Jump distances: mostly short, so that targets land inside the generated program.
const near = fc.integer({ min: -4, max: 6 });
const dist = fc.oneof(near, off);
const distImm = fc.oneof(near, imm);
const operand = fc.oneof(
  reg.map((r) => ({ reg: r })),
  imm.map((i) => ({ imm: i })),
);
const aluOp = fc.constantFrom<AluOp>(
  "add",
  "sub",
  "mul",
  "div",
  "sdiv",
  "or",
  "and",
  "lsh",
  "rsh",
  "mod",
  "smod",
  "xor",
  "mov",
  "arsh",
);
const jmpOp = fc.constantFrom<JmpOp>("jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "jlt", "jle", "jslt", "jsle");

export const arbInsn: fc.Arbitrary<DecodedInsn> = fc.oneof(
  fc.record({ kind: fc.constant("alu" as const), alu64: fc.boolean(), op: aluOp, dst: reg, src: operand }),
  fc.record({
    kind: fc.constant("alu" as const),
    alu64: fc.boolean(),
    op: fc.constant("neg" as const),
    dst: reg,
    src: fc.constant({ imm: 0 }),
  }),
  fc
    .record({ alu64: fc.boolean(), bits: fc.constantFrom<8 | 16 | 32>(8, 16, 32), dst: reg, src: reg })
    .filter((r) => r.alu64 || r.bits !== 32)
    .map((r) => ({ kind: "movsx" as const, ...r })),
  fc.record({
    kind: fc.constant("addr_space_cast" as const),
    dst: reg,
    src: reg,
    dstAs: fc.constant(0),
    srcAs: fc.constant(1),
  }),
  fc.record({
    kind: fc.constant("addr_space_cast" as const),
    dst: reg,
    src: reg,
    dstAs: fc.constant(1),
    srcAs: fc.constant(0),
  }),
  fc.record({
    kind: fc.constant("end" as const),
    to: fc.constantFrom<"le" | "be" | "bswap">("le", "be", "bswap"),
    bits: fc.constantFrom<16 | 32 | 64>(16, 32, 64),
    dst: reg,
  }),
  fc.record({ kind: fc.constant("jmp" as const), jmp32: fc.boolean(), op: jmpOp, dst: reg, src: operand, off: dist }),
  fc.record({ kind: fc.constant("ja" as const), off: dist }),
  fc.record({ kind: fc.constant("may_goto" as const), off: dist }),
  fc.record({ kind: fc.constant("gotol" as const), imm: distImm }),
  fc.record({
    kind: fc.constant("call" as const),
    callee: fc.constantFrom<"helper" | "local">("helper", "local"),
    imm: distImm,
    off: fc.constant(0),
  }),
  fc.record({ kind: fc.constant("call" as const), callee: fc.constant("kfunc" as const), imm, off }),
  fc.record({ kind: fc.constant("callx" as const), dst: reg }),
  fc.constant({ kind: "exit" as const }),
  fc.record({ dst: reg, pseudo: fc.integer({ min: 0, max: 6 }), imm: distImm, imm2: imm }).map((r) => ({
    kind: "ld_imm64" as const,
    ...r,
    value: (BigInt(r.imm2 >>> 0) << 32n) | BigInt(r.imm >>> 0),
  })),
  fc
    .record({ size, signed: fc.boolean(), dst: reg, src: reg, off })
    .filter((r) => !(r.signed && r.size === 8))
    .map((r) => ({ kind: "ldx" as const, ...r })),
  fc.record({ kind: fc.constant("st" as const), size, dst: reg, off, imm }),
  fc.record({ kind: fc.constant("stx" as const), size, dst: reg, src: reg, off }),
  fc
    .record({
      size: fc.constantFrom<4 | 8>(4, 8),
      op: fc.constantFrom<AtomicOp>("add", "or", "and", "xor", "xchg", "cmpxchg"),
      fetch: fc.boolean(),
      dst: reg,
      src: reg,
      off,
    })
    .map((r) => ({ kind: "atomic" as const, ...r, fetch: r.fetch || r.op === "xchg" || r.op === "cmpxchg" })),
);
