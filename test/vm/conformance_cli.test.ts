import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Command } from "commander";
import { register } from "../../src/cli/conformance.js";

/** Run `structops conformance ...args`, returning its stdout lines and exit code. */
function cli(args: string[]): { lines: string[]; code: number } {
  const lines: string[] = [];
  const log = console.log;
  const saved = process.exitCode;
  process.exitCode = 0;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    const program = new Command("structops").exitOverride();
    register(program);
    program.parse(["node", "structops", "conformance", ...args]);
    return { lines, code: Number(process.exitCode ?? 0) };
  } finally {
    console.log = log;
    process.exitCode = saved;
  }
}

test("structops conformance prints PASS/FAIL per file, a summary, and fails on any failure", () => {
  const dir = mkdtempSync(join(tmpdir(), "conformance-"));
  try {
    writeFileSync(join(dir, "a-good.data"), "-- asm\nmov %r0, 3\nexit\n-- result\n0x3\n");
    writeFileSync(join(dir, "b-bad.data"), "-- asm\nmov %r0, 3\nexit\n-- result\n0x4\n");
    writeFileSync(join(dir, "ignored.txt"), "not a vector");
    const r = cli([dir]);
    assert.deepEqual(r.lines, [
      "PASS: a-good.data",
      "FAIL: b-bad.data (interp: r0 = 0x3, expected 0x4)",
      "1 passed, 1 failed",
    ]);
    assert.equal(r.code, 1);
    const j = cli(["--json", "--tier", "jit", dir]);
    const out = JSON.parse(j.lines.join("\n"));
    assert.deepEqual([out.passed, out.failed, out.tiers], [1, 1, ["jit"]]);
    rmSync(join(dir, "b-bad.data"));
    assert.deepEqual(cli([dir]), { lines: ["PASS: a-good.data", "1 passed, 0 failed"], code: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
