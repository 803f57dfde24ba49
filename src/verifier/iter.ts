/**
 * Open-coded iterators (kernel/bpf/verifier.c: process_iter_arg, mark_stack_slots_iter,
 * is_iter_reg_valid_init, process_iter_next_call, widen_imprecise_scalars): a `struct bpf_iter_*`
 * on the stack is created by a KF_ITER_NEW kfunc (holding a reference until KF_ITER_DESTROY),
 * and every KF_ITER_NEXT call forks the path: the loop body with the next element (depth + 1)
 * and the end of the loop (NULL). The loop is proven when a later iteration's state is covered
 * by an earlier one's at the next call; imprecise scalars that differ are widened so it is.
 */
import { BPF_JCOND } from "../isa/decode.js";
import type { Insn } from "../isa/insn.js";
import { BPF_JMP } from "../isa/opcodes.js";
import { MAX_BPF_STACK } from "../uapi/bpf.js";
import { EACCES, EINVAL } from "../uapi/errno.js";
import { KF_ITER_DESTROY, KF_ITER_NEW, KF_ITER_NEXT, KF_RCU_PROTECTED } from "./env.js";
import { acquireReference, releaseReference } from "./refs.js";
import {
  baseType,
  markRegKnown,
  markRegUnknown,
  PTR_MAYBE_NULL,
  PTR_TO_STACK,
  type RegState,
  regsIdentical,
  SCALAR_VALUE,
} from "./reg_state.js";
import { BPF_REG_SIZE, STACK_ITER, STACK_MISC, type StackSlot, spiOf } from "./stack.js";
import { stackSlot } from "./stack_access.js";
import { type Checkpoint, copyState, type FuncState } from "./state.js";
import { tnumIsConst } from "./tnum.js";
import type { Verifier } from "./verifier.js";

export const KF_ITER = KF_ITER_NEW | KF_ITER_NEXT | KF_ITER_DESTROY;

/** iter_type_str: "num" for struct bpf_iter_num. */
function iterTypeStr(v: Verifier, btfId: number): string {
  return v.btfName(btfId).replace(/^bpf_iter_/, "");
}

/**
 * The stack slots an iterator argument covers (stack_slot_obj_get_spi, is_spi_bounds_valid), or a
 * refusal. `spi` is -1 where the slots lie beyond the stack allocated so far (-ERANGE): a new
 * iterator may grow the stack there after the bounds check of its writes; any other call is refused.
 */
function iterSlots(v: Verifier, reg: RegState, regno: number, size: number): { f: FuncState; spi: number; n: number } {
  if (reg.type !== PTR_TO_STACK) v.reject(EINVAL, `arg#${regno - 1} expected pointer to an iterator on stack`);
  if (!tnumIsConst(reg.varOff)) v.reject(EINVAL, "iter has to be at a constant offset");
  const off = reg.off + Number(BigInt.asIntN(64, reg.varOff.value));
  if (off % BPF_REG_SIZE !== 0) v.reject(EINVAL, `cannot pass in iter at an offset=${off}`);
  const n = Math.ceil(size / BPF_REG_SIZE);
  // __get_spi: C division truncates toward zero.
  const spi = Math.trunc((-off - 1) / BPF_REG_SIZE);
  if (spi + 1 < n) v.reject(EINVAL, `cannot pass in iter at an offset=${off}`);
  const f = v.cur.frames[reg.frameno];
  if (spi - n + 1 < 0 || spi >= f.stack.length) return { f, spi: -1, n };
  return { f, spi, n };
}

/** check_stack_access_within_bounds for an 8-byte write at `i` past an iterator's base. */
function checkIterSlotWrite(v: Verifier, reg: RegState, regno: number, i: number): void {
  const off = reg.off + i + Number(BigInt.asIntN(64, reg.varOff.value));
  if (off < -MAX_BPF_STACK || off + BPF_REG_SIZE > 0)
    v.reject(EACCES, `invalid write to stack R${regno} off=${reg.off + i} size=${BPF_REG_SIZE}`);
  const sub = v.cur.frames[reg.frameno].subprog;
  if (v.stackDepth[sub] < -off) v.stackDepth[sub] = -off;
}

