import { BPF_REG_10 } from "../isa/opcodes.js";
import { MAX_BPF_STACK } from "../uapi/bpf.js";
import { EACCES, EINVAL } from "../uapi/errno.js";
import { destroyIfDynptrStackSlot } from "./dynptr.js";
import {
  assignScalarIdBeforeMov,
  copyReg,
  isPointer,
  markRegKnown,
  type RegState,
  regWidth,
  SCALAR_VALUE,
} from "./reg_state.js";
import {
  BPF_REG_SIZE,
  newSlot,
  STACK_DYNPTR,
  STACK_INVALID,
  STACK_MISC,
  STACK_SPILL,
  STACK_ZERO,
  type StackSlot,
  spiOf,
} from "./stack.js";
import type { FuncState } from "./state.js";
import { tnumAdd, tnumConst, tnumIsConst, tnumStr } from "./tnum.js";

import type { Verifier } from "./verifier.js";

/** BPF_MAX_VAR_OFF: a variable offset beyond it is unbounded. */
const BPF_MAX_VAR_OFF = 1n << 29n;

/** The slot at `spi` of frame f, about to be written (so it is shown in the state comment). */
export function stackSlot(v: Verifier, f: FuncState, spi: number) {
  let s = f.stack[spi];
  if (!s) {
    for (let i = f.stack.length; i <= spi; i++) if (!f.stack[i]) f.stack[i] = newSlot();
    s = f.stack[spi];
  }
  if (f === v.frame) v.scratchedSlots.add(spi);
  return s;
}

export function checkStackAccess(
  v: Verifier,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  write: boolean,
  value: RegState | undefined,
  imm: bigint | undefined,
  out: RegState,
): RegState {
  // check_ptr_alignment: stack accesses are always strict, as slot tracking relies on it.
  if (size > 1) {
    const at = tnumAdd(reg.varOff, tnumConst(BigInt(reg.off + off)));
    if (((at.value | at.mask) & BigInt(size - 1)) !== 0n) {
      const vo = tnumIsConst(reg.varOff) ? `${BigInt.asIntN(64, reg.varOff.value)}` : tnumStr(reg.varOff);
      v.reject(EACCES, `misaligned stack access off ${vo}+${reg.off}+${off} size ${size}`);
    }
  }
  const f = v.cur.frames[reg.frameno];
  let minOff: number;
  let maxOff: number;
  const constOff = tnumIsConst(reg.varOff);
  if (constOff) {
    minOff = maxOff = reg.off + off + Number(BigInt.asIntN(64, reg.varOff.value));
  } else {
    if (!v.privileged) v.reject(EACCES, `R${regno} variable stack access prohibited for !root`);
    minOff = Number(reg.smin) + reg.off + off;
    maxOff = Number(reg.smax) + reg.off + off;
  }
  stackAccessWithinBounds(v, regno, reg, reg.off + off, minOff, maxOff + size, size, write);
  const sub = f.subprog;
  if (v.stackDepth[sub] < -minOff) v.stackDepth[sub] = -minOff;
  if (write) {
    if (regno !== BPF_REG_10) v.precision.stackViaPointer(v.insnIdx, true);
    if (!constOff) {
      // check_stack_write_var_off: every dynptr the range touches is destroyed first.
      for (let o = minOff; o < maxOff + size; o++) destroyIfDynptrStackSlot(v, f, spiOf(o)[0]);
      for (let o = minOff; o < maxOff + size; o++) {
        const [spi, b] = spiOf(o);
        const s = stackSlot(v, f, spi);
        s.slotType[b] = STACK_MISC;
        s.spilledPtr = null;
        for (let j = 0; j < BPF_REG_SIZE; j++) if (s.slotType[j] === STACK_SPILL) s.slotType[j] = STACK_MISC;
      }
      return out;
    }
    stackWrite(v, f, minOff, size, value, imm);
    return out;
  }
  // read
  if (regno !== BPF_REG_10) {
    v.stackLive.markWild(v.insnIdx);
    v.precision.stackViaPointer(v.insnIdx, false);
  }
  if (!constOff) {
    for (let o = minOff; o < maxOff + size; o++) {
      const [spi, b] = spiOf(o);
      const t = f.stack[spi]?.slotType[b] ?? STACK_INVALID;
      if ((t === STACK_INVALID && !v.allowPtrLeaks) || t === STACK_DYNPTR)
        v.reject(
          EACCES,
          `invalid variable-offset read from stack R${regno} var_off=${tnumStr(reg.varOff)} off=${off} size=${size}`,
        );
    }
    return out;
  }
  return stackRead(v, f, minOff, size, out);
}

