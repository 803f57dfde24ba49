import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { Insn } from "../../src/isa/insn.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { VmBudgetExceeded, VmFault } from "../../src/vm/fault.js";
import { VmMemory } from "../../src/vm/memory.js";
import { Vm } from "../../src/vm/vm.js";
import { close, formed } from "./gen.js";

const CTX = 32;
/** Everything but calls: the generators that place calls themselves start from this. */
const noCalls = formed.filter((i) => i.code !== 0x85);

/**
 * Runs the verifier on `insns` over a CTX-byte context; when it accepts, runs the program in
 * the interpreter on `bytes` and fails on a VM fault (and, when `mustTerminate`, on running out
 * of the budget). Returns whether the verifier accepted.
 */
function verifyThenRun(insns: Insn[], bytes: Uint8Array, budget: number, mustTerminate: boolean): boolean {
  const r = bpfCheck({
    insns,
    progType: 1,
    privileged: true,
    gpl: true,
    insnLimit: 50_000,
    testStateFreq: bytes[0] % 2 === 0,
    ops: { name: "soundness", isValidAccess: (off, size) => (off >= 0 && off + size <= CTX ? {} : undefined) },
  });
  if (!r.ok) return false;
  const mem = new VmMemory({ initialBytes: 1 << 17 });
  const vm = new Vm(mem, { tier: "interp", budget });
  const region = mem.alloc(CTX, { perm: "rw", kind: "mem", name: "ctx" });
  mem.writeBytes(region.addr, bytes);
  try {
    vm.run(vm.load(insns, { name: "p" }), { r1: region.addr, r2: CTX });
  } catch (e) {
    if (e instanceof VmBudgetExceeded) {
      if (mustTerminate) assert.fail(`verified program did not terminate\n${r.log}`);
      return true;
    }
    if (e instanceof VmFault) assert.fail(`verified program faulted: ${e.message}\n${r.log}`);
    throw e;
  }
  return true;
}

/**
 * What the verifier accepts runs without a memory fault: random well-formed programs (no
 * calls) over a 32-byte context, each accepted one run in the VM's interpreter on random
 * context bytes. A fault would mean the verifier let an unsafe access through.
 */
test("accepted programs never fault in the VM", () => {
  let accepted = 0;
  fc.assert(
    fc.property(
      fc.array(noCalls, { minLength: 1, maxLength: 30 }),
      fc.uint8Array({ minLength: CTX, maxLength: CTX }),
      (body, bytes) => {
        const insns = close(body);
        if (verifyThenRun(insns, bytes, 100_000, false)) accepted++;
        return true;
      },
    ),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 3000), seed: 0xbeef },
  );
  assert.ok(accepted > 20, `${accepted} accepted`);
});

test("accepted programs with loops never fault in the VM either", () => {
  let accepted = 0;
  const insn = fc.oneof(
    { weight: 4, arbitrary: noCalls },
    {
      weight: 1,
      arbitrary: fc
        .record({
          op: fc.constantFrom(0x20, 0x30, 0xa0, 0xb0, 0x50),
          reg: fc.integer({ min: 0, max: 3 }),
          imm: fc.integer({ min: 0, max: 20 }),
          off: fc.integer({ min: -6, max: -1 }),
        })
        .map(({ op, reg, imm, off }) => ({ code: 0x05 | op, dst: reg, src: 0, off, imm })),
    },
  );
  fc.assert(
    fc.property(
      fc.array(insn, { minLength: 1, maxLength: 24 }),
      fc.uint8Array({ minLength: CTX, maxLength: CTX }),
      (body, bytes) => {
        const insns = close(body);
        insns.forEach((i, t) => {
          if ((i.code & 7) === 5 && i.off < 0 && t + i.off + 1 < 0) i.off = -t - 1;
        });
        if (verifyThenRun(insns, bytes, 1_000_000, true)) accepted++;
        return true;
      },
    ),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 2000), seed: 0x1007 },
  );
  assert.ok(accepted > 10, `${accepted} accepted`);
});

test("accepted programs with bpf-to-bpf calls never fault in the VM", () => {
  let accepted = 0;
  const CALL = { code: 0x85, dst: 0, src: 1, off: 0, imm: 0 };
  const mainInsn = fc.oneof({ weight: 6, arbitrary: noCalls }, { weight: 1, arbitrary: fc.constant(CALL) });
  fc.assert(
    fc.property(
      fc.array(mainInsn, { minLength: 1, maxLength: 10 }),
      fc.array(noCalls, { minLength: 1, maxLength: 8 }),
      fc.uint8Array({ minLength: CTX, maxLength: CTX }),
      (a, b, bytes) => {
        // r6 keeps the context across calls; r1-r3 are set again after each call.
        const expanded = [
          { code: 0xbf, dst: 6, src: 1, off: 0, imm: 0 },
          { code: 0xb7, dst: 2, src: 0, off: 0, imm: 1 },
          { code: 0xb7, dst: 3, src: 0, off: 0, imm: 2 },
        ];
        for (const i of [CALL, ...a]) {
          expanded.push({ ...i });
          if (i.code === 0x85) {
            expanded.push({ code: 0xbf, dst: 1, src: 6, off: 0, imm: 0 });
            expanded.push(
              { code: 0xb7, dst: 2, src: 0, off: 0, imm: 1 },
              { code: 0xb7, dst: 3, src: 0, off: 0, imm: 2 },
            );
          }
        }
        const main = close(expanded);
        const f = close([{ code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 }, ...b]);
        main.forEach((i, t) => {
          if (i.code === 0x85 && i.src === 1) i.imm = main.length - (t + 1);
        });
        const insns = [...main, ...f];
        if (verifyThenRun(insns, bytes, 100_000, false)) accepted++;
        return true;
      },
    ),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 4000), seed: 0xca11 },
  );
  assert.ok(accepted > 10, `${accepted} accepted`);
});
