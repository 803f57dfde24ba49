/**
 * Semantic decoding and encoding of eBPF instructions (RFC 9669, ISA v1..v4).
 *
 * `decodeInsn` turns the slot(s) at an index into a `DecodedInsn`; `encodeInsn` turns one back
 * into exactly the same slot(s). Only canonical encodings decode (reserved fields zero, as the
 * kernel's verifier demands), which is what makes decode/encode an exact round trip.
 */
import { BpfError, EINVAL } from "../uapi/errno.js";
import { type Insn, LD_IMM64_CODE } from "./insn.js";
import {
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_B,
  BPF_CALL,
  BPF_CLASS,
  BPF_CMPXCHG,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_H,
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MODE,
  BPF_MOV,
  BPF_NEG,
  BPF_OP,
  BPF_SIZE,
  BPF_SRC,
  BPF_ST,
  BPF_STX,
  BPF_TO_BE,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  MAX_BPF_REG,
} from "./opcodes.js";

export type AluOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "sdiv"
  | "or"
  | "and"
  | "lsh"
  | "rsh"
  | "neg"
  | "mod"
  | "smod"
  | "xor"
  | "mov"
  | "arsh";
export type JmpOp = "jeq" | "jgt" | "jge" | "jset" | "jne" | "jsgt" | "jsge" | "jlt" | "jle" | "jslt" | "jsle";
export type AtomicOp = "add" | "or" | "and" | "xor" | "xchg" | "cmpxchg";
/** Access size in bytes (BPF_B, BPF_H, BPF_W, BPF_DW). */
export type MemSize = 1 | 2 | 4 | 8;
/** The second operand of ALU and conditional jump instructions: a register (BPF_X) or the immediate (BPF_K). */
export type Operand = { reg: number } | { imm: number };

export type DecodedInsn =
  /** ALU (32-bit, zero-extending) or ALU64; `neg` has src {imm: 0}; sdiv/smod are off=1 encodings. */
  | { kind: "alu"; alu64: boolean; op: AluOp; dst: number; src: Operand }
  /** Sign-extending register move (ISA v4): MOV|X with off 8/16/32. */
  | { kind: "movsx"; alu64: boolean; bits: 8 | 16 | 32; dst: number; src: number }
  /** Arena pointer cast: ALU64|MOV|X with off 1 (BPF_ADDR_SPACE_CAST); imm = dst_as << 16 | src_as. */
  | { kind: "addr_space_cast"; dst: number; src: number; dstAs: number; srcAs: number }
  /** Byte swap: ALU|END to little/big endian, or ALU64|END unconditional bswap (ISA v4). */
  | { kind: "end"; to: "le" | "be" | "bswap"; bits: 16 | 32 | 64; dst: number }
  | { kind: "jmp"; jmp32: boolean; op: JmpOp; dst: number; src: Operand; off: number }
  /** JMP|JA: pc += off. */
  | { kind: "ja"; off: number }
  /** JMP|JCOND with src BPF_MAY_GOTO: a bounded-loop escape the verifier counts down; pc += off when taken. */
  | { kind: "may_goto"; off: number }
  /** JMP32|JA (ISA v4 "gotol"): pc += imm. */
  | { kind: "gotol"; imm: number }
  /** JMP|CALL|K. helper: imm = helper id; local: imm = pc-relative target; kfunc: imm = BTF id, off = fd index. */
  | { kind: "call"; callee: "helper" | "local" | "kfunc"; imm: number; off: number }
  /** JMP|CALL|X: indirect call through the register in dst. */
  | { kind: "callx"; dst: number }
  | { kind: "exit" }
  /** Two slots. `imm` and `imm2` are the raw imm fields of both slots; `value` the 64-bit constant they form. */
  | { kind: "ld_imm64"; dst: number; pseudo: number; imm: number; imm2: number; value: bigint }
  | { kind: "ldx"; size: MemSize; signed: boolean; dst: number; src: number; off: number }
  | { kind: "st"; size: MemSize; dst: number; off: number; imm: number }
  | { kind: "stx"; size: MemSize; dst: number; src: number; off: number }
  | { kind: "atomic"; size: 4 | 8; op: AtomicOp; fetch: boolean; dst: number; src: number; off: number };

