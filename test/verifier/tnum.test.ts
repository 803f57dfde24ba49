import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  type Tnum,
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumCast,
  tnumConst,
  tnumIn,
  tnumIntersect,
  tnumLshift,
  tnumMul,
  tnumOr,
  tnumRange,
  tnumRshift,
  tnumStr,
  tnumSub,
  tnumXor,
  U64_MAX,
} from "../../src/verifier/tnum.js";

const u64 = fc.bigInt({ min: 0n, max: U64_MAX });
/** A tnum with a concrete member x (x's bits kept where the mask is 0). */
const withMember = u64.chain((x) =>
  fc.tuple(
    fc.constant(x),
    u64.map((mask): Tnum => ({ value: x & ~mask & U64_MAX, mask })),
  ),
);
const contains = (t: Tnum, x: bigint): boolean => tnumIn(t, tnumConst(x));
const M = U64_MAX;

test("binary tnum operations contain every concrete result", () => {
  const ops: [string, (a: Tnum, b: Tnum) => Tnum, (x: bigint, y: bigint) => bigint][] = [
    ["add", tnumAdd, (x, y) => (x + y) & M],
    ["sub", tnumSub, (x, y) => (x - y) & M],
    ["mul", tnumMul, (x, y) => (x * y) & M],
    ["and", tnumAnd, (x, y) => x & y],
    ["or", tnumOr, (x, y) => x | y],
    ["xor", tnumXor, (x, y) => x ^ y],
  ];
  for (const [name, f, g] of ops) {
    fc.assert(
      fc.property(withMember, withMember, ([x, a], [y, b]) => contains(f(a, b), g(x, y))),
      { numRuns: 1500 },
    );
    assert.ok(name.length > 0);
  }
});

test("shifts, casts and ranges contain their concrete values", () => {
  fc.assert(
    fc.property(withMember, fc.integer({ min: 0, max: 63 }), ([x, a], k) => {
      const s = BigInt(k);
      return (
        contains(tnumLshift(a, k), (x << s) & M) &&
        contains(tnumRshift(a, k), x >> s) &&
        contains(tnumArshift(a, k, 64), BigInt.asUintN(64, BigInt.asIntN(64, x) >> s)) &&
        contains(tnumCast(a, 4), x & 0xffff_ffffn)
      );
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(u64, u64, u64, (p, q, r) => {
      const [lo, hi] = p < q ? [p, q] : [q, p];
      const x = lo + (r % (hi - lo + 1n));
      return contains(tnumRange(lo, hi), x);
    }),
    { numRuns: 2000 },
  );
});

test("intersect keeps what both know; tnum_in and the printed form", () => {
  const a: Tnum = { value: 0x10n, mask: 0x0fn };
  const b: Tnum = { value: 0x03n, mask: 0xf0n };
  assert.deepEqual(tnumIntersect(a, b), { value: 0x13n, mask: 0n });
  assert.equal(tnumIn(a, tnumConst(0x1fn)), true);
  assert.equal(tnumIn(a, tnumConst(0x20n)), false);
  assert.equal(tnumIn(tnumConst(5n), a), false);
  assert.equal(tnumStr({ value: 0n, mask: 0xffn }), "(0x0; 0xff)");
  assert.deepEqual(tnumRange(0n, 7n), { value: 0n, mask: 7n });
  assert.deepEqual(tnumRange(4n, 4n), { value: 4n, mask: 0n });
});
