/**
 * Conditional jumps in do_check (check_cond_jmp_op): decided branches, refined bounds on
 * both sides, and null checks of maybe-NULL pointers (mark_ptr_or_null_regs).
 */

import type { Insn } from "../isa/insn.js";
import { BPF_ADD, BPF_JEQ, BPF_JNE, BPF_OP, BPF_SRC, BPF_X } from "../isa/opcodes.js";
import { EACCES, EINVAL } from "../uapi/errno.js";
import { scalarAlu } from "./alu.js";
import { isBranchTaken, negateJmp, regSetMinMax } from "./branch.js";
import { mayPointToSpinLock } from "./graph.js";
import { markInnerMapNotNull } from "./map_in_map.js";
import { isPktPointerAny, isPktPtrBranchTaken, tryMatchPktPointers } from "./packet.js";
import { forEachReg, releaseReferenceNomark } from "./refs.js";
import {
  BPF_ADD_CONST,
  baseType,
  CONST_PTR_TO_MAP,
  copyReg,
  isPointer,
  isTrustedReg,
  markRegKnown,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_UNTRUSTED,
  type RegState,
  SCALAR_VALUE,
  scalarIdBase,
} from "./reg_state.js";
import { isSpilled } from "./stack_access.js";
import { copyState, curFrame, type VerifierState } from "./state.js";
import { tnumIsConst } from "./tnum.js";

import type { Verifier } from "./verifier.js";

export function checkCondJmp(v: Verifier, idx: number, insn: Insn, is64: boolean): boolean {
  const op = BPF_OP(insn.code);
  const srcX = BPF_SRC(insn.code) === BPF_X;
  if (srcX ? insn.imm !== 0 : insn.src !== 0) v.reject(EINVAL, "BPF_JMP/JMP32 uses reserved fields");
  const dst = v.readReg(insn.dst);
  let src: RegState;
  if (srcX) src = v.readReg(insn.src);
  else {
    src = copyReg(dst);
    markRegKnown(src, is64 ? BigInt(insn.imm) : BigInt(insn.imm >>> 0));
  }
  const target = idx + insn.off + 1;
  const dPtr = isPointer(dst);
  const sPtr = isPointer(src);
  if (dPtr || sPtr) {
    const ptr = dPtr ? dst : src;
    const other = dPtr ? src : dst;
    const otherZero = !isPointer(other) && tnumIsConst(other.varOff) && other.varOff.value === 0n;
    // is_pkt_ptr_branch_taken: a pointer marked at or beyond data_end decides the comparison.
    if (is64 && isPktPointerAny(dst) && isPktPointerAny(src)) {
      const taken = isPktPtrBranchTaken(dst, src, op);
      if (taken >= 0) {
        v.insnIdx = taken ? target : idx + 1;
        return false;
      }
    }
    // Whether the scalar side is exactly 0 decides between a null check and a plain comparison.
    if (srcX && !(dPtr && sPtr)) v.precision.addSink(idx, dPtr ? insn.src : insn.dst);
    if (is64 && (op === BPF_JEQ || op === BPF_JNE) && otherZero && !(dPtr && sPtr)) {
      if (ptr.type & PTR_MAYBE_NULL) {
        const id = ptr.id;
        const refObjId = ptr.refObjId;
        const other = copyState(v.cur);
        // In `other` (the jump) the pointer is NULL for JEQ, valid for JNE.
        markPtrOrNull(v, other, id, op === BPF_JEQ, refObjId);
        markPtrOrNull(v, v.cur, id, op !== BPF_JEQ, refObjId);
        v.pushState(other, target);
        v.insnIdx = idx + 1;
        return false;
      }
      // A pointer the verifier knows is valid is never NULL; any other (ctx, stack) may be.
      if (regNotNull(ptr)) {
        v.insnIdx = op === BPF_JNE ? target : idx + 1;
        return false;
      }
    }
    const jump = copyState(v.cur);
    if (tryMatchPktPointers(insn, dst, src, v.cur, jump)) {
      v.pushState(jump, target);
      v.insnIdx = idx + 1;
      return false;
    }
    if (!v.allowPtrLeaks) v.reject(EACCES, `R${dPtr ? insn.dst : insn.src} pointer comparison prohibited`);
    v.pushState(jump, target);
    v.insnIdx = idx + 1;
    return false;
  }
  const taken = isBranchTaken(dst, src, op, is64);
  if (taken >= 0) {
    v.precision.addSink(idx, insn.dst);
    if (srcX) v.precision.addSink(idx, insn.src);
    v.insnIdx = taken ? target : idx + 1;
    return false;
  }
  const other = copyState(v.cur);
  const oDst = curFrame(other).regs[insn.dst];
  const oSrc = srcX ? curFrame(other).regs[insn.src] : copyReg(src);
  const jumpOk = regSetMinMax(oDst, oSrc, op, is64);
  const fallOk = regSetMinMax(dst, srcX ? src : copyReg(src), negateJmp(op), is64);
  if (!jumpOk || !fallOk) {
    v.precision.addSink(idx, insn.dst);
    if (srcX) v.precision.addSink(idx, insn.src);
  }
  // sync_linked_regs: copies of the compared scalars learn the same bounds, in each branch.
  if (jumpOk) {
    syncLinkedRegs(v, other, oDst);
    if (srcX) syncLinkedRegs(v, other, oSrc);
  }
  if (fallOk) {
    syncLinkedRegs(v, v.cur, dst);
    if (srcX) syncLinkedRegs(v, v.cur, src);
  }
  if (jumpOk && fallOk) {
    v.pushState(other, target);
    v.insnIdx = idx + 1;
  } else if (jumpOk) {
    v.cur = other;
    v.insnIdx = target;
  } else {
    v.insnIdx = idx + 1;
  }
  return false;
}

