/**
 * btf: BTF blobs, generated (deep modifier chains, self-references, vlen up to 65535, huge
 * offsets and counts, references anywhere) or mutated (the objects' .BTF sections, generated
 * blobs), through the kernel's BTF_LOAD, our parser and validator, every dumper (raw, JSON, C)
 * and the value printer over random bytes.
 */
import { Btf } from "../src/btf/btf.js";
import { BtfBuilder } from "../src/btf/builder.js";
import { btfDumpC } from "../src/btf/dump_c.js";
import { btfDumpRaw, btfDumpRawJson } from "../src/btf/dump_raw.js";
import { btfTypeSeqShow } from "../src/btf/seq_show.js";
import { ElfFile } from "../src/elf/elf.js";
import type { Kernel } from "../src/kernel/kernel.js";
import type { Process } from "../src/kernel/process.js";
import type { Prng } from "../src/sim/prng.js";
import { bpf_cmd } from "../src/uapi/bpf.js";
import { bootKernel } from "./kernel.js";
import { mutate } from "./mutate.js";
import { corpusObjects } from "./repo.js";
import { chance, type FuzzTarget, int, isRefusal, pick } from "./target.js";

const seeds: Uint8Array[] = corpusObjects().flatMap(({ bytes }) => {
  try {
    const s = ElfFile.parse(bytes).sectionByName(".BTF");
    return s ? [s.data.slice()] : [];
  } catch {
    return [];
  }
});

const NAMES = ["", "a", "s", "int", "char", "long", "u32", "__u64", "x", "tcp_sock", "bpf_spin_lock", "f"];
const BIG = [0, 1, 7, 8, 31, 32, 63, 64, 0xff, 0xffff, 0xffffff, 0x1000000, 0x7fffffff, 0x80000000, 0xffffffff];

function num(rng: Prng, small: number): number {
  return chance(rng, 0.8) ? int(rng, small) : pick(rng, BIG);
}

/** A random BTF: each type refers to any id, earlier, later or itself. */
function generated(rng: Prng): Uint8Array {
  const b = new BtfBuilder();
  const n = 1 + int(rng, 24);
  const ref = () => (chance(rng, 0.1) ? num(rng, n + 4) : int(rng, b.nrTypes + 3));
  for (let i = 0; i < n; i++) {
    const name = pick(rng, NAMES);
    try {
      switch (int(rng, 16)) {
        case 0:
        case 1:
          b.addInt(name || "int", pick(rng, [1, 2, 4, 8, 16, 3, 0]), pick(rng, [0, 1, 2, 4, 8]));
          break;
        case 2:
          b.addPtr(ref());
          break;
        case 3: {
          // a modifier chain, long enough to pass the kernel's resolve depth now and then
          let t = ref();
          for (let d = 0, len = chance(rng, 0.3) ? 20 + int(rng, 60) : 1 + int(rng, 4); d < len; d++) {
            const k = int(rng, 5);
            t =
              k === 0
                ? b.addConst(t)
                : k === 1
                  ? b.addVolatile(t)
                  : k === 2
                    ? b.addTypedef(name || "t", t)
                    : k === 3
                      ? b.addRestrict(t)
                      : b.addTypeTag("tag", t);
          }
          break;
        }
        case 4:
          b.addArray(ref(), ref(), num(rng, 8));
          break;
        case 5:
        case 6:
        case 7: {
          const vlen = chance(rng, 0.002) ? 65535 : int(rng, 6);
          const size = num(rng, 64);
          const members = [];
          for (let m = 0; m < vlen; m++) {
            const big = chance(rng, 0.05);
            members.push({
              name: vlen > 100 ? "" : pick(rng, NAMES),
              type: ref(),
              bitOffset: big ? pick(rng, BIG) : m * 32,
              bitfieldSize: chance(rng, 0.1) ? int(rng, 70) : 0,
            });
          }
          const id = (chance(rng, 0.2) ? b.addUnion : b.addStruct).call(b, name, size, []);
          for (const m of members) {
            try {
              b.addField(id, m.name, m.type, m.bitOffset, m.bitfieldSize);
            } catch (e) {
              if (!isRefusal(e)) throw e;
            }
          }
          if (chance(rng, 0.2)) b.addField(id, "self", id, 0);
          break;
        }
        case 8:
          b.addEnum(name, pick(rng, [1, 2, 4, 8, 3]), [
            { name: "A", val: num(rng, 5) },
            { name: "B", val: -1 },
          ]);
          break;
        case 9:
          b.addEnum64(name, 8, [{ name: "C", val: BigInt(num(rng, 5)) << 32n }], chance(rng, 0.5));
          break;
        case 10:
          b.addFwd(name || "fw", chance(rng, 0.5));
          break;
        case 11: {
          const params = [];
          for (let p = int(rng, 5); p > 0; p--) params.push({ name: pick(rng, NAMES), type: ref() });
          const proto = b.addFuncProto(ref(), params);
          if (chance(rng, 0.6)) b.addFunc(name || "f", chance(rng, 0.8) ? proto : ref(), int(rng, 3));
          break;
        }
        case 12:
          b.addVar(name || "v", ref(), int(rng, 3));
          break;
        case 13:
          b.addDatasec(pick(rng, [".data", ".bss", ".rodata", "x"]), num(rng, 64), [
            { type: ref(), offset: num(rng, 16), size: num(rng, 16) },
          ]);
          break;
        case 14:
          b.addDeclTag("dtag", ref(), chance(rng, 0.5) ? -1 : num(rng, 4));
          break;
        default:
          b.addFloat(name || "float", pick(rng, [2, 4, 8, 12, 16, 3]));
      }
    } catch (e) {
      if (!isRefusal(e)) throw e;
    }
  }
  return b.build();
}

