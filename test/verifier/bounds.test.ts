import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  BPF_ADD,
  BPF_AND,
  BPF_ARSH,
  BPF_DIV,
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
  BPF_LSH,
  BPF_MOD,
  BPF_MUL,
  BPF_OR,
  BPF_RSH,
  BPF_SUB,
  BPF_XOR,
} from "../../src/isa/opcodes.js";
import { aluConst, scalarAlu } from "../../src/verifier/alu.js";
import { isBranchTaken, negateJmp, regSetMinMax } from "../../src/verifier/branch.js";
import {
  copyReg,
  markRegKnown,
  markRegUnknown,
  newReg,
  type RegState,
  regBoundsSync,
} from "../../src/verifier/reg_state.js";
import { tnumConst, tnumIn, U64_MAX } from "../../src/verifier/tnum.js";

/** Does the abstract register admit the concrete 64-bit value v? */
function contains(r: RegState, v: bigint): boolean {
  const u = v & U64_MAX;
  const s = BigInt.asIntN(64, u);
  const lo = u & 0xffff_ffffn;
  const s32 = BigInt.asIntN(32, lo);
  return (
    r.umin <= u &&
    u <= r.umax &&
    r.smin <= s &&
    s <= r.smax &&
    r.u32min <= lo &&
    lo <= r.u32max &&
    r.s32min <= s32 &&
    s32 <= r.s32max &&
    tnumIn(r.varOff, tnumConst(u))
  );
}

const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: U64_MAX }),
  fc.bigInt({ min: 0n, max: 300n }),
  fc.constantFrom(0n, 1n, 0x7fff_ffffn, 0x8000_0000n, 0xffff_ffffn, 1n << 63n, U64_MAX),
  fc.bigInt({ min: -300n, max: -1n }).map((x) => x & U64_MAX),
);

/** An abstract register holding x: a constant, an unsigned or signed range, or known bits. */
const abstractOf = (x: bigint) =>
  fc
    .tuple(fc.integer({ min: 0, max: 3 }), fc.bigInt({ min: 0n, max: 1n << 40n }), fc.bigInt({ min: 0n, max: U64_MAX }))
    .map(([kind, d, mask]) => {
      const r = newReg();
      if (kind === 0) {
        markRegKnown(r, x);
        return r;
      }
      markRegUnknown(r);
      if (kind === 1) {
        r.umin = x >= d ? x - d : 0n;
        // biome-ignore lint/complexity/useMathMinMax: BigInt operands, which Math.min does not take
        r.umax = x + d <= U64_MAX ? x + d : U64_MAX;
      } else if (kind === 2) {
        const s = BigInt.asIntN(64, x);
        r.smin = s - d >= -(1n << 63n) ? s - d : -(1n << 63n);
        r.smax = s + d < 1n << 63n ? s + d : (1n << 63n) - 1n;
      } else {
        r.varOff = { value: x & ~mask & U64_MAX, mask };
      }
      regBoundsSync(r);
      return r;
    });

const pair = fc
  .tuple(u64, u64)
  .chain(([x, y]) => fc.tuple(fc.constant(x), fc.constant(y), abstractOf(x), abstractOf(y)));

test("reg_bounds_sync keeps every value it started with", () => {
  fc.assert(
    fc.property(
      u64.chain((x) => fc.tuple(fc.constant(x), abstractOf(x))),
      ([x, r]) => contains(r, x),
    ),
    { numRuns: 2000 },
  );
});

const ALU_OPS = [BPF_ADD, BPF_SUB, BPF_MUL, BPF_AND, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH, BPF_ARSH, BPF_DIV, BPF_MOD];

test("scalar ALU results contain the concrete result (64 and 32 bits)", () => {
  fc.assert(
    fc.property(pair, fc.constantFrom(...ALU_OPS), fc.boolean(), ([x, y, a, b], op, is64) => {
      const isShift = op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH;
      let yy = y;
      let bb = b;
      if (isShift) {
        // The verifier refuses constant shifts out of range; the ISA masks register ones.
        yy = y % (is64 ? 64n : 32n);
        bb = newReg();
        markRegKnown(bb, yy);
      }
      const dst = copyReg(a);
      scalarAlu(op, dst, bb, is64);
      const w = is64 ? 64 : 32;
      const want = aluConst(op, is64 ? x : x & 0xffff_ffffn, is64 ? yy : yy & 0xffff_ffffn, w, false);
      return contains(dst, want);
    }),
    { numRuns: 5000 },
  );
});

const JMP_OPS = [
  BPF_JEQ,
  BPF_JNE,
  BPF_JGT,
  BPF_JGE,
  BPF_JLT,
  BPF_JLE,
  BPF_JSGT,
  BPF_JSGE,
  BPF_JSLT,
  BPF_JSLE,
  BPF_JSET,
];

function holds(op: number, x: bigint, y: bigint, is64: boolean): boolean {
  const bits = is64 ? 64 : 32;
  const ux = BigInt.asUintN(bits, x);
  const uy = BigInt.asUintN(bits, y);
  const sx = BigInt.asIntN(bits, x);
  const sy = BigInt.asIntN(bits, y);
  switch (op) {
    case BPF_JEQ:
      return ux === uy;
    case BPF_JNE:
      return ux !== uy;
    case BPF_JGT:
      return ux > uy;
    case BPF_JGE:
      return ux >= uy;
    case BPF_JLT:
      return ux < uy;
    case BPF_JLE:
      return ux <= uy;
    case BPF_JSGT:
      return sx > sy;
    case BPF_JSGE:
      return sx >= sy;
    case BPF_JSLT:
      return sx < sy;
    case BPF_JSLE:
      return sx <= sy;
    default:
      return (ux & uy) !== 0n;
  }
}

test("is_branch_taken never contradicts a concrete comparison", () => {
  fc.assert(
    fc.property(pair, fc.constantFrom(...JMP_OPS), fc.boolean(), ([x, y, a, b], op, is64) => {
      const t = isBranchTaken(a, b, op, is64);
      return t < 0 || (t === 1) === holds(op, x, y, is64);
    }),
    { numRuns: 5000 },
  );
});

test("branch refinement keeps the values that take the branch", () => {
  fc.assert(
    fc.property(pair, fc.constantFrom(...JMP_OPS), fc.boolean(), ([x, y, a, b], op, is64) => {
      const taken = holds(op, x, y, is64);
      const ra = copyReg(a);
      const rb = copyReg(b);
      const ok = regSetMinMax(ra, rb, taken ? op : negateJmp(op), is64);
      return ok && contains(ra, x) && contains(rb, y);
    }),
    { numRuns: 5000 },
  );
});

test("a refinement that empties a register reports the branch dead", () => {
  const a = newReg();
  markRegKnown(a, 5n);
  const b = newReg();
  markRegKnown(b, 5n);
  assert.equal(regSetMinMax(a, b, BPF_JNE, true), false);
  const c = newReg();
  markRegUnknown(c);
  c.umax = 10n;
  regBoundsSync(c);
  const d = newReg();
  markRegKnown(d, 20n);
  assert.equal(regSetMinMax(c, d, BPF_JGT, true), false);
  assert.equal(isBranchTaken(c, d, BPF_JGT, true), 0);
});
