import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parseVerifierVector, vectorEnv } from "../../src/verifier/vector.js";
import { bpfCheck } from "../../src/verifier/verifier.js";
import { FIXTURES } from "./helpers.js";
import { hostLikeEnv, hostLogs, hostSkipReason } from "./host_log.js";

/**
 * Programs Linux 6.18 loads that need the verifier's precision (constants and ranges through
 * narrow spills, linked scalars, sign extension, shifts): each must verify here, and, where the
 * host kernel can be asked, there too. A refused counterpart of each rule is in the bad-program
 * corpus.
 */
const DIR = join(FIXTURES, "accept");
const files = readdirSync(DIR)
  .filter((f) => f.endsWith(".data"))
  .sort();
const load = (f: string) => parseVerifierVector(readFileSync(join(DIR, f), "utf8"), f);

for (const f of files) {
  test(`accepts ${f}`, () => {
    const r = bpfCheck(vectorEnv(load(f), 2));
    assert.equal(r.ok, true, `${f}: ${r.error?.message}\n${r.log}`);
  });
}

test("the host kernel loads the accepted corpus too", { skip: hostSkipReason() }, () => {
  const vs = files.map(load);
  const res = hostLogs(vs, 1);
  if (res.every((r) => r.errno === 1)) return; // bpf(2) is locked down here
  vs.forEach((v, i) => {
    assert.ok(res[i].fd >= 0, `${v.name}: the host refused it:\n${res[i].log}`);
    assert.equal(bpfCheck(hostLikeEnv(v, 1)).ok, true, v.name);
  });
});
