/**
 * Dynptrs (kernel/bpf/verifier.c: stack_slot_obj_get_spi, mark_stack_slots_dynptr,
 * destroy_if_dynptr_stack_slot, is_dynptr_reg_valid_uninit/init, process_dynptr_func, the
 * KF_ARG_PTR_TO_DYNPTR case of check_kfunc_args and the bpf_dynptr_slice(_rdwr) return): a
 * 16-byte `struct bpf_dynptr` on the stack is two STACK_DYNPTR slots carrying its type and id
 * (a ringbuf one its reference). Writing to either slot destroys it and invalidates the
 * bpf_dynptr_data slices taken from it; reading its bytes is refused.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfFuncProto } from "../btf/types.js";
import { bpf_prog_type } from "../uapi/bpf.js";
import { BTF_KIND_ENUM, BTF_KIND_ENUM64, BTF_KIND_INT, BTF_KIND_PTR, BTF_KIND_STRUCT } from "../uapi/btf.js";
import { EACCES, EFAULT, EINVAL } from "../uapi/errno.js";
import { btfName, btfSkipModifiers, btfStructIdsMatch } from "./btf_access.js";
import { KF_ACQUIRE, KF_RET_NULL, KF_TRUSTED_ARGS } from "./env.js";
import { ARG_MEM_RDONLY, ARG_MEM_UNINIT } from "./helper_protos.js";
import { checkHelperMem } from "./helpers.js";
import { clearAllPktPointers } from "./packet.js";
import { acquireReference, forEachReg, markRegInvalid, releaseReference } from "./refs.js";
import {
  baseType,
  CONST_PTR_TO_DYNPTR,
  DYNPTR_TYPE_FLAG_MASK,
  DYNPTR_TYPE_LOCAL,
  DYNPTR_TYPE_RINGBUF,
  DYNPTR_TYPE_SKB,
  DYNPTR_TYPE_XDP,
  hasUnsafeModifiers,
  isPointer,
  isTrustedReg,
  MEM_RDONLY,
  markPtr,
  markRegNotInit,
  markRegUnknown,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_CTX,
  PTR_TO_MEM,
  PTR_TO_STACK,
  type RegState,
  regTypeStr,
  SCALAR_VALUE,
} from "./reg_state.js";
import { BPF_REG_SIZE, STACK_DYNPTR, STACK_INVALID, type StackSlot } from "./stack.js";
import { stackSlot } from "./stack_access.js";
import type { FuncState } from "./state.js";
import { tnumIsConst } from "./tnum.js";
import type { Verifier } from "./verifier.js";

/** enum bpf_dynptr_type. */
export const BPF_DYNPTR_TYPE_INVALID = 0;
export const BPF_DYNPTR_TYPE_LOCAL = 1;
export const BPF_DYNPTR_TYPE_RINGBUF = 2;
export const BPF_DYNPTR_TYPE_SKB = 3;
export const BPF_DYNPTR_TYPE_XDP = 4;
export const BPF_DYNPTR_NR_SLOTS = 2;
export const BPF_DYNPTR_SIZE = 16;

/** ARG_PTR_TO_DYNPTR's type flags (DYNPTR_TYPE_* on an argument), as the register flags. */
const TYPE_FLAGS: readonly [number, number][] = [
  [DYNPTR_TYPE_LOCAL, BPF_DYNPTR_TYPE_LOCAL],
  [DYNPTR_TYPE_RINGBUF, BPF_DYNPTR_TYPE_RINGBUF],
  [DYNPTR_TYPE_SKB, BPF_DYNPTR_TYPE_SKB],
  [DYNPTR_TYPE_XDP, BPF_DYNPTR_TYPE_XDP],
];

/** arg_to_dynptr_type. */
export function argToDynptrType(argType: number): number {
  const f = argType & DYNPTR_TYPE_FLAG_MASK;
  return TYPE_FLAGS.find(([flag]) => flag === f)?.[1] ?? BPF_DYNPTR_TYPE_INVALID;
}

/** get_dynptr_type_flag. */
export function dynptrTypeFlag(type: number): number {
  return TYPE_FLAGS.find(([, t]) => t === type)?.[0] ?? 0;
}

