import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { errnoName } from "../../src/uapi/errno.js";
import { parseVerifierVector, vectorEnv } from "../../src/verifier/vector.js";
import { bpfCheck } from "../../src/verifier/verifier.js";

import { FIXTURES as dir } from "./helpers.js";

const files = readdirSync(dir)
  .filter((f) => f.endsWith(".data"))
  .sort();

test("the bad-program corpus has one program per rule", () => {
  assert.ok(files.length >= 30, `${files.length} programs`);
});

for (const f of files) {
  test(`rejects ${f} for the kernel's reason at the right instruction`, () => {
    const v = parseVerifierVector(readFileSync(join(dir, f), "utf8"), f);
    assert.ok(v.expect?.msg, `${f} has an -- expect section`);
    const r = bpfCheck(vectorEnv(v, v.expect.logLevel ?? 1));
    assert.equal(r.ok, false, `${f} was accepted:\n${r.log}`);
    assert.ok(r.error);
    assert.equal(r.error.message, v.expect.msg, r.log);
    assert.equal(r.error.context.insn, v.expect.insn, `insn of ${r.error.message}`);
    if (v.expect.errno !== undefined) assert.equal(errnoName(r.error.errno), errnoName(v.expect.errno));
    // The log ends with the error line, then the statistics line.
    const lines = r.log.trimEnd().split("\n");
    // The error line comes last but for the states some errors print after it.
    assert.ok(lines.slice(-4, -1).includes(v.expect.msg), r.log);
    assert.match(
      lines[lines.length - 1],
      /^processed \d+ insns \(limit 1000000\) max_states_per_insn \d+ total_states \d+ peak_states \d+ mark_read \d+$/,
    );
  });
}
