/**
 * Scalar ALU over bounds (adjust_scalar_min_max_vals and the scalar(32)_min_max_* family).
 * Each operation is computed at its width (32 or 64 bits) on that width's view of the
 * operands; a 32-bit result is then zero-extended, as the hardware does.
 */
import {
  BPF_ADD,
  BPF_AND,
  BPF_ARSH,
  BPF_DIV,
  BPF_LSH,
  BPF_MOD,
  BPF_MUL,
  BPF_OR,
  BPF_RSH,
  BPF_SUB,
  BPF_XOR,
} from "../isa/opcodes.js";
import {
  markRegKnown,
  markRegUnknown,
  type RegState,
  regBoundsSync,
  resetReg32Bounds,
  SCALAR_VALUE,
} from "./reg_state.js";
import {
  maxB,
  minB,
  type Tnum,
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumCast,
  tnumIsConst,
  tnumLshift,
  tnumMul,
  tnumOr,
  tnumRshift,
  tnumSub,
  tnumSubreg,
  tnumUnknown,
  tnumXor,
} from "./tnum.js";

interface View {
  umin: bigint;
  umax: bigint;
  smin: bigint;
  smax: bigint;
  t: Tnum;
}

type Width = 32 | 64;

function view(r: RegState, w: Width): View {
  if (w === 64) return { umin: r.umin, umax: r.umax, smin: r.smin, smax: r.smax, t: r.varOff };
  return { umin: r.u32min, umax: r.u32max, smin: r.s32min, smax: r.s32max, t: tnumSubreg(r.varOff) };
}

const umaxOf = (w: Width): bigint => (1n << BigInt(w)) - 1n;
const sminOf = (w: Width): bigint => -(1n << BigInt(w - 1));
const smaxOf = (w: Width): bigint => (1n << BigInt(w - 1)) - 1n;

function unknown(w: Width): View {
  return { umin: 0n, umax: umaxOf(w), smin: sminOf(w), smax: smaxOf(w), t: tnumCast(tnumUnknown, w / 8) };
}

/** Exact value of one operation on constants at width w (the ISA's semantics, RFC 9669). */
export function aluConst(op: number, a: bigint, b: bigint, w: Width, signed: boolean): bigint {
  const M = umaxOf(w);
  const ua = a & M;
  const ub = b & M;
  const sa = BigInt.asIntN(w, ua);
  const sb = BigInt.asIntN(w, ub);
  const sh = ub & BigInt(w - 1);
  switch (op) {
    case BPF_ADD:
      return (ua + ub) & M;
    case BPF_SUB:
      return (ua - ub) & M;
    case BPF_MUL:
      return (ua * ub) & M;
    case BPF_DIV:
      if (ub === 0n) return 0n;
      return (signed ? sa / sb : ua / ub) & M;
    case BPF_MOD:
      if (ub === 0n) return ua;
      return (signed ? sa % sb : ua % ub) & M;
    case BPF_OR:
      return ua | ub;
    case BPF_AND:
      return ua & ub;
    case BPF_XOR:
      return ua ^ ub;
    case BPF_LSH:
      return (ua << sh) & M;
    case BPF_RSH:
      return ua >> sh;
    case BPF_ARSH:
      return (sa >> sh) & M;
    default:
      return 0n;
  }
}

function signedFromUnsigned(u: View, w: Width): [bigint, bigint] {
  // Only when the unsigned range stays on the non-negative side does it say anything signed.
  if (u.umax <= smaxOf(w)) return [u.umin, u.umax];
  return [sminOf(w), smaxOf(w)];
}