export const ALU_OPS: readonly (AluOp | undefined)[] = [
  "add",
  "sub",
  "mul",
  "div",
  "or",
  "and",
  "lsh",
  "rsh",
  "neg",
  "mod",
  "xor",
  "mov",
  "arsh",
];
export const JMP_OPS: readonly (JmpOp | undefined)[] = [
  undefined,
  "jeq",
  "jgt",
  "jge",
  "jset",
  "jne",
  "jsgt",
  "jsge",
  undefined,
  undefined,
  "jlt",
  "jle",
  "jslt",
  "jsle",
];
const ATOMIC_OPS: Record<number, AtomicOp> = { 0: "add", 64: "or", 80: "and", 160: "xor" };
const ATOMIC_CODES: Record<AtomicOp, number> = { add: 0x00, or: 0x40, and: 0x50, xor: 0xa0, xchg: 0xe0, cmpxchg: 0xf0 };
const SIZE_CODE: Record<MemSize, number> = { 1: BPF_B, 2: BPF_H, 4: BPF_W, 8: BPF_DW };
const CODE_SIZE: Record<number, MemSize> = { [BPF_B]: 1, [BPF_H]: 2, [BPF_W]: 4, [BPF_DW]: 8 };
/** BPF_JCOND (jump op 0xe0) and its only condition, BPF_MAY_GOTO (include/uapi/linux/bpf.h). */
export const BPF_JCOND = 0xe0;
export const BPF_MAY_GOTO = 0;
/** BPF_ADDR_SPACE_CAST, the off of an arena pointer cast (include/uapi/linux/bpf.h). */
export const BPF_ADDR_SPACE_CAST = 1;

function fail(i: number, msg: string): never {
  throw new BpfError(EINVAL, `insn #${i}: ${msg}`, { insn: i });
}

function checkReg(i: number, r: number): number {
  if (r >= MAX_BPF_REG) fail(i, `R${r} is invalid`);
  return r;
}

