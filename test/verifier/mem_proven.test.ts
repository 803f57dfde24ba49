import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import type { VerifierEnv } from "../../src/verifier/env.js";
import { bpfBaseFuncProto } from "../../src/verifier/helper_protos.js";
import { resolveLdImm64 } from "../../src/verifier/vector.js";
import { bpfCheck } from "../../src/verifier/verifier.js";

function env(asm: string): VerifierEnv {
  const insns = assemble(asm);
  return {
    insns,
    ldImm64Aux: resolveLdImm64(insns),
    progType: 1,
    privileged: true,
    gpl: true,
    ops: { name: "test", isValidAccess: () => ({}), getFuncProto: (id) => bpfBaseFuncProto(id, true) },
  };
}

test("memProven marks the loads and stores every path made through a bounded pointer, nothing else", () => {
  const r = bpfCheck(
    env(`ldxw %r2, [%r1+0]
stdw [%r10-8], 1
ldxdw %r0, [%r10-8]
mov %r3, %r10
add %r3, -16
stxdw [%r3+0], %r0
jeq %r2, 0, +1
exit
mov %r0, 0
exit`),
  );
  assert.equal(r.ok, true, r.log);
  // ctx load, stack store, stack load, store through a copy of r10: proven; ALU, jumps, exits: not accesses.
  assert.deepEqual([...(r.memProven ?? [])], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]);
});

test("an access on a path the verifier never walked is not proven", () => {
  const r = bpfCheck(
    env(`mov %r0, 0
jeq %r0, 0, +1
stdw [%r10-8], 1
exit`),
  );
  assert.equal(r.ok, true, r.log);
  assert.deepEqual([...(r.memProven ?? [])], [0, 0, 0, 0]);
});

test("a rejected program carries no memProven", () => {
  const r = bpfCheck(env("ldxdw %r0, [%r10+8]\nexit"));
  assert.equal(r.ok, false);
  assert.equal(r.memProven, undefined);
});
