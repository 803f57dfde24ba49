import assert from "node:assert/strict";
import { test } from "node:test";
import { BtfBuilder } from "../../src/btf/builder.js";
import { btfTypeSeqShow, btfTypeSeqShowJson } from "../../src/btf/seq_show.js";
import { BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { BpfError, EINVAL } from "../../src/uapi/errno.js";
import { allKindsBuilder } from "./helpers.js";

/** A tcp_congestion_ops-like value laid out as allKindsBuilder() declares it. */
function opsValue(): Uint8Array {
  const v = new Uint8Array(64);
  const dv = new DataView(v.buffer);
  dv.setBigUint64(0, 7n, true); // ssthresh: a program id, as struct_ops stores
  dv.setBigUint64(8, 0n, true); // cong_avoid: unset
  dv.setUint32(16, 4, true); // state = TCP_CA_Loss
  // flags at 20: a:3 = 5, b:5 = 17, c (bool) = 1, d:20 = 0xabcde
  v[20] = 5 | (17 << 3);
  v[21] = 1;
  dv.setUint32(24, 0xabcde, true);
  dv.setBigUint64(32, 0x1122334455667788n, true); // union { u64 a; struct { int x; } s; }
  v.set(new TextEncoder().encode("cubic"), 40);
  dv.setBigUint64(56, 0xffff888012345678n, true); // owner
  return v;
}

test("seq_show of a struct value, bpftool plain-text form", () => {
  const { b, ids } = allKindsBuilder();
  const btf = b.toBtf();
  const text = btfTypeSeqShow(btf, ids.ops, opsValue(), {
    funcPtr: (v) => (v === 0n ? undefined : `u32 (*)(struct sock *, u32) prog_id:${v}`),
  });
  assert.equal(
    text,
    [
      "{",
      '    "ssthresh": "u32 (*)(struct sock *, u32) prog_id:7",',
      '    "cong_avoid": (nil),',
      '    "state": "TCP_CA_Loss",',
      '    "flags": {',
      '        "a": 0x5,',
      '        "b": 0x11,',
      '        "c": true,',
      '        "d": 0xabcde',
      "    },",
      '    "": {',
      '        "a": 1234605616436508552,',
      '        "s": {',
      '            "x": 1432778632',
      "        }",
      "    },",
      '    "name": "cubic",',
      '    "owner": 0xffff888012345678',
      "}",
    ].join("\n"),
  );
});

test("seq_show JSON form: pointers as numbers, bitfields as hex strings", () => {
  const { b, ids } = allKindsBuilder();
  const v = btfTypeSeqShowJson(b.toBtf(), ids.ops, opsValue()) as Record<string, unknown>;
  assert.equal(v.ssthresh, 7);
  assert.equal(v.cong_avoid, 0);
  assert.equal(v.state, "TCP_CA_Loss");
  assert.deepEqual(v.flags, { a: "0x5", b: "0x11", c: true, d: "0xabcde" });
  assert.equal(v.name, "cubic");
  assert.equal(btfTypeSeqShow(b.toBtf(), ids.state, new Uint8Array([9, 0, 0, 0]), { json: true }), "9");
});

test("seq_show: arrays, non-string char arrays, signed ints, enum64, offsets", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const char = b.addInt("char", 1, BTF_INT_SIGNED);
  const arr = b.addArray(int, int, 3);
  const chars = b.addArray(char, int, 2);
  const e64 = b.addEnum64("e64", 8, [{ name: "E_BIG", val: 1n << 40n }]);
  const s = b.addStructAuto("s", [
    { name: "v", type: arr },
    { name: "raw", type: chars },
    { name: "e", type: e64 },
  ]);
  const btf = b.toBtf();
  const bytes = new Uint8Array(4 + 24);
  const dv = new DataView(bytes.buffer);
  dv.setInt32(4, -1, true);
  dv.setInt32(8, 2, true);
  dv.setInt32(12, 3, true);
  bytes[16] = 0x01; // not NUL-terminated printable: shown as numbers
  bytes[17] = 0x41;
  dv.setBigUint64(20, 1n << 40n, true);
  assert.equal(btfTypeSeqShow(btf, s, bytes, { json: true, offset: 4 }), '{"v":[-1,2,3],"raw":[1,65],"e":"E_BIG"}');
});

test("seq_show: a value shorter than its type is EINVAL naming the type", () => {
  const { b, ids } = allKindsBuilder();
  assert.throws(
    () => btfTypeSeqShow(b.toBtf(), ids.ops, new Uint8Array(20)),
    (e: unknown) => e instanceof BpfError && e.errno === EINVAL && /value of type \[\d+\] needs bytes/.test(e.message),
  );
});