/** collect_linked_regs + sync_linked_regs: live registers and spilled scalars of every frame. */
function syncLinkedRegs(v: Verifier, st: VerifierState, known: RegState): void {
  if (known.type !== SCALAR_VALUE || known.id === 0) return;
  const base = scalarIdBase(known.id);
  const kDelta = known.id >= BPF_ADD_CONST;
  const sync = (r: RegState): void => {
    if (r === known || r.type !== SCALAR_VALUE || !r.id || scalarIdBase(r.id) !== base) return;
    const w = r.written;
    const { id, off } = r;
    const plain = !kDelta && id < BPF_ADD_CONST;
    Object.assign(r, copyReg(known));
    r.written = w;
    if (plain || off === known.off) return;
    // r = known + (r.off - known.off): the same value moved by the difference of the deltas.
    r.id = id;
    r.off = off;
    const delta = copyReg(r);
    markRegKnown(delta, BigInt(off - known.off));
    const moved = copyReg(known);
    scalarAlu(BPF_ADD, moved, delta, true);
    Object.assign(r, moved, { id, off, written: w });
  };
  st.frames.forEach((f, i) => {
    const live = v.liveRegsBefore(i === st.frames.length - 1 ? v.insnIdx : st.frames[i + 1].callsite);
    f.regs.forEach((r, j) => {
      if (j < 10 && live & (1 << j)) sync(r);
    });
    for (const s of f.stack) if (s && isSpilled(s)) sync(s.spilledPtr as RegState);
  });
}

/** reg_not_null: the pointer types whose comparison with 0 is decided. */
function regNotNull(r: RegState): boolean {
  if (r.type & PTR_MAYBE_NULL) return false;
  const t = baseType(r.type);
  if (t === PTR_TO_BTF_ID) return isTrustedReg(r);
  if (t === PTR_TO_MEM) return !(r.type & PTR_UNTRUSTED);
  return t === PTR_TO_MAP_VALUE || t === PTR_TO_MAP_KEY || t === CONST_PTR_TO_MAP;
}

/**
 * mark_ptr_or_null_regs: every copy of pointer `id`, in every frame, becomes NULL or valid. On
 * the NULL side an acquired reference (`refObjId` == id) was never taken: it is forgotten.
 */
export function markPtrOrNull(_v: Verifier, st: VerifierState, id: number, isNull: boolean, refObjId = 0): void {
  if (refObjId && refObjId === id && isNull) releaseReferenceNomark(st, id);
  forEachReg(st, (r) => {
    if (!(r.type & PTR_MAYBE_NULL) || r.id !== id) return;
    if (isNull) {
      const w = r.written;
      markRegKnown(r, 0n);
      r.written = w;
    } else {
      r.type &= ~PTR_MAYBE_NULL;
      if (r.type === CONST_PTR_TO_MAP) markInnerMapNotNull(_v, r);
      // A value holding a lock keeps its id: it names the lock (reg_may_point_to_spin_lock).
      if (!mayPointToSpinLock(_v, r)) r.id = 0;
    }
  });
}
