import assert from "node:assert/strict";
import { test } from "node:test";
import { BtfBuilder } from "../../src/btf/builder.js";
import { btfAlignOf } from "../../src/btf/resolve.js";
import { BpfError, EINVAL } from "../../src/uapi/errno.js";

const loop = (e: unknown) => e instanceof BpfError && e.errno === EINVAL && /Loop detected$/.test(e.message);

test("btf__align_of of a struct that embeds itself is EINVAL, before any validation", () => {
  const b = new BtfBuilder();
  const s = b.addStruct("s", 8, []);
  b.addField(s, "self", s, 0);
  assert.throws(() => btfAlignOf(b, s), loop);
  // through an array and a typedef too
  const idx = b.addInt("__ARRAY_SIZE_TYPE__", 4);
  const u = b.addStruct("u", 16, []);
  b.addField(u, "arr", b.addArray(b.addTypedef("u_t", u), idx, 2), 0);
  assert.throws(() => btfAlignOf(b, u), loop);
  // the builder's C layout asks for it, and refuses the same way
  assert.throws(() => b.addStructAuto("t", [{ name: "x", type: s }]), loop);
});

test("records shared along many paths are aligned once (no exponential walk)", () => {
  const b = new BtfBuilder();
  let t = b.addInt("long", 8, 1);
  // 64 levels of union { T a; T b; }: 2^64 paths to the long at the bottom
  for (let i = 0; i < 64; i++)
    t = b.addUnionAuto(`l${i}`, [
      { name: "a", type: t },
      { name: "b", type: t },
    ]);
  assert.equal(btfAlignOf(b, t), 8);
});
