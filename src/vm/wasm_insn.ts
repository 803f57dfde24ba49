import {
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_B,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_FETCH,
  BPF_H,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JMP,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_LDX,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  bpfSizeBytes,
} from "../isa/opcodes.js";
import { BPF_LOAD_ACQ, BPF_STORE_REL } from "./codegen.js";
import type { VmProgram } from "./program.js";
import { type Code, I32, I64, Op } from "./wasm_encode.js";

/**
 * Wasm code for one non-call instruction (ALU, ALU64, loads, stores, atomics) or, for a
 * conditional jump, the i32 condition under which it is taken. The semantics are the same as
 * codegen.ts's templates, on whole i64 registers: 32-bit results are zero-extended, division
 * by zero gives 0 and modulo by zero keeps dst, INT_MIN / -1 wraps (Wasm would trap).
 */

/**
 * An instruction this tier has no translation for (an encoding the other tiers accept that it
 * does not know yet): the Vm runs the program in the JavaScript tier instead.
 */
export class WasmUnsupported extends Error {}

/** Local indices of a compiled BPF function: r0..r9 are parameters 0..9, then fp. */
export const L = { fp: 10, r10: 11, n: 12, B: 13, t: 14, t2: 15, a: 16, b: 17, pc: 18, r11: 19 } as const;

export interface InsnCtx {
  P: VmProgram;
  scratch: number;
  fault: number;
  chk: number;
  bswap32: number;
  /** The import deciding may_goto (1: the run's loop budget is spent, take the jump). */
  mayGoto: number;
  /** Per instruction: 1 where the verifier proved every access of the instruction. */
  proven: Uint8Array | undefined;
  /** The import refilling an access site's region cache (addr, slot address). */
  fill: number;
  /** Per instruction: the address of its access site's region cache slot (0: none). */
  slotOf: Int32Array | undefined;
}

/**
 * An unproven access site's cache slot in VM memory: the region its last checked access fell in
 * as [lo, span] (an access at a passes at once when a - lo < span unsigned and the high half is
 * 0; span = size - 7, so any access of up to 8 bytes from there stays inside), and how many
 * refills the site has left (a site that roams over many regions keeps the shadow check).
 */
export const SLOT_BYTES = 12;
export const SLOT_REFILLS = 16;

const ACC_READ = 0;
const ACC_WRITE = 1;
const ACC_ATOMIC = 2;

const reg = (r: number): number => (r === 10 ? L.r10 : r === 11 ? L.r11 : r);

export function emitWasmInsn(c: Code, x: InsnCtx, i: number): void {
  const P = x.P;
  const code = P.code[i];
  const dst = reg(P.dst[i]);
  const src = reg(P.src[i]);
  const off = P.off[i];
  const imm = P.imm[i];
  switch (code & 7) {
    case BPF_ALU64:
      alu64(c, x, code, dst, src, off, imm);
      return;
    case BPF_ALU:
      alu32(c, x, code, dst, src, off, imm);
      return;
    case BPF_JMP:
      // JCOND may_goto: taken once the run's loop budget (Vm's, shared with the other tiers) is spent.
      if ((code & 0xf0) === 0xe0 && !(code & BPF_X)) c.call(x.mayGoto);
      else cond64(c, code, dst, src, imm);
      return;
    case 6 /* BPF_JMP32 */:
      cond32(c, code, dst, src, imm);
      return;
    case BPF_LDX: {
      const size = code & 0x18;
      addr(c, x, i, src, off, bpfSizeBytes(size), 1, ACC_READ);
      c.mem(loadOp(size, (code & 0xe0) === BPF_MEMSX), 0).set(dst);
      return;
    }
    case BPF_ST: {
      const size = code & 0x18;
      addr(c, x, i, dst, off, bpfSizeBytes(size), 2, ACC_WRITE);
      c.i64(BigInt(imm)).mem(storeOp(size), 0);
      return;
    }
    case BPF_STX: {
      const size = code & 0x18;
      if ((code & 0xe0) === BPF_MEM) {
        addr(c, x, i, dst, off, bpfSizeBytes(size), 2, ACC_WRITE);
        c.get(src).mem(storeOp(size), 0);
        return;
      }
      if ((code & 0xe0) === BPF_ATOMIC) {
        atomic(c, x, i, size, dst, src, off, imm);
        return;
      }
      throw new WasmUnsupported(`wasm tier: unexpected insn 0x${code.toString(16)}`);
    }
    default:
      throw new WasmUnsupported(`wasm tier: unexpected insn 0x${code.toString(16)}`);
  }
}

