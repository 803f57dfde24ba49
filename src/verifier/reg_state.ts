/**
 * Register state and scalar bounds (struct bpf_reg_state; reg_bounds_sync and friends in
 * kernel/bpf/verifier.c). 64-bit bounds are bigints: unsigned in [0, 2^64), signed in
 * [-2^63, 2^63); the 32-bit bounds describe the low half (the subregister).
 */
import {
  type Tnum,
  tnumConst,
  tnumIntersect,
  tnumIsConst,
  tnumRange,
  tnumSubreg,
  tnumUnknown,
  U32_MAX,
  U64_MAX,
} from "./tnum.js";

export const S64_MIN = -(1n << 63n);
export const S64_MAX = (1n << 63n) - 1n;
export const S32_MIN = -(1n << 31n);
export const S32_MAX = (1n << 31n) - 1n;

/** enum bpf_reg_type: base types, and the flags ORed into them. */
export const NOT_INIT = 0;
export const SCALAR_VALUE = 1;
export const PTR_TO_CTX = 2;
export const CONST_PTR_TO_MAP = 3;
export const PTR_TO_MAP_VALUE = 4;
export const PTR_TO_MAP_KEY = 5;
export const PTR_TO_STACK = 6;
export const PTR_TO_BTF_ID = 7;
export const PTR_TO_MEM = 8;
export const PTR_TO_FUNC = 9;
/** A pointer to an initialized dynptr the program may not destroy (a callback's argument). */
export const CONST_PTR_TO_DYNPTR = 10;
/** Packet pointers: data_meta, data (their `range` is kept in memSize, the kernel's union), data_end. */
export const PTR_TO_PACKET_META = 11;
export const PTR_TO_PACKET = 12;
export const PTR_TO_PACKET_END = 13;
export const BASE_TYPE_MASK = 0xff;
export const PTR_MAYBE_NULL = 1 << 8;
export const MEM_RDONLY = 1 << 9;
export const PTR_TRUSTED = 1 << 10;
export const PTR_UNTRUSTED = 1 << 11;
/** A pointer valid inside a bpf_rcu_read_lock section (rcu_ptr_). */
export const MEM_RCU = 1 << 12;
/** An object of the program's own (bpf_obj_new): owning reference. */
export const MEM_ALLOC = 1 << 13;
/** A graph node the program no longer owns, valid while the collection's lock is held. */
export const NON_OWN_REF = 1 << 14;
export const MEM_PERCPU = 1 << 15;
/** DYNPTR_TYPE_*: the kind of dynptr a slice (PTR_TO_MEM) or a CONST_PTR_TO_DYNPTR belongs to. */
export const DYNPTR_TYPE_LOCAL = 1 << 16;
export const DYNPTR_TYPE_RINGBUF = 1 << 17;
export const DYNPTR_TYPE_SKB = 1 << 18;
export const DYNPTR_TYPE_XDP = 1 << 19;
export const DYNPTR_TYPE_FLAG_MASK = DYNPTR_TYPE_LOCAL | DYNPTR_TYPE_RINGBUF | DYNPTR_TYPE_SKB | DYNPTR_TYPE_XDP;
/**
 * Not a kernel flag: the kernel's register carries its BTF (reg->btf); here a PTR_TO_BTF_ID's id
 * is in the program's BTF when it has MEM_ALLOC or this bit (a per-CPU or untrusted pointer loaded
 * from a kptr field of a program type). Never printed.
 */
export const BTF_PROG = 1 << 20;
/** A ring buffer record (bpf_ringbuf_reserve's memory): ringbuf_mem. */
export const MEM_RINGBUF = 1 << 21;
/** is_trusted_reg's opt-in flags (BPF_REG_TRUSTED_MODIFIERS). */
export const BPF_REG_TRUSTED_MODIFIERS = MEM_ALLOC | PTR_TRUSTED | NON_OWN_REF;

export const baseType = (t: number): number => t & BASE_TYPE_MASK;

