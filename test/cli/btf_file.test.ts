import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import { btfFree, btfParseRaw } from "../../src/cli/btf_file.js";
import { BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { BpfError, EINVAL } from "../../src/uapi/errno.js";

function blob(prefix: string, n: number): Uint8Array {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, 1);
  for (let i = 0; i < n; i++) b.addStructAuto(`${prefix}${i}`, [{ name: "x", type: int }]);
  return b.build();
}

test("btfParseRaw reads and parses a raw BTF file; btfFree leaves nothing readable and its memory serves the next parse", () => {
  const dir = mkdtempSync(join(tmpdir(), "structops-btf-file-"));
  try {
    const big = join(dir, "big.btf");
    const small = join(dir, "small.btf");
    writeFileSync(big, blob("big_", 200));
    writeFileSync(small, blob("s_", 3));
    const a = btfParseRaw(big);
    assert.equal(a.nrTypes, 201);
    assert.equal(a.findByName("big_199", BTF_KIND_STRUCT), 201);
    btfFree(a);
    // Freed: every lookup is an out-of-range id, never the bytes of a later file.
    assert.equal(a.nrTypes, 0);
    assert.throws(
      () => a.typeById(1),
      (e) => e instanceof BpfError && e.errno === EINVAL,
    );
    assert.equal(a.findByName("big_1"), -1);
    // The next file lands in the freed buffer: parsed as itself, whole.
    const b = btfParseRaw(small);
    assert.equal(b.nrTypes, 4);
    assert.deepEqual(
      [...b.types()].map((t) => t.name),
      ["int", "s_0", "s_1", "s_2"],
    );
    assert.deepEqual(new Uint8Array(b.data), new Uint8Array(readFileSync(small)));
    // A second object alive at once has a buffer of its own.
    const c = btfParseRaw(big);
    assert.equal(c.nameOf(201), "big_199");
    assert.equal(b.nameOf(4), "s_2");
    btfFree(b);
    btfFree(c);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("btfParseRaw: a file that is not BTF is the parser's EINVAL, and the buffer is not lost", () => {
  const dir = mkdtempSync(join(tmpdir(), "structops-btf-file-"));
  try {
    const bad = join(dir, "bad.btf");
    writeFileSync(bad, new Uint8Array(64).fill(7));
    assert.throws(
      () => btfParseRaw(bad),
      (e) => e instanceof BpfError && e.errno === EINVAL && /magic/.test(e.message),
    );
    const good = join(dir, "good.btf");
    writeFileSync(good, blob("g_", 2));
    const g = btfParseRaw(good);
    assert.equal(g.nameOf(3), "g_1");
    btfFree(g);
    assert.throws(() => btfParseRaw(join(dir, "missing.btf")), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("btfParseRaw of the host's vmlinux matches Btf.parse of the same bytes", {
  skip: !existsSync("/sys/kernel/btf/vmlinux"),
}, () => {
  const bytes = new Uint8Array(readFileSync("/sys/kernel/btf/vmlinux"));
  const ref = Btf.parse(bytes);
  for (let round = 0; round < 2; round++) {
    const btf = btfParseRaw("/sys/kernel/btf/vmlinux");
    assert.equal(btf.nrTypes, ref.nrTypes);
    for (const id of [1, 2, ref.nrTypes >> 1, ref.nrTypes]) assert.deepEqual(btf.typeById(id), ref.typeById(id));
    btfFree(btf);
  }
});