/** Decode the instruction starting at slot `i` (an ld_imm64 consumes slot i+1 too). */
export function decodeInsn(slots: readonly Insn[], i: number): DecodedInsn {
  const insn = slots[i];
  if (insn === undefined) fail(i, "no such instruction");
  const { code, dst, src, off, imm } = insn;
  const cls = BPF_CLASS(code);
  switch (cls) {
    case BPF_ALU:
    case BPF_ALU64:
      return decodeAlu(i, insn);
    case BPF_JMP:
    case BPF_JMP32:
      return decodeJmp(i, insn);
    case BPF_LD: {
      const mode = BPF_MODE(code);
      if (mode === BPF_ABS || mode === BPF_IND) fail(i, "legacy packet access (LD_ABS/LD_IND) is not supported");
      if (mode !== BPF_IMM) fail(i, "invalid BPF_LD mode");
      if (BPF_SIZE(code) !== BPF_DW) fail(i, "invalid BPF_LD_IMM insn");
      if (off !== 0) fail(i, "BPF_LD_IMM64 uses reserved fields");
      const next = slots[i + 1];
      if (next === undefined || next.code !== 0 || next.dst !== 0 || next.src !== 0 || next.off !== 0) {
        fail(i, "invalid bpf_ld_imm64 insn");
      }
      if (src > 6) fail(i, "unrecognized bpf_ld_imm64 insn");
      const value = (BigInt(next.imm >>> 0) << 32n) | BigInt(imm >>> 0);
      return { kind: "ld_imm64", dst: checkReg(i, dst), pseudo: src, imm: imm | 0, imm2: next.imm | 0, value };
    }
    case BPF_LDX: {
      const mode = BPF_MODE(code);
      if ((mode !== BPF_MEM && mode !== BPF_MEMSX) || imm !== 0) fail(i, "BPF_LDX uses reserved fields");
      const size = CODE_SIZE[BPF_SIZE(code)]!;
      if (mode === BPF_MEMSX && size === 8) fail(i, "BPF_LDX uses reserved fields");
      return { kind: "ldx", size, signed: mode === BPF_MEMSX, dst: checkReg(i, dst), src: checkReg(i, src), off };
    }
    case BPF_ST: {
      if (BPF_MODE(code) !== BPF_MEM || src !== 0) fail(i, "BPF_ST uses reserved fields");
      return { kind: "st", size: CODE_SIZE[BPF_SIZE(code)]!, dst: checkReg(i, dst), off, imm };
    }
    default: {
      // BPF_STX
      const size = CODE_SIZE[BPF_SIZE(code)]!;
      if (BPF_MODE(code) === BPF_ATOMIC) {
        if (size !== 4 && size !== 8) fail(i, "invalid atomic operand size");
        let op: AtomicOp | undefined;
        let fetch = true;
        if (imm === BPF_XCHG) op = "xchg";
        else if (imm === BPF_CMPXCHG) op = "cmpxchg";
        else {
          op = ATOMIC_OPS[imm & ~BPF_FETCH];
          fetch = (imm & BPF_FETCH) !== 0;
        }
        if (op === undefined) fail(i, `BPF_ATOMIC uses invalid atomic opcode ${hex2(imm)}`);
        return { kind: "atomic", size, op, fetch, dst: checkReg(i, dst), src: checkReg(i, src), off };
      }
      if (BPF_MODE(code) !== BPF_MEM || imm !== 0) fail(i, "BPF_STX uses reserved fields");
      return { kind: "stx", size, dst: checkReg(i, dst), src: checkReg(i, src), off };
    }
  }
}

function hex2(v: number): string {
  return (v >>> 0).toString(16).padStart(2, "0");
}

function decodeAlu(i: number, insn: Insn): DecodedInsn {
  const { code, dst, src, off, imm } = insn;
  const alu64 = BPF_CLASS(code) === BPF_ALU64;
  const opc = BPF_OP(code);
  const x = BPF_SRC(code) === BPF_X;
  checkReg(i, dst);
  if (opc === BPF_END) {
    if (src !== 0 || off !== 0 || (imm !== 16 && imm !== 32 && imm !== 64) || (alu64 && x)) {
      fail(i, "BPF_END uses reserved fields");
    }
    const to = alu64 ? "bswap" : BPF_SRC(code) === BPF_TO_BE ? "be" : "le";
    return { kind: "end", to, bits: imm as 16 | 32 | 64, dst };
  }
  if (opc === BPF_NEG) {
    if (x || src !== 0 || off !== 0 || imm !== 0) fail(i, "BPF_NEG uses reserved fields");
    return { kind: "alu", alu64, op: "neg", dst, src: { imm: 0 } };
  }
  const name = ALU_OPS[opc >> 4];
  if (name === undefined) fail(i, `invalid BPF_ALU opcode ${hex2(opc)}`);
  if (opc === BPF_MOV) {
    if (x) {
      if (alu64 && off === BPF_ADDR_SPACE_CAST) {
        if (imm !== 1 && imm !== 1 << 16) {
          fail(i, "addr_space_cast insn can only convert between address space 1 and 0");
        }
        return { kind: "addr_space_cast", dst, src: checkReg(i, src), dstAs: imm >>> 16, srcAs: imm & 0xffff };
      }
      if (imm !== 0 || (off !== 0 && off !== 8 && off !== 16 && !(alu64 && off === 32))) {
        fail(i, "BPF_MOV uses reserved fields");
      }
      if (off !== 0) return { kind: "movsx", alu64, bits: off as 8 | 16 | 32, dst, src: checkReg(i, src) };
      return { kind: "alu", alu64, op: "mov", dst, src: { reg: checkReg(i, src) } };
    }
    if (src !== 0 || off !== 0) fail(i, "BPF_MOV uses reserved fields");
    return { kind: "alu", alu64, op: "mov", dst, src: { imm } };
  }
  const divmod = name === "div" || name === "mod";
  if ((x ? imm !== 0 : src !== 0) || (off !== 0 && off !== 1) || (off === 1 && !divmod)) {
    fail(i, "BPF_ALU uses reserved fields");
  }
  const op: AluOp = off === 1 ? (name === "div" ? "sdiv" : "smod") : name;
  return { kind: "alu", alu64, op, dst, src: x ? { reg: checkReg(i, src) } : { imm } };
}

