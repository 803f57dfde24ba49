import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import { btfDumpC } from "../../src/btf/dump_c.js";
import { btfDumpRaw } from "../../src/btf/dump_raw.js";
import { BTF_INT_CHAR, BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { BpfError, EEXIST, EINVAL, ENOTSUPP } from "../../src/uapi/errno.js";
import { allKindsBuilder, noVmlinux, vmlinuxBytes } from "./helpers.js";

/** A valid blob to corrupt: int, ptr, struct. */
function small(): { bytes: Uint8Array; dv: DataView } {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  b.addPtr(int);
  b.addStruct("s", 8, [
    { name: "a", type: int, bitOffset: 0 },
    { name: "b", type: int, bitOffset: 32 },
  ]);
  const bytes = b.build();
  return { bytes, dv: new DataView(bytes.buffer) };
}

type Small = ReturnType<typeof small>;
function w32(s: Small, off: number, v: number): Uint8Array {
  s.dv.setUint32(off, v, true);
  return s.bytes;
}
function w16(s: Small, off: number, v: number): Uint8Array {
  s.dv.setUint16(off, v, true);
  return s.bytes;
}
function w8(s: Small, off: number, v: number): Uint8Array {
  s.bytes[off] = v;
  return s.bytes;
}

function expectEinval(fn: () => unknown, msg: RegExp, errno = EINVAL): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BpfError, `not a BpfError: ${e}`);
    assert.equal(e.errno, errno, e.message);
    assert.match(e.message, msg);
    return true;
  });
}

const parseAndValidate = (bytes: Uint8Array) => Btf.parse(bytes).validate();

// Record layout of small(): header 24, [1] INT at 24 (16 bytes), [2] PTR at 40, [3] STRUCT at 52.
const T1 = 24;
const T2 = 40;
const T3 = 52;