/** The iterator a KF_ITER_* kfunc's first argument points to (process_iter_arg). */
export function processIterArg(v: Verifier, flags: number, regno: number, btfId: number, size: number): void {
  const reg = v.regs[regno];
  const found = iterSlots(v, reg, regno, size);
  const { f, n } = found;
  const type = iterTypeStr(v, btfId);
  if (found.spi < 0 && !(flags & KF_ITER_NEW))
    v.reject(EINVAL, `expected an initialized iter_${type} as arg #${regno - 1}`);
  if (flags & KF_ITER_NEW) {
    // is_iter_reg_valid_uninit: not already an iterator (slots not yet allocated are not).
    if (found.spi >= 0)
      for (let i = 0; i < n; i++)
        if (f.stack[found.spi - i]?.slotType.some((t) => t === STACK_ITER))
          v.reject(EINVAL, `expected uninitialized iter_${type} as arg #${regno - 1}`);
    // check_mem_access of each slot as an 8-byte write: the stack's bounds, before it grows.
    for (let i = 0; i < n * BPF_REG_SIZE; i += BPF_REG_SIZE) checkIterSlotWrite(v, reg, regno, i);
  }
  const [top] = spiOf(reg.off + Number(BigInt.asIntN(64, reg.varOff.value)));
  const slots: StackSlot[] = [];
  for (let i = 0; i < n; i++) slots.push(stackSlot(v, f, top - i));
  if (flags & KF_ITER_NEW) {
    const refObjId = acquireReference(v);
    slots.forEach((s, i) => {
      s.slotType.fill(STACK_ITER);
      s.spilledPtr = null;
      s.written = true;
      s.iter = { btfId, refObjId: i === 0 ? refObjId : 0, active: true, depth: 0 };
      if (flags & KF_RCU_PROTECTED) s.iter.rcu = true;
    });
    return;
  }
  // is_iter_reg_valid_init: an iterator of this type starts exactly here.
  const first = slots[0];
  if (
    !slots.every((s) => s.slotType.every((t) => t === STACK_ITER) && s.iter?.btfId === btfId) ||
    !first.iter?.refObjId
  )
    v.reject(EINVAL, `expected an initialized iter_${type} as arg #${regno - 1}`);
  if (flags & KF_ITER_DESTROY) {
    releaseReference(v, first.iter.refObjId);
    for (const s of slots) {
      s.slotType.fill(STACK_MISC);
      s.iter = undefined;
      s.written = true;
    }
  }
}

/** Whether the iterator r1 points to was created RCU-protected (its next returns MEM_RCU). */
export function iterIsRcu(v: Verifier, r1: RegState): boolean {
  return iterOf(v.cur.frames, r1)?.iter?.rcu === true;
}

/** The iterator slot of a KF_ITER_NEXT call's r1 in `frames`. */
function iterOf(frames: FuncState[], r1: RegState): StackSlot | undefined {
  const off = r1.off + Number(r1.varOff.value);
  const [spi] = spiOf(off);
  return frames[r1.frameno]?.stack[spi];
}

/**
 * process_iter_next_call: the current path continues as the end of the loop (iterator drained,
 * r0 = NULL); the loop body is queued with the iterator active one level deeper and r0 valid,
 * its imprecise scalars widened against the previous iteration's state.
 */
