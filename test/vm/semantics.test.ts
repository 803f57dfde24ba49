import assert from "node:assert/strict";
import { test } from "node:test";
import { r0Of } from "./harness.js";

const hex = (v: bigint) => `0x${v.toString(16)}`;
const eq = (asm: string, want: bigint, args = {}) => assert.equal(hex(r0Of(asm, args)), hex(BigInt.asUintN(64, want)));

test("32-bit ALU results are zero-extended", () => {
  eq("lddw %r0, 0xffffffffffffffff\nadd32 %r0, 1\nexit", 0n);
  eq("lddw %r0, 0xffffffff00000005\nmov32 %r0, %r0\nexit", 5n);
  eq("mov %r0, -1\nmul32 %r0, 2\nexit", 0xfffffffen);
});

test("shift amounts are masked to 63 (64-bit) and 31 (32-bit)", () => {
  eq("mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit", 2n);
  eq("mov32 %r0, 1\nmov %r1, 33\nlsh32 %r0, %r1\nexit", 2n);
  eq("mov %r0, -8\nmov %r1, 66\narsh %r0, %r1\nexit", -2n);
  eq("lddw %r0, 0x8000000000000000\nrsh %r0, 63\nexit", 1n);
});

test("division by zero gives 0; modulo by zero leaves dst (32-bit: truncated)", () => {
  eq("mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit", 0n);
  eq("mov %r0, 7\nmov %r1, 0\nsdiv32 %r0, %r1\nexit", 0n);
  eq("mov %r0, -7\nmov %r1, 0\nmod %r0, %r1\nexit", -7n);
  eq("lddw %r0, 0x1234567800000009\nmov %r1, 0\nmod32 %r0, %r1\nexit", 9n);
  eq("mov %r0, -7\nmov %r1, 0\nsmod %r0, %r1\nexit", -7n);
});

test("signed division and modulo, INT_MIN / -1", () => {
  eq("lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit", -(2n ** 63n));
  eq("lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit", 0n);
  eq("mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit", 0x80000000n);
  eq("mov %r0, -7\nsdiv %r0, 2\nexit", -3n);
  eq("mov %r0, -7\nsmod %r0, 2\nexit", -1n);
  eq("mov %r0, 7\nsmod %r0, -2\nexit", 1n);
  eq("mov32 %r0, -7\nsmod32 %r0, 2\nexit", 0xffffffffn);
});

test("64-bit unsigned division beyond 2^53 is exact", () => {
  eq("lddw %r0, 0xfffffffffffffffe\nlddw %r1, 0x100000001\ndiv %r0, %r1\nexit", 0xfffffffffffffffen / 0x100000001n);
  eq("lddw %r0, 0xfffffffffffffffe\nlddw %r1, 0x100000001\nmod %r0, %r1\nexit", 0xfffffffffffffffen % 0x100000001n);
  eq("lddw %r0, 0x000fffffffffffff\nmov %r1, 3\ndiv %r0, %r1\nexit", 0x000fffffffffffffn / 3n);
});

test("64-bit multiply keeps the low 64 bits of the product", () => {
  const a = 0x9e3779b97f4a7c15n;
  const b = 0xfedcba9876543210n;
  eq(`lddw %r0, ${hex(a)}\nlddw %r1, ${hex(b)}\nmul %r0, %r1\nexit`, (a * b) & (2n ** 64n - 1n));
});

test("byte swaps: le truncates, be and bswap swap", () => {
  eq("lddw %r0, 0x1122334455667788\nle16 %r0\nexit", 0x7788n);
  eq("lddw %r0, 0x1122334455667788\nle32 %r0\nexit", 0x55667788n);
  eq("lddw %r0, 0x1122334455667788\nle64 %r0\nexit", 0x1122334455667788n);
  eq("lddw %r0, 0x1122334455667788\nbe16 %r0\nexit", 0x8877n);
  eq("lddw %r0, 0x1122334455667788\nbe32 %r0\nexit", 0x88776655n);
  eq("lddw %r0, 0x1122334455667788\nbe64 %r0\nexit", 0x8877665544332211n);
  eq("lddw %r0, 0x1122334455667788\nswap16 %r0\nexit", 0x8877n);
  eq("lddw %r0, 0x1122334455667788\nswap64 %r0\nexit", 0x8877665544332211n);
});

