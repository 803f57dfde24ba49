import assert from "node:assert/strict";
import { test } from "node:test";
import { mergeResults } from "../../bench/results.js";

const OLD = [
  "# Benchmark results",
  "",
  "Latest run: 2026-01-01, old machine.",
  "",
  "| bench | what | value | baseline | ratio | note |",
  "|---|---|---|---|---|---|",
  "| btf | parse | 1 ms | | | |",
  "| vm | a | 1 | | | |",
  "| vm | b | 2 | | | |",
  "| sim | c | 3 | | | |",
  "",
  "Prose about the vm rows.",
  "",
  "## Fuzzing",
  "| target | inputs |",
  "| elf | 5 |",
  "",
].join("\n");

test("a subset run replaces only its benches' rows, in place, and keeps the text around the table", () => {
  const out = mergeResults(OLD, ["vm", "sched"], ["| vm | a | 9 | | | |", "| sched | s | 7 | | | |"], null);
  const lines = out.split("\n");
  assert.deepEqual(lines.slice(6, 10), [
    "| btf | parse | 1 ms | | | |",
    "| vm | a | 9 | | | |",
    "| sim | c | 3 | | | |",
    "| sched | s | 7 | | | |",
  ]);
  assert.ok(lines.includes("Latest run: 2026-01-01, old machine."));
  assert.ok(out.includes("Prose about the vm rows.\n\n## Fuzzing\n| target | inputs |\n| elf | 5 |\n"));
});

test("a full run rewrites the machine line; a bench that ran without rows loses its old ones", () => {
  const out = mergeResults(OLD, ["btf", "vm", "sim"], ["| btf | parse | 2 ms | | | |"], "Latest run: today.");
  assert.ok(out.includes("Latest run: today.\n"));
  assert.ok(!out.includes("| vm |"));
  assert.ok(!out.includes("| sim |"));
  assert.ok(out.includes("| btf | parse | 2 ms | | | |\n\nProse"));
});

test("no file yet: a fresh table", () => {
  const out = mergeResults("", ["vm"], ["| vm | a | 1 | | | |"], "Latest run: today.");
  assert.ok(out.startsWith("# Benchmark results\n\nLatest run: today.\n"));
  assert.ok(out.includes("|---|---|---|---|---|---|\n| vm | a | 1 | | | |\n"));
});