export function stackWrite(
  v: Verifier,
  f: FuncState,
  off: number,
  size: number,
  value: RegState | undefined,
  imm: bigint | undefined,
): void {
  const [spi, b] = spiOf(off);
  // check_stack_write_fixed_off: a write to either slot of a dynptr destroys it.
  destroyIfDynptrStackSlot(v, f, spi);
  const old = f.stack[spi];
  if (!v.allowPtrLeaks && old && isSpilled(old) && old.spilledPtr?.type !== SCALAR_VALUE && size !== BPF_REG_SIZE)
    v.reject(EACCES, "attempt to corrupt spilled pointer on stack");
  // check_stack_write_fixed_off: a scalar written at a slot boundary is spilled whatever its
  // size (its register state kept, the low `size` bytes marked spilled), so is a constant stored
  // by BPF_ST; a pointer only whole.
  let spill: RegState | undefined;
  if (b === 0 && v.privileged && value?.type === SCALAR_VALUE) {
    if (regWidth(value) <= size * 8) assignScalarIdBeforeMov(value, () => v.newId());
    spill = copyReg(value);
    // A narrowing spill keeps no relation with the register.
    if (regWidth(value) > size * 8) spill.id = 0;
  } else if (b === 0 && v.privileged && !value && imm !== undefined) {
    spill = copyReg(f.regs[0]);
    markRegKnown(spill, imm);
  } else if (value && isPointer(value)) {
    if (size !== BPF_REG_SIZE) v.reject(EACCES, "invalid size of register spill");
    spill = copyReg(value);
  }
  if (spill) {
    const s = stackSlot(v, f, spi);
    for (let j = 0; j < BPF_REG_SIZE; j++) {
      if (j < size) s.slotType[j] = STACK_SPILL;
      // mark_stack_slot_misc: the bytes above a narrow spill keep zero and invalid bytes.
      else if (s.slotType[j] !== STACK_ZERO && s.slotType[j] !== STACK_INVALID) s.slotType[j] = STACK_MISC;
    }
    s.written = true;
    s.spilledPtr = spill;
    s.spilledPtr.written = false;
    return;
  }
  // Only a whole-slot write counts as writing the slot (a partial one keeps the rest's liveness).
  if (size === BPF_REG_SIZE && b === 0) stackSlot(v, f, spi).written = true;
  const zero =
    (imm !== undefined && imm === 0n) ||
    (value !== undefined && value.type === SCALAR_VALUE && tnumIsConst(value.varOff) && value.varOff.value === 0n);
  for (let o = off; o < off + size; o++) {
    const [si, bi] = spiOf(o);
    const s = stackSlot(v, f, si);
    if (s.spilledPtr) {
      for (let j = 0; j < BPF_REG_SIZE; j++) if (s.slotType[j] === STACK_SPILL) s.slotType[j] = STACK_MISC;
      s.spilledPtr = null;
    }
    s.slotType[bi] = zero ? STACK_ZERO : STACK_MISC;
  }
}

/** is_spilled_reg: the slot's lowest byte holds part of a spilled register. */
export function isSpilled(s: StackSlot): boolean {
  return s.slotType[0] === STACK_SPILL && s.spilledPtr !== null;
}

/** How many bytes of the slot, from its base, the spill covers. */
export function spillSize(s: StackSlot): number {
  let n = 0;
  while (n < BPF_REG_SIZE && s.slotType[n] === STACK_SPILL) n++;
  return n;
}

export function stackRead(v: Verifier, f: FuncState, off: number, size: number, out: RegState): RegState {
  const [spi, b] = spiOf(off);
  const s = f.stack[spi];
  if (f === v.frame) v.scratchedSlots.add(spi);
  if (s && isSpilled(s)) {
    const spilled = s.spilledPtr as RegState;
    const n = spillSize(s);
    if (size === BPF_REG_SIZE && n === BPF_REG_SIZE) return copyReg(spilled);
    if (spilled.type !== SCALAR_VALUE) v.reject(EACCES, "invalid size of register fill");
    // check_stack_read_fixed_off: the low part of a spilled scalar fills the register with its
    // state (the load narrows it after); the relation breaks when the value does not fit.
    if (size <= n && b === 0) {
      if (v.privileged && size === 4 && n === 4 && regWidth(spilled) <= 32)
        assignScalarIdBeforeMov(spilled, () => v.newId());
      const r = copyReg(spilled);
      if (regWidth(spilled) > size * 8) r.id = 0;
      return r;
    }
    let spillCnt = 0;
    let zeroCnt = 0;
    for (let i = b; i < b + size; i++) {
      const t = s.slotType[i];
      if (t === STACK_SPILL) spillCnt++;
      else if (t === STACK_ZERO) zeroCnt++;
      else if (t === STACK_INVALID && !v.allowPtrLeaks)
        v.reject(EACCES, `invalid read from stack off ${off}+${i - b} size ${size}`);
    }
    const zeroSpill = tnumIsConst(spilled.varOff) && spilled.varOff.value === 0n;
    if ((spillCnt === size && zeroSpill) || zeroCnt === size) markRegKnown(out, 0n);
    return out;
  }
  let allZero = true;
  for (let i = 0; i < size; i++) {
    const [si, bi] = spiOf(off + i);
    const t = f.stack[si]?.slotType[bi] ?? STACK_INVALID;
    // allow_uninit_stack (CAP_PERFMON): never-written bytes read as unknown; a dynptr's never.
    if ((t === STACK_INVALID && !v.allowPtrLeaks) || t === STACK_DYNPTR)
      v.reject(EACCES, `invalid read from stack off ${off}+${i} size ${size}`);
    if (t !== STACK_ZERO) allZero = false;
  }
  if (allZero) markRegKnown(out, 0n);
  return out;
}

