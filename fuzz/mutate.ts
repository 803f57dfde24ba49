/** A byte mutator in the AFL style: flips, interesting values, arithmetic, block copies and cuts. */
import type { Prng } from "../src/sim/prng.js";
import { chance, int, pick } from "./target.js";

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 16, 32, 64, 100];
const INTERESTING_32 = [0, 1, -1, 0x7fffffff, -0x80000000, 0xffff, 0x10000, 0x100000, 1 << 30, 4096, 65535, 8];

export function mutate(rng: Prng, src: Uint8Array, rounds = 1 + int(rng, 8)): Uint8Array {
  let b = new Uint8Array(src);
  for (let r = 0; r < rounds && b.length > 0; r++) {
    const at = int(rng, b.length);
    switch (int(rng, 9)) {
      case 0:
        b[at] ^= 1 << int(rng, 8);
        break;
      case 1:
        b[at] = pick(rng, INTERESTING_8);
        break;
      case 2: {
        // A 32-bit little-endian word set to an interesting value, 4-byte aligned (header fields).
        const o = at & ~3;
        if (o + 4 <= b.length) new DataView(b.buffer).setInt32(o, pick(rng, INTERESTING_32), true);
        break;
      }
      case 3: {
        const o = at & ~7;
        if (o + 8 <= b.length)
          new DataView(b.buffer).setBigUint64(o, BigInt.asUintN(64, BigInt(pick(rng, INTERESTING_32)) << 3n), true);
        break;
      }
      case 4:
        b[at] = (b[at] + int(rng, 35) - 17) & 0xff;
        break;
      case 5:
        b[at] = int(rng, 256);
        break;
      case 6: {
        // copy a block over another
        const len = 1 + int(rng, 64);
        const from = int(rng, b.length);
        b.copyWithin(at, from, Math.min(b.length, from + len));
        break;
      }
      case 7: {
        // cut a block out
        const len = 1 + int(rng, Math.min(256, b.length));
        const nb = new Uint8Array(b.length - Math.min(len, b.length - at));
        nb.set(b.subarray(0, at));
        nb.set(b.subarray(at + len), at);
        b = nb;
        break;
      }
      default:
        if (chance(rng, 0.5)) b = b.subarray(0, at).slice();
        else b[at] = 0;
    }
  }
  return b;
}
