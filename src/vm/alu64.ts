/**
 * 64-bit arithmetic on 32-bit halves, without BigInt on the fast paths.
 *
 * A register is a pair of int32 (lo, hi). Each function returns the low half and leaves the
 * high half in W[1]; the callers (generated code of both tiers) read it right after the call.
 * Divisors are non-zero here: division by zero is decided by the caller (BPF semantics: div
 * gives 0, mod leaves dst unchanged).
 */

/** W[1] holds the high half of the last result. */
export const W = new Int32Array(2);

const TWO32 = 4294967296;
const TWO52 = 4503599627370496;

export function mul64(al: number, ah: number, bl: number, bh: number): number {
  // High 32 bits of the unsigned 32x32 product, from 16-bit limbs (each partial product is exact).
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = ((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const carry = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  W[1] = (carry + Math.imul(al, bh) + Math.imul(ah, bl)) | 0;
  return Math.imul(al, bl);
}

function big(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

function fromBig(v: bigint): number {
  W[1] = Number(BigInt.asIntN(32, v >> 32n));
  return Number(BigInt.asIntN(32, v));
}

function fromNum(v: number): number {
  W[1] = Math.floor(v / TWO32) | 0;
  return (v >>> 0) | 0;
}

/** Unsigned 64-bit quotient (b != 0). */
export function udiv64(al: number, ah: number, bl: number, bh: number): number {
  if ((ah | bh) === 0) {
    W[1] = 0;
    return (((al >>> 0) / (bl >>> 0)) >>> 0) | 0;
  }
  const a = (ah >>> 0) * TWO32 + (al >>> 0);
  const b = (bh >>> 0) * TWO32 + (bl >>> 0);
  if (a < TWO52 && b < TWO52) {
    // The double quotient is within 1 of the true one; a + b < 2^53 keeps q*b exact.
    let q = Math.floor(a / b);
    const r = a - q * b;
    if (r < 0) q--;
    else if (r >= b) q++;
    return fromNum(q);
  }
  return fromBig(big(al, ah) / big(bl, bh));
}

/** Unsigned 64-bit remainder (b != 0). */
export function umod64(al: number, ah: number, bl: number, bh: number): number {
  if ((ah | bh) === 0) {
    W[1] = 0;
    return ((al >>> 0) % (bl >>> 0)) | 0;
  }
  const a = (ah >>> 0) * TWO32 + (al >>> 0);
  const b = (bh >>> 0) * TWO32 + (bl >>> 0);
  if (a < TWO52 && b < TWO52) {
    let r = a - Math.floor(a / b) * b;
    if (r < 0) r += b;
    else if (r >= b) r -= b;
    return fromNum(r);
  }
  return fromBig(big(al, ah) % big(bl, bh));
}

function neg(lo: number, hi: number): number {
  W[1] = (lo === 0 ? -hi : ~hi) | 0;
  return -lo | 0;
}

/** Signed 64-bit quotient, truncated toward zero (b != 0); INT64_MIN / -1 wraps to INT64_MIN. */
export function sdiv64(al: number, ah: number, bl: number, bh: number): number {
  const na = ah < 0;
  const nb = bh < 0;
  let bl2 = bl;
  let bh2 = bh;
  if (nb) {
    bl2 = neg(bl, bh);
    bh2 = W[1];
  }
  let q: number;
  if (na) {
    const l = neg(al, ah);
    q = udiv64(l, W[1], bl2, bh2);
  } else {
    q = udiv64(al, ah, bl2, bh2);
  }
  return na !== nb ? neg(q, W[1]) : q;
}

/** Signed 64-bit remainder with the sign of the dividend (b != 0). */
export function smod64(al: number, ah: number, bl: number, bh: number): number {
  const na = ah < 0;
  let bl2 = bl;
  let bh2 = bh;
  if (bh < 0) {
    bl2 = neg(bl, bh);
    bh2 = W[1];
  }
  let r: number;
  if (na) {
    const l = neg(al, ah);
    r = umod64(l, W[1], bl2, bh2);
  } else {
    r = umod64(al, ah, bl2, bh2);
  }
  return na ? neg(r, W[1]) : r;
}

export function lsh64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    W[1] = hi;
    return lo;
  }
  if (n < 32) {
    W[1] = (hi << n) | (lo >>> (32 - n));
    return lo << n;
  }
  W[1] = lo << (n - 32);
  return 0;
}

export function rsh64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    W[1] = hi;
    return lo;
  }
  if (n < 32) {
    W[1] = hi >>> n;
    return (lo >>> n) | (hi << (32 - n));
  }
  W[1] = 0;
  return (hi >>> (n - 32)) | 0;
}

export function arsh64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    W[1] = hi;
    return lo;
  }
  if (n < 32) {
    W[1] = hi >> n;
    return (lo >>> n) | (hi << (32 - n));
  }
  W[1] = hi >> 31;
  return hi >> (n - 32);
}

export function bswap16(x: number): number {
  return ((x & 0xff) << 8) | ((x >>> 8) & 0xff);
}

export function bswap32(x: number): number {
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
}
