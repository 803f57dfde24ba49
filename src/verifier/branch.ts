/**
 * Conditional jumps on scalars (is_branch_taken, reg_set_min_max): which way a comparison
 * must go given the operands' bounds, and what each branch learns about them.
 */
import {
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
} from "../isa/opcodes.js";
import { copyReg, type RegState, regBoundsSane, regBoundsSync } from "./reg_state.js";
import { type Tnum, tnumIntersect, tnumSubreg, U32_MAX, U64_MAX } from "./tnum.js";

/** Negated jump op for the fall-through branch; JSET's negation is marked with this value. */
export const JSET_FALSE = 0x1000;

export function negateJmp(op: number): number {
  switch (op) {
    case BPF_JEQ:
      return BPF_JNE;
    case BPF_JNE:
      return BPF_JEQ;
    case BPF_JGT:
      return BPF_JLE;
    case BPF_JGE:
      return BPF_JLT;
    case BPF_JLT:
      return BPF_JGE;
    case BPF_JLE:
      return BPF_JGT;
    case BPF_JSGT:
      return BPF_JSLE;
    case BPF_JSGE:
      return BPF_JSLT;
    case BPF_JSLT:
      return BPF_JSGE;
    case BPF_JSLE:
      return BPF_JSGT;
    case BPF_JSET:
      return JSET_FALSE;
    default:
      return BPF_JSET;
  }
}

interface B {
  umin: bigint;
  umax: bigint;
  smin: bigint;
  smax: bigint;
  t: Tnum;
}

function view(r: RegState, is64: boolean): B {
  if (is64) return { umin: r.umin, umax: r.umax, smin: r.smin, smax: r.smax, t: r.varOff };
  return { umin: r.u32min, umax: r.u32max, smin: r.s32min, smax: r.s32max, t: tnumSubreg(r.varOff) };
}

function store(r: RegState, b: B, is64: boolean): void {
  if (is64) {
    [r.umin, r.umax, r.smin, r.smax, r.varOff] = [b.umin, b.umax, b.smin, b.smax, b.t];
  } else {
    [r.u32min, r.u32max, r.s32min, r.s32max] = [b.umin, b.umax, b.smin, b.smax];
    const hiMaskV = r.varOff.value & ~U32_MAX & U64_MAX;
    const hiMaskM = r.varOff.mask & ~U32_MAX & U64_MAX;
    r.varOff = { value: hiMaskV | b.t.value, mask: hiMaskM | b.t.mask };
  }
}

const isConst = (b: B): boolean => b.t.mask === 0n;

/** Which of a view's ranges a comparison reads: unsigned ("u") or signed ("s"). */
type Domain = "u" | "s";
const MIN = { u: "umin", s: "smin" } as const;
const MAX = { u: "umax", s: "smax" } as const;

/** Whether `lo < hi` (strict) or `lo <= hi` holds in domain `d`: 1 always, 0 never, -1 unknown. */
function lessTaken(lo: B, hi: B, strict: boolean, d: Domain): number {
  const [loMin, loMax, hiMin, hiMax] = [lo[MIN[d]], lo[MAX[d]], hi[MIN[d]], hi[MAX[d]]];
  if (strict) return loMax < hiMin ? 1 : loMin >= hiMax ? 0 : -1;
  return loMax <= hiMin ? 1 : loMin > hiMax ? 0 : -1;
}

/** 1: always taken, 0: never, -1: unknown (is_scalar_branch_taken). */
export function isBranchTaken(a: RegState, b: RegState, op: number, is64: boolean): number {
  const x = view(a, is64);
  const y = view(b, is64);
  switch (op) {
    case BPF_JEQ:
    case BPF_JNE: {
      const eq = op === BPF_JEQ;
      if (isConst(x) && isConst(y)) return (x.t.value === y.t.value) === eq ? 1 : 0;
      const disjoint =
        x.umin > y.umax ||
        x.umax < y.umin ||
        x.smin > y.smax ||
        x.smax < y.smin ||
        ((x.t.value ^ y.t.value) & ~(x.t.mask | y.t.mask)) !== 0n;
      if (disjoint) return eq ? 0 : 1;
      return -1;
    }
    case BPF_JSET:
      if ((x.t.value & y.t.value) !== 0n) return 1;
      if (((x.t.value | x.t.mask) & (y.t.value | y.t.mask)) === 0n) return 0;
      return -1;
    // x > y is y < x: the greater-than ops swap their operands, as the kernel does.
    case BPF_JGT:
      return lessTaken(y, x, true, "u");
    case BPF_JGE:
      return lessTaken(y, x, false, "u");
    case BPF_JLT:
      return lessTaken(x, y, true, "u");
    case BPF_JLE:
      return lessTaken(x, y, false, "u");
    case BPF_JSGT:
      return lessTaken(y, x, true, "s");
    case BPF_JSGE:
      return lessTaken(y, x, false, "s");
    case BPF_JSLT:
      return lessTaken(x, y, true, "s");
    case BPF_JSLE:
      return lessTaken(x, y, false, "s");
    default:
      return -1;
  }
}