const BASE_NAMES: Record<number, string> = {
  [NOT_INIT]: "?",
  [SCALAR_VALUE]: "scalar",
  [PTR_TO_CTX]: "ctx",
  [CONST_PTR_TO_MAP]: "map_ptr",
  [PTR_TO_MAP_VALUE]: "map_value",
  [PTR_TO_MAP_KEY]: "map_key",
  [PTR_TO_STACK]: "fp",
  [PTR_TO_BTF_ID]: "ptr_",
  [PTR_TO_MEM]: "mem",
  [PTR_TO_FUNC]: "func",
  [CONST_PTR_TO_DYNPTR]: "dynptr_ptr",
  [PTR_TO_PACKET_META]: "pkt_meta",
  [PTR_TO_PACKET]: "pkt",
  [PTR_TO_PACKET_END]: "pkt_end",
};

/** reg_type_str: "rdonly_mem_or_null", "trusted_ptr_", "rcu_ptr_or_null_", "map_value". */
export function regTypeStr(t: number): string {
  let prefix = "";
  if (t & MEM_RDONLY) prefix += "rdonly_";
  if (t & MEM_RINGBUF) prefix += "ringbuf_";
  if (t & MEM_PERCPU) prefix += "percpu_";
  if (t & MEM_RCU) prefix += "rcu_";
  if (t & PTR_UNTRUSTED) prefix += "untrusted_";
  if (t & PTR_TRUSTED) prefix += "trusted_";
  // The kernel spells a nullable BTF pointer "ptr_or_null_" (the type name follows).
  const post = t & PTR_MAYBE_NULL ? (baseType(t) === PTR_TO_BTF_ID ? "or_null_" : "_or_null") : "";
  return `${prefix}${BASE_NAMES[baseType(t)] ?? "?"}${post}`;
}

export interface RegState {
  type: number;
  /** Fixed part of a pointer's offset. */
  off: number;
  /** Variable part (pointers) or the value (scalars). */
  varOff: Tnum;
  smin: bigint;
  smax: bigint;
  umin: bigint;
  umax: bigint;
  s32min: bigint;
  s32max: bigint;
  u32min: bigint;
  u32max: bigint;
  /** Shared by copies of one map_value_or_null (null checks mark them all), or of one scalar. */
  id: number;
  /** The acquired reference this pointer holds (0: none); release invalidates every copy. */
  refObjId: number;
  /** Map index (map_ptr, map_value, map_key). */
  map: number;
  /**
   * map_uid: which inner map of a map of maps this is (the id of the lookup that gave it), when
   * its template holds timers or work items, else 0.
   */
  mapUid: number;
  /** PTR_TO_BTF_ID: the struct's BTF id. */
  btfId: number;
  /** PTR_TO_MEM: size of the region; PTR_TO_PACKET(_META): its range (bytes proven below data_end). */
  memSize: number;
  /** PTR_TO_STACK: the frame the pointer points into. */
  frameno: number;
  /** A dynptr slice (PTR_TO_MEM): the id of the dynptr it came from (reg->dynptr_id). */
  dynptrId: number;
  /** Written since the last checkpoint (printed as the "_w" suffix). */
  written: boolean;
}

export function newReg(): RegState {
  return {
    type: NOT_INIT,
    off: 0,
    varOff: tnumUnknown,
    smin: S64_MIN,
    smax: S64_MAX,
    umin: 0n,
    umax: U64_MAX,
    s32min: S32_MIN,
    s32max: S32_MAX,
    u32min: 0n,
    u32max: U32_MAX,
    id: 0,
    refObjId: 0,
    map: -1,
    mapUid: 0,
    btfId: 0,
    memSize: 0,
    frameno: 0,
    dynptrId: 0,
    written: false,
  };
}