export function processIterNextCall(v: Verifier, r1: RegState): void {
  const cur = iterOf(v.cur.frames, r1)?.iter;
  if (!cur) return;
  if (cur.active) {
    const queued = copyState(v.cur);
    const qIter = iterOf(queued.frames, r1)?.iter as NonNullable<StackSlot["iter"]>;
    qIter.active = true;
    qIter.depth++;
    const prev = findPrevEntry(v.cur.parent, v.insnIdx);
    if (prev) widenImpreciseScalars(v, prev, queued.frames, v.insnIdx + 1);
    const r0 = queued.frames[queued.frames.length - 1].regs[0];
    r0.type &= ~PTR_MAYBE_NULL;
    r0.id = 0;
    v.pushState(queued, v.insnIdx + 1);
  }
  cur.active = false;
  const r0 = v.regs[0];
  const w = r0.written;
  markRegKnown(r0, 0n);
  r0.written = w;
}

/** find_prev_entry: the checkpoint of an earlier iteration at this call, on the current path. */
function findPrevEntry(cp: Checkpoint | null, idx: number): Checkpoint | null {
  // cp is the checkpoint made for this very state at this instruction: start above it.
  for (let p = cp?.parent ?? null; p; p = p.parent) if (p.insn === idx && p.branches > 0) return p;
  return null;
}

/** widen_imprecise_scalars: scalars that changed since the last iteration and need no precision. */
function widenImpreciseScalars(v: Verifier, old: Checkpoint, frames: FuncState[], pos: number): void {
  if (old.frames.length !== frames.length) return;
  const last = frames.length - 1;
  frames.forEach((f, i) => {
    const o = old.frames[i];
    const at = i === last ? pos : frames[i + 1].callsite + 1;
    const need = v.precision.need[at];
    const widen = (ro: RegState | null | undefined, rc: RegState | null | undefined, precise: boolean) => {
      if (!ro || !rc || ro.type !== SCALAR_VALUE || rc.type !== SCALAR_VALUE) return;
      if (precise || regsIdentical(ro, rc)) return;
      const w = rc.written;
      markRegUnknown(rc);
      rc.written = w;
    };
    for (let r = 0; r < 10; r++) widen(o.regs[r], f.regs[r], !!(need & (1 << r)));
    f.stack.forEach((s, spi) => {
      const os = o.stack[spi];
      if (!s?.spilledPtr || !os?.spilledPtr) return;
      widen(os.spilledPtr, s.spilledPtr, i !== last || v.precision.slotNeeded(at, spi));
    });
  });
}

/** JMP|JCOND with BPF_MAY_GOTO (0). */
export function isMayGoto(i: Insn): boolean {
  return i.code === (BPF_JMP | BPF_JCOND);
}

/**
 * may_goto: the path jumps (the loop budget ran out); the fall-through (budget left) is queued
 * one level deeper, its imprecise scalars widened against the previous pass's state.
 */
export function processMayGoto(v: Verifier, idx: number, insn: Insn): void {
  if (insn.src !== 0 || insn.dst !== 0 || insn.imm !== 0) v.reject(EINVAL, `invalid may_goto imm ${insn.imm}`);
  const prev = findPrevEntry(v.cur.parent, idx);
  const queued = copyState(v.cur);
  queued.mayGotoDepth = (queued.mayGotoDepth ?? 0) + 1;
  if (prev) widenImpreciseScalars(v, prev, queued.frames, idx + 1);
  v.pushState(queued, idx + 1);
  v.insnIdx = idx + insn.off + 1;
}

/** Is the iterator r1 points to active (the loop body can run again)? */
export function iterActive(v: Verifier, r1: RegState): boolean {
  return baseType(r1.type) === PTR_TO_STACK && iterOf(v.cur.frames, r1)?.iter?.active === true;
}

/** print_verifier_state for an iterator's first slot: "iter_num(ref_id=1,state=active,depth=0)". */
export function iterSlotStr(v: Verifier, s: StackSlot): string | undefined {
  if (!s.iter?.refObjId) return undefined;
  const st = s.iter.active ? "active" : "drained";
  return `iter_${iterTypeStr(v, s.iter.btfId)}(ref_id=${s.iter.refObjId},state=${st},depth=${s.iter.depth})`;
}
