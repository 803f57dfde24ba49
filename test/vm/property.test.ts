import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { type Insn, insn, ldImm64 } from "../../src/isa/insn.js";
import type { HelperCall } from "../../src/vm/helper.js";
import { VmMemory } from "../../src/vm/memory.js";
import { Vm } from "../../src/vm/vm.js";
import { TIERS } from "./harness.js";
import { REF_STACK_BASE, refEval } from "./reference_eval.js";

/*
 * Random valid programs (straight-line code with forward jumps; ALU, ALU64, JMP, JMP32,
 * loads, stores and atomics on the stack) give the same registers and stack in every VM tier
 * as in the BigInt reference evaluator. The program's stack area is r10-256..r10-1; an
 * epilogue spills r0..r9 to r10-512.. and calls helper 1, which snapshots the whole stack.
 */

const edgeImm = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.constantFrom(0, 1, -1, 2, 31, 32, 63, 64, 0x7fffffff, -0x80000000, 0xffff, 0x8000, 0x80),
  fc.integer({ min: -300, max: 300 }),
);
const edge64 = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  fc.constantFrom(0n, 1n, (1n << 64n) - 1n, 1n << 63n, (1n << 63n) - 1n, 1n << 32n, 0xffffffffn, 0x80000000n),
  fc.bigInt({ min: 0n, max: 1000n }),
  // Equal high halves with arbitrary low halves exercise the low-half comparisons of 64-bit jumps.
  fc
    .tuple(fc.constantFrom(0n, 0xffffffffn, 1n), fc.bigInt({ min: 0n, max: 0xffffffffn }))
    .map(([hi, lo]) => (hi << 32n) | lo),
);
const reg = fc.integer({ min: 0, max: 9 });

type Op = (i: number, bodyLen: number) => Insn;

const ALU_OPS = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0];
const aluOp: fc.Arbitrary<Op> = fc
  .record({
    cls: fc.constantFrom(0x04, 0x07),
    op: fc.constantFrom(...ALU_OPS),
    x: fc.boolean(),
    dst: reg,
    src: reg,
    imm: edgeImm,
    signed: fc.boolean(),
    sxBits: fc.constantFrom(0, 8, 16, 32),
  })
  .map(({ cls, op, x, dst, src, imm, signed, sxBits }) => () => {
    const X = op === 0x80 ? false : x;
    let off = 0;
    if (op === 0x30 || op === 0x90) off = signed ? 1 : 0;
    if (op === 0xb0 && X) off = cls === 0x04 && sxBits === 32 ? 0 : sxBits;
    return insn(cls | op | (X ? 0x08 : 0), dst, X ? src : 0, off, imm);
  });

const endOp: fc.Arbitrary<Op> = fc
  .record({ kind: fc.constantFrom(0xd4, 0xdc, 0xd7), dst: reg, width: fc.constantFrom(16, 32, 64) })
  .map(
    ({ kind, dst, width }) =>
      () =>
        insn(kind, dst, 0, 0, width),
  );

const JMP_OPS = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0];
const jmpOp: fc.Arbitrary<Op> = fc
  .record({
    cls: fc.constantFrom(0x05, 0x06),
    op: fc.constantFrom(...JMP_OPS),
    x: fc.boolean(),
    dst: reg,
    src: reg,
    imm: edgeImm,
    frac: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ cls, op, x, dst, src, imm, frac }) => (i: number, bodyLen: number) => {
    const off = Math.floor(frac * (bodyLen - i - 1));
    return insn(cls | op | (x ? 0x08 : 0), dst, x ? src : 0, off, imm);
  });

const SIZE_CODES: [number, number][] = [
  [0x10, 1],
  [0x08, 2],
  [0x00, 4],
  [0x18, 8],
];
const memOp: fc.Arbitrary<Op> = fc
  .record({
    kind: fc.constantFrom("st", "stx", "ldx", "ldxs"),
    size: fc.constantFrom(...SIZE_CODES),
    dst: reg,
    src: reg,
    slot: fc.integer({ min: 1, max: 32 }),
    skew: fc.integer({ min: 0, max: 7 }),
    imm: edgeImm,
  })
  .map(({ kind, size, dst, src, slot, skew, imm }) => () => {
    const [code, bytes] = size;
    const off = -slot * 8 + (skew % (9 - bytes));
    switch (kind) {
      case "st":
        return insn(0x62 | code, 10, 0, off, imm);
      case "stx":
        return insn(0x63 | code, 10, src, off, 0);
      case "ldx":
        return insn(0x61 | code, dst, 10, off, 0);
      default:
        return code === 0x18 ? insn(0x61 | code, dst, 10, off, 0) : insn(0x81 | code, dst, 10, off, 0);
    }
  });

