import { test } from "node:test";
import fc from "fast-check";
import { BpfObject } from "../../src/loader/object.js";
import { BpfError } from "../../src/uapi/errno.js";
import { readObj } from "../elf/helpers.js";

test("fuzz: opening mutated objects gives a BpfError or an object, never anything else", () => {
  const good = readObj("features");
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      (flips) => {
        const b = good.slice();
        for (const [at, v] of flips) b[at] = v;
        try {
          BpfObject.open(b);
        } catch (e) {
          if (!(e instanceof BpfError)) throw e;
        }
      },
    ),
    { numRuns: 1500, seed: 99 },
  );
});
