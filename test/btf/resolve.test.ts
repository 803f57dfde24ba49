import assert from "node:assert/strict";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import {
  BTF_FMODEL_SIGNED_ARG,
  BTF_FMODEL_STRUCT_ARG,
  btfAlignOf,
  btfCountFuncPtrMembers,
  btfDistillFuncProto,
  btfFindByNameKind,
  btfFuncPtrProto,
  btfMemberBitfieldSize,
  btfMemberBitOffset,
  btfMemberByName,
  btfNameByOffset,
  btfResolveSize,
  btfResolveSizeFull,
  btfTypeById,
  btfTypeHasSize,
  btfTypeIdSize,
  btfTypeIntIsRegular,
  btfTypeIsModifier,
  btfTypeIsScalar,
  btfTypeIsSmallInt,
  btfTypeIsStruct,
  btfTypeSkipModifiers,
} from "../../src/btf/resolve.js";
import type { BtfComposite } from "../../src/btf/types.js";
import { BTF_INT_SIGNED, BTF_KIND_FUNC_PROTO, BTF_KIND_STRUCT } from "../../src/uapi/btf.js";
import { BpfError, EINVAL } from "../../src/uapi/errno.js";
import { allKindsBuilder, noVmlinux, vmlinuxBytes } from "./helpers.js";

test("btf_type_skip_modifiers returns the final type and its id", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const td = b.addTypedef("s32", int);
  const c = b.addConst(td);
  const v = b.addVolatile(c);
  const tt = b.addTypeTag("user", v);
  const btf = b.toBtf();
  const r = btfTypeSkipModifiers(btf, tt);
  assert.equal(r.id, int);
  assert.equal(r.type.name, "int");
  assert.ok(btfTypeIsModifier(btf.typeById(tt)));
  // A pointer is not a modifier: skipping stops there.
  const p = b.addPtr(c);
  assert.equal(btfTypeSkipModifiers(b, b.addConst(p)).id, p);
});

test("btf_resolve_size: arrays of arrays, typedef chains, pointers; no size for void/func/fwd", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const u64 = b.addInt("u64", 8, 0);
  const row = b.addArray(u64, int, 3);
  const grid = b.addArray(row, int, 5);
  const tdGrid = b.addTypedef("grid_t", b.addConst(b.addTypedef("inner_t", grid)));
  const p = b.addPtr(grid);
  const fwd = b.addFwd("opaque");
  const proto = b.addFuncProto(int, []);
  const func = b.addFunc("f", proto);
  const btf = b.toBtf();
  assert.equal(btfResolveSize(btf, int), 4);
  assert.equal(btfResolveSize(btf, grid), 120);
  assert.equal(btfResolveSize(btf, tdGrid), 120);
  const full = btfResolveSizeFull(btf, tdGrid);
  assert.equal(full.totalNelems, 15);
  assert.equal(full.elemId, u64);
  assert.equal(btfResolveSize(btf, p), 8);
  for (const id of [0, fwd, proto, func])
    assert.throws(
      () => btfResolveSize(btf, id),
      (e: unknown) => e instanceof BpfError && e.errno === EINVAL,
    );
  const zero = b.addArray(int, int, 0);
  assert.equal(btfResolveSize(b, zero), 0);
  const huge = b.addArray(b.addArray(u64, int, 0x10000), int, 0x10000);
  assert.throws(() => btfResolveSize(b, huge), /overflows/);
});

test("member bit offsets and bitfield sizes (kind_flag) and natural layout of addStructAuto", () => {
  const { b, ids } = allKindsBuilder();
  const btf = b.toBtf();
  const flags = btf.typeById(ids.flags) as BtfComposite;
  assert.equal(flags.kindFlag, true);
  const [a, bb, c, d] = flags.members;
  assert.deepEqual(
    [a, bb, c, d].map((m) => [btfMemberBitOffset(flags, m), btfMemberBitfieldSize(flags, m)]),
    [
      [0, 3],
      [3, 5],
      [8, 0],
      [32, 20], // 16 + 20 would straddle the first u32 unit: moved to the next
    ],
  );
  assert.equal(flags.size, 8);
  const ops = btf.typeById(ids.ops) as BtfComposite;
  assert.deepEqual(
    ops.members.map((m) => m.bitOffset / 8),
    [0, 8, 16, 20, 32, 40, 56],
  );
  assert.equal(ops.size, 64);
  assert.equal(btfAlignOf(btf, ids.ops), 8);
  assert.equal(btfMemberByName(btf, ids.ops, "name")?.bitOffset, 40 * 8);
  // Without kind_flag, bitOffset is the raw offset and there are no bitfields.
  const plain = btf.typeById(ids.inner) as BtfComposite;
  assert.equal(plain.kindFlag, false);
  assert.equal(btfMemberBitfieldSize(plain, plain.members[0]), 0);
});

