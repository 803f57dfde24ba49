import assert from "node:assert/strict";
import { test } from "node:test";
import { insn } from "../../src/isa/insn.js";
import { decode } from "../../src/vm/interp.js";
import { VmMemory } from "../../src/vm/memory.js";
import { Vm } from "../../src/vm/vm.js";
import { runIn, TIERS } from "./harness.js";

/*
 * The interpreter's own machinery: fused ALU + ja cases, per-class constant shifts, the
 * inline 32-bit division path, and the position-based instruction count. Every case runs in
 * both tiers, which must agree with the expected value.
 */

const M64 = (1n << 64n) - 1n;
const asI64 = (v: bigint) => BigInt.asIntN(64, v);

for (const tier of TIERS) {
  test(`[${tier}] an ALU instruction followed by ja: both counted, the loop runs`, () => {
    const { result } = runIn(
      tier,
      "mov %r0, 0\nmov %r1, 3\nloop:\njeq %r1, 0, done\nsub %r1, 1\nadd %r0, 10\nja loop\ndone:\nexit",
    );
    assert.equal(result.r0, 30n);
    // 2 movs, 3 iterations of 4, the taken jeq, exit.
    assert.equal(result.insnsExecuted, 2 + 3 * 4 + 1 + 1);
  });

  test(`[${tier}] a jump straight to the ja of a fused pair skips the ALU instruction`, () => {
    const { result } = runIn(tier, "mov %r0, 1\njeq %r0, 1, j\nadd %r0, 5\nj:\nja +1\nmov %r0, 99\nexit");
    assert.equal(result.r0, 1n);
    assert.equal(result.insnsExecuted, 4);
  });

  test(`[${tier}] the budget stops a loop whose latch is a fused ALU + ja`, () => {
    const { vm, prog } = runIn(tier, "mov %r0, 0\nexit");
    const spin = vm.load([insn(0x07, 1, 0, 0, 1), insn(0x05, 0, 0, -2, 0), insn(0x95, 0, 0, 0, 0)], { name: "s" });
    assert.throws(() => vm.run(spin, {}, { budget: 101 }), /instruction budget of 101 exhausted/);
    assert.equal(vm.run(prog).r0, 0n);
  });

  test(`[${tier}] 64-bit shifts by constants of every count class (0, 1-31, 32-63, masked)`, () => {
    const v = 0x8765432112345678n;
    for (const n of [0, 1, 5, 31, 32, 33, 40, 63, 64, 65, 96, -1]) {
      const k = BigInt(n & 63);
      const cases: [string, bigint][] = [
        ["lsh", (v << k) & M64],
        ["rsh", v >> k],
        ["arsh", BigInt.asUintN(64, asI64(v) >> k)],
      ];
      for (const [op, want] of cases) {
        const { result } = runIn(tier, `lddw %r0, ${v}\n${op} %r0, ${n}\nexit`);
        assert.equal(result.r0, want, `${op} by ${n}`);
      }
    }
  });

  test(`[${tier}] 64-bit unsigned division of values below 2^32, below 2^53 and above`, () => {
    const pairs: [bigint, bigint][] = [
      [0xffffffffn, 3n],
      [0xfffffffen, 0x80000001n],
      [0x80000000n, 1n],
      [7n, 0xffffffffn],
      [30000000000n, 7n],
      [M64, 0xffffffffn],
      [(1n << 53n) - 1n, 3n],
      [(1n << 53n) - 1n, 0xffffffffn],
      [(1n << 53n) - 2n, (1n << 26n) + 1n],
      [(1n << 53n) + 5n, 7n],
      [0x1234567890n, 0x80000000n],
      [5n, 0n],
    ];
    for (const [a, b] of pairs) {
      const { result } = runIn(tier, `lddw %r0, ${a}\nlddw %r1, ${b}\ndiv %r0, %r1\nexit`);
      assert.equal(result.r0, b === 0n ? 0n : a / b, `${a} / ${b}`);
    }
  });

  test(`[${tier}] the count of a run that starts at a callback entry starts from zero`, () => {
    const mem = new VmMemory({ initialBytes: 1 << 17 });
    const vm = new Vm(mem, { tier });
    // Insn 2 is a function (the target of the call at 0); run it alone as a callback.
    const q = vm.load([insn(0x85, 0, 1, 0, 1), insn(0x95, 0, 0, 0, 0), insn(0xbf, 0, 1, 0, 0), insn(0x95, 0, 0, 0, 0)]);
    assert.equal(vm.invokeCallback(vm.funcAddress(q, 2), [41]), 41n);
    assert.equal(vm.lastInsns, 2);
  });
}

