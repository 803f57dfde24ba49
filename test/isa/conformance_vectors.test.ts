import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";

// The conformance vectors sit beside the repository (tests run from its root).
const DIR = "../shared/conformance";
const files = existsSync(DIR) ? readdirSync(DIR).filter((f) => f.endsWith(".data")) : [];
const skip = files.length === 0 ? `no conformance vectors in ${DIR}` : false;

/** The `-- asm` section of a vector. */
export function asmSection(text: string): string {
  const m = /^-- asm\n([\s\S]*?)(?=^-- |(?![\s\S]))/m.exec(text);
  assert.ok(m, "vector has an -- asm section");
  return m[1]!;
}

test("every conformance vector's -- asm section assembles", { skip }, () => {
  for (const f of files) {
    const insns = assemble(asmSection(readFileSync(`${DIR}/${f}`, "utf8")));
    assert.ok(insns.length > 0, f);
  }
});