function loadOp(size: number, sx: boolean): number {
  switch (size) {
    case BPF_B:
      return sx ? Op.i64_load8_s : Op.i64_load8_u;
    case BPF_H:
      return sx ? Op.i64_load16_s : Op.i64_load16_u;
    case BPF_W:
      return sx ? Op.i64_load32_s : Op.i64_load32_u;
    default:
      return Op.i64_load;
  }
}

function storeOp(size: number): number {
  switch (size) {
    case BPF_B:
      return Op.i64_store8;
    case BPF_H:
      return Op.i64_store16;
    case BPF_W:
      return Op.i64_store32;
    default:
      return Op.i64_store;
  }
}

/**
 * Leave the i32 address of [base + off, +size) on the stack and in local a. Unless the
 * verifier proved the access: fault unless the high half is 0 and the shadow grants perm on
 * both ends (as the other tiers check).
 */
function addr(c: Code, x: InsnCtx, at: number, base: number, off: number, size: number, perm: number, kind: number) {
  if (x.proven?.[at] === 1) {
    c.get(base).op(Op.i32_wrap_i64);
    if (off !== 0) c.i32(off).op(Op.i32_add);
    c.tee(L.a);
    return;
  }
  c.get(base).i64(BigInt(off)).op(Op.i64_add).tee(L.t).op(Op.i32_wrap_i64).tee(L.a);
  const slot = x.slotOf?.[at] ?? 0;
  if (slot !== 0) {
    // Inside the region this site last checked: no call. Else the shadow check, then a refill.
    c.i32(0)
      .mem(Op.i32_load, 2, slot)
      .op(Op.i32_sub)
      .i32(0)
      .mem(Op.i32_load, 2, slot + 4)
      .op(Op.i32_ge_u);
    c.get(L.t).i64(32n).op(Op.i64_shr_u).op(Op.i32_wrap_i64).op(Op.i32_or);
    c.byte(Op.if).byte(0x40);
    c.get(L.a);
  }
  c.i32(size).i32(perm).call(x.chk).op(Op.i32_eqz);
  c.get(L.t).i64(32n).op(Op.i64_shr_u).op(Op.i32_wrap_i64).op(Op.i32_or);
  c.byte(Op.if).byte(0x40);
  c.i32(at).get(base).op(Op.i32_wrap_i64).get(base).i64(32n).op(Op.i64_shr_u).op(Op.i32_wrap_i64);
  c.i32(off).i32(size).i32(kind).call(x.fault).op(Op.unreachable);
  c.op(Op.end);
  if (slot !== 0) {
    c.i32(0)
      .mem(Op.i32_load, 2, slot + 8)
      .byte(Op.if)
      .byte(0x40);
    c.get(L.a).i32(slot).call(x.fill);
    c.op(Op.end);
    c.op(Op.end);
  }
  c.get(L.a);
}

/** Push the 64-bit source operand. */
function src64(c: Code, code: number, src: number, imm: number): void {
  if (code & BPF_X) c.get(src);
  else c.i64(BigInt(imm));
}

function src32(c: Code, code: number, src: number, imm: number): void {
  if (code & BPF_X) c.get(src).op(Op.i32_wrap_i64);
  else c.i32(imm);
}

