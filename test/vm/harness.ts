import assert from "node:assert/strict";
import { assemble } from "../../src/isa/asm.js";
import type { Insn } from "../../src/isa/insn.js";
import { VmMemory } from "../../src/vm/memory.js";
import type { LoadOpts, Tier } from "../../src/vm/program.js";
import { type RunArgs, Vm } from "../../src/vm/vm.js";

export { repoRoot } from "../repo_root.js";

export const TIERS: Tier[] = ["interp", "jit", "wasm"];

/** Run a program in one tier on a fresh VM. */
export function runIn(tier: Tier, prog: string | Insn[], args: RunArgs = {}, opts: LoadOpts = {}, budget?: number) {
  const mem = new VmMemory({ initialBytes: 1 << 17 });
  const vm = new Vm(mem, { tier, budget });
  const p = vm.load(typeof prog === "string" ? assemble(prog) : prog, opts);
  return { vm, mem, prog: p, result: vm.run(p, args) };
}

/** r0 of a program run in every tier; asserts the tiers agree. */
export function r0Of(prog: string | Insn[], args: RunArgs = {}, opts: LoadOpts = {}): bigint {
  const rs = TIERS.map((t) => runIn(t, prog, args, opts).result.r0);
  for (const r of rs) assert.equal(r, rs[0], "tiers disagree");
  return rs[0];
}
