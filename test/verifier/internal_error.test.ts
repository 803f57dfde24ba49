import assert from "node:assert/strict";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { BpfError, EFAULT } from "../../src/uapi/errno.js";
import { bpfCheck } from "../../src/verifier/verifier.js";

test("an exception inside the verifier is a loud 'verifier bug' (EFAULT), never a silent refusal", () => {
  const r = bpfCheck({
    insns: assemble("ldxw %r0, [%r1]\nexit"),
    progType: 1,
    privileged: true,
    gpl: true,
    logLevel: 1,
    ops: {
      name: "broken",
      isValidAccess: () => {
        throw new TypeError("Cannot read properties of undefined (reading 'type')");
      },
    },
  });
  assert.equal(r.ok, false);
  assert.ok(r.error instanceof BpfError);
  assert.equal(r.error.errno, EFAULT);
  assert.equal(r.error.message, "verifier bug: TypeError: Cannot read properties of undefined (reading 'type')");
  assert.equal(r.error.context.insn, 0);
  assert.match(String(r.error.context.internal), /isValidAccess/);
  assert.match(r.log, /^verifier bug: TypeError/m);
});