/** dynptr_type_str. */
export function dynptrTypeStr(type: number): string {
  return ["<invalid>", "local", "ringbuf", "skb", "xdp", "skb_meta", "file"][type] ?? "<invalid>";
}

const refcounted = (type: number): boolean => type === BPF_DYNPTR_TYPE_RINGBUF;

const ERANGE = -2;
const EINVAL_SPI = -1;

/**
 * dynptr_get_spi (stack_slot_obj_get_spi with "dynptr", 2 slots): the first slot's index, or
 * EINVAL_SPI after logging why, or ERANGE where the slots lie beyond the stack allocated so far.
 */
function dynptrGetSpi(v: Verifier, reg: RegState): number {
  if (!tnumIsConst(reg.varOff)) {
    v.note("dynptr has to be at a constant offset");
    return EINVAL_SPI;
  }
  const off = reg.off + Number(BigInt.asIntN(64, reg.varOff.value));
  if (off % BPF_REG_SIZE !== 0) {
    v.note(`cannot pass in dynptr at an offset=${off}`);
    return EINVAL_SPI;
  }
  // __get_spi: C division truncates toward zero.
  const spi = Math.trunc((-off - 1) / BPF_REG_SIZE);
  if (spi + 1 < BPF_DYNPTR_NR_SLOTS) {
    v.note(`cannot pass in dynptr at an offset=${off}`);
    return EINVAL_SPI;
  }
  const f = v.cur.frames[reg.frameno];
  if (spi - BPF_DYNPTR_NR_SLOTS + 1 < 0 || spi >= f.stack.length) return ERANGE;
  return spi;
}

/** The first slot of the dynptr a stack pointer points to (the caller checked it is one). */
function firstSlot(v: Verifier, reg: RegState): StackSlot | undefined {
  const off = reg.off + Number(BigInt.asIntN(64, reg.varOff.value));
  return v.cur.frames[reg.frameno].stack[Math.trunc((-off - 1) / BPF_REG_SIZE)];
}

/**
 * destroy_if_dynptr_stack_slot: a write touching either slot of an unreferenced dynptr destroys
 * it (both slots become STACK_INVALID) and invalidates its bpf_dynptr_data slices; a referenced
 * one may not be overwritten.
 */
export function destroyIfDynptrStackSlot(v: Verifier, f: FuncState, spi: number): void {
  let s = f.stack[spi];
  if (!s || s.slotType[0] !== STACK_DYNPTR || !s.dynptr) return;
  if (!s.dynptr.first) {
    spi++;
    s = f.stack[spi];
  }
  const d = s.dynptr as NonNullable<StackSlot["dynptr"]>;
  if (refcounted(d.type)) v.reject(EINVAL, "cannot overwrite referenced dynptr");
  for (const i of [spi, spi - 1]) {
    const slot = stackSlot(v, f, i);
    slot.slotType.fill(STACK_INVALID);
    slot.dynptr = undefined;
    slot.spilledPtr = null;
    slot.written = true;
  }
  // Only bpf_dynptr_data slices (PTR_TO_MEM, maybe NULL, no other flag) are tied to the dynptr here.
  forEachReg(v.cur, (r) => {
    if (r.type !== PTR_TO_MEM && r.type !== (PTR_TO_MEM | PTR_MAYBE_NULL)) return;
    if (r.dynptrId === d.id) markRegInvalid(v, r);
  });
}

/** invalidate_dynptr: both slots of the dynptr at `spi` become STACK_INVALID. */
function invalidateDynptr(v: Verifier, f: FuncState, spi: number): void {
  for (const i of [spi, spi - 1]) {
    const slot = stackSlot(v, f, i);
    slot.slotType.fill(STACK_INVALID);
    slot.dynptr = undefined;
    slot.spilledPtr = null;
    slot.written = true;
  }
}

/**
 * check_func_arg's OBJ_RELEASE case for a dynptr: only one on the stack holding a reference (a
 * ringbuf one) may be released; a callback's const dynptr never.
 */