test("sign extension: movsx and ldxs*", () => {
  eq("mov %r1, 0x80\nmovsx864 %r0, %r1\nexit", -128n);
  eq("mov %r1, 0x8000\nmovsx1632 %r0, %r1\nexit", 0xffff8000n);
  eq("mov32 %r1, 0x80000000\nmovsx3264 %r0, %r1\nexit", -(2n ** 31n));
  eq("stw [%r10-4], -2\nldxsb %r0, [%r10-4]\nexit", -2n);
  eq("stw [%r10-4], -2\nldxsh %r0, [%r10-4]\nexit", -2n);
  eq("stw [%r10-4], -2\nldxsw %r0, [%r10-4]\nexit", -2n);
  eq("stw [%r10-4], -2\nldxw %r0, [%r10-4]\nexit", 0xfffffffen);
});

test("jumps: 64-bit signed/unsigned, jmp32 on the low half, jset, gotol", () => {
  eq("mov %r0, 0\nmov %r1, -1\njsgt %r1, 0, +1\nmov %r0, 1\nexit", 1n);
  eq("mov %r0, 0\nmov %r1, -1\njgt %r1, 0, +1\nmov %r0, 1\nexit", 0n);
  eq("mov %r0, 0\nlddw %r1, 0x100000000\njeq32 %r1, 0, +1\nmov %r0, 1\nexit", 0n);
  eq("mov %r0, 0\nlddw %r1, 0x100000000\njeq %r1, 0, +1\nmov %r0, 1\nexit", 1n);
  eq("mov %r0, 0\nlddw %r1, 0x100000000\njset %r1, %r1, +1\nmov %r0, 1\nexit", 0n);
  eq("mov %r0, 0\nja32 +1\nmov %r0, 1\nexit", 0n);
  eq("mov %r0, 0\nmov %r1, -5\njslt32 %r1, -4, +1\nmov %r0, 1\nexit", 0n);
});

test("atomics: fetch variants return the old value; cmpxchg compares with r0", () => {
  eq(
    "stdw [%r10-8], 5\nmov %r1, 3\nlock fetch add [%r10-8], %r1\nldxdw %r0, [%r10-8]\nlsh %r0, 8\nor %r0, %r1\nexit",
    0x805n,
  );
  eq(
    "stdw [%r10-8], 5\nmov %r1, 3\nlock xchg [%r10-8], %r1\nldxdw %r0, [%r10-8]\nlsh %r0, 8\nor %r0, %r1\nexit",
    0x305n,
  );
  // 32-bit cmpxchg: r0's low half matches -> store; r0 gets the old value zero-extended.
  eq(
    "stw [%r10-4], 7\nlddw %r0, 0xffffffff00000007\nmov %r1, 9\nlock cmpxchg32 [%r10-4], %r1\nldxw %r2, [%r10-4]\nlsh %r2, 32\nor %r0, %r2\nexit",
    0x900000007n,
  );
  // 64-bit cmpxchg mismatch: memory unchanged, r0 = old value.
  eq(
    "stdw [%r10-8], 7\nmov %r0, 8\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\nldxdw %r2, [%r10-8]\nadd %r0, %r2\nexit",
    14n,
  );
  eq(
    "stw [%r10-4], -1\nmov %r1, 1\nlock fetch add32 [%r10-4], %r1\nldxw %r0, [%r10-4]\nadd %r0, %r1\nexit",
    0xffffffffn,
  );
  eq(
    "stdw [%r10-8], 12\nmov %r1, 10\nlock and [%r10-8], %r1\nlock or [%r10-8], %r1\nmov %r1, 3\nlock xor [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit",
    9n,
  );
});

test("ld_imm64 loads a full 64-bit constant", () => {
  eq("lddw %r0, 0x123456789abcdef0\nexit", 0x123456789abcdef0n);
});
