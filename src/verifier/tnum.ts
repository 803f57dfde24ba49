/**
 * Tristate numbers (kernel/bpf/tnum.c): a 64-bit value whose bits are each 0, 1 or unknown.
 * `mask` has a 1 for every unknown bit; `value` holds the known bits (and 0 under the mask).
 * Values are unsigned 64-bit bigints.
 */
export interface Tnum {
  readonly value: bigint;
  readonly mask: bigint;
}

export const U64_MAX = 0xffff_ffff_ffff_ffffn;
export const U32_MAX = 0xffff_ffffn;

const u64 = (x: bigint): bigint => x & U64_MAX;

export const tnumUnknown: Tnum = { value: 0n, mask: U64_MAX };

export function tnumConst(v: bigint): Tnum {
  return { value: u64(v), mask: 0n };
}

/** fls64: the 1-based index of the highest set bit of a u64 (0 for 0), in two 32-bit halves. */
function fls64(x: bigint): number {
  const hi = Number(x >> 32n);
  if (hi) return 64 - Math.clz32(hi);
  return 32 - Math.clz32(Number(x & U32_MAX));
}

/** Smallest tnum covering [min, max] (unsigned). */
export function tnumRange(min: bigint, max: bigint): Tnum {
  const chi = min ^ max;
  if (chi === 0n) return tnumConst(min);
  const bits = fls64(chi);
  if (bits > 63) return tnumUnknown;
  const delta = (1n << BigInt(bits)) - 1n;
  return { value: min & ~delta, mask: delta };
}

export function tnumIsConst(a: Tnum): boolean {
  return a.mask === 0n;
}

export function tnumIsUnknown(a: Tnum): boolean {
  return a.mask === U64_MAX;
}

export function tnumEquals(a: Tnum, b: Tnum): boolean {
  return a.value === b.value && a.mask === b.mask;
}

export function tnumLshift(a: Tnum, shift: number): Tnum {
  const s = BigInt(shift);
  return { value: u64(a.value << s), mask: u64(a.mask << s) };
}

export function tnumRshift(a: Tnum, shift: number): Tnum {
  const s = BigInt(shift);
  return { value: a.value >> s, mask: a.mask >> s };
}

/** Arithmetic right shift of the low `width` bits (32 or 64), result zero-extended to 64 bits. */
export function tnumArshift(a: Tnum, shift: number, width: 32 | 64): Tnum {
  const w = BigInt(width);
  const s = BigInt(shift);
  const lim = (1n << w) - 1n;
  const v = BigInt.asIntN(width, a.value) >> s;
  const m = BigInt.asIntN(width, a.mask) >> s;
  return { value: v & lim, mask: m & lim };
}

export function tnumAdd(a: Tnum, b: Tnum): Tnum {
  const sm = u64(a.mask + b.mask);
  const sv = u64(a.value + b.value);
  const sigma = u64(sm + sv);
  const chi = sigma ^ sv;
  const mu = chi | a.mask | b.mask;
  return { value: sv & ~mu & U64_MAX, mask: mu };
}

export function tnumSub(a: Tnum, b: Tnum): Tnum {
  const dv = u64(a.value - b.value);
  const alpha = u64(dv + a.mask);
  const beta = u64(dv - b.mask);
  const chi = alpha ^ beta;
  const mu = chi | a.mask | b.mask;
  return { value: dv & ~mu & U64_MAX, mask: mu };
}

export function tnumAnd(a: Tnum, b: Tnum): Tnum {
  const alpha = a.value | a.mask;
  const beta = b.value | b.mask;
  const v = a.value & b.value;
  return { value: v, mask: alpha & beta & ~v & U64_MAX };
}

export function tnumOr(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value;
  const mu = a.mask | b.mask;
  return { value: v, mask: mu & ~v & U64_MAX };
}

export function tnumXor(a: Tnum, b: Tnum): Tnum {
  const v = a.value ^ b.value;
  const mu = a.mask | b.mask;
  return { value: v & ~mu & U64_MAX, mask: mu };
}

/** Long multiplication over trits, as tnum_mul. */
export function tnumMul(a: Tnum, b: Tnum): Tnum {
  let acc_v = u64(a.value * b.value);
  let acc_m: Tnum = { value: 0n, mask: 0n };
  let x = a;
  let y = b;
  while (x.value !== 0n || x.mask !== 0n) {
    if ((x.value & 1n) !== 0n) acc_m = tnumAdd(acc_m, { value: 0n, mask: y.mask });
    else if ((x.mask & 1n) !== 0n) acc_m = tnumAdd(acc_m, { value: 0n, mask: y.value | y.mask });
    x = tnumRshift(x, 1);
    y = tnumLshift(y, 1);
  }
  acc_v = u64(acc_v);
  return tnumAdd({ value: acc_v, mask: 0n }, acc_m);
}

/** Bits known in either (for refining with information from a comparison). */
export function tnumIntersect(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value;
  const mu = a.mask & b.mask;
  return { value: v & ~mu & U64_MAX, mask: mu };
}

/** Keep the low `size` bytes. */
const CAST_LIMIT = [0n, 0xffn, 0xffffn, 0xff_ffffn, U32_MAX];

export function tnumCast(a: Tnum, size: number): Tnum {
  if (size >= 8) return a;
  const lim = CAST_LIMIT[size] ?? (1n << BigInt(size * 8)) - 1n;
  return { value: a.value & lim, mask: a.mask & lim };
}

export function tnumSubreg(a: Tnum): Tnum {
  return tnumCast(a, 4);
}

/** Is every value of b also a value of a? */
export function tnumIn(a: Tnum, b: Tnum): boolean {
  // pruning asks this of every live register: answer the common cases without BigInt arithmetic
  if (a.mask === U64_MAX && a.value === 0n) return true;
  if (a.mask === 0n) return b.mask === 0n && (a.value === b.value || a.value === (b.value & U64_MAX));
  if ((b.mask & ~a.mask & U64_MAX) !== 0n) return false;
  return a.value === (b.value & ~a.mask & U64_MAX);
}

/** Kernel tnum_strn: "(0x..; 0x..)". */
export function tnumStr(a: Tnum): string {
  return `(0x${a.value.toString(16)}; 0x${a.mask.toString(16)})`;
}

/** max/min of bigints (Math.max does not take them). */
export function maxB(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
export function minB(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
