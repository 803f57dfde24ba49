import { assemble } from "../isa/asm.js";
import { joinPath, platform } from "../platform.js";
import { BpfError, EINVAL, isBpfError } from "../uapi/errno.js";
import type { HelperCall } from "./helper.js";
import { VmMemory } from "./memory.js";
import type { FnTable, Tier } from "./program.js";
import { Vm } from "./vm.js";

/**
 * Runner for the eBPF ISA conformance vectors (bpf_conformance's .data format): sections
 * `-- asm`, `-- mem` (hex bytes), `-- result` (expected r0, hex) and `-- error` (must be
 * rejected or fault); other sections are ignored. On entry r1 points at a read-write copy
 * of mem and r2 holds its length (no mem: both 0).
 */

export interface ConformanceVector {
  name: string;
  asm: string;
  mem: Uint8Array;
  result?: bigint;
  error?: string;
}

export const TIERS: readonly Tier[] = ["interp", "jit", "wasm"];

export function parseConformance(text: string, name = "vector"): ConformanceVector {
  const sections = new Map<string, string[]>();
  let cur: string[] | undefined;
  for (const line of text.split(/\r?\n/)) {
    const m = /^--\s*(.*?)\s*$/.exec(line);
    if (m) {
      cur = [];
      sections.set(m[1], cur);
    } else if (cur) {
      cur.push(line);
    }
  }
  const asm = sections.get("asm");
  if (!asm) throw new BpfError(EINVAL, `${name}: no '-- asm' section`);
  const hex = (sections.get("mem") ?? [])
    .map((l) => l.replace(/#.*/, ""))
    .join(" ")
    .split(/\s+/)
    .filter((t) => t !== "");
  const mem = new Uint8Array(hex.map((h) => Number.parseInt(h, 16)));
  const strip = (ls: string[] | undefined) =>
    ls
      ?.map((l) => l.replace(/#.*/, "").trim())
      .filter((l) => l !== "")
      .join(" ");
  const res = strip(sections.get("result"));
  const error = sections.has("error") ? (strip(sections.get("error")) ?? "") : undefined;
  const result = res ? BigInt.asUintN(64, BigInt(res)) : undefined;
  if (result === undefined && error === undefined)
    throw new BpfError(EINVAL, `${name}: neither '-- result' nor '-- error'`);
  return { name, asm: asm.join("\n"), mem, result, error };
}

/**
 * Helpers the vectors may call (the bpf_conformance plugins' convention): 5 returns r1
 * unchanged, which callx.data reaches through a register.
 */
export const CONFORMANCE_HELPERS: FnTable = new Map([[5, (c: HelperCall) => c.setRet(c.arg(1))]]);

export interface VectorOutcome {
  pass: boolean;
  why?: string;
}

/** Assemble, load and run one vector in one tier. */
export function runVector(v: ConformanceVector, tier: Tier, budget = 1_000_000): VectorOutcome {
  const mem = new VmMemory({ initialBytes: 1 << 17 });
  const vm = new Vm(mem, { tier, budget });
  let r0: bigint;
  try {
    const prog = vm.load(assemble(v.asm), { name: v.name, helpers: CONFORMANCE_HELPERS });
    let r1 = 0;
    if (v.mem.length > 0) {
      const region = mem.alloc(v.mem.length, { perm: "rw", kind: "mem", name: "mem" });
      mem.writeBytes(region.addr, v.mem);
      r1 = region.addr;
    }
    r0 = vm.run(prog, { r1, r2: r1 ? v.mem.length : 0 }).r0;
  } catch (e) {
    if (!isBpfError(e)) throw e;
    if (v.error !== undefined) return { pass: true };
    return { pass: false, why: `${tier}: ${e.message}` };
  }
  if (v.error !== undefined) return { pass: false, why: `${tier}: expected an error, got r0 = 0x${r0.toString(16)}` };
  if (r0 !== v.result) {
    return { pass: false, why: `${tier}: r0 = 0x${r0.toString(16)}, expected 0x${v.result?.toString(16)}` };
  }
  return { pass: true };
}

export interface FileOutcome extends VectorOutcome {
  file: string;
}

/** Run every .data file of `dir` in every tier (sorted by name). */
export function runConformanceDir(dir: string, tiers: readonly Tier[] = TIERS): FileOutcome[] {
  const files = platform()
    .readDir(dir)
    .filter((f) => f.endsWith(".data"))
    .sort();
  return files.map((file) => {
    let v: ConformanceVector;
    try {
      v = parseConformance(new TextDecoder().decode(platform().readFile(joinPath(dir, file))), file);
    } catch (e) {
      return { file, pass: false, why: e instanceof Error ? e.message : String(e) };
    }
    for (const tier of tiers) {
      let o: VectorOutcome;
      try {
        o = runVector(v, tier);
      } catch (e) {
        o = { pass: false, why: `${tier}: internal error: ${e instanceof Error ? e.message : String(e)}` };
      }
      if (!o.pass) return { file, ...o };
    }
    return { file, pass: true };
  });
}
