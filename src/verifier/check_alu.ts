/**
 * ALU instructions (check_alu_op, adjust_reg_min_max_vals, adjust_ptr_min_max_vals): operand
 * checks, scalar arithmetic through alu.ts, and what arithmetic may do to a pointer.
 */
import type { Insn } from "../isa/insn.js";
import {
  BPF_ADD,
  BPF_AND,
  BPF_ARSH,
  BPF_DIV,
  BPF_END,
  BPF_LSH,
  BPF_MOD,
  BPF_MOV,
  BPF_NEG,
  BPF_OP,
  BPF_OR,
  BPF_RSH,
  BPF_SRC,
  BPF_SUB,
  BPF_X,
  BPF_XOR,
} from "../isa/opcodes.js";
import { EACCES, EINVAL } from "../uapi/errno.js";
import { scalarAlu } from "./alu.js";
import {
  assignScalarIdBeforeMov,
  BPF_ADD_CONST,
  baseType,
  CONST_PTR_TO_MAP,
  copyReg,
  isPointer,
  markRegKnown,
  markRegUnknown,
  PTR_MAYBE_NULL,
  PTR_TO_FUNC,
  PTR_TO_PACKET,
  PTR_TO_PACKET_END,
  PTR_TO_PACKET_META,
  PTR_TO_STACK,
  type RegState,
  regBoundsSync,
  regTypeStr,
  regWidth,
  S64_MIN,
  SCALAR_VALUE,
  zextReg32,
} from "./reg_state.js";
import { tnumIsConst, tnumRange, tnumSubreg } from "./tnum.js";

import type { Verifier } from "./verifier.js";

/**
 * coerce_reg_to_size_sx: sign-extend the low `size` bytes to 64 bits. A range whose upper bits
 * are the same throughout and whose sign does not change keeps its bounds.
 */
export function signExtend(_v: Verifier, r: RegState, size: number): void {
  const bits = BigInt(size * 8);
  if (tnumIsConst(r.varOff)) {
    markRegKnown(r, BigInt.asIntN(size * 8, r.varOff.value));
    r.written = true;
    return;
  }
  const smax = r.smax;
  const smin = r.smin;
  const top = (x: bigint): bigint => BigInt.asUintN(64, x) >> bits;
  if (top(smax) === top(smin)) {
    const a = BigInt.asIntN(size * 8, smax);
    const b = BigInt.asIntN(size * 8, smin);
    const hi = a > b ? a : b;
    const lo = a > b ? b : a;
    if (hi >= 0n === lo >= 0n) {
      markRegUnknown(r);
      [r.smin, r.smax, r.s32min, r.s32max] = [lo, hi, lo, hi];
      [r.umin, r.umax] = [BigInt.asUintN(64, lo), BigInt.asUintN(64, hi)];
      [r.u32min, r.u32max] = [BigInt.asUintN(32, lo), BigInt.asUintN(32, hi)];
      r.varOff = tnumRange(r.umin, r.umax);
      regBoundsSync(r);
      r.written = true;
      return;
    }
  }
  markRegUnknown(r);
  const lim = 1n << (bits - 1n);
  r.smin = r.s32min = -lim;
  r.smax = r.s32max = lim - 1n;
  regBoundsSync(r);
  r.written = true;
}