const atomicOp: fc.Arbitrary<Op> = fc
  .record({
    dw: fc.boolean(),
    op: fc.constantFrom(0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1),
    src: reg,
    slot: fc.integer({ min: 1, max: 32 }),
  })
  .map(
    ({ dw, op, src, slot }) =>
      () =>
        insn(0xc3 | (dw ? 0x18 : 0x00), 10, src, -slot * 8, op),
  );

const program = fc
  .record({
    init: fc.array(edge64, { minLength: 10, maxLength: 10 }),
    body: fc.array(fc.oneof({ arbitrary: aluOp, weight: 5 }, endOp, { arbitrary: jmpOp, weight: 2 }, memOp, atomicOp), {
      minLength: 1,
      maxLength: 40,
    }),
  })
  .map(({ init, body }) => {
    // The VM does not clear stacks between runs (the verifier forbids reading uninitialized
    // stack), so the program starts by clearing its own, as the reference's starts zeroed.
    const out: Insn[] = [];
    for (let k = 1; k <= 64; k++) out.push(insn(0x7a, 10, 0, -k * 8, 0));
    init.forEach((v, r) => {
      out.push(...ldImm64(r, v));
    });
    const start = out.length;
    body.forEach((mk, k) => {
      out.push(mk(start + k, start + body.length));
    });
    for (let r = 0; r <= 9; r++) out.push(insn(0x7b, 10, r, -512 + r * 8, 0));
    out.push(insn(0xbf, 1, 10), insn(0x07, 1, 0, 0, -512), insn(0x85, 0, 0, 0, 1), insn(0xb7, 0, 0, 0, 0), insn(0x95));
    return out;
  });

function hexdump(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

for (const tier of TIERS) {
  test(`[${tier}] random programs agree with the BigInt reference evaluator`, () => {
    const mem = new VmMemory();
    const vm = new Vm(mem, { tier });
    fc.assert(
      fc.property(program, (insns) => {
        let refSnap = "";
        refEval(insns, (_id, st) => {
          refSnap = hexdump(st.stack);
        });
        let vmSnap = "";
        const helpers = {
          1: (c: HelperCall) => {
            vmSnap = hexdump(c.mem.bytes(c.argNum(1), 512));
          },
        };
        const prog = vm.load(insns, { helpers, name: "random" });
        vm.run(prog);
        assert.equal(vmSnap, refSnap);
      }),
      { numRuns: 400 },
    );
  });
}

const pair = fc.oneof(
  fc.tuple(edge64, edge64),
  // Same high half: the verdict rests on the low halves.
  fc
    .tuple(edge64, fc.bigInt({ min: 0n, max: 0xffffffffn }))
    .map(([a, lo]) => [a, (a & ~0xffffffffn) | lo] as [bigint, bigint]),
);

for (const tier of TIERS) {
  test(`[${tier}] every conditional jump decides as the reference does`, () => {
    const mem = new VmMemory();
    const vm = new Vm(mem, { tier });
    fc.assert(
      fc.property(
        pair,
        fc.constantFrom(...JMP_OPS),
        fc.constantFrom(0x05, 0x06),
        fc.boolean(),
        edgeImm,
        ([a, b], op, cls, x, imm) => {
          const insns = [
            ...ldImm64(1, a),
            ...ldImm64(2, b),
            insn(0xb7, 0, 0, 0, 0),
            insn(cls | op | (x ? 0x08 : 0), 1, x ? 2 : 0, 1, imm),
            insn(0xb7, 0, 0, 0, 1),
            insn(0x95),
          ];
          assert.equal(vm.run(vm.load(insns)).r0, refEval(insns).regs[0]);
        },
      ),
      // Each case compiles a module: the Wasm tier gets fewer (its compile costs ~1 ms).
      { numRuns: tier === "wasm" ? 600 : 2000 },
    );
  });

  test(`[${tier}] every ALU operation computes as the reference does`, () => {
    const mem = new VmMemory();
    const vm = new Vm(mem, { tier });
    fc.assert(
      fc.property(pair, fc.oneof(aluOp, endOp), ([a, b], mk) => {
        const op = mk(0, 0);
        const insns = [
          ...ldImm64(op.dst, a),
          ...(op.src !== op.dst ? ldImm64(op.src, b) : []),
          op,
          insn(0xbf, 0, op.dst),
          insn(0x95),
        ];
        assert.equal(vm.run(vm.load(insns)).r0, refEval(insns).regs[0]);
      }),
      { numRuns: tier === "wasm" ? 800 : 3000 },
    );
  });
}

test("the reference evaluator itself: a known program", () => {
  const insns = [
    ...ldImm64(1, 0xffffffffn),
    insn(0x04, 1, 0, 0, 1),
    insn(0x7b, 10, 1, -8, 0),
    insn(0x79, 0, 10, -8, 0),
    insn(0x95),
  ];
  const st = refEval(insns);
  assert.equal(st.regs[0], 0n, "32-bit add wraps and zero-extends");
  assert.equal(st.regs[10], REF_STACK_BASE + 512n);
});
