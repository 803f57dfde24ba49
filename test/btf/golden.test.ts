/** bpftool's output for committed fixtures (test/fixtures/btf): the dumpers checked without bpftool installed. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Btf } from "../../src/btf/btf.js";
import { btfDumpC } from "../../src/btf/dump_c.js";
import { btfDumpRaw, btfDumpRawJson } from "../../src/btf/dump_raw.js";
import { allKindsBuilder } from "./helpers.js";

/** The fixtures directory, from test/btf (tsx) or dist/test/btf (compiled). */
function fixtures(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) {
    try {
      readFileSync(join(dir, "test", "fixtures", "btf", "all_kinds.btf"));
      return join(dir, "test", "fixtures", "btf");
    } catch {}
  }
  throw new Error("test/fixtures/btf not found");
}

const dir = fixtures();
const bytes = (name: string) => new Uint8Array(readFileSync(join(dir, name)));
const text = (name: string) => readFileSync(join(dir, name), "utf8");

test("the builder still produces the committed blob byte for byte", () => {
  const { b } = allKindsBuilder();
  assert.deepEqual(b.build(), bytes("all_kinds.btf"));
  assert.deepEqual(b.build({ byteOrder: "big" }), bytes("all_kinds.be.btf"));
});

test("raw, JSON and C dumps of the fixture equal bpftool's committed output", () => {
  const btf = Btf.parse(bytes("all_kinds.btf"));
  assert.equal(btfDumpRaw(btf), text("all_kinds.bpftool.txt"));
  assert.equal(btfDumpRawJson(btf), text("all_kinds.bpftool.json"));
  assert.equal(btfDumpC(btf), text("all_kinds.bpftool.h"));
});

test("the big-endian fixture dumps like the little-endian one (as bpftool does)", () => {
  assert.equal(btfDumpRaw(Btf.parse(bytes("all_kinds.be.btf"))), text("all_kinds.bpftool.txt"));
});

test("the split fixture on its base dumps like bpftool -B", () => {
  const base = Btf.parse(bytes("all_kinds.btf"));
  const split = Btf.parse(bytes("all_kinds.split.btf"), { base });
  assert.equal(btfDumpRaw(split), text("all_kinds.split.bpftool.txt"));
  split.validate();
});