test("func-ptr members resolve to their FUNC_PROTO through modifiers and typedefs", () => {
  const { b, ids } = allKindsBuilder();
  const fnTd = b.addTypedef("ssthresh_fn", ids.fnptr);
  const cfn = b.addConst(fnTd);
  const s = b.addStruct("ops2", 24, [
    { name: "a", type: cfn, bitOffset: 0 },
    { name: "b", type: ids.ptrVoid, bitOffset: 64 },
    { name: "c", type: ids.fnptr, bitOffset: 128 },
  ]);
  const btf = b.toBtf();
  const r = btfFuncPtrProto(btf, cfn);
  assert.equal(r?.id, ids.proto);
  assert.equal(r?.type.kind, BTF_KIND_FUNC_PROTO);
  assert.equal(btfFuncPtrProto(btf, ids.ptrVoid), null);
  assert.equal(btfFuncPtrProto(btf, ids.int), null);
  assert.equal(btfCountFuncPtrMembers(btf, s), 2);
  assert.equal(btfCountFuncPtrMembers(btf, ids.ops), 2);
});

test("btf_distill_func_proto: sizes and flags", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const u8 = b.addInt("unsigned char", 1, 0);
  const s16 = b.addStructAuto("s16", [
    { name: "a", type: b.addInt("long", 8, BTF_INT_SIGNED) },
    { name: "b", type: int },
  ]);
  const e = b.addEnum("e", 4, [{ name: "E", val: 0 }]);
  const proto = b.addFuncProto(int, [
    { name: "p", type: b.addPtr(0) },
    { name: "c", type: b.addConst(u8) },
    { name: "s", type: s16 },
    { name: "e", type: e },
    { name: "i", type: b.addTypedef("s32", int) },
  ]);
  const m = btfDistillFuncProto(b.toBtf(), proto, "f");
  assert.deepEqual(m, {
    nr_args: 5,
    arg_size: [8, 1, 16, 4, 4],
    arg_flags: [0, 0, BTF_FMODEL_STRUCT_ARG, 0, BTF_FMODEL_SIGNED_ARG],
    ret_size: 4,
    ret_flags: BTF_FMODEL_SIGNED_ARG,
  });
  const v = btfDistillFuncProto(b, b.addFuncProto(0, []), "g");
  assert.equal(v.ret_size, 0);
  assert.equal(v.nr_args, 0);
  const fallback = btfDistillFuncProto(b, null, "h");
  assert.deepEqual(fallback.arg_size, [8, 8, 8, 8, 8]);
});

test("btf_distill_func_proto: each rejection is EINVAL with the kernel's message", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const big = b.addStructAuto("big", [{ name: "a", type: b.addArray(int, int, 5) }]);
  const u = b.addUnionAuto("u", [{ name: "a", type: int }]);
  const params = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `a${i}`, type: int }));
  const cases: [number, string][] = [
    [b.addFuncProto(int, params(13)), "The function f has 13 arguments. Too many."],
    [b.addFuncProto(big, []), "The function f return type STRUCT is unsupported."],
    [b.addFuncProto(u, []), "The function f return type UNION is unsupported."],
    [
      b.addFuncProto(int, [
        { name: "x", type: int },
        { name: "", type: 0 },
      ]),
      "The function f with variable args is unsupported.",
    ],
    [b.addFuncProto(int, [{ name: "s", type: big }]), "The function f arg0 type STRUCT is unsupported."],
    [
      b.addFuncProto(int, [
        { name: "a", type: int },
        { name: "u", type: u },
      ]),
      "The function f arg1 type UNION is unsupported.",
    ],
    [
      b.addFuncProto(int, [
        { name: "", type: 0 },
        { name: "a", type: int },
      ]),
      "The function f has malformed void argument.",
    ],
    [
      b.addFuncProto(int, [{ name: "v", type: b.addTypedef("void_t", 0) }]),
      "The function f arg0 type UNKNOWN is unsupported.",
    ],
  ];
  const btf = b.toBtf();
  for (const [proto, msg] of cases)
    assert.throws(
      () => btfDistillFuncProto(btf, proto, "f"),
      (e: unknown) => e instanceof BpfError && e.errno === EINVAL && e.message === msg,
      msg,
    );
  // 12 arguments is the limit, not an error.
  assert.equal(btfDistillFuncProto(b, b.addFuncProto(int, params(12)), "f").nr_args, 12);
});