function bswap64(c: Code, x: InsnCtx, v: number): void {
  // (bswap32(lo) << 32) | bswap32(hi)
  c.get(v).op(Op.i32_wrap_i64).call(x.bswap32).op(Op.i64_extend_i32_u).i64(32n).op(Op.i64_shl);
  c.get(v).i64(32n).op(Op.i64_shr_u).op(Op.i32_wrap_i64).call(x.bswap32).op(Op.i64_extend_i32_u);
  c.op(Op.i64_or);
}

function bswap(c: Code, x: InsnCtx, dst: number, width: number): void {
  if (width === 16) {
    // ((d & 0xff) << 8) | ((d >> 8) & 0xff)
    c.get(dst).i64(0xffn).op(Op.i64_and).i64(8n).op(Op.i64_shl);
    c.get(dst).i64(8n).op(Op.i64_shr_u).i64(0xffn).op(Op.i64_and).op(Op.i64_or);
  } else if (width === 32) {
    c.get(dst).op(Op.i32_wrap_i64).call(x.bswap32).op(Op.i64_extend_i32_u);
  } else {
    bswap64(c, x, dst);
  }
  c.set(dst);
}

const OPS64: Record<number, number> = {
  [BPF_ADD]: Op.i64_add,
  [BPF_SUB]: Op.i64_sub,
  [BPF_MUL]: Op.i64_mul,
  [BPF_OR]: Op.i64_or,
  [BPF_AND]: Op.i64_and,
  [BPF_XOR]: Op.i64_xor,
  [BPF_LSH]: Op.i64_shl,
  [BPF_RSH]: Op.i64_shr_u,
  [BPF_ARSH]: Op.i64_shr_s,
};
const OPS32: Record<number, number> = {
  [BPF_ADD]: Op.i32_add,
  [BPF_SUB]: Op.i32_sub,
  [BPF_MUL]: Op.i32_mul,
  [BPF_OR]: Op.i32_or,
  [BPF_AND]: Op.i32_and,
  [BPF_XOR]: Op.i32_xor,
  [BPF_LSH]: Op.i32_shl,
  [BPF_RSH]: Op.i32_shr_u,
  [BPF_ARSH]: Op.i32_shr_s,
};

function alu64(c: Code, x: InsnCtx, code: number, dst: number, src: number, off: number, imm: number): void {
  const op = code & 0xf0;
  const isX = (code & BPF_X) !== 0;
  const simple = OPS64[op];
  if (simple !== undefined) {
    c.get(dst);
    src64(c, code, src, imm);
    c.op(simple).set(dst);
    return;
  }
  switch (op) {
    case BPF_NEG:
      c.i64(0n).get(dst).op(Op.i64_sub).set(dst);
      return;
    case BPF_MOV:
      if (!isX) c.i64(BigInt(imm)).set(dst);
      else if (off === 0) c.get(src).set(dst);
      else
        c.get(src)
          .op(off === 8 ? Op.i64_extend8_s : off === 16 ? Op.i64_extend16_s : Op.i64_extend32_s)
          .set(dst);
      return;
    case BPF_END:
      bswap(c, x, dst, imm);
      return;
    case BPF_DIV:
    case BPF_MOD: {
      const signed = off === 1;
      const div = op === BPF_DIV;
      if (!isX && imm !== 0 && !(signed && imm === -1)) {
        // A constant divisor that can neither be 0 nor overflow: the plain Wasm operation.
        c.get(dst).i64(BigInt(imm));
        c.op(div ? (signed ? Op.i64_div_s : Op.i64_div_u) : signed ? Op.i64_rem_s : Op.i64_rem_u).set(dst);
        return;
      }
      src64(c, code, src, imm);
      c.set(L.t2);
      // divisor 0: div gives 0, mod keeps dst
      c.get(L.t2).op(Op.i64_eqz).byte(Op.if).byte(I64);
      if (div) c.i64(0n);
      else c.get(dst);
      c.op(Op.else);
      if (signed) {
        // divisor -1: div is negation (INT_MIN wraps), mod is 0; Wasm's div_s would trap
        c.get(L.t2).i64(-1n).op(Op.i64_eq).byte(Op.if).byte(I64);
        if (div) c.i64(0n).get(dst).op(Op.i64_sub);
        else c.i64(0n);
        c.op(Op.else)
          .get(dst)
          .get(L.t2)
          .op(div ? Op.i64_div_s : Op.i64_rem_s)
          .op(Op.end);
      } else {
        c.get(dst)
          .get(L.t2)
          .op(div ? Op.i64_div_u : Op.i64_rem_u);
      }
      c.op(Op.end).set(dst);
      return;
    }
    default:
      throw new WasmUnsupported(`wasm tier: unexpected alu64 0x${code.toString(16)}`);
  }
}