/** coerce_subreg_to_size_sx: the same within the low 32 bits (then zero-extended by the caller). */
function signExtendSubreg(r: RegState, size: number): void {
  const bits = BigInt(size * 8);
  if (tnumIsConst(r.varOff)) {
    markRegKnown(r, BigInt.asUintN(32, BigInt.asIntN(size * 8, r.varOff.value)));
    return;
  }
  const top = (x: bigint): bigint => BigInt.asUintN(32, x) >> bits;
  if (top(r.s32max) === top(r.s32min)) {
    const a = BigInt.asIntN(size * 8, r.s32max);
    const b = BigInt.asIntN(size * 8, r.s32min);
    const hi = a > b ? a : b;
    const lo = a > b ? b : a;
    if (hi >= 0n === lo >= 0n) {
      markRegUnknown(r);
      [r.s32min, r.s32max] = [lo, hi];
      [r.u32min, r.u32max] = [BigInt.asUintN(32, lo), BigInt.asUintN(32, hi)];
      r.varOff = tnumSubreg(tnumRange(BigInt.asUintN(64, lo), BigInt.asUintN(64, hi)));
      return;
    }
  }
  markRegUnknown(r);
  const lim = 1n << (bits - 1n);
  r.s32min = -lim;
  r.s32max = lim - 1n;
  r.varOff = tnumSubreg(r.varOff);
}

export function checkAluOp(v: Verifier, insn: Insn, is64: boolean): void {
  const op = BPF_OP(insn.code);
  const srcX = BPF_SRC(insn.code) === BPF_X;
  if (op === BPF_END || op === BPF_NEG) {
    const bad =
      op === BPF_NEG
        ? insn.src !== 0 || insn.off !== 0 || insn.imm !== 0 || srcX
        : insn.src !== 0 || insn.off !== 0 || ![16, 32, 64].includes(insn.imm) || (is64 && srcX);
    if (bad) v.reject(EINVAL, op === BPF_NEG ? "BPF_NEG uses reserved fields" : "BPF_END uses reserved fields");
    const r = v.readReg(insn.dst);
    if (isPointer(r)) {
      if (v.isPointerValue(r)) v.reject(EACCES, `R${insn.dst} pointer arithmetic prohibited`);
      // is_pointer_value is false where pointers may leak: the result is an unknown scalar.
      markRegUnknown(v.writeReg(insn.dst));
      return;
    }
    v.writeReg(insn.dst);
    if (op === BPF_NEG) {
      const zero = { ...r };
      markRegKnown(zero, 0n);
      const v = copyReg(r);
      Object.assign(r, zero);
      scalarAlu(BPF_SUB, r, v, is64);
      r.written = true;
      return;
    }
    checkEnd(v, r, insn, is64);
    return;
  }
  if (op === BPF_MOV) {
    checkMov(v, insn, is64, srcX);
    return;
  }
  if (op > BPF_END) v.reject(EINVAL, `invalid BPF_ALU opcode ${op.toString(16)}`);
  if (srcX) {
    if (insn.imm !== 0 || (insn.off !== 0 && !(insn.off === 1 && (op === BPF_DIV || op === BPF_MOD))))
      v.reject(EINVAL, "BPF_ALU uses reserved fields");
    v.readReg(insn.src);
  } else if (insn.src !== 0 || (insn.off !== 0 && !(insn.off === 1 && (op === BPF_DIV || op === BPF_MOD)))) {
    v.reject(EINVAL, "BPF_ALU uses reserved fields");
  }
  v.readReg(insn.dst);
  if (!srcX && (op === BPF_DIV || op === BPF_MOD) && insn.imm === 0) v.reject(EINVAL, "div by zero");
  if (!srcX && (op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH) && (insn.imm < 0 || insn.imm >= (is64 ? 64 : 32)))
    v.reject(EINVAL, `invalid shift ${insn.imm}`);
  const dst = v.writeReg(insn.dst);
  let src: RegState;
  if (srcX) src = v.regs[insn.src];
  else {
    src = { ...dst };
    markRegKnown(src, BigInt(insn.imm));
  }
  adjustRegMinMaxVals(v, insn, dst, src, op, is64, srcX);
}