test("predicates and kernel-named accessors", () => {
  const { b, ids } = allKindsBuilder();
  const btf = b.toBtf();
  assert.equal(btfTypeById(btf, ids.int)?.name, "int");
  assert.equal(btfTypeById(btf, btf.nrTypes + 1), undefined);
  assert.equal(btfNameByOffset(btf, btf.typeById(ids.ops).nameOff), "tcp_congestion_ops");
  assert.equal(btfFindByNameKind(btf, "tcp_congestion_ops", BTF_KIND_STRUCT), ids.ops);
  assert.equal(btfFindByNameKind(btf, "tcp_congestion_ops", BTF_KIND_FUNC_PROTO), -1);
  assert.ok(btfTypeIsScalar(btf.typeById(ids.int)));
  assert.ok(btfTypeIntIsRegular(btf.typeById(ids.int)));
  assert.ok(btfTypeIsSmallInt(btf.typeById(ids.u64)));
  const bits3 = b.addInt("u3", 1, 0, 3);
  assert.ok(!btfTypeIntIsRegular(b.typeById(bits3)));
  assert.ok(!btfTypeIsSmallInt(b.typeById(b.addInt("__int128", 16, 1))));
  assert.ok(btfTypeIsScalar(btf.typeById(ids.big)));
  assert.ok(!btfTypeIsScalar(btf.typeById(ids.ptrVoid)));
  assert.ok(btfTypeIsStruct(btf.typeById(ids.union)));
  assert.ok(btfTypeIsStruct(btf.typeById(ids.ops)));
});

test("host vmlinux: tcp_congestion_ops func ptrs distill", { skip: noVmlinux }, () => {
  const btf = Btf.parse(vmlinuxBytes());
  const id = btf.findByNameKind("tcp_congestion_ops", BTF_KIND_STRUCT);
  const t = btf.typeById(id) as BtfComposite;
  let n = 0;
  for (const m of t.members) {
    const fp = btfFuncPtrProto(btf, m.type);
    if (!fp) continue;
    n++;
    const model = btfDistillFuncProto(btf, fp.id, m.name);
    assert.ok(model.nr_args >= 1, m.name);
    assert.equal(model.arg_size[0], 8, `${m.name}: first arg is struct sock *`);
  }
  assert.equal(n, btfCountFuncPtrMembers(btf, id));
  assert.ok(n >= 10);
  const ssthresh = btfFuncPtrProto(btf, btfMemberByName(btf, id, "ssthresh")?.type ?? 0);
  assert.equal(btfDistillFuncProto(btf, ssthresh?.id ?? 0, "ssthresh").ret_size, 4);
});

test("btf_type_id_size: through modifiers, typedefs and VARs to a sized type; null where there is no size", () => {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const td = b.addTypedef("s32", b.addConst(int));
  const v = b.addVar("x", td);
  const ptr = b.addPtr(int);
  const arr = b.addArray(td, int, 3);
  const sec = b.addDatasec(".data", 12, [{ type: v, offset: 0, size: 4 }]);
  const fwd = b.addFwd("later");
  const proto = b.addFuncProto(int, []);
  const func = b.addFunc("f", proto);
  const btf = b.toBtf();
  assert.deepEqual(btfTypeIdSize(btf, v), { type: btf.typeById(int), size: 4 });
  assert.equal(btfTypeIdSize(btf, ptr)?.size, 8);
  assert.equal(btfTypeIdSize(btf, arr)?.size, 12, "arrays take btf_resolve_size's size");
  assert.equal(btfTypeIdSize(btf, sec)?.size, 12, "DATASEC has a size");
  for (const id of [0, fwd, proto, func, btf.nrTypes + 1, -1]) assert.equal(btfTypeIdSize(btf, id), null, `id ${id}`);
  assert.ok(btfTypeHasSize(btf.typeById(sec)) && btfTypeHasSize(btf.typeById(int)));
  assert.ok(
    !btfTypeHasSize(btf.typeById(ptr)) && !btfTypeHasSize(btf.typeById(arr)) && !btfTypeHasSize(btf.typeById(td)),
  );
});