function decodeJmp(i: number, insn: Insn): DecodedInsn {
  const { code, dst, src, off, imm } = insn;
  const jmp32 = BPF_CLASS(code) === BPF_JMP32;
  const opc = BPF_OP(code);
  const x = BPF_SRC(code) === BPF_X;
  if (opc === BPF_JA) {
    if (x || src !== 0 || dst !== 0 || (!jmp32 && imm !== 0) || (jmp32 && off !== 0)) {
      fail(i, "BPF_JA uses reserved fields");
    }
    return jmp32 ? { kind: "gotol", imm } : { kind: "ja", off };
  }
  if (opc === BPF_CALL) {
    if (jmp32) fail(i, "BPF_CALL uses reserved fields");
    if (x) {
      // callx: the target address is in dst; everything else is reserved.
      if (src !== 0 || off !== 0 || imm !== 0) fail(i, "BPF_CALL uses reserved fields");
      return { kind: "callx", dst: checkReg(i, dst) };
    }
    if (dst !== 0 || src > 2 || (src !== 2 && off !== 0)) fail(i, "BPF_CALL uses reserved fields");
    return { kind: "call", callee: src === 0 ? "helper" : src === 1 ? "local" : "kfunc", imm, off };
  }
  if (opc === BPF_JCOND) {
    if (jmp32 || x || src !== BPF_MAY_GOTO || dst !== 0 || imm !== 0) fail(i, "invalid may_goto imm");
    return { kind: "may_goto", off };
  }
  if (opc === BPF_EXIT) {
    // The kernel ignores off here; RFC 9669 reserves it, and we need it zero to round-trip.
    if (x || imm !== 0 || src !== 0 || dst !== 0 || jmp32 || off !== 0) fail(i, "BPF_EXIT uses reserved fields");
    return { kind: "exit" };
  }
  const op = JMP_OPS[opc >> 4];
  if (op === undefined) fail(i, `invalid BPF_JMP/JMP32 opcode ${hex2(opc)}`);
  if (x ? imm !== 0 : src !== 0) fail(i, "BPF_JMP/JMP32 uses reserved fields");
  return { kind: "jmp", jmp32, op, dst: checkReg(i, dst), src: x ? { reg: checkReg(i, src) } : { imm }, off };
}

/** Number of slots an instruction occupies. */
export function insnSlots(d: DecodedInsn): 1 | 2 {
  return d.kind === "ld_imm64" ? 2 : 1;
}

function slot(code: number, dst = 0, src = 0, off = 0, imm = 0): Insn {
  return { code, dst, src, off: (off << 16) >> 16, imm: imm | 0 };
}

function operand(s: Operand): { x: number; src: number; imm: number } {
  return "reg" in s ? { x: BPF_X, src: s.reg, imm: 0 } : { x: BPF_K, src: 0, imm: s.imm };
}

