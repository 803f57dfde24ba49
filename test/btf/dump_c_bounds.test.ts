import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import { btfDumpC } from "../../src/btf/dump_c.js";
import { BpfError, E2BIG } from "../../src/uapi/errno.js";
import { noBpftool } from "./helpers.js";

/**
 * btf_dump fills the gap before a member with `long: 64;` lines, one per 64 bits, computing
 * offsets in C ints. A corrupt offset (BTF without kind_flag carries 32 bits of it) asks for up to
 * 2^31 bits of padding: bpftool streams all of it; a string cannot hold it, so the dump stops
 * with E2BIG past its limit instead of exhausting memory.
 */

/** struct s { int a; int b at bit `off`; } of 8 bytes (no kind_flag, so the offset is 32 bits). */
function corrupt(off: number): Uint8Array {
  const b = new BtfBuilder();
  const i = b.addInt("int", 4, 1);
  b.addStruct("s", 8, [
    { name: "a", type: i, bitOffset: 0 },
    { name: "b", type: i, bitOffset: off },
  ]);
  return b.build();
}

test("a gap of 2^30 bits is refused with E2BIG past the output limit, at once", () => {
  const b = new BtfBuilder();
  const i = b.addInt("int", 4, 1);
  b.addStruct("s", 8, [
    { name: "a", type: i, bitOffset: 0 },
    { name: "b", type: i, bitOffset: 2 ** 30 },
  ]);
  const btf = b.toBtf();
  assert.throws(
    () => btfDumpC(btf, { maxBytes: 1 << 20 }),
    (e: unknown) =>
      e instanceof BpfError && e.errno === E2BIG && e.message === "btf_dump: C output exceeds 1048576 bytes",
  );
  // A small gap is printed whole, as bpftool does.
  const small = new BtfBuilder();
  const si = small.addInt("int", 4, 1);
  small.addStruct("s", 32, [
    { name: "a", type: si, bitOffset: 0 },
    { name: "b", type: si, bitOffset: 224 },
  ]);
  assert.match(btfDumpC(small.toBtf()), /struct s \{\n\tint a;\n\tlong: 64;\n\tlong: 64;\n\tint: 32;\n\tint b;\n\};/);
});

test("offsets past 2^31 bits wrap as C ints do: the dump is short, and bpftool's", { skip: noBpftool }, () => {
  const dir = mkdtempSync(join(tmpdir(), "structops-dumpc-"));
  try {
    for (const off of [0xffffffe0, 0xfffffff8, 0xffffff00]) {
      const blob = corrupt(off);
      const file = join(dir, `s${off}.btf`);
      writeFileSync(file, blob);
      const ours = btfDumpC(Btf.parse(blob), { maxBytes: 1 << 20 });
      const theirs = execFileSync("bpftool", ["btf", "dump", "file", file, "format", "c"], { encoding: "utf8" });
      assert.equal(ours, theirs, `bit offset ${off}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