const headerCases: [string, (s: Small) => Uint8Array, RegExp][] = [
  ["bad magic", (s) => w16(s, 0, 0x1234), /Invalid magic/],
  ["bad version", (s) => w8(s, 2, 2), /Unsupported version 2/],
  ["flags set", (s) => w8(s, 3, 1), /Unsupported flags/],
  ["hdr_len past the buffer", (s) => w32(s, 4, 1 << 20), /Invalid hdr_len/],
  ["hdr_len too small", (s) => w32(s, 4, 8), /Invalid hdr_len/],
  ["type_len past the buffer", (s) => w32(s, 12, 1 << 20), /Type section .* past end/],
  ["str_len past the buffer", (s) => w32(s, 20, 1 << 20), /String section .* past end/],
  ["str_off past the buffer", (s) => w32(s, 16, 0xfffffff0), /String section .* past end/],
  ["unaligned type_off", (s) => w32(s, 8, 2), /Unaligned type_off|past end|overlap/],
  ["truncated header", (s) => s.bytes.subarray(0, 3), /hdr_len not found/],
  ["truncated data", (s) => s.bytes.subarray(0, 40), /Invalid hdr_len|past end/],
  [
    "unterminated string section",
    (s) => {
      const strOff = 24 + s.dv.getUint32(16, true);
      const strLen = s.dv.getUint32(20, true);
      s.bytes[strOff + strLen - 1] = 0x41;
      return s.bytes;
    },
    /Invalid string section/,
  ],
  ["invalid kind 0", (s) => w32(s, T2 + 4, 0), /\[2\] Invalid kind:0/],
  ["invalid kind 31", (s) => w32(s, T2 + 4, 31 << 24), /\[2\] Invalid kind:31/],
  ["vlen past the type section", (s) => w32(s, T3 + 4, (4 << 24) | 500), /\[3\] STRUCT meta_left:\d+ meta_needed:6012/],
  // a type id past the last type is valid in the record and found missing when resolved
  ["ptr to an out-of-range type id", (s) => w32(s, T2 + 8, 77), /\[2\] PTR Invalid type_id/],
  [
    "name offset past the string section",
    (s) => w32(s, T1, 0x7fff),
    /\[1\] Invalid name_offset: Invalid string offset 32767.*type id 1, offset 24/,
  ],
  ["INT with vlen", (s) => w32(s, T1 + 4, (1 << 24) | 1), /\[1\] INT int vlen != 0/],
  ["INT with stray int_data bits", (s) => w32(s, T1 + 12, 0x01001020), /\[1\] INT int Invalid int_data:1001020/],
  ["INT bits past its size", (s) => w32(s, T1 + 12, 40), /nr_bits exceeds type_size/],
  [
    "member past the struct size",
    (s) => w32(s, T3 + 12 + 12 + 8, 96),
    /\[3\] STRUCT s member b: Member bits_offset exceeds its struct size/,
  ],
  ["member type out of range", (s) => w32(s, T3 + 12 + 4, 9), /STRUCT s member a: Invalid member \(/],
  ["stray info bits", (s) => w32(s, T2 + 4, (2 << 24) | 0x10000), /Invalid btf_info:2010000/],
];

for (const [name, corrupt, msg] of headerCases)
  test(`bad input: ${name}`, () => expectEinval(() => parseAndValidate(corrupt(small())), msg));

test("bad input: an INT with two encoding bits is ENOTSUPP, as in the kernel", () => {
  const b = new BtfBuilder();
  b.addInt("char", 1, BTF_INT_SIGNED | BTF_INT_CHAR);
  assert.throws(
    () => b.toBtf().validate(),
    (e: unknown) =>
      e instanceof BpfError && e.errno === ENOTSUPP && /\[1\] INT char Unsupported encoding/.test(e.message),
  );
});

test("an old-style INT bitfield (no kind_flag) may start mid-byte", () => {
  const b = new BtfBuilder();
  const u3 = b.addInt("unsigned int", 4, 0, 3);
  b.addStruct("s", 4, [
    { name: "a", type: u3, bitOffset: 0 },
    { name: "b", type: u3, bitOffset: 3 },
  ]);
  b.toBtf().validate();
});

test("bad input: typedef loop is detected, naming the type", () => {
  const b = new BtfBuilder();
  b.addTypedef("a", 2);
  b.addTypedef("b", 1);
  // btf_resolve reports a loop on the type it started from, with EEXIST
  expectEinval(() => b.toBtf().validate(), /\[1\] TYPEDEF a Loop detected \(type id 1, offset 24\)/, EEXIST);
});

test("bad input: pointer loop through const is detected", () => {
  const b = new BtfBuilder();
  b.addPtr(2);
  b.addConst(1);
  expectEinval(() => b.toBtf().validate(), /Loop detected/, EEXIST);
});

test("bad input: struct embedding itself by value loops, through a pointer it does not", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  b.addStruct("node", 16, [
    { name: "v", type: int, bitOffset: 0 },
    { name: "next", type: b.nextId + 1, bitOffset: 64 },
  ]);
  b.addPtr(2);
  b.toBtf().validate();
  const bad = new BtfBuilder();
  bad.addStruct("self", 8, [{ name: "me", type: 1, bitOffset: 0 }]);
  expectEinval(() => bad.toBtf().validate(), /\[1\] STRUCT self Loop detected/, EEXIST);
});