test("decode gives a fused word to an ALU instruction followed by ja, and leaves the ja itself intact", () => {
  const vm = new Vm(new VmMemory({ initialBytes: 1 << 17 }), { tier: "interp" });
  const p = vm.load([insn(0x07, 1, 0, 0, 1), insn(0x05, 0, 0, -2, 0), insn(0x95, 0, 0, 0, 0)]);
  const plain = vm.load([insn(0x07, 1, 0, 0, 1), insn(0x95, 0, 0, 0, 0)]);
  const D = decode(p);
  assert.notEqual(D.ops[0] & 255, decode(plain).ops[0] & 255, "fused add has its own case");
  assert.equal(D.ops[0] >> 16, -2, "the fused word carries the ja's offset");
  assert.equal(D.ops[1] >> 16, -2, "the ja keeps its own word");
});

test("decode puts small ALU constants and constant shift counts in the word; zero compares get their own case", () => {
  const vm = new Vm(new VmMemory({ initialBytes: 1 << 17 }), { tier: "interp" });
  const p = vm.load([
    insn(0xb7, 1, 0, 0, -5), // mov r1, -5: small
    insn(0xb7, 1, 0, 0, 0x12345), // mov r1, 0x12345: from the imm column
    insn(0x77, 1, 0, 0, 65), // rsh r1, 65: count 1 in the word
    insn(0x15, 1, 0, 0, 0), // jeq r1, 0, +0
    insn(0x15, 1, 0, 0, 1), // jeq r1, 1, +0
    insn(0x95, 0, 0, 0, 0),
  ]);
  const D = decode(p);
  assert.equal(D.ops[0] >> 16, -5);
  assert.notEqual(D.ops[0] & 255, D.ops[1] & 255);
  assert.equal(D.ops[1] >> 16, 0);
  assert.equal(D.ops[2] >> 16, 1);
  assert.notEqual(D.ops[3] & 255, D.ops[4] & 255);
  assert.equal(vm.run(p).r0, 0n);
});

for (const tier of TIERS) {
  test(`[${tier}] mov fused with the ALU instruction after it on the same dst`, () => {
    const run = (asm: string, r2 = 7n, r3 = 3n) => runIn(tier, `${asm}\nexit`, { r2, r3 }).result;
    assert.equal(run("mov %r0, %r2\nadd %r0, %r0").r0, 14n, "second source is dst: reads the moved value");
    assert.equal(run("mov %r0, %r2\nsub %r0, %r3").r0, 4n);
    assert.equal(run("mov %r0, %r2\nmul %r0, %r3").r0, 21n);
    assert.equal(run("mov %r0, %r2\ndiv %r0, %r3").r0, 2n);
    assert.equal(run("mov %r0, %r2\ndiv %r0, %r3", 7n, 0n).r0, 0n, "division by zero gives 0");
    assert.equal(run("mov %r0, %r2\nadd %r0, -8").r0, M64);
    assert.equal(run("mov %r0, %r2\nlsh %r0, 31").r0, 7n << 31n);
    assert.equal(run("mov %r0, %r2\nrsh %r0, 1").r0, 3n);
    assert.equal(run("mov %r0, %r2\nmul %r0, 100000").r0, 700000n, "a constant beyond 16 bits does not fuse");
    assert.equal(run("mov %r0, %r2\nadd %r1, %r3\nmov %r0, %r1").r0, 3n, "another dst does not fuse");
    const jumpIn = run("mov %r0, %r2\nja +2\nmov %r0, %r3\nadd %r0, 1\nadd %r0, %r2");
    assert.equal(jumpIn.r0, 14n);
    const into = run("mov %r0, 1\njeq %r0, 1, j\nmov %r0, %r2\nj:\nadd %r0, %r3");
    assert.equal(into.r0, 4n, "a jump to the second slot runs it alone");
    assert.equal(into.insnsExecuted, 4);
    assert.equal(run("mov %r0, %r2\nadd %r0, %r3").insnsExecuted, 3, "a fused pair counts as two");
  });
}
