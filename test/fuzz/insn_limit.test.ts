import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { resched } from "../../fuzz/kernel.js";
import { ROOT } from "../../fuzz/repo.js";
import { insnTarget } from "../../fuzz/target_insn.js";

/**
 * Programs the insn target found that the verifier walks to its 1M-instruction limit: loops that
 * never converge (a counter in a register, a fetch from a stack slot, a branch on the frame
 * pointer). They once took longer than a hang is; their verdict is the kernel's E2BIG, and stays
 * so however fast the walk gets (bench/verifier.ts times it).
 */
const fixture = (name: string) => new Uint8Array(readFileSync(join(ROOT, "test/fixtures/fuzz", name)));

// seed777-149385 is `if r0 s> r0 goto pc-1` on an unknown r0: a million conditional jumps, each
// narrowing r0 by one at both ends, as the host kernel's log shows.
for (const name of [
  "insn-limit-seed1-33686.bin",
  "insn-limit-seed102-35183.bin",
  "insn-limit-seed102-19239.bin",
  "insn-limit-seed777-149385.bin",
]) {
  test(`${name}: refused at the complexity limit, BPF program is too large`, () => {
    insnTarget.setup?.();
    assert.equal(insnTarget.run(fixture(name)), "refused/E2BIG: BPF program is too large. Processed N insn");
  });
}

/**
 * A walk to the limit takes the verifier a second or more (the host kernel's own took 5 s for a
 * loop the fuzzer found): like do_check's cond_resched(), it reports progress every 4096
 * instructions, which the fuzzer's heartbeat counts; the verdict does not change.
 */
test("a walk to the complexity limit calls cond_resched as it goes", () => {
  insnTarget.setup?.();
  let beats = 0;
  const before = resched.beat;
  resched.beat = () => {
    beats++;
  };
  try {
    assert.equal(
      insnTarget.run(fixture("insn-limit-seed1-33686.bin")),
      "refused/E2BIG: BPF program is too large. Processed N insn",
    );
  } finally {
    resched.beat = before;
  }
  assert.equal(beats, Math.floor(1_000_000 / 4096));
});
