import assert from "node:assert/strict";
import { test } from "node:test";
import { BtfBuilder } from "../../src/btf/builder.js";
import { btfTypeSeqShow } from "../../src/btf/seq_show.js";
import { BpfError, E2BIG } from "../../src/uapi/errno.js";

/** struct s { int x[0xffffffff][0]; }: valid BTF of size 0 whose value has 2^32 - 1 empty rows. */
function zeroRows(): { btf: ReturnType<BtfBuilder["toBtf"]>; s: number } {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, 1);
  const idx = b.addInt("__ARRAY_SIZE_TYPE__", 4);
  const row = b.addArray(int, idx, 0);
  const rows = b.addArray(row, idx, 0xffffffff);
  const s = b.addStruct("s", 0, [{ name: "x", type: rows, bitOffset: 0 }]);
  return { btf: b.toBtf(), s };
}

test("the kernel accepts struct s { int x[0xffffffff][0]; }", () => {
  const { btf } = zeroRows();
  assert.doesNotThrow(() => btf.validate());
});

test("showing its value stops with E2BIG once the text passes the limit, instead of looping 2^32 times", () => {
  const { btf, s } = zeroRows();
  for (const json of [false, true]) {
    assert.throws(
      () => btfTypeSeqShow(btf, s, new Uint8Array(0), { json, maxBytes: 1 << 16 }),
      (e: unknown) =>
        e instanceof BpfError &&
        e.errno === E2BIG &&
        /^value of type \[\d+\] prints more than 65536 bytes$/.test(e.message),
    );
  }
});

test("a few empty rows print whole", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, 1);
  const idx = b.addInt("__ARRAY_SIZE_TYPE__", 4);
  const rows = b.addArray(b.addArray(int, idx, 0), idx, 3);
  const s = b.addStruct("s", 0, [{ name: "x", type: rows, bitOffset: 0 }]);
  assert.equal(btfTypeSeqShow(b.toBtf(), s, new Uint8Array(0), { json: true }), '{"x":[[],[],[]]}');
});