export function checkEnd(_v: Verifier, r: RegState, insn: Insn, is64: boolean): void {
  const bits = insn.imm;
  const toBe = BPF_SRC(insn.code) === BPF_X;
  const swap = is64 || toBe; // little-endian host: to_le only truncates
  if (tnumIsConst(r.varOff)) {
    let v = r.varOff.value & ((1n << BigInt(bits)) - 1n);
    if (swap) {
      let out = 0n;
      for (let i = 0; i < bits / 8; i++) out = (out << 8n) | ((v >> BigInt(8 * i)) & 0xffn);
      v = out;
    }
    markRegKnown(r, v);
  } else if (!swap && bits === 64) {
    // no-op
  } else {
    markRegUnknown(r);
    if (bits < 64) {
      r.umax = (1n << BigInt(bits)) - 1n;
      regBoundsSync(r);
    }
  }
  r.written = true;
}

export function checkMov(v: Verifier, insn: Insn, is64: boolean, srcX: boolean): void {
  const newId = () => v.newId();
  if (srcX) {
    const okOff = insn.off === 0 || insn.off === 8 || insn.off === 16 || (is64 && insn.off === 32);
    if (insn.imm !== 0 || !okOff) v.reject(EINVAL, "BPF_MOV uses reserved fields");
    const src = v.readReg(insn.src);
    const dst = v.writeReg(insn.dst);
    if (insn.off !== 0) {
      if (isPointer(src)) {
        if (v.isPointerValue(src)) v.reject(EACCES, `R${insn.src} sign-extension part of pointer`);
        markRegUnknown(dst);
        return;
      }
      // A value the extension leaves unchanged stays linked to its source.
      const noSext = src.umax < 1n << BigInt(insn.off - 1);
      if (noSext) assignScalarIdBeforeMov(src, newId);
      const id = noSext ? src.id : 0;
      Object.assign(dst, copyReg(src));
      if (is64) signExtend(v, dst, insn.off / 8);
      else {
        signExtendSubreg(dst, insn.off / 8);
        zextReg32(dst);
        dst.written = true;
      }
      dst.id = id;
    } else if (is64) {
      assignScalarIdBeforeMov(src, newId);
      Object.assign(dst, copyReg(src));
    } else {
      if (isPointer(src)) {
        if (!v.allowPtrLeaks) v.reject(EACCES, `R${insn.src} partial copy of pointer`);
        markRegUnknown(dst);
        zextReg32(dst);
      } else {
        // A 32-bit copy of a value that fits in 32 bits is the same value: linked too.
        const fits = regWidth(src) <= 32;
        if (fits) assignScalarIdBeforeMov(src, newId);
        Object.assign(dst, copyReg(src));
        if (!fits) dst.id = 0;
        zextReg32(dst);
      }
    }
    dst.written = true;
    return;
  }
  if (insn.src !== 0 || insn.off !== 0) v.reject(EINVAL, "BPF_MOV uses reserved fields");
  const dst = v.writeReg(insn.dst);
  markRegKnown(dst, is64 ? BigInt(insn.imm) : BigInt(insn.imm >>> 0));
  dst.written = true;
}