export function copyReg(r: RegState): RegState {
  // A literal with the fields in declaration order keeps one hidden class (cheaper than spread).
  return {
    type: r.type,
    off: r.off,
    varOff: r.varOff,
    smin: r.smin,
    smax: r.smax,
    umin: r.umin,
    umax: r.umax,
    s32min: r.s32min,
    s32max: r.s32max,
    u32min: r.u32min,
    u32max: r.u32max,
    id: r.id,
    refObjId: r.refObjId,
    map: r.map,
    mapUid: r.mapUid,
    btfId: r.btfId,
    memSize: r.memSize,
    frameno: r.frameno,
    dynptrId: r.dynptrId,
    written: r.written,
  };
}

export function markUnbounded(r: RegState): void {
  r.smin = S64_MIN;
  r.smax = S64_MAX;
  r.umin = 0n;
  r.umax = U64_MAX;
  r.s32min = S32_MIN;
  r.s32max = S32_MAX;
  r.u32min = 0n;
  r.u32max = U32_MAX;
}

/** Every field but `written` as newReg() has it (in place: the walk does this per instruction). */
function resetReg(r: RegState): void {
  r.type = NOT_INIT;
  r.off = 0;
  r.varOff = tnumUnknown;
  markUnbounded(r);
  r.id = 0;
  r.refObjId = 0;
  r.map = -1;
  r.mapUid = 0;
  r.btfId = 0;
  r.memSize = 0;
  r.frameno = 0;
  r.dynptrId = 0;
}

/** __mark_reg_unknown: a scalar that may be anything. */
export function markRegUnknown(r: RegState): void {
  resetReg(r);
  r.type = SCALAR_VALUE;
}

/** __mark_reg_known: a scalar constant. */
export function markRegKnown(r: RegState, v: bigint): void {
  resetReg(r);
  r.type = SCALAR_VALUE;
  setConstBounds(r, v);
}

export function markRegNotInit(r: RegState): void {
  resetReg(r);
  r.written = false;
}

function setConstBounds(r: RegState, v: bigint): void {
  const u = v & U64_MAX;
  r.varOff = tnumConst(u);
  r.umin = r.umax = u;
  r.smin = r.smax = BigInt.asIntN(64, u);
  const lo = u & U32_MAX;
  r.u32min = r.u32max = lo;
  r.s32min = r.s32max = BigInt.asIntN(32, lo);
}

/** A pointer's fixed part with no variable part. */
export function markPtr(r: RegState, type: number, off = 0): void {
  resetReg(r);
  r.type = type;
  r.off = off;
  setConstBounds(r, 0n);
}

export function isConstScalar(r: RegState): boolean {
  return r.type === SCALAR_VALUE && tnumIsConst(r.varOff);
}

export const isPointer = (r: RegState): boolean => r.type !== SCALAR_VALUE && r.type !== NOT_INIT;

/** bpf_type_has_unsafe_modifiers: any flag besides the trusted ones. */
export const hasUnsafeModifiers = (t: number): boolean => (t & ~BASE_TYPE_MASK & ~BPF_REG_TRUSTED_MODIFIERS) !== 0;

/** is_trusted_reg: referenced, or trusted/allocated with no unsafe flag. */
export function isTrustedReg(r: RegState): boolean {
  if (r.refObjId) return true;
  return (r.type & BPF_REG_TRUSTED_MODIFIERS) !== 0 && !hasUnsafeModifiers(r.type);
}

export const isRcuReg = (r: RegState): boolean => (r.type & MEM_RCU) !== 0;

const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** __update_reg32_bounds + __update_reg64_bounds: learn bounds from the known bits. */
function updateRegBounds(r: RegState): void {
  const v32 = tnumSubreg(r.varOff);
  r.s32min = max(r.s32min, BigInt.asIntN(32, v32.value | (v32.mask & 0x8000_0000n)));
  r.s32max = min(r.s32max, BigInt.asIntN(32, v32.value | (v32.mask & 0x7fff_ffffn)));
  r.u32min = max(r.u32min, v32.value);
  r.u32max = min(r.u32max, v32.value | v32.mask);
  const v = r.varOff;
  r.smin = max(r.smin, BigInt.asIntN(64, v.value | (v.mask & (1n << 63n))));
  r.smax = min(r.smax, BigInt.asIntN(64, v.value | (v.mask & S64_MAX)));
  r.umin = max(r.umin, v.value);
  r.umax = min(r.umax, v.value | v.mask);
}

