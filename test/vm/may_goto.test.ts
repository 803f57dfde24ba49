import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { VmMemory } from "../../src/vm/memory.js";
import { BPF_MAX_LOOPS, Vm } from "../../src/vm/vm.js";
import { TIERS } from "./harness.js";

/**
 * may_goto (BPF_JCOND): each pass takes one unit of the run's budget (BPF_MAX_LOOPS, 8M); once
 * it is spent the instruction jumps. A loop with no other exit runs exactly the budget's passes.
 */
for (const tier of TIERS) {
  test(`[${tier}] may_goto falls through BPF_MAX_LOOPS times per run, then jumps`, () => {
    const vm = new Vm(new VmMemory(), { tier, budget: 4 * BPF_MAX_LOOPS });
    const P = vm.load(assemble("mov %r0, 0\nloop:\nadd %r0, 1\nmay_goto out\nja loop\nout:\nexit"));
    // The body runs once more than the budget: the last pass is the one that jumps.
    assert.equal(vm.run(P).r0, BigInt(BPF_MAX_LOOPS + 1));
    // A new run starts with the whole budget again.
    assert.equal(vm.run(P).r0, BigInt(BPF_MAX_LOOPS + 1));
  });
}
