import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { Insn } from "../../src/isa/insn.js";
import { bpf_map_type } from "../../src/uapi/bpf.js";
import { BpfError } from "../../src/uapi/errno.js";
import { bpfBaseFuncProto } from "../../src/verifier/helper_protos.js";
import { resolveLdImm64 } from "../../src/verifier/vector.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { close, formed } from "./gen.js";

/** Opcodes of every class, so that random programs reach every part of do_check. */
const CODES = [
  0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f, 0x87, 0x97, 0x9f,
  0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0x04, 0x0c, 0x14, 0x24, 0x34, 0x44, 0x54, 0x64, 0x74, 0x84, 0x94, 0xa4, 0xb4,
  0xbc, 0xc4, 0xd4, 0xdc, 0xd7, 0x61, 0x69, 0x71, 0x79, 0x81, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3,
  0xdb, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x45, 0x55, 0x65, 0x75, 0xa5, 0xb5, 0xc5, 0xd5, 0x16, 0x1e, 0x26, 0xa6,
  0x06, 0x85, 0x95, 0x18, 0x00, 0xff,
];

const insnArb: fc.Arbitrary<Insn> = fc.record({
  code: fc.constantFrom(...CODES),
  dst: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 15 })),
  src: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 15 })),
  off: fc.oneof(fc.integer({ min: -16, max: 16 }), fc.integer({ min: -520, max: 8 })),
  imm: fc.oneof(fc.integer({ min: -8, max: 64 }), fc.constantFrom(0, 1, 5, 7, 16, 32, 64, 181, 0x7fffffff, -1)),
});

/** The verifier on `insns` as a socket filter with one 16-byte array map and a 32-byte context. */
function fuzzCheck(insns: Insn[], privileged: boolean, logLevel: number) {
  return bpfCheck({
    insns,
    ldImm64Aux: resolveLdImm64(insns),
    progType: 1,
    privileged,
    gpl: true,
    logLevel,
    insnLimit: 20_000,
    maps: [{ type: bpf_map_type.BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 16, maxEntries: 1, flags: 0 }],
    ops: {
      name: "fuzz",
      isValidAccess: (off, size) => (off >= 0 && off + size <= 32 ? {} : undefined),
      getFuncProto: (id) => bpfBaseFuncProto(id, privileged),
    },
  });
}

test("well-formed random programs are accepted or refused with a BpfError at an instruction", () => {
  let accepted = 0;
  fc.assert(
    fc.property(fc.array(formed, { minLength: 1, maxLength: 30 }), fc.boolean(), (body, privileged) => {
      const insns = close(body);
      const r = fuzzCheck(insns, privileged, 2);
      if (r.ok) {
        accepted++;
        return true;
      }
      assert.ok(r.error instanceof BpfError);
      assert.equal(typeof r.error.context.insn, "number");
      return true;
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 3000), seed: 0x5eed },
  );
  assert.ok(accepted > 10, `${accepted} accepted`);
});

test("random programs are accepted or refused with a BpfError, never a crash", () => {
  fc.assert(
    fc.property(fc.array(insnArb, { minLength: 1, maxLength: 40 }), fc.boolean(), (body, privileged) => {
      const insns = [
        ...body,
        { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
        { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
      ];
      const r = fuzzCheck(insns, privileged, 1);
      if (r.ok) return true;
      assert.ok(r.error instanceof BpfError);
      assert.equal(typeof r.error.context.insn, "number", r.error.message);
      assert.ok(r.log.includes(r.error.message), r.error.message);
      return true;
    }),
    { numRuns: 3000 },
  );
});