/**
 * The signed and unsigned ranges of one width learn from each other (the tail of
 * __reg32_deduce_bounds and __reg64_deduce_bounds): a range that does not cross the sign
 * boundary is the same range in the other domain; a signed range that crosses it is split at
 * both ends of the unsigned domain, and an unsigned range meeting only one of its parts narrows
 * both to that part.
 */
function deduceSign(
  smin: bigint,
  smax: bigint,
  umin: bigint,
  umax: bigint,
  bits: 32 | 64,
): [bigint, bigint, bigint, bigint] {
  const s = (x: bigint) => BigInt.asIntN(bits, x);
  const u = (x: bigint) => BigInt.asUintN(bits, x);
  if (s(umin) <= s(umax)) {
    smin = max(smin, s(umin));
    smax = min(smax, s(umax));
  }
  if (u(smin) <= u(smax)) {
    umin = max(umin, u(smin));
    umax = min(umax, u(smax));
  } else if (umax < u(smin)) {
    // the unsigned range meets only the non-negative part of the signed one
    smin = s(umin);
    umax = min(umax, u(smax));
  } else if (u(smax) < umin) {
    // ... only the negative part
    smax = s(umax);
    umin = max(umin, u(smin));
  }
  return [smin, smax, umin, umax];
}

/** __reg32_deduce_bounds: the 32-bit bounds from the 64-bit ones, then from each other. */
function reg32DeduceBounds(r: RegState): void {
  const s32 = (x: bigint) => BigInt.asIntN(32, x);
  const u32 = (x: bigint) => BigInt.asUintN(32, x);
  // When the upper halves agree, the low halves form a range.
  if (r.umin >> 32n === r.umax >> 32n) {
    r.u32min = max(r.u32min, u32(r.umin));
    r.u32max = min(r.u32max, u32(r.umax));
    if (s32(r.umin) <= s32(r.umax)) {
      r.s32min = max(r.s32min, s32(r.umin));
      r.s32max = min(r.s32max, s32(r.umax));
    }
  }
  if (r.smin >> 32n === r.smax >> 32n) {
    if (u32(r.smin) <= u32(r.smax)) {
      r.u32min = max(r.u32min, u32(r.smin));
      r.u32max = min(r.u32max, u32(r.smax));
    }
    if (s32(r.smin) <= s32(r.smax)) {
      r.s32min = max(r.s32min, s32(r.smin));
      r.s32max = min(r.s32max, s32(r.smax));
    }
  }
  // Upper halves two consecutive numbers while the low halves go from negative to positive:
  // the low halves still form an s32 range (s64 [-1, 1] gives s32 [-1, 1]).
  if (u32((r.umin >> 32n) + 1n) === u32(r.umax >> 32n) && s32(r.umin) < 0n && s32(r.umax) >= 0n) {
    r.s32min = max(r.s32min, s32(r.umin));
    r.s32max = min(r.s32max, s32(r.umax));
  }
  if (u32((r.smin >> 32n) + 1n) === u32(r.smax >> 32n) && s32(r.smin) < 0n && s32(r.smax) >= 0n) {
    r.s32min = max(r.s32min, s32(r.smin));
    r.s32max = min(r.s32max, s32(r.smax));
  }
  [r.s32min, r.s32max, r.u32min, r.u32max] = deduceSign(r.s32min, r.s32max, r.u32min, r.u32max, 32);
}

/**
 * __reg_deduce_mixed_bounds: the 32-bit ranges as the low halves of the 64-bit bounds, and a
 * value known to fit a non-negative s32 (after a sign-extending load) bounded by it outright.
 */