export function checkDynptrRelease(v: Verifier, regno: number, reg: RegState): void {
  if (reg.type !== PTR_TO_STACK) v.reject(EINVAL, "cannot release unowned const bpf_dynptr");
  const spi = dynptrGetSpi(v, reg);
  if (spi < 0 || !v.cur.frames[reg.frameno].stack[spi]?.dynptr?.refObjId)
    v.reject(EINVAL, `arg ${regno} is an unacquired reference`);
}

/**
 * unmark_stack_slots_dynptr: the released dynptr goes; for a referenced one the reference is
 * released (its slices go with it) and so is every clone sharing it. False when there is none.
 */
export function unmarkStackSlotsDynptr(v: Verifier, reg: RegState): boolean {
  const spi = dynptrGetSpi(v, reg);
  if (spi < 0) return false;
  const f = v.cur.frames[reg.frameno];
  const d = f.stack[spi]?.dynptr;
  if (!d) return false;
  if (!refcounted(d.type)) {
    invalidateDynptr(v, f, spi);
    return true;
  }
  const ref = d.refObjId;
  if (!releaseReference(v, ref)) return false;
  for (let i = 1; i < f.stack.length; i++) {
    const s = f.stack[i]?.dynptr;
    if (s?.first && s.refObjId === ref) invalidateDynptr(v, f, i);
  }
  return true;
}

/** mark_stack_slots_dynptr: the two slots become a new dynptr of the argument's type. */
function markStackSlotsDynptr(v: Verifier, reg: RegState, argType: number, cloneRefObjId: number): void {
  const f = v.cur.frames[reg.frameno];
  const off = reg.off + Number(BigInt.asIntN(64, reg.varOff.value));
  const spi = Math.trunc((-off - 1) / BPF_REG_SIZE);
  destroyIfDynptrStackSlot(v, f, spi);
  destroyIfDynptrStackSlot(v, f, spi - 1);
  const type = argToDynptrType(argType);
  if (type === BPF_DYNPTR_TYPE_INVALID) v.reject(EINVAL, "verifier internal error: invalid dynptr type");
  const id = v.newId();
  let refObjId = 0;
  if (refcounted(type)) refObjId = cloneRefObjId || acquireReference(v);
  for (const i of [spi, spi - 1]) {
    const s = stackSlot(v, f, i);
    s.slotType.fill(STACK_DYNPTR);
    s.spilledPtr = null;
    s.iter = undefined;
    s.written = true;
    s.dynptr = { type, first: i === spi, id, refObjId };
  }
}

/** is_dynptr_reg_valid_init: a whole dynptr starts exactly here. */
function isDynptrRegValidInit(v: Verifier, reg: RegState): boolean {
  if (baseType(reg.type) === CONST_PTR_TO_DYNPTR) return true;
  const spi = dynptrGetSpi(v, reg);
  if (spi < 0) return false;
  const f = v.cur.frames[reg.frameno];
  const a = f.stack[spi];
  const b = f.stack[spi - 1];
  if (!a?.dynptr?.first || !b) return false;
  return a.slotType.every((t) => t === STACK_DYNPTR) && b.slotType.every((t) => t === STACK_DYNPTR);
}

/** The type of the initialized dynptr `reg` points to (dynptr_get_type). */
function dynptrType(v: Verifier, reg: RegState): number {
  if (baseType(reg.type) === CONST_PTR_TO_DYNPTR) return argToDynptrType(reg.type);
  return firstSlot(v, reg)?.dynptr?.type ?? BPF_DYNPTR_TYPE_INVALID;
}

/** dynptr_id / dynptr_ref_obj_id of an initialized dynptr. */
function dynptrIds(v: Verifier, reg: RegState): { id: number; refObjId: number } {
  if (baseType(reg.type) === CONST_PTR_TO_DYNPTR) return { id: reg.id, refObjId: reg.refObjId };
  const d = firstSlot(v, reg)?.dynptr;
  return { id: d?.id ?? 0, refObjId: d?.refObjId ?? 0 };
}

/** The dynptr a checked argument points to: what a slice or a clone inherits. */
export interface InitializedDynptr {
  type: number;
  id: number;
  refObjId: number;
}