/**
 * check_stack_access_within_bounds: [minOff, end) must lie in the stack. A start below it or at a
 * non-negative offset is EACCES (check_stack_slot_within_bounds), an end above it EINVAL.
 */
function stackAccessWithinBounds(
  v: Verifier,
  regno: number,
  reg: RegState,
  off: number,
  minOff: number,
  end: number,
  size: number,
  write: boolean,
): void {
  const extra = write ? " write to" : " read from";
  const constOff = tnumIsConst(reg.varOff);
  if (!constOff && (reg.smax >= BPF_MAX_VAR_OFF || reg.smin <= -BPF_MAX_VAR_OFF))
    v.reject(EACCES, `invalid unbounded variable-offset${extra} stack R${regno}`);
  let err = 0;
  if (minOff < -MAX_BPF_STACK || minOff > -1) err = EACCES;
  else if (end > 0 || size < 0) err = EINVAL;
  if (!err) return;
  if (constOff) v.reject(err, `invalid${extra} stack R${regno} off=${off} size=${size}`);
  v.reject(
    err,
    `invalid variable-offset${extra} stack R${regno} var_off=${tnumStr(reg.varOff)} off=${off} size=${size}`,
  );
}

/** Mark `size` bytes at a stack pointer written by a helper (ARG_PTR_TO_UNINIT_MEM). */
export function markStackWritten(v: Verifier, reg: RegState, size: number): void {
  const f = v.cur.frames[reg.frameno];
  const base = reg.off + Number(BigInt.asIntN(64, reg.varOff.value));
  for (let o = base; o < base + size; o++) {
    const [si, bi] = spiOf(o);
    const s = stackSlot(v, f, si);
    if (s.spilledPtr) {
      for (let j = 0; j < BPF_REG_SIZE; j++) if (s.slotType[j] === STACK_SPILL) s.slotType[j] = STACK_MISC;
      s.spilledPtr = null;
    }
    s.slotType[bi] = STACK_MISC;
  }
}

/** check_helper_mem_access on the stack: `size` bytes initialised (reads) or in bounds (writes). */
export function checkStackRange(v: Verifier, regno: number, reg: RegState, size: number, write: boolean): void {
  if (!tnumIsConst(reg.varOff)) v.reject(EACCES, `R${regno} variable stack access prohibited for !root`);
  const f = v.cur.frames[reg.frameno];
  const off = reg.off + Number(BigInt.asIntN(64, reg.varOff.value));
  stackAccessWithinBounds(v, regno, reg, reg.off, off, off + size, size, write);
  if (v.stackDepth[f.subprog] < -off) v.stackDepth[f.subprog] = -off;
  if (write) {
    // raw_mode: a helper filling the memory may not write over a dynptr.
    for (let i = off; i < off + size; i++) {
      const [si, bi] = spiOf(i);
      if (f.stack[si]?.slotType[bi] === STACK_DYNPTR)
        v.reject(EACCES, `potential write to dynptr at off=${i} disallowed`);
    }
    return;
  }
  for (let i = 0; i < size; i++) {
    const [si, bi] = spiOf(off + i);
    const t = f.stack[si]?.slotType[bi] ?? STACK_INVALID;
    if ((t === STACK_INVALID && !v.allowPtrLeaks) || t === STACK_DYNPTR) {
      // 6.18's check_helper_mem_access hands its BPF_READ over as the access source (ACCESS_DIRECT):
      // the message has no " indirect".
      v.reject(EACCES, `invalid read from stack R${regno} off ${off}+${i} size ${size}`);
    }
  }
}

// ---- atomics (check_atomic) ----