let kernel: Kernel | undefined;
let proc: Process | undefined;

function btfLoad(blob: Uint8Array): string {
  kernel ??= bootKernel();
  proc ??= kernel.newProcess({ comm: "fuzz" });
  try {
    const fd = kernel.bpf(proc, bpf_cmd.BPF_BTF_LOAD, { btf: blob, btf_size: blob.length });
    kernel.close(proc, fd);
    kernel.quiesce();
    return "loaded";
  } catch (e) {
    if (!isRefusal(e)) throw e;
    return e.code;
  }
}

/** Bytes the value printer reads; deterministic from the blob. */
function valueBytes(blob: Uint8Array): Uint8Array {
  const v = new Uint8Array(256);
  for (let i = 0; i < v.length; i++) v[i] = blob[(i * 7) % Math.max(1, blob.length)] ?? i;
  return v;
}

export const btfTarget: FuzzTarget = {
  name: "btf",
  describe: "a BTF blob: generated by BtfBuilder with random references and sizes, or mutated",
  unit: 4,
  setup(): void {
    btfLoad(new Uint8Array(0));
  },
  generate(rng: Prng): Uint8Array {
    const base = seeds.length && chance(rng, 0.35) ? pick(rng, seeds) : generated(rng);
    return chance(rng, 0.5) ? mutate(rng, base) : base;
  },
  run(input: Uint8Array): string {
    const load = btfLoad(input);
    let btf: Btf;
    try {
      btf = Btf.parse(input);
    } catch (e) {
      if (!isRefusal(e)) throw e;
      return `${load}/parse-${e.code}`;
    }
    let valid = "valid";
    const step = (f: () => unknown): void => {
      try {
        f();
      } catch (e) {
        if (!isRefusal(e)) throw e;
      }
    };
    try {
      btf.validate();
    } catch (e) {
      if (!isRefusal(e)) throw e;
      valid = `invalid-${e.code}`;
    }
    step(() => btfDumpRaw(btf));
    step(() => btfDumpRawJson(btf, { pretty: true }));
    // The bounds are small: what matters is that output past them is refused, not how much of
    // a huge array is printed first (the printers' work is bounded by their output).
    step(() => btfDumpC(btf, { maxBytes: 1 << 14 }));
    const bytes = valueBytes(input);
    const last = Math.min(btf.nrTypes, 48);
    for (let id = 1; id <= last; id++) {
      step(() => btfTypeSeqShow(btf, id, bytes, { maxBytes: 1 << 10 }));
      step(() => btfTypeSeqShow(btf, id, bytes, { json: true, maxBytes: 1 << 10 }));
    }
    return `${load}/${valid}`;
  },
};