export function adjustRegMinMaxVals(
  v: Verifier,
  insn: Insn,
  dst: RegState,
  src: RegState,
  op: number,
  is64: boolean,
  srcX: boolean,
): void {
  const dstPtr = isPointer(dst);
  const srcPtr = isPointer(src);
  if (!dstPtr && !srcPtr) {
    const id = dst.id;
    scalarAlu(op, dst, src, is64, insn.off === 1);
    dst.written = true;
    // rX += rX is no move by a constant: its operand was rX itself, which the add changed.
    if (srcX && insn.src === insn.dst) {
      dst.id = 0;
      dst.off = 0;
    } else linkAddConst(v, dst, id, src, op, is64);
    return;
  }
  if (dstPtr && srcPtr) {
    if (op !== BPF_SUB || !is64) {
      if (!is64 && op === BPF_SUB && v.allowPtrLeaks) {
        markRegUnknown(dst);
        return;
      }
      v.reject(EACCES, `R${insn.dst} pointer ${op === BPF_SUB ? "-=" : "+="} pointer prohibited`);
    }
    if (!v.allowPtrLeaks) v.reject(EACCES, `R${insn.dst} pointer -= pointer prohibited`);
    markRegUnknown(dst);
    dst.written = true;
    return;
  }
  // One pointer, one scalar.
  if (srcPtr && op === BPF_ADD && is64) {
    // scalar += pointer: the result is the pointer moved by the scalar.
    const scalar = copyReg(dst);
    Object.assign(dst, copyReg(src), { written: true });
    // The scalar that moves the pointer was in dst: that is the register whose value matters.
    adjustPtr(v, insn.dst, dst, scalar, op, insn.dst);
    return;
  }
  if (srcPtr) {
    // adjust_ptr_min_max_vals with the pointer in src: a 32-bit op is checked first.
    if (!is64) {
      if (op === BPF_SUB && v.allowPtrLeaks) {
        markRegUnknown(dst);
        return;
      }
      v.reject(EACCES, `R${insn.dst} 32-bit pointer arithmetic prohibited`);
    }
    // adjust_ptr_min_max_vals(ptr = src): no privilege makes "scalar op= pointer" a scalar
    if (src.type & PTR_MAYBE_NULL)
      v.reject(EACCES, `R${insn.dst} pointer arithmetic on ${regTypeStr(src.type)} prohibited, null-check it first`);
    if (op === BPF_SUB) v.reject(EACCES, `R${insn.dst} tried to subtract pointer from scalar`);
    v.reject(EACCES, `R${insn.dst} ${aluOpName(op)}`);
  }
  if (!is64) {
    if (op === BPF_SUB && v.allowPtrLeaks) {
      markRegUnknown(dst);
      return;
    }
    v.reject(EACCES, `R${insn.dst} 32-bit pointer arithmetic prohibited`);
  }
  // adjust_ptr_min_max_vals refuses a maybe-NULL pointer before it looks at the operator.
  if (op !== BPF_ADD && op !== BPF_SUB && dst.type & PTR_MAYBE_NULL)
    v.reject(EACCES, `R${insn.dst} pointer arithmetic on ${regTypeStr(dst.type)} prohibited, null-check it first`);
  if (op !== BPF_ADD && op !== BPF_SUB) v.reject(EACCES, `R${insn.dst} ${aluOpName(op)}`);
  adjustPtr(v, insn.dst, dst, src, op, srcX ? insn.src : -1);
}

/** adjust_ptr_min_max_vals' refusal of an operator other than add and subtract. */
function aluOpName(op: number): string {
  const name = ["+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>="][op >> 4];
  if (op === BPF_AND || op === BPF_OR || op === BPF_XOR) return `bitwise operator ${name} on pointer prohibited`;
  return `pointer arithmetic with ${name} operator prohibited`;
}

/**
 * adjust_reg_min_max_vals: a linked copy moved by a 64-bit constant (rX += K, rX -= K) keeps its
 * link with the delta in `off`, once; any other operation breaks the link.
 */
function linkAddConst(v: Verifier, dst: RegState, id: number, src: RegState, op: number, is64: boolean): void {
  dst.id = 0;
  dst.off = 0;
  if (!v.privileged || !is64 || (op !== BPF_ADD && op !== BPF_SUB) || !id || !tnumIsConst(src.varOff)) return;
  if (dst.type !== SCALAR_VALUE || id >= BPF_ADD_CONST) return;
  let off = BigInt.asIntN(64, src.varOff.value);
  if (off !== BigInt.asIntN(32, off)) return;
  if (op === BPF_SUB) {
    if (off === -(1n << 31n)) return;
    off = -off;
  }
  dst.id = id + BPF_ADD_CONST;
  dst.off = Number(off);
}

