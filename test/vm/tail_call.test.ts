import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { type Insn, insn } from "../../src/isa/insn.js";
import { BPF_PSEUDO_CALL, MAX_TAIL_CALL_CNT } from "../../src/uapi/bpf.js";
import type { HelperCall } from "../../src/vm/helper.js";
import { VmMemory } from "../../src/vm/memory.js";
import type { VmProgram } from "../../src/vm/program.js";
import { Vm } from "../../src/vm/vm.js";
import { TIERS } from "./harness.js";

/*
 * Tail calls (a helper calling HelperCall.tailCall, as the kernel's bpf_tail_call does) agree in
 * every VM tier with a model: the callee's r0 becomes the calling function's, a tail call from a
 * subprogram returns to that subprogram's caller, an index past the table or an empty slot falls
 * through, and a run takes at most MAX_TAIL_CALL_CNT of them, the count going up before the slot
 * is looked at (as the kernel's interpreter and x86 JIT count).
 */

const TAIL_CALL = 12;

/** One random program: r0 = a; optionally call a subprogram holding the tail call; r0 += c. */
interface Shape {
  a: number;
  /** Index the tail call asks for (past the table sometimes). */
  idx: number;
  /** Fall-through value of the function holding the tail call (before the ctx is added). */
  b: number;
  /** The tail call sits in a subprogram whose result the main program adds c to. */
  inSub: boolean;
  c: number;
  /** Clobber r6-r9 in the subprogram (restored for the caller in every tier). */
  clobber: boolean;
}

const MOV64_K = 0xb7;
const MOV64_X = 0xbf;
const ADD64_K = 0x07;
const ADD64_X = 0x0f;
const CALL = 0x85;
const EXIT = 0x95;

/** The instructions of a function that tail calls `idx` with r1 = ctx, else returns b + ctx. */
function tailBody(s: Shape, clobber: boolean): Insn[] {
  const out: Insn[] = [insn(MOV64_X, 6, 1, 0, 0)];
  if (clobber) for (let r = 7; r <= 9; r++) out.push(insn(MOV64_K, r, 0, 0, -1));
  out.push(
    insn(MOV64_X, 1, 6, 0, 0),
    insn(MOV64_K, 2, 0, 0, 0),
    insn(MOV64_K, 3, 0, 0, s.idx),
    insn(CALL, 0, 0, 0, TAIL_CALL),
    insn(MOV64_K, 0, 0, 0, s.b),
    insn(ADD64_X, 0, 6, 0, 0),
    insn(EXIT, 0, 0, 0, 0),
  );
  return out;
}

function build(s: Shape): Insn[] {
  if (!s.inSub) return [insn(MOV64_K, 0, 0, 0, s.a), ...tailBody(s, false)];
  const sub = tailBody(s, s.clobber);
  // main: r9 = c; call sub; r0 += r9 (r9 survives the call); exit.
  const main = [
    insn(MOV64_K, 9, 0, 0, s.c),
    insn(CALL, 0, BPF_PSEUDO_CALL, 0, 2),
    insn(ADD64_X, 0, 9, 0, 0),
    insn(EXIT, 0, 0, 0, 0),
  ];
  void ADD64_K;
  return [...main, ...sub];
}

/** What the chain returns: the kernel's semantics, written out. */
function model(shapes: Shape[], slots: (number | null)[], entry: number, ctx: number): number {
  let cnt = 0;
  const run = (i: number): number => {
    const s = shapes[i];
    const holder = (): number => {
      if (s.idx >= 0 && s.idx < slots.length && cnt < MAX_TAIL_CALL_CNT) {
        cnt++;
        const t = slots[s.idx];
        if (t !== null) return run(t);
      }
      return (s.b + ctx) | 0;
    };
    return s.inSub ? (holder() + s.c) | 0 : holder();
  };
  return run(entry);
}

const shape: fc.Arbitrary<Shape> = fc.record({
  a: fc.integer({ min: -1000, max: 1000 }),
  idx: fc.integer({ min: -1, max: 5 }),
  b: fc.integer({ min: -1000, max: 1000 }),
  inSub: fc.boolean(),
  c: fc.integer({ min: -1000, max: 1000 }),
  clobber: fc.boolean(),
});

const world = fc.array(shape, { minLength: 1, maxLength: 4 }).chain((shapes) =>
  fc.record({
    shapes: fc.constant(shapes),
    slots: fc.array(fc.option(fc.integer({ min: 0, max: shapes.length - 1 }), { nil: null }), {
      minLength: 0,
      maxLength: 4,
    }),
    entry: fc.integer({ min: 0, max: shapes.length - 1 }),
    ctx: fc.integer({ min: 0, max: 1000 }),
  }),
);

function runWorld(
  tier: (typeof TIERS)[number],
  w: { shapes: Shape[]; slots: (number | null)[]; entry: number; ctx: number },
): number {
  const vm = new Vm(new VmMemory({ initialBytes: 1 << 17 }), { tier });
  const progs: VmProgram[] = [];
  const helpers = new Map([
    [
      TAIL_CALL,
      (c: HelperCall) => {
        const idx = c.argLo(3);
        if (idx >= w.slots.length) return;
        if (!c.tailCallCount(MAX_TAIL_CALL_CNT)) return;
        const t = w.slots[idx];
        if (t === null) return;
        c.setRet(c.tailCall(progs[t], c.arg(1)));
      },
    ],
  ]);
  for (const s of w.shapes) progs.push(vm.load(build(s), { helpers }));
  return vm.runNumber(progs[w.entry], w.ctx) | 0;
}

for (const tier of TIERS) {
  test(`[${tier}] tail calls agree with the model (chains, cycles, subprograms, the 33 limit)`, () => {
    fc.assert(
      fc.property(world, (w) => {
        assert.equal(runWorld(tier, w), model(w.shapes, w.slots, w.entry, w.ctx));
      }),
      { numRuns: tier === "wasm" ? 60 : 200 },
    );
  });
}

test("a self tail call runs 1 + MAX_TAIL_CALL_CNT times in every tier, and runs after it start afresh", () => {
  const counting: Insn[] = [
    // r6 = ctx; *(u64 *)ctx += 1; tail call slot 0; return *(u64 *)ctx.
    insn(MOV64_X, 6, 1, 0, 0),
    insn(0x79, 2, 6, 0, 0),
    insn(ADD64_K, 2, 0, 0, 1),
    insn(0x7b, 6, 2, 0, 0),
    insn(MOV64_X, 1, 6, 0, 0),
    insn(MOV64_K, 3, 0, 0, 0),
    insn(CALL, 0, 0, 0, TAIL_CALL),
    insn(0x79, 0, 6, 0, 0),
    insn(EXIT, 0, 0, 0, 0),
  ];
  for (const tier of TIERS) {
    const mem = new VmMemory({ initialBytes: 1 << 17 });
    const vm = new Vm(mem, { tier });
    let self: VmProgram | undefined;
    const helpers = new Map([
      [
        TAIL_CALL,
        (c: HelperCall) => {
          if (c.tailCallCount(MAX_TAIL_CALL_CNT)) c.setRet(c.tailCall(self!, c.arg(1)));
        },
      ],
    ]);
    self = vm.load(counting, { helpers });
    const ctx = mem.alloc(8, { perm: "rw", kind: "map_value" });
    for (const run of [1, 2]) {
      mem.writeU64(ctx.addr, 0n);
      assert.equal(vm.runNumber(self, ctx.addr), MAX_TAIL_CALL_CNT + 1, `${tier} run ${run}`);
    }
  }
});