/**
 * process_dynptr_func: MEM_UNINIT makes the stack slots a new dynptr (after the bounds check of
 * its two 8-byte writes); otherwise the argument must be an initialized dynptr of the expected type.
 */
export function processDynptrFunc(
  v: Verifier,
  regno: number,
  argType: number,
  cloneRefObjId = 0,
): InitializedDynptr | undefined {
  const reg = v.regs[regno];
  if (reg.type !== PTR_TO_STACK && baseType(reg.type) !== CONST_PTR_TO_DYNPTR)
    v.reject(EINVAL, `arg#${regno - 1} expected pointer to stack or const struct bpf_dynptr`);
  if ((argType & (ARG_MEM_UNINIT | ARG_MEM_RDONLY)) === (ARG_MEM_UNINIT | ARG_MEM_RDONLY))
    v.reject(EFAULT, "verifier internal error: misconfigured dynptr helper type flags");
  if (argType & ARG_MEM_UNINIT) {
    // is_dynptr_reg_valid_uninit: slots not yet allocated are fine (the writes grow the stack).
    const spi = baseType(reg.type) === CONST_PTR_TO_DYNPTR ? EINVAL_SPI : dynptrGetSpi(v, reg);
    if (spi === EINVAL_SPI) v.reject(EINVAL, "Dynptr has to be an uninitialized dynptr");
    // check_mem_access of each 8-byte half as a write: the stack's bounds, before it grows.
    const f = v.cur.frames[reg.frameno];
    for (let i = 0; i < BPF_DYNPTR_SIZE; i += BPF_REG_SIZE) {
      const off = reg.off + i + Number(BigInt.asIntN(64, reg.varOff.value));
      if (off < -512 || off + BPF_REG_SIZE > 0)
        v.reject(EACCES, `invalid write to stack R${regno} off=${reg.off + i} size=${BPF_REG_SIZE}`);
      if (v.stackDepth[f.subprog] < -off) v.stackDepth[f.subprog] = -off;
      destroyIfDynptrStackSlot(v, f, Math.trunc((-off - 1) / BPF_REG_SIZE));
    }
    markStackSlotsDynptr(v, reg, argType, cloneRefObjId);
    return undefined;
  }
  if (baseType(reg.type) === CONST_PTR_TO_DYNPTR && !(argType & ARG_MEM_RDONLY))
    v.reject(EINVAL, "cannot pass pointer to const bpf_dynptr, the helper mutates it");
  if (!isDynptrRegValidInit(v, reg)) v.reject(EINVAL, `Expected an initialized dynptr as arg #${regno - 1}`);
  const want = argToDynptrType(argType);
  const type = dynptrType(v, reg);
  if (want !== BPF_DYNPTR_TYPE_INVALID && type !== want)
    v.reject(EINVAL, `Expected a dynptr of type ${dynptrTypeStr(want)} as arg #${regno - 1}`);
  return { type, ...dynptrIds(v, reg) };
}

/** print_verifier_state of a dynptr, at its first slot: "dynptr_local(id=2)". */
export function dynptrSlotStr(s: StackSlot): string | undefined {
  const d = s.dynptr;
  if (!d?.first) return undefined;
  // The kernel's slot register carries the dynptr's id twice: as its id and as its dynptr_id.
  const attrs = [`id=${d.id}`];
  if (d.refObjId) attrs.push(`ref_id=${d.refObjId}`);
  attrs.push(`dynptr_id=${d.id}`);
  return `dynptr_${dynptrTypeStr(d.type)}(${attrs.join(",")})`;
}

/** stacksafe's STACK_DYNPTR case: the same type and slot, the reference up to renaming. */
export function dynptrSlotsEqual(
  o: StackSlot,
  c: StackSlot | undefined,
  checkIds: (a: number, b: number) => boolean,
): boolean {
  const od = o.dynptr;
  if (!od) return true;
  const cd = c?.dynptr;
  return !!cd && cd.type === od.type && cd.first === od.first && checkIds(od.refObjId, cd.refObjId);
}

// ---- kfuncs ----