/** Encode a decoded instruction back into its slot(s). */
export function encodeInsn(d: DecodedInsn): Insn[] {
  switch (d.kind) {
    case "alu": {
      const cls = d.alu64 ? BPF_ALU64 : BPF_ALU;
      if (d.op === "neg") return [slot(cls | BPF_NEG, d.dst)];
      const base = d.op === "sdiv" ? "div" : d.op === "smod" ? "mod" : d.op;
      const o = operand(d.src);
      const signed = d.op === "sdiv" || d.op === "smod" ? 1 : 0;
      return [slot(cls | (ALU_OPS.indexOf(base) << 4) | o.x, d.dst, o.src, signed, o.imm)];
    }
    case "movsx":
      return [slot((d.alu64 ? BPF_ALU64 : BPF_ALU) | BPF_MOV | BPF_X, d.dst, d.src, d.bits)];
    case "addr_space_cast":
      return [slot(BPF_ALU64 | BPF_MOV | BPF_X, d.dst, d.src, BPF_ADDR_SPACE_CAST, (d.dstAs << 16) | d.srcAs)];
    case "end": {
      const code = d.to === "bswap" ? BPF_ALU64 | BPF_END : BPF_ALU | BPF_END | (d.to === "be" ? BPF_TO_BE : 0);
      return [slot(code, d.dst, 0, 0, d.bits)];
    }
    case "jmp": {
      const o = operand(d.src);
      const code = (d.jmp32 ? BPF_JMP32 : BPF_JMP) | (JMP_OPS.indexOf(d.op) << 4) | o.x;
      return [slot(code, d.dst, o.src, d.off, o.imm)];
    }
    case "ja":
      return [slot(BPF_JMP | BPF_JA, 0, 0, d.off)];
    case "gotol":
      return [slot(BPF_JMP32 | BPF_JA, 0, 0, 0, d.imm)];
    case "may_goto":
      return [slot(BPF_JMP | BPF_JCOND, 0, BPF_MAY_GOTO, d.off)];
    case "call":
      return [slot(BPF_JMP | BPF_CALL, 0, ["helper", "local", "kfunc"].indexOf(d.callee), d.off, d.imm)];
    case "callx":
      return [slot(BPF_JMP | BPF_CALL | BPF_X, d.dst)];
    case "exit":
      return [slot(BPF_JMP | BPF_EXIT)];
    case "ld_imm64":
      return [slot(LD_IMM64_CODE, d.dst, d.pseudo, 0, d.imm), slot(0, 0, 0, 0, d.imm2)];
    case "ldx":
      return [slot(BPF_LDX | (d.signed ? BPF_MEMSX : BPF_MEM) | SIZE_CODE[d.size], d.dst, d.src, d.off)];
    case "st":
      return [slot(BPF_ST | BPF_MEM | SIZE_CODE[d.size], d.dst, 0, d.off, d.imm)];
    case "stx":
      return [slot(BPF_STX | BPF_MEM | SIZE_CODE[d.size], d.dst, d.src, d.off)];
    case "atomic": {
      const imm = ATOMIC_CODES[d.op] | (d.fetch || d.op === "xchg" || d.op === "cmpxchg" ? BPF_FETCH : 0);
      return [slot(BPF_STX | BPF_ATOMIC | SIZE_CODE[d.size], d.dst, d.src, d.off, imm)];
    }
  }
}

/** A ld_imm64 of a plain 64-bit constant. */
export function ldImm64Decoded(dst: number, value: bigint, pseudo = 0): DecodedInsn {
  const v = BigInt.asUintN(64, value);
  const imm = Number(BigInt.asIntN(32, v));
  const imm2 = Number(BigInt.asIntN(32, v >> 32n));
  return { kind: "ld_imm64", dst, pseudo, imm, imm2, value: v };
}

/** Decode a whole program: one entry per instruction, with the slot index it starts at. */
export function decodeProgram(slots: readonly Insn[]): { idx: number; insn: DecodedInsn }[] {
  const out: { idx: number; insn: DecodedInsn }[] = [];
  for (let i = 0; i < slots.length; ) {
    const d = decodeInsn(slots, i);
    out.push({ idx: i, insn: d });
    i += insnSlots(d);
  }
  return out;
}
