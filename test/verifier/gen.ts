/** Random well-formed programs for the fuzz and soundness tests. */
import fc from "fast-check";
import type { Insn } from "../../src/isa/insn.js";

const reg = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom(6, 10), fc.integer({ min: 0, max: 10 }));
const imm = fc.oneof(fc.integer({ min: -8, max: 40 }), fc.constantFrom(0, 1, 8, 16, 0xff, -1));
const ALU = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0];
const SIZES = [0x00, 0x08, 0x10, 0x18];
const JMPS = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0];

/** Well-formed instructions (reserved fields zero, jumps forward), so random programs get deep. */
export const formed: fc.Arbitrary<Insn> = fc.oneof(
  fc
    .record({ op: fc.constantFrom(...ALU), cls: fc.constantFrom(0x04, 0x07), x: fc.boolean(), dst: reg, src: reg, imm })
    .map(({ op, cls, x, dst, src, imm }) => {
      const shift = op === 0x60 || op === 0x70 || op === 0xc0;
      const k = shift ? Math.abs(imm) % (cls === 0x07 ? 64 : 32) : (op === 0x30 || op === 0x90) && imm === 0 ? 3 : imm;
      return x ? { code: cls | op | 0x08, dst, src, off: 0, imm: 0 } : { code: cls | op, dst, src: 0, off: 0, imm: k };
    }),
  fc
    .record({
      sz: fc.constantFrom(...SIZES),
      dst: reg,
      src: fc.constantFrom(1, 10, 0, 2),
      off: fc.integer({ min: -24, max: 24 }),
    })
    .map(({ sz, dst, src, off }) => ({ code: 0x61 | sz, dst, src, off, imm: 0 })),
  fc
    .record({
      sz: fc.constantFrom(...SIZES),
      st: fc.boolean(),
      dst: fc.constantFrom(10, 1, 0, 2),
      src: reg,
      off: fc.integer({ min: -24, max: 24 }),
      imm,
    })
    .map(({ sz, st, dst, src, off, imm }) =>
      st ? { code: 0x62 | sz, dst, src: 0, off, imm } : { code: 0x63 | sz, dst, src, off, imm: 0 },
    ),
  fc
    .record({
      op: fc.constantFrom(...JMPS),
      cls: fc.constantFrom(0x05, 0x06),
      x: fc.boolean(),
      dst: reg,
      src: reg,
      off: fc.integer({ min: 0, max: 4 }),
      imm,
    })
    .map(({ op, cls, x, dst, src, off, imm }) =>
      x ? { code: cls | op | 0x08, dst, src, off, imm: 0 } : { code: cls | op, dst, src: 0, off, imm },
    ),
  fc.constantFrom(1, 2, 3, 5, 7, 181).map((imm) => ({ code: 0x85, dst: 0, src: 0, off: 0, imm })),
);

/** Jumps past the end are clamped onto the final exit. */
export function close(body: Insn[]): Insn[] {
  const insns = [
    ...body,
    { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 },
    { code: 0x95, dst: 0, src: 0, off: 0, imm: 0 },
  ];
  insns.forEach((i, t) => {
    const cls = i.code & 7;
    if (
      (cls === 5 || cls === 6) &&
      (i.code & 0xf0) !== 0x80 &&
      (i.code & 0xf0) !== 0x90 &&
      t + i.off + 1 >= insns.length
    ) {
      i.off = insns.length - 2 - t;
    }
  });
  return insns;
}