function regDeduceMixedBounds(r: RegState): void {
  const HI = ~U32_MAX & U64_MAX;
  r.umin = max(r.umin, (r.umin & HI) | r.u32min);
  r.umax = min(r.umax, (r.umax & HI) | r.u32max);
  r.smin = max(r.smin, BigInt.asIntN(64, (BigInt.asUintN(64, r.smin) & HI) | r.u32min));
  r.smax = min(r.smax, BigInt.asIntN(64, (BigInt.asUintN(64, r.smax) & HI) | r.u32max));
  if (r.s32min >= 0n && r.smin >= S32_MIN && r.smax <= S32_MAX) {
    r.smin = r.s32min;
    r.smax = r.s32max;
    r.umin = r.s32min;
    r.umax = r.s32max;
    r.varOff = tnumIntersect(r.varOff, tnumRange(r.smin, r.smax));
  }
}

function deduceBounds(r: RegState): void {
  reg32DeduceBounds(r);
  [r.smin, r.smax, r.umin, r.umax] = deduceSign(r.smin, r.smax, r.umin, r.umax, 64);
  regDeduceMixedBounds(r);
}

/** __reg_bound_offset: known bits from the ranges. */
function boundOffset(r: RegState): void {
  const v64 = tnumIntersect(r.varOff, tnumRange(r.umin, r.umax));
  const v32 = tnumIntersect(tnumSubreg(v64), tnumRange(r.u32min, r.u32max));
  r.varOff = {
    value: (v64.value & ~U32_MAX & U64_MAX) | v32.value,
    mask: (v64.mask & ~U32_MAX & U64_MAX) | v32.mask,
  };
}

/** reg_bounds_sync. */
export function regBoundsSync(r: RegState): void {
  // A constant whose bounds all say so has nothing to learn (most compared operands are).
  if (r.varOff.mask === 0n && isSyncedConst(r)) return;
  for (let i = 0; i < 2; i++) {
    const { umin, umax, smin, smax, u32min, u32max, s32min, s32max, varOff } = r;
    updateRegBounds(r);
    deduceBounds(r);
    boundOffset(r);
    // A round that changed nothing is a fixed point: the rounds after it change nothing either.
    if (
      r.umin === umin &&
      r.umax === umax &&
      r.smin === smin &&
      r.smax === smax &&
      r.u32min === u32min &&
      r.u32max === u32max &&
      r.s32min === s32min &&
      r.s32max === s32max &&
      r.varOff.value === varOff.value &&
      r.varOff.mask === varOff.mask
    )
      return;
  }
  updateRegBounds(r);
}

function isSyncedConst(r: RegState): boolean {
  const v = r.varOff.value;
  const lo = v & U32_MAX;
  return (
    r.umin === v &&
    r.umax === v &&
    r.smin === r.smax &&
    r.smin === BigInt.asIntN(64, v) &&
    r.u32min === lo &&
    r.u32max === lo &&
    r.s32min === r.s32max &&
    r.s32min === BigInt.asIntN(32, lo)
  );
}

/** Are the bounds self-consistent? A refinement that empties them means the path is impossible. */
export function regBoundsSane(r: RegState): boolean {
  return (
    r.umin <= r.umax &&
    r.smin <= r.smax &&
    r.u32min <= r.u32max &&
    r.s32min <= r.s32max &&
    (r.varOff.value & r.varOff.mask) === 0n
  );
}

/** After a 32-bit write: the upper half becomes zero. */
/**
 * assign_scalar_id_before_mov: a scalar about to be copied (a move, a spill or a fill) gets an id
 * if it has none, so the copies share it and a bound learnt on one holds for all
 * (sync_linked_regs).
 */
export function assignScalarIdBeforeMov(r: RegState, newId: () => number): void {
  if (r.type !== SCALAR_VALUE) return;
  // A register already linked with a delta (rX += K) starts a new link: deltas do not stack.
  if (r.id >= BPF_ADD_CONST) {
    r.id = 0;
    r.off = 0;
  }
  if (r.id === 0 && !tnumIsConst(r.varOff)) r.id = newId();
}

