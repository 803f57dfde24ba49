import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

/**
 * A bounded smoke of every fuzz target through the real entry (`npm run fuzz` runs the same
 * file): a fixed seed, a few seconds each, and not one crash, hang or over-limit memory use.
 * The long runs and their figures are in bench/RESULTS.md.
 */
const here = dirname(fileURLToPath(import.meta.url));
// dist/test/fuzz -> dist/fuzz/main.js (the worker needs the compiled tree)
const MAIN = join(here, "..", "..", "fuzz", "main.js");
const skip = existsSync(MAIN) ? false : "run from the compiled tree (npm test)";
const SECONDS = Number(process.env.FUZZ_SMOKE_SECONDS ?? 3);

for (const target of ["elf", "btf", "insn", "statemachine"]) {
  test(`fuzz ${target}: ${SECONDS} s with seed 1 finds nothing`, { skip }, () => {
    const out = mkdtempSync(join(tmpdir(), `structops-fuzz-${target}-`));
    try {
      const r = spawnSync(
        process.execPath,
        [MAIN, "--target", target, "--seconds", String(SECONDS), "--seed", "1", "--out", out, "--json"],
        { encoding: "utf8", timeout: 120_000 },
      );
      const summary = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}");
      assert.equal(summary.target, target, r.stderr);
      assert.ok(summary.inputs > 0, `no input ran: ${r.stderr}`);
      assert.deepEqual(
        { crashes: summary.crashes, hangs: summary.hangs, memory: summary.memory },
        { crashes: 0, hangs: 0, memory: 0 },
        JSON.stringify(summary.findings),
      );
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(readdirSync(out), [], "no reproducer written");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
}

test("fuzz --repro runs one saved input and says how it was handled", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "structops-fuzz-repro-"));
  try {
    const input = join(dir, "in.bin");
    // a BTF header alone: refused by the parser, a handled input
    spawnSync(process.execPath, [
      "-e",
      `require("fs").writeFileSync(${JSON.stringify(input)}, Buffer.from("9feb0100", "hex"))`,
    ]);
    const r = spawnSync(process.execPath, [MAIN, "--target", "btf", "--repro", input], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^handled: /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
