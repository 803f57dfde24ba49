import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { assemble } from "../../src/isa/asm.js";
import { decodeInsn, encodeInsn, insnSlots } from "../../src/isa/decode.js";
import { disassemble } from "../../src/isa/disasm.js";
import type { Insn } from "../../src/isa/insn.js";
import { validateInsnEncoding } from "../../src/isa/validate.js";
import { BpfError, EINVAL } from "../../src/uapi/errno.js";

// Raw slots biased towards small field values, where the interesting encodings are.
const small = (max: number) => fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max }));
const rawSlot: fc.Arbitrary<Insn> = fc.record({
  code: fc.integer({ min: 0, max: 255 }),
  dst: small(15),
  src: small(15),
  off: fc.oneof(fc.constantFrom(0, 1, 8, 16, 32, -1), fc.integer({ min: -0x8000, max: 0x7fff })),
  imm: fc.oneof(
    fc.constantFrom(0, 1, 16, 32, 64, 0x41, 0xe1, 0xf1, 0x10000, -1),
    fc.integer({ min: -0x80000000, max: 0x7fffffff }),
  ),
});

test("decode accepts only canonical encodings: whatever decodes re-encodes to the very same slots", () => {
  fc.assert(
    fc.property(fc.array(rawSlot, { minLength: 2, maxLength: 2 }), (raw) => {
      const slots = structuredClone(raw);
      try {
        const d = decodeInsn(slots, 0);
        assert.deepEqual(encodeInsn(d), slots.slice(0, insnSlots(d)));
      } catch (e) {
        assert.ok(e instanceof BpfError && e.errno === EINVAL && e.message.startsWith("insn #0: "), String(e));
      }
    }),
    { numRuns: 20000 },
  );
});

test("any program that decodes disassembles and reassembles to itself; the kernel checks only ever throw BpfError", () => {
  fc.assert(
    fc.property(fc.array(rawSlot, { minLength: 1, maxLength: 6 }), (raw) => {
      const slots = structuredClone(raw);
      try {
        validateInsnEncoding(slots);
      } catch (e) {
        assert.ok(e instanceof BpfError && e.errno === EINVAL, String(e));
      }
      let text: string[];
      try {
        text = disassemble(slots, { labels: true });
      } catch (e) {
        assert.ok(e instanceof BpfError && e.errno === EINVAL, String(e));
        return;
      }
      assert.deepEqual(assemble(text.join("\n")), slots);
      assert.deepEqual(
        assemble(disassemble(slots, { syntax: "llvm", labels: true }).join("\n"), { syntax: "llvm" }),
        slots,
      );
    }),
    { numRuns: 20000 },
  );
});