/** adjust_ptr_min_max_vals: ptr (in place) op= scalar. */
export function adjustPtr(
  v: Verifier,
  dstno: number,
  ptr: RegState,
  scalar: RegState,
  op: number,
  scalarReg: number,
): void {
  const t = ptr.type;
  if (t & PTR_MAYBE_NULL) {
    v.reject(EACCES, `R${dstno} pointer arithmetic on ${regTypeStr(t)} prohibited, null-check it first`);
  }
  const bt = baseType(t);
  const known = tnumIsConst(scalar.varOff);
  if (bt === CONST_PTR_TO_MAP && !(known && scalar.smin === 0n && op === BPF_ADD)) {
    v.reject(EACCES, `R${dstno} pointer arithmetic on ${regTypeStr(t)} prohibited`);
  }
  if (bt === PTR_TO_FUNC || bt === PTR_TO_PACKET_END)
    v.reject(EACCES, `R${dstno} pointer arithmetic on ${regTypeStr(t)} prohibited`);
  if (scalarReg >= 0) v.precision.addSink(v.insnIdx, scalarReg);
  checkRegSaneOffset(v, scalar, t, known);
  checkRegSaneOffset(v, ptr, t, false);
  // Any subtraction from a stack pointer, a constant one too (JITs may not cope with it).
  if (op === BPF_SUB && bt === PTR_TO_STACK) v.reject(EACCES, `R${dstno} subtraction from stack pointer prohibited`);
  if (known) {
    const c = BigInt.asIntN(64, scalar.varOff.value);
    const off = BigInt(ptr.off) + (op === BPF_ADD ? c : -c);
    if (off >= MAX_VAR_OFF || off <= -MAX_VAR_OFF)
      v.reject(EINVAL, `${regTypeStr(t)} pointer offset ${off} is not allowed`);
    ptr.off = Number(off);
    return;
  }
  // Variable offsets into the context are refused at the access (check_ctx_access).
  if (!v.privileged && bt === PTR_TO_STACK) v.reject(EACCES, `R${dstno} variable stack access prohibited for !root`);
  const s = copyReg(ptr);
  scalarAlu(op, s, scalar, true);
  ptr.varOff = s.varOff;
  [ptr.umin, ptr.umax, ptr.smin, ptr.smax] = [s.umin, s.umax, s.smin, s.smax];
  [ptr.u32min, ptr.u32max, ptr.s32min, ptr.s32max] = [s.u32min, s.u32max, s.s32min, s.s32max];
  ptr.written = true;
  // A packet pointer moved by a variable amount is a new base: its range starts over (but for a
  // subtraction of a non-negative amount, which stays inside what was proven).
  if (bt === PTR_TO_PACKET || bt === PTR_TO_PACKET_META) {
    ptr.id = v.newId();
    if (op === BPF_ADD || scalar.smin < 0n) ptr.memSize = 0;
  }
  checkRegSaneOffset(v, ptr, t, false);
}

const MAX_VAR_OFF = 1n << 29n;

/** check_reg_sane_offset: offsets a pointer may be moved by, and may end up at. */
function checkRegSaneOffset(v: Verifier, reg: RegState, ptrType: number, known: boolean): void {
  const ts = regTypeStr(ptrType);
  const val = BigInt.asIntN(64, reg.varOff.value);
  if (known && (val >= MAX_VAR_OFF || val <= -MAX_VAR_OFF))
    v.reject(EINVAL, `math between ${ts} pointer and ${val} is not allowed`);
  if (reg.off >= Number(MAX_VAR_OFF) || reg.off <= -Number(MAX_VAR_OFF))
    v.reject(EINVAL, `${ts} pointer offset ${reg.off} is not allowed`);
  if (reg.smin === S64_MIN)
    v.reject(EINVAL, `math between ${ts} pointer and register with unbounded min value is not allowed`);
  if (reg.smin >= MAX_VAR_OFF || reg.smin <= -MAX_VAR_OFF)
    v.reject(EINVAL, `value ${reg.smin} makes ${ts} pointer be out of bounds`);
}

// ---- memory (check_mem_access) ----