test("bad input: semantic errors name the type", () => {
  const cases: [(b: BtfBuilder, int: number) => void, RegExp][] = [
    [(b, int) => b.addArray(int, b.addPtr(int), 2), /ARRAY Invalid index/],
    [(b, int) => b.addFunc("f", int, 1), /FUNC f Invalid type_id/],
    [
      (b, int) => b.addDatasec(".data", 4, [{ type: int, offset: 0, size: 4 }]),
      /DATASEC \.data var #0: Not a VAR kind member/,
    ],
    [
      (b, int) =>
        b.addFuncProto(int, [
          { name: "", type: 0 },
          { name: "x", type: int },
        ]),
      /FUNC_PROTO Invalid arg#1/,
    ],
    [
      (b, int) => b.addStruct("s", 2, [{ name: "x", type: int, bitOffset: 0 }]),
      /STRUCT s member x: Member exceeds struct_size/,
    ],
    [
      (b, int) => b.addStruct("s", 4, [{ name: "x", type: b.addPtr(int), bitOffset: 0, bitfieldSize: 3 }]),
      /member x: Invalid member base type/,
    ],
    [(b, int) => b.addTypedef("bad name", int), /TYPEDEF bad name Invalid name/],
    [(b) => b.addEnum("e", 3, [{ name: "A", val: 1 }]), /ENUM e Unexpected size \(/],
    [(b, int) => b.addVar("v", int, 7), /VAR v Linkage not supported/],
    [(b, int) => b.addDeclTag("tag", int, -1), /DECL_TAG tag Invalid type/],
    [
      (b) => b.addStruct("s", 4, [{ name: "f", type: b.addFwd("opaque"), bitOffset: 0 }]),
      /member f: Invalid member \(/,
    ],
    [
      (b, int) => b.addStruct("s", 16, [{ name: "p", type: b.addPtr(int), bitOffset: 4 }]),
      /member p: Member is not byte aligned/,
    ],
    [(b, int) => b.addStruct("s", 4, [{ name: "i", type: int, bitOffset: 4 }]), /member i: Member exceeds struct_size/],
  ];
  for (const [build, msg] of cases) {
    const b = new BtfBuilder();
    const int = b.addInt("int", 4, BTF_INT_SIGNED);
    build(b, int);
    expectEinval(() => b.toBtf().validate(), msg);
  }
});

test("the host vmlinux and the builder blob pass validation", { skip: noVmlinux }, () => {
  Btf.parse(vmlinuxBytes(), { validate: true });
  allKindsBuilder().b.toBtf().validate();
});

/** Byte flips and truncations of `blob`. */
function mutations(blob: Uint8Array) {
  return fc.record({
    flips: fc.array(fc.record({ at: fc.nat({ max: blob.length - 1 }), value: fc.integer({ min: 0, max: 255 }) }), {
      minLength: 1,
      maxLength: 8,
    }),
    truncate: fc.option(fc.nat({ max: blob.length }), { nil: undefined }),
  });
}

function mutate(blob: Uint8Array, m: { flips: { at: number; value: number }[]; truncate?: number }): Uint8Array {
  const out = blob.slice(0, m.truncate ?? blob.length);
  for (const f of m.flips) if (f.at < out.length) out[f.at] = f.value;
  return out;
}

/** Parse, validate, and when that passes, read and dump everything: only BpfErrors may escape. */
function exercise(bytes: Uint8Array, full: boolean): void {
  try {
    const btf = Btf.parse(bytes);
    btf.validate();
    if (!full) return;
    btfDumpRaw(btf);
    btfDumpC(btf);
    btf.encode();
  } catch (e) {
    if (!(e instanceof BpfError)) throw e;
  }
}

test("fuzz: mutated builder blobs only ever throw BpfError", () => {
  const blob = allKindsBuilder().b.build();
  fc.assert(
    fc.property(mutations(blob), (m) => exercise(mutate(blob, m), true)),
    { numRuns: 2000, seed: 42 },
  );
});

test("fuzz: mutated big-endian blobs only ever throw BpfError", () => {
  const blob = allKindsBuilder().b.toBtf().encode({ byteOrder: "big" });
  fc.assert(
    fc.property(mutations(blob), (m) => exercise(mutate(blob, m), true)),
    { numRuns: 1000, seed: 43 },
  );
});

test("fuzz: mutated host vmlinux (sampled) only ever throws BpfError", { skip: noVmlinux }, () => {
  const blob = vmlinuxBytes();
  fc.assert(
    fc.property(mutations(blob), (m) => exercise(mutate(blob, m), false)),
    { numRuns: 6, seed: 7 },
  );
});
