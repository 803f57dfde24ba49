import assert from "node:assert/strict";
import { test } from "node:test";
import { BtfBuilder } from "../../src/btf/builder.js";
import type { BtfComposite } from "../../src/btf/types.js";
import {
  type BpfStructOps,
  bpfStructOpsFind,
  bpfStructOpsFindValue,
  declareStructOpsValueType,
  registerBpfStructOps,
} from "../../src/kernel/struct_ops_desc.js";
import { BTF_FUNC_STATIC, BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { EEXIST, EINVAL, ENOENT, EOPNOTSUPP } from "../../src/uapi/errno.js";
import { errno as errnoOf } from "./struct_ops_util.js";

interface Decl {
  b: BtfBuilder;
  int: number;
}

function base(): Decl {
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  return { b, int };
}

/** struct foo_ops { int (*a)(int x); int (*b)(struct foo_state *s); int val; } with stubs and value type. */
function fooTypes(d: Decl, opts: { extra?: (d: Decl) => { name: string; type: number }[]; noValue?: boolean } = {}) {
  const { b, int } = d;
  const st = b.addStructAuto("foo_state", [{ name: "v", type: int }]);
  const pSt = b.addPtr(st);
  const pa = b.addFuncProto(int, [{ name: "x", type: int }]);
  const pb = b.addFuncProto(int, [{ name: "s", type: pSt }]);
  const members = [
    { name: "a", type: b.addPtr(pa) },
    { name: "b", type: b.addPtr(pb) },
    { name: "val", type: int },
    ...(opts.extra?.(d) ?? []),
  ];
  const id = b.addStructAuto("foo_ops", members);
  b.addFunc("foo_stub_a", pa, BTF_FUNC_STATIC);
  b.addFunc("foo_stub_b", b.addFuncProto(int, [{ name: "s__nullable", type: pSt }]), BTF_FUNC_STATIC);
  if (!opts.noValue) declareStructOpsValueType(b, "foo_ops");
  return id;
}

function fooOps(over: Partial<BpfStructOps> = {}): BpfStructOps<never> {
  return {
    name: "foo_ops",
    cfiStubs: { a: "foo_stub_a", b: "foo_stub_b" },
    initMember: () => 0,
    reg: () => {},
    unreg: () => {},
    ...over,
  } as BpfStructOps<never>;
}

test("registration: value type is {common, data@64}, func models distilled, __nullable arg info", () => {
  const d = base();
  const id = fooTypes(d);
  const btf = d.b.toBtf();
  const desc = registerBpfStructOps(btf, fooOps())!;
  assert.equal(desc.typeId, id);
  const vt = btf.typeById(desc.valueId) as BtfComposite;
  assert.equal(vt.name, "bpf_struct_ops_foo_ops");
  assert.deepEqual(
    vt.members.map((m) => [m.name, m.bitOffset / 8]),
    [
      ["common", 0],
      ["data", 64],
    ],
  );
  assert.equal(vt.size, 128);
  assert.equal(desc.dataOffset, 64);
  assert.deepEqual(desc.funcModels[0], { nr_args: 1, arg_size: [4], arg_flags: [2], ret_size: 4, ret_flags: 2 });
  assert.equal(desc.funcModels[2], undefined, "non-func member has no model");
  assert.deepEqual(desc.argInfo[0], []);
  assert.equal(desc.argInfo[1].length, 1);
  assert.equal(desc.argInfo[1][0].offset, 0);
  assert.equal(desc.argInfo[1][0].mayBeNull, true);
  assert.equal(desc.funcsCnt, 2);
  assert.equal(bpfStructOpsFindValue(btf, desc.valueId), desc);
  assert.equal(bpfStructOpsFind(btf, id), desc);
  assert.equal(bpfStructOpsFind(btf, desc.valueId), undefined);
});

test("registration: the same st_ops twice in one BTF -> EEXIST", () => {
  const d = base();
  fooTypes(d);
  const btf = d.b.toBtf();
  const ops = fooOps();
  registerBpfStructOps(btf, ops);
  assert.equal(
    errnoOf(() => registerBpfStructOps(btf, ops)),
    EEXIST,
  );
});

test("registration: no BTF -> ENOENT for a built-in, silently skipped for a module", () => {
  assert.equal(
    errnoOf(() => registerBpfStructOps(null, fooOps())),
    ENOENT,
  );
  assert.equal(registerBpfStructOps(null, fooOps({ owner: {} })), undefined);
});

test("registration: anonymous member message", () => {
  const d = base();
  fooTypes(d, { extra: ({ int }) => [{ name: "", type: int }] });
  assert.throws(() => registerBpfStructOps(d.b.toBtf(), fooOps()), /anon member in struct foo_ops/);
});

test("registration refusals, in the kernel's order, with their errnos", () => {
  const cases: [string, () => number][] = [
    [
      "name too long -> EINVAL",
      () => {
        const d = base();
        fooTypes(d);
        return errnoOf(() => registerBpfStructOps(d.b.toBtf(), fooOps({ name: "x".repeat(113) })));
      },
    ],
    [
      "no cfi_stubs -> EINVAL",
      () => {
        const d = base();
        fooTypes(d);
        return errnoOf(() => registerBpfStructOps(d.b.toBtf(), fooOps({ cfiStubs: null })));
      },
    ],
    ["struct not in BTF -> EINVAL", () => errnoOf(() => registerBpfStructOps(base().b.toBtf(), fooOps()))],
    [
      "value type missing -> EINVAL",
      () => {
        const d = base();
        fooTypes(d, { noValue: true });
        return errnoOf(() => registerBpfStructOps(d.b.toBtf(), fooOps()));
      },
    ],
    [
      "more than 64 members -> EINVAL",
      () => {
        const d = base();
        d.b.addStructAuto(
          "foo_ops",
          Array.from({ length: 65 }, (_, i) => ({ name: `m${i}`, type: d.int })),
        );
        declareStructOpsValueType(d.b, "foo_ops");
        return errnoOf(() => registerBpfStructOps(d.b.toBtf(), fooOps()));
      },
    ],
    [
      "value type with a wrong second member -> EINVAL",
      () => {
        const d = base();
        fooTypes(d, { noValue: true });
        const other = d.b.addStructAuto("bar", [{ name: "x", type: d.int }]);
        const common = d.b.addStructAuto("bpf_struct_ops_common_value", [{ name: "refcnt", type: d.int }]);
        d.b.addStruct("bpf_struct_ops_foo_ops", 128, [
          { name: "common", type: common, bitOffset: 0 },
          { name: "data", type: other, bitOffset: 512 },
        ]);
        return errnoOf(() => registerBpfStructOps(d.b.toBtf(), fooOps()));
      },
    ],
    [
      "anonymous member -> EOPNOTSUPP",
      () => {
        const d = base();
        fooTypes(d, { extra: ({ int }) => [{ name: "", type: int }] });
        return errnoOf(() => registerBpfStructOps(d.b.toBtf(), fooOps()));
      },
    ],
    [
      "bitfield member -> EOPNOTSUPP",
      () => {
        const d = base();
        const pa = d.b.addFuncProto(d.int, [{ name: "x", type: d.int }]);
        d.b.addStruct("foo_ops", 16, [
          { name: "a", type: d.b.addPtr(pa), bitOffset: 0 },
          { name: "bits", type: d.int, bitOffset: 64, bitfieldSize: 3 },
        ]);
        d.b.addFunc("foo_stub_a", pa, BTF_FUNC_STATIC);
        declareStructOpsValueType(d.b, "foo_ops");
        return errnoOf(() => registerBpfStructOps(d.b.toBtf(), fooOps({ cfiStubs: { a: "foo_stub_a" } })));
      },
    ],
    [
      "struct module * member without struct module in BTF -> EOPNOTSUPP",
      () => {
        const d = base();
        fooTypes(d, { extra: ({ b }) => [{ name: "owner", type: b.addPtr(b.addFwd("module")) }] });
        return errnoOf(() => registerBpfStructOps(d.b.toBtf(), fooOps()));
      },
    ],
    [
      "func ptr returning a pointer to a non-struct -> EOPNOTSUPP",
      () => {
        const d = base();
        fooTypes(d, {
          extra: ({ b, int }) => [
            { name: "r", type: b.addPtr(b.addFuncProto(b.addPtr(int), [{ name: "x", type: int }])) },
          ],
        });
        return errnoOf(() =>
          registerBpfStructOps(d.b.toBtf(), fooOps({ cfiStubs: { a: "foo_stub_a", r: "foo_stub_a" } })),
        );
      },
    ],
    [
      "func ptr with 13 args fails to distill -> EINVAL",
      () => {
        const d = base();
        fooTypes(d, {
          extra: ({ b, int }) => [
            {
              name: "many",
              type: b.addPtr(
                b.addFuncProto(
                  int,
                  Array.from({ length: 13 }, (_, i) => ({ name: `a${i}`, type: int })),
                ),
              ),
            },
          ],
        });
        return errnoOf(() =>
          registerBpfStructOps(d.b.toBtf(), fooOps({ cfiStubs: { a: "foo_stub_a", many: "foo_stub_a" } })),
        );
      },
    ],
    [
      "stub function missing from BTF -> ENOENT",
      () => {
        const d = base();
        fooTypes(d);
        return errnoOf(() => registerBpfStructOps(d.b.toBtf(), fooOps({ cfiStubs: { a: "nope", b: "foo_stub_b" } })));
      },
    ],
    [
      "stub with a different arg count -> EINVAL",
      () => {
        const d = base();
        fooTypes(d);
        const two = d.b.addFuncProto(d.int, [
          { name: "x", type: d.int },
          { name: "y", type: d.int },
        ]);
        d.b.addFunc("two_args", two, BTF_FUNC_STATIC);
        return errnoOf(() =>
          registerBpfStructOps(d.b.toBtf(), fooOps({ cfiStubs: { a: "two_args", b: "foo_stub_b" } })),
        );
      },
    ],
    [
      "__nullable on a non-struct-pointer arg -> EINVAL",
      () => {
        const d = base();
        fooTypes(d);
        d.b.addFunc("bad_stub", d.b.addFuncProto(d.int, [{ name: "x__nullable", type: d.int }]), BTF_FUNC_STATIC);
        return errnoOf(() =>
          registerBpfStructOps(d.b.toBtf(), fooOps({ cfiStubs: { a: "bad_stub", b: "foo_stub_b" } })),
        );
      },
    ],
    [
      "init(btf) != 0 -> EINVAL",
      () => {
        const d = base();
        fooTypes(d);
        return errnoOf(() => registerBpfStructOps(d.b.toBtf(), fooOps({ init: () => -1 })));
      },
    ],
  ];
  const expect = [
    EINVAL,
    EINVAL,
    EINVAL,
    EINVAL,
    EINVAL,
    EINVAL,
    EOPNOTSUPP,
    EOPNOTSUPP,
    EOPNOTSUPP,
    EOPNOTSUPP,
    EINVAL,
    ENOENT,
    EINVAL,
    EINVAL,
    EINVAL,
  ];
  for (const [i, [name, fn]] of cases.entries()) assert.equal(fn(), expect[i], name);
});

test("registration: a member without a cfi stub is unsupported (no func model), the type still registers", () => {
  const d = base();
  fooTypes(d);
  const desc = registerBpfStructOps(d.b.toBtf(), fooOps({ cfiStubs: { a: "foo_stub_a" } }))!;
  assert.ok(desc.funcModels[0]);
  assert.equal(desc.funcModels[1], undefined);
  assert.equal(desc.funcsCnt, 2, "count_func_ptrs counts unsupported members too");
});