function compute(op: number, a: View, b: View, w: Width, bConst: boolean): View {
  const M = umaxOf(w);
  const SMIN = sminOf(w);
  const SMAX = smaxOf(w);
  const cast = (t: Tnum): Tnum => tnumCast(t, w / 8);
  const r: View = unknown(w);
  switch (op) {
    case BPF_ADD: {
      r.t = cast(tnumAdd(a.t, b.t));
      const slo = a.smin + b.smin;
      const shi = a.smax + b.smax;
      if (slo >= SMIN && shi <= SMAX) [r.smin, r.smax] = [slo, shi];
      const ulo = a.umin + b.umin;
      const uhi = a.umax + b.umax;
      if (uhi <= M) [r.umin, r.umax] = [ulo, uhi];
      return r;
    }
    case BPF_SUB: {
      r.t = cast(tnumSub(a.t, b.t));
      const slo = a.smin - b.smax;
      const shi = a.smax - b.smin;
      if (slo >= SMIN && shi <= SMAX) [r.smin, r.smax] = [slo, shi];
      if (a.umin >= b.umax) [r.umin, r.umax] = [a.umin - b.umax, a.umax - b.umin];
      return r;
    }
    case BPF_MUL: {
      r.t = cast(tnumMul(a.t, b.t));
      if (a.umax * b.umax <= M) [r.umin, r.umax] = [a.umin * b.umin, a.umax * b.umax];
      const c = [a.smin * b.smin, a.smin * b.smax, a.smax * b.smin, a.smax * b.smax];
      const lo = c.reduce(minB);
      const hi = c.reduce(maxB);
      if (lo >= SMIN && hi <= SMAX) [r.smin, r.smax] = [lo, hi];
      return r;
    }
    case BPF_AND: {
      r.t = tnumAnd(a.t, b.t);
      r.umin = r.t.value;
      r.umax = minB(a.umax, b.umax);
      if (a.smin >= 0n || b.smin >= 0n) [r.smin, r.smax] = signedFromUnsigned(r, w);
      return r;
    }
    case BPF_OR: {
      r.t = tnumOr(a.t, b.t);
      r.umin = maxB(a.umin, b.umin);
      r.umax = r.t.value | r.t.mask;
      if (a.smin >= 0n && b.smin >= 0n) [r.smin, r.smax] = signedFromUnsigned(r, w);
      return r;
    }
    case BPF_XOR: {
      r.t = tnumXor(a.t, b.t);
      r.umin = r.t.value;
      r.umax = r.t.value | r.t.mask;
      if (a.smin >= 0n && b.smin >= 0n) [r.smin, r.smax] = signedFromUnsigned(r, w);
      return r;
    }
    case BPF_LSH: {
      if (!bConst || b.umin >= BigInt(w)) return r;
      const k = b.umin;
      r.t = cast(tnumLshift(a.t, Number(k)));
      if (a.umax <= M >> k) [r.umin, r.umax] = [a.umin << k, a.umax << k];
      [r.smin, r.smax] = signedFromUnsigned(r, w);
      return r;
    }
    case BPF_RSH: {
      if (!bConst || b.umin >= BigInt(w)) return r;
      const k = b.umin;
      r.t = tnumRshift(a.t, Number(k));
      [r.umin, r.umax] = [a.umin >> k, a.umax >> k];
      [r.smin, r.smax] = signedFromUnsigned(r, w);
      return r;
    }
    case BPF_ARSH: {
      if (!bConst || b.umin >= BigInt(w)) return r;
      const k = b.umin;
      r.t = tnumArshift(a.t, Number(k), w);
      [r.smin, r.smax] = [a.smin >> k, a.smax >> k];
      if (r.smin >= 0n) [r.umin, r.umax] = [r.smin, r.smax];
      return r;
    }
    default:
      // DIV and MOD of non-constants: the kernel tracks nothing.
      return r;
  }
}

/**
 * dst = dst <op> src for scalars, at 64 or 32 bits. `signed` selects sdiv/smod (off 1).
 */
export function scalarAlu(op: number, dst: RegState, src: RegState, is64: boolean, signed = false): void {
  const w: Width = is64 ? 64 : 32;
  const a = view(dst, w);
  const b = view(src, w);
  const written = dst.written;
  // is_safe_to_compute_dst_reg_range: a shift is tracked only by a constant below the width
  // (the 64-bit umax counts even at 32 bits); anything else leaves all 64 bits unknown.
  if ((op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH) && !(tnumIsConst(b.t) && src.umax < BigInt(w))) {
    markRegUnknown(dst);
    return;
  }
  if (tnumIsConst(a.t) && tnumIsConst(b.t)) {
    markRegKnown(dst, aluConst(op, a.t.value, b.t.value, w, signed));
    dst.written = written;
    return;
  }
  const r = compute(op, a, b, w, tnumIsConst(b.t));
  // scalar_min_max_lsh: `<<32 s>>32` sign-extends a subregister, so a shift by 32 keeps the
  // subregister's non-negative signed bounds in the upper half.
  if (is64 && op === BPF_LSH && b.t.value === 32n) {
    if (dst.s32max >= 0n && dst.s32max << 32n < r.smax) r.smax = dst.s32max << 32n;
    if (dst.s32min >= 0n && dst.s32min << 32n > r.smin) r.smin = dst.s32min << 32n;
  }
  dst.type = SCALAR_VALUE;
  dst.id = 0;
  dst.off = 0;
  if (is64) {
    dst.varOff = r.t;
    [dst.umin, dst.umax, dst.smin, dst.smax] = [r.umin, r.umax, r.smin, r.smax];
    resetReg32Bounds(dst);
  } else {
    dst.varOff = r.t;
    [dst.u32min, dst.u32max, dst.s32min, dst.s32max] = [r.umin, r.umax, r.smin, r.smax];
    [dst.umin, dst.umax, dst.smin, dst.smax] = [r.umin, r.umax, 0n, umaxOf(32)];
    if (r.umax <= umaxOf(32)) [dst.smin, dst.smax] = [r.umin, r.umax];
  }
  regBoundsSync(dst);
}