/** The dynptr kfuncs of kernel/bpf/helpers.c and net/core/filter.c this verifier knows by name. */
const DYNPTR_KFUNCS = new Set([
  "bpf_dynptr_from_skb",
  "bpf_dynptr_slice",
  "bpf_dynptr_slice_rdwr",
  "bpf_dynptr_adjust",
  "bpf_dynptr_is_null",
  "bpf_dynptr_is_rdonly",
  "bpf_dynptr_size",
  "bpf_dynptr_clone",
]);

export function isDynptrKfunc(name: string): boolean {
  return DYNPTR_KFUNCS.has(name);
}

/** Program types whose context is `struct __sk_buff` (bpf_ctx_convert's __sk_buff entries). */
const SKB_CTX_PROGS: readonly number[] = [
  bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER,
  bpf_prog_type.BPF_PROG_TYPE_SCHED_CLS,
  bpf_prog_type.BPF_PROG_TYPE_SCHED_ACT,
  bpf_prog_type.BPF_PROG_TYPE_CGROUP_SKB,
  bpf_prog_type.BPF_PROG_TYPE_LWT_IN,
  bpf_prog_type.BPF_PROG_TYPE_LWT_OUT,
  bpf_prog_type.BPF_PROG_TYPE_LWT_XMIT,
  bpf_prog_type.BPF_PROG_TYPE_LWT_SEG6LOCAL,
  bpf_prog_type.BPF_PROG_TYPE_SK_SKB,
];

/** may_access_direct_pkt_data(env, NULL, BPF_WRITE): program types that may write packet data. */
const PKT_WRITE_PROGS: readonly number[] = [
  bpf_prog_type.BPF_PROG_TYPE_SCHED_CLS,
  bpf_prog_type.BPF_PROG_TYPE_SCHED_ACT,
  bpf_prog_type.BPF_PROG_TYPE_XDP,
  bpf_prog_type.BPF_PROG_TYPE_LWT_XMIT,
  bpf_prog_type.BPF_PROG_TYPE_SK_SKB,
  bpf_prog_type.BPF_PROG_TYPE_SK_MSG,
];

/** An skb dynptr of this program type is read-only (bpf_dynptr_from_skb_rdonly is called instead). */
export function skbDynptrRdonly(progType: number): boolean {
  return !PKT_WRITE_PROGS.includes(progType);
}

/** btf_is_projection_of: a kfunc taking `struct __sk_buff *` accepts the `struct sk_buff` it stands for. */
function isProjectionOf(pname: string, tname: string): boolean {
  return (pname === "__sk_buff" && tname === "sk_buff") || (pname === "xdp_md" && tname === "xdp_buff");
}

const isNullScalar = (r: RegState): boolean =>
  r.type === SCALAR_VALUE && tnumIsConst(r.varOff) && r.varOff.value === 0n;

/**
 * check_kfunc_args and check_kfunc_call for the dynptr kfuncs: a `struct bpf_dynptr *` argument
 * (KF_ARG_PTR_TO_DYNPTR, `__uninit` for a new one), bpf_dynptr_from_skb's context (or, from a
 * struct_ops program, a trusted `struct sk_buff`), the slices' buffer and constant size
 * (`buffer__opt`, `buffer__szk`), and r0: an int, or the slice, PTR_TO_MEM of that size.
 */
