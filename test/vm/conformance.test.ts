import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parseConformance, runVector, TIERS } from "../../src/vm/conformance.js";
import { repoRoot } from "./harness.js";

const dir = join(repoRoot(), "..", "shared", "conformance");
const present = existsSync(dir);
const files = present
  ? readdirSync(dir)
      .filter((f) => f.endsWith(".data"))
      .sort()
  : [];

test("every ISA conformance vector passes in every tier", { skip: present ? false : `${dir} is absent` }, () => {
  assert.ok(files.length > 0, "no .data files");
  const failures: string[] = [];
  for (const f of files) {
    const v = parseConformance(readFileSync(join(dir, f), "utf8"), f);
    for (const tier of TIERS) {
      const o = runVector(v, tier);
      if (!o.pass) failures.push(`${f}: ${o.why}`);
    }
  }
  assert.deepEqual(failures, []);
});

test("parseConformance reads asm, mem, result and error sections and ignores others", () => {
  const v = parseConformance(
    "# comment\n-- asm\nmov %r0, 1\nexit\n-- mem\n00 01 ff\n-- result\n0x1\n-- c\nint x;\n",
    "t.data",
  );
  assert.equal(v.asm.trim(), "mov %r0, 1\nexit");
  assert.deepEqual([...v.mem], [0, 1, 255]);
  assert.equal(v.result, 1n);
  assert.equal(v.error, undefined);
  const e = parseConformance("-- asm\nexit\n-- error\nbad things\n", "e.data");
  assert.equal(e.error, "bad things");
});

test("a vector expecting an error passes only when the program is rejected or faults", () => {
  for (const tier of TIERS) {
    // Reads through r1 = NULL (no mem): faults.
    assert.equal(runVector(parseConformance("-- asm\nldxb %r0, [%r1]\nexit\n-- error\nfault"), tier).pass, true);
    // Runs fine: the error expectation is not met.
    assert.equal(runVector(parseConformance("-- asm\nmov %r0, 0\nexit\n-- error\nx"), tier).pass, false);
    // Wrong result reported.
    const o = runVector(parseConformance("-- asm\nmov %r0, 2\nexit\n-- result\n0x3"), tier);
    assert.equal(o.pass, false);
    assert.match(o.why ?? "", /r0 = 0x2, expected 0x3/);
  }
});

test("on entry r1 points at a writable copy of mem and r2 holds its length", () => {
  const v = parseConformance(
    "-- asm\nldxb %r0, [%r1+2]\nstb [%r1], 7\nadd %r0, %r2\nexit\n-- mem\n01 02 03\n-- result\n0x6",
  );
  for (const tier of TIERS) assert.deepEqual(runVector(v, tier), { pass: true });
});