function alu32(c: Code, x: InsnCtx, code: number, dst: number, src: number, off: number, imm: number): void {
  const op = code & 0xf0;
  const isX = (code & BPF_X) !== 0;
  const simple = OPS32[op];
  const done = () => c.op(Op.i64_extend_i32_u).set(dst);
  if (simple !== undefined) {
    c.get(dst).op(Op.i32_wrap_i64);
    src32(c, code, src, imm);
    c.op(simple);
    done();
    return;
  }
  switch (op) {
    case BPF_NEG:
      c.i32(0).get(dst).op(Op.i32_wrap_i64).op(Op.i32_sub);
      done();
      return;
    case BPF_MOV:
      if (!isX) c.i64(BigInt(imm >>> 0)).set(dst);
      else if (off === 0) c.get(src).i64(0xffffffffn).op(Op.i64_and).set(dst);
      else {
        c.get(src)
          .op(Op.i32_wrap_i64)
          .op(off === 8 ? Op.i32_extend8_s : Op.i32_extend16_s);
        done();
      }
      return;
    case BPF_END:
      if (isX) {
        bswap(c, x, dst, imm);
      } else if (imm === 16) {
        c.get(dst).i64(0xffffn).op(Op.i64_and).set(dst);
      } else if (imm === 32) {
        c.get(dst).i64(0xffffffffn).op(Op.i64_and).set(dst);
      }
      return;
    case BPF_DIV:
    case BPF_MOD: {
      const signed = off === 1;
      const div = op === BPF_DIV;
      if (!isX && imm !== 0 && !(signed && imm === -1)) {
        c.get(dst).op(Op.i32_wrap_i64).i32(imm);
        c.op(div ? (signed ? Op.i32_div_s : Op.i32_div_u) : signed ? Op.i32_rem_s : Op.i32_rem_u);
        done();
        return;
      }
      src32(c, code, src, imm);
      c.set(L.b);
      c.get(L.b).op(Op.i32_eqz).byte(Op.if).byte(I32);
      if (div) c.i32(0);
      else c.get(dst).op(Op.i32_wrap_i64);
      c.op(Op.else);
      if (signed) {
        c.get(L.b).i32(-1).op(Op.i32_eq).byte(Op.if).byte(I32);
        if (div) c.i32(0).get(dst).op(Op.i32_wrap_i64).op(Op.i32_sub);
        else c.i32(0);
        c.op(Op.else)
          .get(dst)
          .op(Op.i32_wrap_i64)
          .get(L.b)
          .op(div ? Op.i32_div_s : Op.i32_rem_s)
          .op(Op.end);
      } else {
        c.get(dst)
          .op(Op.i32_wrap_i64)
          .get(L.b)
          .op(div ? Op.i32_div_u : Op.i32_rem_u);
      }
      c.op(Op.end);
      done();
      return;
    }
    default:
      throw new WasmUnsupported(`wasm tier: unexpected alu32 0x${code.toString(16)}`);
  }
}