export function checkDynptrKfuncCall(v: Verifier, name: string, btf: Btf, flags: number, proto: BtfFuncProto): void {
  let initialized: InitializedDynptr | undefined;
  let constSize: number | undefined;
  const params = proto.params;
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    const regno = i + 1;
    const reg = v.readReg(regno);
    const [, t] = btfSkipModifiers(btf, p.type);
    if (t.kind === BTF_KIND_INT || t.kind === BTF_KIND_ENUM || t.kind === BTF_KIND_ENUM64) {
      if (reg.type !== SCALAR_VALUE) v.reject(EINVAL, `R${regno} is not a scalar`);
      continue;
    }
    if (t.kind !== BTF_KIND_PTR) v.reject(EINVAL, `Unrecognized arg#${i} type`);
    const [refId, ref] = btfSkipModifiers(btf, t.type);
    if (flags & KF_TRUSTED_ARGS && (isNullScalar(reg) || reg.type & PTR_MAYBE_NULL))
      v.reject(EACCES, `Possibly NULL pointer passed to trusted arg${i}`);
    if (ref.kind === BTF_KIND_STRUCT && ref.name === "bpf_dynptr") {
      let argType = 0;
      if (baseType(reg.type) === CONST_PTR_TO_DYNPTR) argType |= ARG_MEM_RDONLY;
      if (p.name.endsWith("__uninit")) argType |= ARG_MEM_UNINIT;
      let cloneRef = 0;
      if (name === "bpf_dynptr_from_skb") argType |= DYNPTR_TYPE_SKB;
      else if (name === "bpf_dynptr_clone" && argType & ARG_MEM_UNINIT && initialized) {
        argType |= dynptrTypeFlag(initialized.type);
        cloneRef = initialized.refObjId;
      }
      const d = processDynptrFunc(v, regno, argType, cloneRef);
      if (d) initialized = d;
      continue;
    }
    if (ref.kind === BTF_KIND_STRUCT && (ref.name === "__sk_buff" || ref.name === "xdp_md")) {
      checkSkbArg(v, name, btf, reg, regno, i, refId, ref.name);
      continue;
    }
    // void *buffer__opt, u32 buffer__szk: memory of a constant size, or NULL.
    const sizeParam = params[i + 1];
    if (sizeParam?.name.endsWith("__szk")) {
      const sreg = v.readReg(regno + 1);
      if (!(isNullScalar(reg) && p.name.endsWith("__opt"))) checkMemSizePair(v, regno, reg, sreg, i);
      if (sreg.type !== SCALAR_VALUE || !tnumIsConst(sreg.varOff))
        v.reject(EINVAL, `R${regno + 1} must be a known constant`);
      constSize = Number(sreg.varOff.value);
      i++;
      continue;
    }
    if (!isPointer(reg)) v.reject(EINVAL, `arg#${i} pointer type must point to memory`);
  }

  for (let r = 1; r <= 5; r++) markRegNotInit(v.regs[r]);
  const r0 = v.writeReg(0);
  if (name === "bpf_dynptr_slice" || name === "bpf_dynptr_slice_rdwr") {
    if (constSize === undefined) v.reject(EFAULT, "verifier internal error: bpf_dynptr_slice(_rdwr) no constant size");
    const d = initialized as InitializedDynptr;
    markPtr(r0, PTR_TO_MEM | dynptrTypeFlag(d.type));
    r0.memSize = constSize;
    if (name === "bpf_dynptr_slice") r0.type |= MEM_RDONLY;
    else if (!PKT_WRITE_PROGS.includes(v.env.progType))
      v.reject(EINVAL, "the prog does not allow writes to packet data");
    r0.dynptrId = d.id;
    if (flags & KF_RET_NULL) {
      r0.type |= PTR_MAYBE_NULL;
      r0.id = v.newId();
    }
    r0.written = true;
    return;
  }
  if (flags & KF_ACQUIRE) v.reject(EINVAL, "acquire kernel function does not return PTR_TO_BTF_ID");
  // An int, bool or u32 result: an unknown scalar.
  if (proto.type === 0) markRegNotInit(r0);
  else markRegUnknown(r0);
  r0.written = true;
}

/** check_kfunc_mem_size_reg for a (buffer, size) pair: readable and writable memory of up to umax bytes. */
function checkMemSizePair(v: Verifier, regno: number, reg: RegState, sreg: RegState, i: number): void {
  const pair = `arg#${i} arg#${i + 1} memory, len pair leads to invalid memory access`;
  const fail = (msg: string): never => {
    v.note(msg);
    return v.reject(EACCES, pair);
  };
  if (sreg.type !== SCALAR_VALUE) fail(`R${regno + 1} is not a scalar`);
  if (sreg.smin < 0n) fail(`R${regno + 1} min value is negative, either use unsigned or 'var &= const'`);
  if (sreg.umax >= 1n << 29n) fail(`R${regno + 1} unbounded memory access, use 'var &= const' or 'if (var < const)'`);
  if (!isPointer(reg) || reg.type & PTR_MAYBE_NULL) {
    if (sreg.umax === 0n && isNullScalar(reg)) return;
    fail(`R${regno} type=${regTypeStr(reg.type)} expected=fp`);
  }
  v.precision.addSink(v.insnIdx, regno + 1);
  checkHelperMem(v, regno, reg, Number(sreg.umax), false);
  checkHelperMem(v, regno, reg, Number(sreg.umax), true);
}

