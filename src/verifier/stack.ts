/**
 * The BPF stack of one frame (struct bpf_stack_state): 8-byte slots, each byte STACK_INVALID
 * (never written), STACK_MISC (some scalar bytes), STACK_ZERO (known zero) or STACK_SPILL (part of
 * a register spilled whole, whose full state is kept).
 */
import { copyReg, type RegState } from "./reg_state.js";

export const STACK_INVALID = 0;
export const STACK_SPILL = 1;
export const STACK_MISC = 2;
export const STACK_ZERO = 3;
/** Part of an open-coded iterator (struct bpf_iter_*) living on the stack. */
export const STACK_ITER = 4;
/** Part of a struct bpf_dynptr living on the stack (two slots, src/verifier/dynptr.ts). */
export const STACK_DYNPTR = 5;
export const BPF_REG_SIZE = 8;

export interface StackSlot {
  /** slotType[j] describes byte (slot base + j), slot base = -(spi + 1) * 8. */
  slotType: number[];
  spilledPtr: RegState | null;
  /** Written since the last checkpoint (printed as "fp-8_w"). */
  written: boolean;
  /** STACK_ITER slots: the iterator (its first slot holds the reference). */
  iter?: IterState;
  /** STACK_DYNPTR slots: the dynptr (both slots carry it; `first` marks the one at its address). */
  dynptr?: DynptrState;
}

/** A dynptr's state (bpf_reg_state.dynptr with its id and ref_obj_id). */
export interface DynptrState {
  /** enum bpf_dynptr_type. */
  type: number;
  first: boolean;
  id: number;
  /** A ringbuf dynptr's reference (0 for the others). */
  refObjId: number;
}

/** An iterator's state (bpf_reg_state.iter): its type, active or drained, loop depth. */
export interface IterState {
  btfId: number;
  refObjId: number;
  active: boolean;
  depth: number;
  /** Created by a KF_RCU_PROTECTED new (the reg's MEM_RCU): what next returns is an RCU pointer. */
  rcu?: boolean;
}

export function newSlot(): StackSlot {
  return { slotType: [0, 0, 0, 0, 0, 0, 0, 0], spilledPtr: null, written: false };
}

export function copySlot(s: StackSlot): StackSlot {
  const c: StackSlot = {
    slotType: s.slotType.slice(),
    spilledPtr: s.spilledPtr ? copyReg(s.spilledPtr) : null,
    written: s.written,
  };
  if (s.iter) c.iter = { ...s.iter };
  if (s.dynptr) c.dynptr = { ...s.dynptr };
  return c;
}

/** Slot index and byte within it of stack offset `off` (negative, from the frame pointer). */
export function spiOf(off: number): [number, number] {
  const spi = Math.floor((-off - 1) / BPF_REG_SIZE);
  const byte = off + (spi + 1) * BPF_REG_SIZE;
  return [spi, byte];
}

/** Printable slot contents (print_verifier_state's "fp-8=mmmmmmmm"): bytes high to low. */
export function slotStr(s: StackSlot): string {
  const ch = ["?", "r", "m", "0", "i", "d"];
  let out = "";
  for (let j = BPF_REG_SIZE - 1; j >= 0; j--) out += ch[s.slotType[j]];
  return out;
}
