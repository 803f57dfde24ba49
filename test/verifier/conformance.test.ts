import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { conformanceEnv } from "../../src/verifier/conformance_ops.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { parseConformance } from "../../src/vm/conformance.js";
import { CONFORMANCE } from "./helpers.js";

/**
 * The vectors the kernel refuses, with its reason and instruction. Everything else in the
 * conformance suite must verify. Shift amounts are checked at load time (check_alu_op), callx
 * is not an instruction the kernel accepts, and subnet moves the context pointer before
 * loading through it (the kernel wants ctx accesses at constant offsets from the original).
 */
const KERNEL_REJECTS: Record<string, { insn: number; msg: string }> = {
  "arsh32-imm-high.data": { insn: 2, msg: "invalid shift 48" },
  "arsh64-imm-high.data": { insn: 2, msg: "invalid shift 124" },
  "arsh64-imm-neg.data": { insn: 2, msg: "invalid shift -4" },
  "callx.data": { insn: 2, msg: "unknown opcode 8d" },
  "lsh32-imm-neg.data": { insn: 1, msg: "invalid shift -4" },
  "lsh64-imm-high.data": { insn: 1, msg: "invalid shift 68" },
  "lsh64-imm-neg.data": { insn: 1, msg: "invalid shift -60" },
  "rsh32-imm-high.data": { insn: 2, msg: "invalid shift 40" },
  "rsh32-imm-neg.data": { insn: 2, msg: "invalid shift -24" },
  "rsh64-imm-neg.data": { insn: 1, msg: "invalid shift -60" },
  "subnet.data": { insn: 9, msg: "dereference of modified ctx ptr R1 off=18 disallowed" },
};

const present = existsSync(CONFORMANCE);
const files = present
  ? readdirSync(CONFORMANCE)
      .filter((f) => f.endsWith(".data"))
      .sort()
  : [];

test("the conformance suite is there", { skip: present ? false : `no ${CONFORMANCE}` }, () => {
  assert.ok(files.length > 200);
  for (const f of Object.keys(KERNEL_REJECTS)) assert.ok(files.includes(f), f);
});

for (const f of files) {
  const expect = KERNEL_REJECTS[f];
  test(`${f}: ${expect ? "rejected as the kernel does" : "verifies"}`, () => {
    const v = parseConformance(readFileSync(join(CONFORMANCE, f), "utf8"), f);
    const r = bpfCheck(conformanceEnv(assemble(v.asm), v.mem.length, 1));
    if (!expect) {
      assert.equal(r.ok, true, r.log);
      assert.match(r.log, /processed \d+ insns \(limit 1000000\)/);
      return;
    }
    assert.equal(r.ok, false);
    assert.equal(r.error?.message, expect.msg);
    assert.equal(r.error?.context.insn, expect.insn);
  });
}