/**
 * BPF_ADD_CONST: a scalar id with this added is a copy moved by a constant (kept in `off`), so
 * `r1 = r0; r1 += 1` stays linked to r0. Ids are numbers, so the flag is added, not ORed.
 */
export const BPF_ADD_CONST = 2 ** 31;
export const scalarIdBase = (id: number): number => id % BPF_ADD_CONST;

/** get_reg_width: bits the scalar's unsigned maximum needs. */
export function regWidth(r: RegState): number {
  return r.umax === 0n ? 0 : r.umax.toString(2).length;
}

export function zextReg32(r: RegState): void {
  // A subregister nothing is known about (a 32-bit load or fetch): the result is always the same.
  if (
    r.u32min === 0n &&
    r.u32max === U32_MAX &&
    r.s32min === S32_MIN &&
    r.s32max === S32_MAX &&
    (r.varOff === tnumUnknown || (r.varOff.mask === U64_MAX && r.varOff.value === 0n))
  ) {
    r.varOff = ZEXT_UNKNOWN.varOff;
    r.umin = ZEXT_UNKNOWN.umin;
    r.umax = ZEXT_UNKNOWN.umax;
    r.smin = ZEXT_UNKNOWN.smin;
    r.smax = ZEXT_UNKNOWN.smax;
    r.s32min = ZEXT_UNKNOWN.s32min;
    r.s32max = ZEXT_UNKNOWN.s32max;
    r.u32min = ZEXT_UNKNOWN.u32min;
    r.u32max = ZEXT_UNKNOWN.u32max;
    return;
  }
  zextSlow(r);
}

function zextSlow(r: RegState): void {
  r.varOff = tnumSubreg(r.varOff);
  r.umin = r.u32min;
  r.umax = r.u32max;
  r.smin = r.u32min;
  r.smax = r.u32max;
  regBoundsSync(r);
}

/** zextReg32 of a register nothing is known about, computed the long way once. */
const ZEXT_UNKNOWN: RegState = (() => {
  const r = newReg();
  zextSlow(r);
  return r;
})();

/** Forget everything about the upper 32 bits' relation to the lower (after a 64-bit op). */
export function resetReg32Bounds(r: RegState): void {
  r.s32min = S32_MIN;
  r.s32max = S32_MAX;
  r.u32min = 0n;
  r.u32max = U32_MAX;
}

export function resetReg64Bounds(r: RegState): void {
  r.smin = S64_MIN;
  r.smax = S64_MAX;
  r.umin = 0n;
  r.umax = U64_MAX;
}

/** Is every value `cur` may hold also allowed by `old` (range_within + tnum_in)? */
export function rangeWithin(old: RegState, cur: RegState): boolean {
  return (
    old.umin <= cur.umin &&
    old.umax >= cur.umax &&
    old.smin <= cur.smin &&
    old.smax >= cur.smax &&
    old.u32min <= cur.u32min &&
    old.u32max >= cur.u32max &&
    old.s32min <= cur.s32min &&
    old.s32max >= cur.s32max
  );
}

export function regsIdentical(a: RegState, b: RegState): boolean {
  return (
    a.type === b.type &&
    a.off === b.off &&
    a.varOff.value === b.varOff.value &&
    a.varOff.mask === b.varOff.mask &&
    a.smin === b.smin &&
    a.smax === b.smax &&
    a.umin === b.umin &&
    a.umax === b.umax &&
    a.s32min === b.s32min &&
    a.s32max === b.s32max &&
    a.u32min === b.u32min &&
    a.u32max === b.u32max &&
    a.map === b.map &&
    a.mapUid === b.mapUid &&
    a.btfId === b.btfId &&
    a.memSize === b.memSize &&
    a.frameno === b.frameno
  );
}

export { tnumIsConst };
