import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import {
  CAPTURE_COMMAND,
  goldenPath,
  hostLogs,
  hostSkipReason,
  LEVELS,
  LOG_PROGRAMS,
  loadVector,
  normaliseLog,
  ourLog,
  readGolden,
} from "./host_log.js";

/**
 * Our level-1 and level-2 logs against the host kernel's (6.18), line by line: instruction lines,
 * state comments, popped states, the error line and the statistics. Only kernel addresses, map
 * references and ids are normalised (see host_log.ts).
 */
function compare(name: string, level: number, want: string[], got: string[]): void {
  const n = Math.max(want.length, got.length);
  for (let i = 0; i < n; i++) {
    assert.equal(got[i], want[i], `${name} level ${level}, line ${i + 1}\nours:\n${got.join("\n")}`);
  }
}

test("our log matches the golden logs captured from the host kernel", () => {
  for (const name of LOG_PROGRAMS) {
    const v = loadVector(name);
    for (const level of LEVELS) {
      assert.ok(existsSync(goldenPath(name, level)), `missing golden log; run ${CAPTURE_COMMAND}`);
      compare(name, level, readGolden(name, level), normaliseLog(ourLog(v, level)));
    }
  }
});

test("the golden logs exercise each kind of line", () => {
  const all = LOG_PROGRAMS.flatMap((n) => LEVELS.flatMap((l) => readGolden(n, l)));
  const has = (re: RegExp) =>
    assert.ok(
      all.some((l) => re.test(l)),
      `no golden line matches ${re}`,
    );
  has(/^\d+: \(\w\w\) .* +; R\d+=/); // instruction with its state comment
  has(/^\d+: \(\w\w\) if .* goto pc\+\d+ \d+: R/); // level 1: popped state inline
  has(/^from \d+ to \d+: R/); // level 2: popped state header
  has(/^\d+: frame1: R1=/); // callee entry state
  has(/^Live regs before insn:$/);
  has(/^func#1 @\d+$/);
  has(/=0x[0-9a-f]{5,}/); // beyond u16: hex
  has(/^processed \d+ insns \(limit 1000000\) max_states_per_insn \d+ total_states [1-9]/);
  assert.ok(!all.some((l) => /R\d_w=|fp-\d+_w=/.test(l)), "6.18 prints no _w suffixes");
});

const skip = hostSkipReason();

test("our log matches the host kernel's, line by line", { skip }, (t) => {
  const vs = LOG_PROGRAMS.map(loadVector);
  for (const level of LEVELS) {
    const res = hostLogs(vs, level);
    if (res.every((r) => r.errno === 1)) {
      t.skip("bpf(2) refuses (EPERM): locked down here");
      return;
    }
    res.forEach((r, i) => {
      if (r.errno === 1) return; // the host refused this one outright
      compare(LOG_PROGRAMS[i], level, normaliseLog(r.log), normaliseLog(ourLog(vs[i], level)));
    });
  }
});
