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

test("wasm: an unproven access that passed once still faults past its region's end and after the region is freed", () => {
  const mem = new VmMemory({ initialBytes: 1 << 17 });
  const vm = new Vm(mem, { tier: "wasm" });
  // r0 = *(u64 *)(r1 + r2); *(u8 *)(r1 + r2) = 1
  const P = vm.load(assemble("mov %r3, %r1\nadd %r3, %r2\nldxdw %r0, [%r3]\nstb [%r3], 1\nexit"), { name: "c" });
  const r = mem.alloc(64, { perm: "rw", kind: "mem" });
  mem.u8[r.addr + 56] = 9;
  // The site's region is cached by the first access; the last 8 bytes of it still pass.
  assert.equal(vm.run(P, { r1: r.addr, r2: 0 }).r0, 0n);
  assert.equal(vm.run(P, { r1: r.addr, r2: 56 }).r0, 9n);
  // One byte further runs into the guard gap.
  assert.throws(() => vm.run(P, { r1: r.addr, r2: 57 }), /invalid read of 8 bytes/);
  // A high half makes any address fault, inside a cached region's low half too.
  assert.throws(() => vm.run(P, { r1: r.addr, r2: 2 ** 32 }), VmFault);
  // Freed and its bytes reused read-only: the store faults again.
  mem.free(r);
  assert.throws(() => vm.run(P, { r1: r.addr, r2: 0 }), VmFault);
  const ro = mem.alloc(64, { perm: "r", kind: "mem" });
  assert.equal(ro.addr, r.addr);
  assert.throws(() => vm.run(P, { r1: ro.addr, r2: 0 }), /invalid write of 1 byte/);
  assert.equal(mem.u8[ro.addr], 0);
});

test("wasm: an access site that moves between many regions keeps answering as the other tiers", () => {
  const insns = assemble("ldxb %r0, [%r1]\nstb [%r1], 3\nexit");
  const runAll = (tier: (typeof TIERS)[number]): string[] => {
    const mem = new VmMemory({ initialBytes: 1 << 17 });
    const vm = new Vm(mem, { tier });
    const P = vm.load(insns, { name: "m" });
    const regions = Array.from({ length: 40 }, (_, i) =>
      mem.alloc(8 + i, { perm: i % 3 === 0 ? "r" : "rw", kind: "mem" }),
    );
    const out: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const r of regions) {
        for (const at of [r.addr, r.addr + r.size - 1, r.addr + r.size]) {
          try {
            out.push(String(vm.run(P, { r1: at }).r0));
          } catch (e) {
            out.push((e as Error).message);
          }
        }
      }
    }
    return out;
  };
  const ref = runAll("interp");
  for (const tier of TIERS) assert.deepEqual(runAll(tier), ref, tier);
});

test("enterArgs: the context slots stored, then the program run, alike in every tier; a fault leaves the Vm usable", () => {
  const src = `
    ldxdw %r0, [%r1+0]
    ldxdw %r2, [%r1+8]
    ldxdw %r3, [%r1+16]
    lsh %r2, 1
    add %r0, %r2
    xor %r0, %r3
    mov %r4, %r0
    rsh %r4, 32
    add %r0, %r4
    exit`;
  const out: string[] = [];
  for (const tier of TIERS) {
    const mem = new VmMemory({ initialBytes: 1 << 17 });
    const vm = new Vm(mem, { tier });
    const ctx = mem.alloc(24, { perm: "r", kind: "ctx" });
    mem.bytes(ctx.addr, 24).fill(0xaa);
    const P = vm.load(assemble(src), { name: "t" });
    const row: string[] = [];
    for (const n of [0, 1, 2, 3]) {
      const lo = P.enterArgs(ctx.addr, n, -5, 7, 0x7fffffff, -1, 123, 0);
      row.push(`${n}:${lo}/${vm.lastR0Hi}/${vm.lastInsns}`);
    }
    // A faulting run through the same entry, then a good one: the frames and counts are restored.
    assert.throws(
      () => P.enterArgs(8, 1, 0, 0, 0, 0, 0, 0),
      (e: unknown) => isBpfError(e),
    );
    row.push(`${P.enterArgs(ctx.addr, 1, 1, 0, 0, 0, 0, 0)}`);
    out.push(row.join(" "));
  }
  assert.deepEqual(
    out,
    TIERS.map(() => out[0]),
  );
});
