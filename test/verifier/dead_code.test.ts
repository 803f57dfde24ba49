import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import type { Insn } from "../../src/isa/insn.js";
import { EINVAL } from "../../src/uapi/errno.js";
import { insnIsCondJump, optHardWireDeadCodeBranches, sanitizeDeadCode } from "../../src/verifier/dead_code.js";
import type { VerifierEnv } from "../../src/verifier/env.js";
import { bpfBaseFuncProto } from "../../src/verifier/helper_protos.js";
import { resolveLdImm64 } from "../../src/verifier/vector.js";
import { bpfCheck } from "../../src/verifier/verifier.js";

/** libbpf's POISON_CALL_KFUNC_BASE: a helper id no kernel has. */
const POISON = 2002000000;
const TRAP: Insn = { code: 0x05, dst: 0, src: 0, off: -1, imm: 0 };

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

// r1 is a known 0 (libbpf's bpf_ksym_exists() of an unresolved weak kfunc): the call is never walked.
const GUARDED = `lddw %r1, 0
jeq %r1, 0, +2
call ${POISON}
exit
mov %r0, 7
exit`;

test("a never-taken branch to an unknown helper id verifies; seen marks only the walked slots", () => {
  const r = bpfCheck(env(GUARDED));
  assert.equal(r.ok, true, r.log);
  // ld_imm64's second slot counts as seen (do_check marks it), the call and its exit do not.
  assert.deepEqual([...(r.seen ?? [])], [1, 1, 1, 0, 0, 1, 1]);
});

test("the same call on a path the verifier walks is refused: only dead code escapes the check", () => {
  const r = bpfCheck(env(GUARDED.replace("lddw %r1, 0", "ldxw %r1, [%r1+0]\nmov %r0, 0")));
  assert.equal(r.ok, false);
  assert.equal(r.error?.errno, EINVAL);
  assert.match(r.log, new RegExp(`func unknown#${POISON}\n`));
});

test("sanitize_dead_code replaces every unseen slot with ja -1 and keeps the rest", () => {
  const e = env(GUARDED);
  const r = bpfCheck(e);
  const insns = e.insns.map((i) => ({ ...i }));
  assert.equal(sanitizeDeadCode(insns, r.seen as Uint8Array), 2);
  assert.deepEqual(insns[3], TRAP);
  assert.deepEqual(insns[4], TRAP);
  assert.deepEqual(
    [0, 1, 2, 5, 6].map((i) => insns[i]),
    [0, 1, 2, 5, 6].map((i) => e.insns[i]),
  );
  assert.ok(!insns.some((i) => i.code === 0x85));
});

test("opt_hard_wire_dead_code_branches: a dead fall-through makes the jump unconditional, a dead target a ja 0", () => {
  const e = env(GUARDED);
  const r = bpfCheck(e);
  const insns = e.insns.map((i) => ({ ...i }));
  assert.equal(optHardWireDeadCodeBranches(insns, r.seen as Uint8Array), 1);
  assert.deepEqual(insns[2], { code: 0x05, dst: 0, src: 0, off: 2, imm: 0 });
  // The other way round: r1 known non-zero, the jump is never taken.
  const e2 = env(GUARDED.replace("lddw %r1, 0", "lddw %r1, 1").replace(`call ${POISON}`, "mov %r0, 1"));
  const r2 = bpfCheck(e2);
  assert.equal(r2.ok, true, r2.log);
  const insns2 = e2.insns.map((i) => ({ ...i }));
  assert.equal(optHardWireDeadCodeBranches(insns2, r2.seen as Uint8Array), 1);
  assert.deepEqual(insns2[2], { code: 0x05, dst: 0, src: 0, off: 0, imm: 0 });
  // A branch whose both sides were walked stays.
  const e3 = env(
    GUARDED.replace("lddw %r1, 0", "ldxw %r1, [%r1+0]\nmov %r0, 0").replace(`call ${POISON}`, "mov %r0, 1"),
  );
  const r3 = bpfCheck(e3);
  assert.equal(r3.ok, true, r3.log);
  assert.equal(
    optHardWireDeadCodeBranches(
      e3.insns.map((i) => ({ ...i })),
      r3.seen as Uint8Array,
    ),
    0,
  );
});

test("insn_is_cond_jump: jmp/jmp32 ops except ja, call and exit; gotol is not conditional", () => {
  assert.deepEqual([0x15, 0x16, 0x05, 0x06, 0x85, 0x95, 0x07].map(insnIsCondJump), [
    true,
    true,
    false,
    false,
    false,
    false,
    false,
  ]);
});