const maxB = (p: bigint, q: bigint): bigint => (p > q ? p : q);
const minB = (p: bigint, q: bigint): bigint => (p < q ? p : q);

/** Assuming `lo < hi` (strict) or `lo <= hi` in domain `d`: lo's max and hi's min tighten. */
function refineLess(lo: B, hi: B, strict: boolean, d: Domain): void {
  const step = strict ? 1n : 0n;
  lo[MAX[d]] = minB(lo[MAX[d]], hi[MAX[d]] - step);
  hi[MIN[d]] = maxB(hi[MIN[d]], lo[MIN[d]] + step);
}

/**
 * Narrow `a` and `b` (scalars) assuming `a op b` holds. Returns false when that is impossible
 * (the branch is dead).
 */
export function regSetMinMax(a: RegState, b: RegState, op: number, is64: boolean): boolean {
  const x = view(a, is64);
  // `if r0 s> r0`: 6.18's regs_refine_cond_op gets the same register twice and each update
  // sees the one before (the jump branch's smin rises and smax falls by one).
  const y = a === b ? x : view(b, is64);
  switch (op) {
    case BPF_JEQ: {
      x.umin = y.umin = maxB(x.umin, y.umin);
      x.umax = y.umax = minB(x.umax, y.umax);
      x.smin = y.smin = maxB(x.smin, y.smin);
      x.smax = y.smax = minB(x.smax, y.smax);
      x.t = y.t = tnumIntersect(x.t, y.t);
      break;
    }
    case BPF_JNE: {
      const ne = (p: B, c: bigint, bits: number): void => {
        const sc = BigInt.asIntN(bits, c);
        if (p.umin === c) p.umin++;
        else if (p.umax === c) p.umax--;
        if (p.smin === sc) p.smin++;
        else if (p.smax === sc) p.smax--;
      };
      const bits = is64 ? 64 : 32;
      if (isConst(y)) ne(x, y.t.value, bits);
      else if (isConst(x)) ne(y, x.t.value, bits);
      if (isConst(x) && isConst(y) && x.t.value === y.t.value) return false;
      break;
    }
    case BPF_JSET:
      // Some bit of a constant single-bit mask is set: that bit is known.
      if (isConst(y) && (y.t.value & (y.t.value - 1n)) === 0n && y.t.value !== 0n) {
        x.t = { value: x.t.value | y.t.value, mask: x.t.mask & ~y.t.value };
      }
      break;
    case JSET_FALSE:
      if (isConst(y)) x.t = { value: x.t.value & ~y.t.value, mask: x.t.mask & ~y.t.value };
      break;
    case BPF_JGT:
      refineLess(y, x, true, "u");
      break;
    case BPF_JGE:
      refineLess(y, x, false, "u");
      break;
    case BPF_JLT:
      refineLess(x, y, true, "u");
      break;
    case BPF_JLE:
      refineLess(x, y, false, "u");
      break;
    case BPF_JSGT:
      refineLess(y, x, true, "s");
      break;
    case BPF_JSGE:
      refineLess(y, x, false, "s");
      break;
    case BPF_JSLT:
      refineLess(x, y, true, "s");
      break;
    case BPF_JSLE:
      refineLess(x, y, false, "s");
      break;
  }
  if (a !== b && (x.umin > x.umax || x.smin > x.smax || y.umin > y.umax || y.smin > y.smax)) return false;
  if (a === b) {
    // Where the ranges would cross (r0 in [3, 4] after `r0 s> r0`), 6.18 keeps the register
    // as it was and the branch stays live: the loop then ends as an infinite loop.
    const before = copyReg(a);
    store(a, x, is64);
    regBoundsSync(a);
    if (!regBoundsSane(a)) Object.assign(a, before);
    return true;
  }
  store(a, x, is64);
  store(b, y, is64);
  regBoundsSync(a);
  regBoundsSync(b);
  return regBoundsSane(a) && regBoundsSane(b);
}