/** bpf_dynptr_from_skb's first argument: the program's __sk_buff context, or a trusted sk_buff. */
function checkSkbArg(
  v: Verifier,
  name: string,
  btf: Btf,
  reg: RegState,
  regno: number,
  i: number,
  refId: number,
  refName: string,
): void {
  // KF_ARG_PTR_TO_CTX where the program's context is this struct (btf_is_prog_ctx_type).
  if (refName === "__sk_buff" && SKB_CTX_PROGS.includes(v.env.progType)) {
    if (reg.type !== PTR_TO_CTX) v.reject(EINVAL, `arg#${i} expected pointer to ctx, but got ${regTypeStr(reg.type)}`);
    if (reg.off !== 0 || !tnumIsConst(reg.varOff) || reg.varOff.value !== 0n)
      v.reject(EACCES, `dereference of modified ctx ptr R${regno} off=${reg.off} disallowed`);
    return;
  }
  if (baseType(reg.type) !== PTR_TO_BTF_ID) {
    if (!isPointer(reg))
      v.reject(EINVAL, `arg#${i} pointer type STRUCT ${refName} must point to scalar, or struct with scalar`);
    v.reject(EINVAL, `arg#${i} expected pointer to btf or socket`);
  }
  // KF_TRUSTED_ARGS (bpf_dynptr_from_skb is declared with it).
  if (!isTrustedReg(reg)) v.reject(EINVAL, `R${regno} must be referenced or trusted`);
  if (reg.off !== 0 || !tnumIsConst(reg.varOff) || reg.varOff.value !== 0n)
    v.reject(EACCES, `R${regno} must have zero offset when passed to release func or trusted arg to kfunc`);
  if (hasUnsafeModifiers(reg.type)) v.reject(EINVAL, `arg#${i} is ${regTypeStr(reg.type)} expected ptr_ or socket`);
  const have = v.btfName(reg.btfId);
  if (!btfStructIdsMatch(btf, reg.btfId, btfName(btf, refId)) && !isProjectionOf(refName, have))
    v.reject(
      EINVAL,
      `kernel function ${name} args#${i} expected pointer to STRUCT ${refName} but R${regno} has a pointer to STRUCT ${have}`,
    );
}

// ---- helpers ----

/** The dynptr argument a dynptr helper checked, for its return value and data changes. */
export interface DynptrHelperMeta {
  dynptr?: InitializedDynptr;
}

/**
 * After the arguments of a helper taking a dynptr: bpf_dynptr_write to an skb dynptr may move
 * packet data (clear_all_pkt_pointers: every skb or xdp slice goes); bpf_dynptr_data's r0 is
 * memory of the constant size, maybe NULL, tied to the dynptr (dynptr_id, ref_obj_id).
 */
export function dynptrHelperChangesData(v: Verifier, meta: DynptrHelperMeta): void {
  const t = meta.dynptr?.type;
  if (t !== BPF_DYNPTR_TYPE_SKB && t !== BPF_DYNPTR_TYPE_XDP) return;
  clearAllPktPointers(v);
}

/** RET_PTR_TO_DYNPTR_MEM_OR_NULL: bpf_dynptr_data's slice. */
export function markDynptrDataRet(v: Verifier, r0: RegState, size: number, meta: DynptrHelperMeta): void {
  markPtr(r0, PTR_TO_MEM | PTR_MAYBE_NULL);
  r0.memSize = size;
  r0.id = v.newId();
  r0.dynptrId = meta.dynptr?.id ?? 0;
  r0.refObjId = meta.dynptr?.refObjId ?? 0;
}