const CMP64: Record<number, number> = {
  [BPF_JEQ]: Op.i64_eq,
  [BPF_JNE]: Op.i64_ne,
  [BPF_JGT]: Op.i64_gt_u,
  [BPF_JGE]: Op.i64_ge_u,
  [BPF_JLT]: Op.i64_lt_u,
  [BPF_JLE]: Op.i64_le_u,
  [BPF_JSGT]: Op.i64_gt_s,
  [BPF_JSGE]: Op.i64_ge_s,
  [BPF_JSLT]: Op.i64_lt_s,
  [BPF_JSLE]: Op.i64_le_s,
};
const CMP32: Record<number, number> = {
  [BPF_JEQ]: Op.i32_eq,
  [BPF_JNE]: Op.i32_ne,
  [BPF_JGT]: Op.i32_gt_u,
  [BPF_JGE]: Op.i32_ge_u,
  [BPF_JLT]: Op.i32_lt_u,
  [BPF_JLE]: Op.i32_le_u,
  [BPF_JSGT]: Op.i32_gt_s,
  [BPF_JSGE]: Op.i32_ge_s,
  [BPF_JSLT]: Op.i32_lt_s,
  [BPF_JSLE]: Op.i32_le_s,
};

function cond64(c: Code, code: number, dst: number, src: number, imm: number): void {
  const op = code & 0xf0;
  c.get(dst);
  src64(c, code, src, imm);
  if (op === BPF_JSET) c.op(Op.i64_and).i64(0n).op(Op.i64_ne);
  else if (CMP64[op] !== undefined) c.op(CMP64[op]);
  else throw new WasmUnsupported(`wasm tier: unexpected jump 0x${code.toString(16)}`);
}

function cond32(c: Code, code: number, dst: number, src: number, imm: number): void {
  const op = code & 0xf0;
  c.get(dst).op(Op.i32_wrap_i64);
  src32(c, code, src, imm);
  const o = op === BPF_JSET ? Op.i32_and : CMP32[op];
  if (o === undefined) throw new WasmUnsupported(`wasm tier: unexpected jump 0x${code.toString(16)}`);
  c.op(o);
}

function atomic(c: Code, x: InsnCtx, at: number, size: number, dst: number, src: number, off: number, imm: number) {
  const bytes = bpfSizeBytes(size);
  if (imm === BPF_LOAD_ACQ) {
    addr(c, x, at, src, off, bytes, 1, ACC_READ);
    c.mem(loadOp(size, false), 0).set(dst);
    return;
  }
  if (imm === BPF_STORE_REL) {
    addr(c, x, at, dst, off, bytes, 2, ACC_WRITE);
    c.get(src).mem(storeOp(size), 0);
    return;
  }
  const w = size === BPF_W;
  const ld = w ? Op.i64_load32_u : Op.i64_load;
  const st = w ? Op.i64_store32 : Op.i64_store;
  addr(c, x, at, dst, off, bytes, 3, ACC_ATOMIC);
  // old value in t2 (zero-extended for W)
  c.mem(ld, 0).set(L.t2);
  const fetch = (imm & BPF_FETCH) !== 0;
  switch (imm & ~BPF_FETCH) {
    case BPF_ADD:
    case BPF_OR:
    case BPF_AND:
    case BPF_XOR: {
      const o = OPS64[imm & ~BPF_FETCH];
      c.get(L.a).get(L.t2).get(src).op(o).mem(st, 0);
      if (fetch) c.get(L.t2).set(src);
      return;
    }
  }
  if (imm === BPF_XCHG) {
    c.get(L.a).get(src).mem(st, 0);
    c.get(L.t2).set(src);
    return;
  }
  if (imm === BPF_CMPXCHG) {
    if (w) c.get(L.t2).op(Op.i32_wrap_i64).get(0).op(Op.i32_wrap_i64).op(Op.i32_eq);
    else c.get(L.t2).get(0).op(Op.i64_eq);
    c.byte(Op.if).byte(0x40).get(L.a).get(src).mem(st, 0).op(Op.end);
    c.get(L.t2).set(0);
    return;
  }
  void BPF_DW;
  throw new WasmUnsupported(`wasm tier: unexpected atomic 0x${imm.toString(16)}`);
}
