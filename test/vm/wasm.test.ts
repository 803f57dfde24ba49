import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { assemble } from "../../src/isa/asm.js";
import { type Insn, insn } from "../../src/isa/insn.js";
import { isBpfError } from "../../src/uapi/errno.js";
import { VmBudgetExceeded, VmFault } from "../../src/vm/fault.js";
import { VmMemory } from "../../src/vm/memory.js";
import { BPF_MAX_LOOPS, Vm } from "../../src/vm/vm.js";
import { wasmModule } from "../../src/vm/wasm.js";
import { WasmHost } from "../../src/vm/wasm_host.js";
import { TIERS } from "./harness.js";

/** r0, instructions executed, or the error, of a program in one tier. */
function outcome(tier: (typeof TIERS)[number], insns: Insn[], budget: number, r1 = 0): string {
  const vm = new Vm(new VmMemory({ initialBytes: 1 << 17 }), { tier, budget });
  try {
    const P = vm.load(insns, { name: "cfg" });
    const r = vm.run(P, { r1 });
    return `r0=${r.r0} n=${r.insnsExecuted}`;
  } catch (e) {
    // Where the budget is noticed differs (the interpreter checks taken jumps, the others blocks).
    if (e instanceof VmBudgetExceeded) return "budget exhausted";
    if (isBpfError(e)) return `errno ${e.errno}: ${e.message}`;
    throw e;
  }
}

test("an irreducible loop (entered at two blocks) runs alike in every tier", () => {
  const insns = assemble(`
    mov %r0, 0
    mov %r3, 10
    jeq %r1, 0, second
  first:
    add %r0, 1
  second:
    add %r0, 2
    sub %r3, 1
    jne %r3, 0, first
    exit`);
  for (const r1 of [0, 1]) {
    const outs = TIERS.map((t) => outcome(t, insns, 1000, r1));
    assert.deepEqual(
      outs,
      TIERS.map(() => outs[0]),
    );
    assert.equal(outs[0], `r0=${r1 === 0 ? 29 : 30} n=${r1 === 0 ? 43 : 44}`);
  }
});

/*
 * Random control flow: every instruction is an ALU step on r0/r1 or a jump (forward or
 * backward, conditional on r1) anywhere in the program, so loops, nested loops, jumps into
 * loops and irreducible graphs all occur. A small budget stops most of them: every tier must
 * agree on r0 and the instruction count, or all stop with the budget exhausted.
 */
const cfgProgram = fc
  .array(
    fc.record({
      kind: fc.constantFrom("alu", "alu", "jcc", "ja", "exit"),
      target: fc.nat(),
      imm: fc.integer({ min: -5, max: 5 }),
      op: fc.constantFrom(0x07, 0x17, 0x27, 0xa7, 0x04, 0x77),
    }),
    { minLength: 1, maxLength: 30 },
  )
  .map((steps) => {
    const n = steps.length + 1;
    const out: Insn[] = steps.map((s, i) => {
      const off = (s.target % n) - i - 1;
      switch (s.kind) {
        case "alu":
          return insn(s.op, s.imm & 1 ? 0 : 1, 0, 0, s.imm);
        case "jcc":
          return insn(0x25, 1, 0, off, s.imm); // jgt r1, imm
        case "ja":
          return insn(0x05, 0, 0, off, 0);
        default:
          return insn(0x95);
      }
    });
    out.push(insn(0x95));
    return out;
  });

test("random control flow graphs (loops, irreducible ones) agree across tiers", () => {
  fc.assert(
    fc.property(cfgProgram, fc.integer({ min: -3, max: 8 }), (insns, r1) => {
      const outs = TIERS.map((t) => outcome(t, insns, 300, r1));
      assert.deepEqual(
        outs,
        TIERS.map(() => outs[0]),
      );
    }),
    { numRuns: 300 },
  );
});

test("wasm: an access the verifier proved runs unchecked; the same access unproven faults", () => {
  // A store into the guard gap just past a region: only the shadow check stops it.
  const mem = new VmMemory({ initialBytes: 1 << 17 });
  const vm = new Vm(mem, { tier: "wasm" });
  const r = mem.alloc(8, { perm: "rw", kind: "mem" });
  const insns = assemble("stb [%r1+8], 7\nmov %r0, 0\nexit");
  const unproven = vm.load(insns, { name: "u" });
  assert.throws(() => vm.run(unproven, { r1: r.addr }), VmFault);
  const proven = vm.load(insns, { name: "p", proven: new Uint8Array([1, 0, 0]) });
  assert.equal(vm.run(proven, { r1: r.addr }).r0, 0n);
  assert.equal(mem.u8[r.addr + 8], 7);
});

test("wasm: a fault names the instruction, address and size as in the other tiers", () => {
  const insns = assemble("mov %r0, 0\nldxdw %r0, [%r1-4]\nexit");
  const msgs = TIERS.map((t) => outcome(t, insns, 100, 0x10000));
  assert.deepEqual(
    msgs,
    TIERS.map(() => msgs[0]),
  );
  assert.match(msgs[0], /insn 1: invalid read of 8 bytes at 0xfffc/);
});

test("wasm: the module is valid WebAssembly with one function per BPF function", () => {
  const mem = new VmMemory();
  const vm = new Vm(mem, { tier: "wasm" });
  const P = vm.load(assemble("mov %r1, 1\ncall local f\nexit\nf:\nmov %r0, %r1\nexit"), { name: "two" });
  const host = new WasmHost((vm as unknown as { rt: ConstructorParameters<typeof WasmHost>[0] }).rt, 64);
  const { bytes, entries } = wasmModule(host, P);
  assert.deepEqual(entries, [0, 3]);
  assert.ok(
    (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly.validate(bytes),
  );
  assert.equal(P.tier, "wasm");
  assert.equal(vm.run(P).r0, 1n);
});

test('tier "auto": Wasm for loops and long programs, the JavaScript tier for short straight-line ones', () => {
  const vm = new Vm(new VmMemory({ initialBytes: 1 << 17 }));
  const short = vm.load(assemble("mov %r0, 1\nadd %r0, 2\nexit"));
  assert.equal(short.tier, "jit");
  const loop = vm.load(assemble("mov %r0, 3\nl:\nsub %r0, 1\njne %r0, 0, l\nexit"));
  assert.equal(loop.tier, "wasm");
  const long = vm.load(assemble(`${"add %r0, 1\n".repeat(70)}exit`));
  assert.equal(long.tier, "wasm");
  assert.deepEqual([vm.run(short).r0, vm.run(loop).r0, vm.run(long).r0], [3n, 0n, 70n]);
});

test("wasm: may_goto runs in the Wasm tier itself, on the Vm's loop budget", () => {
  const vm = new Vm(new VmMemory({ initialBytes: 1 << 17 }), { tier: "wasm", budget: 2 ** 30 });
  const P = vm.load(assemble("mov %r0, 0\nloop:\nadd %r0, 1\nmay_goto out\nja loop\nout:\nexit"));
  assert.equal(P.tier, "wasm");
  assert.equal(vm.run(P).r0, BigInt(BPF_MAX_LOOPS + 1));
});
