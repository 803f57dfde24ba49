import assert from "node:assert/strict";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { BtfBuilder } from "../../src/btf/builder.js";
import {
  BPF_LIST_HEAD,
  BPF_LIST_NODE,
  BPF_RB_NODE,
  BPF_REFCOUNT,
  BPF_SPIN_LOCK,
  BPF_TIMER,
  btfParseFields,
  MAP_VALUE_FIELDS,
} from "../../src/btf/record.js";
import type { BpfMap } from "../../src/kernel/bpf.js";
import { BPF_F_RDONLY_PROG, bpf_cmd, bpf_map_type } from "../../src/uapi/bpf.js";
import { BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { BpfError } from "../../src/uapi/errno.js";
import { hostOps, type MapOp, ourOps, skip } from "./host_oracle.js";
import { boot } from "./util.js";

const T = bpf_map_type;

/** The opaque kernel types as vmlinux.h / bpf_helpers users declare them. */
function graphTypes(b: BtfBuilder) {
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const u32 = b.addInt("unsigned int", 4);
  const u64 = b.addInt("long long unsigned int", 8);
  const lock = b.addStructAuto("bpf_spin_lock", [{ name: "val", type: u32 }]);
  const head = b.addStructAuto("bpf_list_head", [{ name: "__opaque", type: b.addArray(u64, int, 2) }]);
  const node = b.addStructAuto("bpf_list_node", [{ name: "__opaque", type: b.addArray(u64, int, 3) }]);
  const root = b.addStructAuto("bpf_rb_root", [{ name: "__opaque", type: b.addArray(u64, int, 2) }]);
  const rbnode = b.addStructAuto("bpf_rb_node", [{ name: "__opaque", type: b.addArray(u64, int, 4) }]);
  const refcount = b.addStructAuto("bpf_refcount", [{ name: "__opaque", type: b.addArray(u32, int, 1) }]);
  const timer = b.addStructAuto("bpf_timer", [{ name: "__opaque", type: b.addArray(u64, int, 2) }]);
  return { int, u32, u64, lock, head, node, root, rbnode, refcount, timer };
}

interface Case {
  name: string;
  /** Builds the BTF; returns the map's value type id and size. */
  build(b: BtfBuilder, t: ReturnType<typeof graphTypes>): { value: number; size: number };
  map?: number;
  flags?: number;
  /** [BTF_LOAD, MAP_CREATE] as ours gives them (-errno or 0); the host must agree when it runs. */
  want: [number, number];
}

const elem = (b: BtfBuilder, t: ReturnType<typeof graphTypes>, extra: { name: string; type: number }[] = []) =>
  b.addStructAuto("elem", [{ name: "data", type: t.int }, { name: "node", type: t.node }, ...extra]);

const CASES: Case[] = [
  {
    name: "a lock and a list of elem",
    build(b, t) {
      elem(b, t);
      const v = b.addStructAuto("value", [
        { name: "lock", type: t.lock },
        { name: "head", type: t.head },
      ]);
      b.addDeclTag("contains:elem:node", v, 1);
      return { value: v, size: 24 };
    },
    want: [0, 0],
  },
  {
    name: "two spin locks in a value",
    build(b, t) {
      const v = b.addStructAuto("value", [
        { name: "a", type: t.lock },
        { name: "b", type: t.lock },
      ]);
      return { value: v, size: 8 };
    },
    want: [-7, -9],
  },
  {
    name: "two timers in a value (not a struct meta: the map is made, its record is an error)",
    build(b, t) {
      const v = b.addStructAuto("value", [
        { name: "a", type: t.timer },
        { name: "b", type: t.timer },
      ]);
      return { value: v, size: 32 };
    },
    want: [0, 0],
  },
  {
    name: "contains: names a missing type",
    build(b, t) {
      const v = b.addStructAuto("value", [
        { name: "lock", type: t.lock },
        { name: "head", type: t.head },
      ]);
      b.addDeclTag("contains:nosuch:node", v, 1);
      return { value: v, size: 24 };
    },
    want: [-2, -9],
  },
  {
    name: "contains: names a missing field",
    build(b, t) {
      elem(b, t);
      const v = b.addStructAuto("value", [
        { name: "lock", type: t.lock },
        { name: "head", type: t.head },
      ]);
      b.addDeclTag("contains:elem:nosuch", v, 1);
      return { value: v, size: 24 };
    },
    want: [-2, -9],
  },
  {
    name: "a list head without contains:",
    build(b, t) {
      elem(b, t);
      const v = b.addStructAuto("value", [
        { name: "lock", type: t.lock },
        { name: "head", type: t.head },
      ]);
      return { value: v, size: 24 };
    },
    want: [-22, -9],
  },
  {
    name: "a list head without a lock",
    build(b, t) {
      elem(b, t);
      const v = b.addStructAuto("value", [{ name: "head", type: t.head }]);
      b.addDeclTag("contains:elem:node", v, 0);
      return { value: v, size: 16 };
    },
    want: [-22, -9],
  },
  {
    name: "a node in a list and an rbtree without bpf_refcount",
    build(b, t) {
      const e = b.addStructAuto("elem", [
        { name: "node", type: t.node },
        { name: "rb", type: t.rbnode },
      ]);
      return { value: e, size: 56 };
    },
    want: [-22, -9],
  },
  {
    name: "a node in a list and an rbtree with bpf_refcount",
    build(b, t) {
      const e = b.addStructAuto("elem", [
        { name: "node", type: t.node },
        { name: "rb", type: t.rbnode },
        { name: "ref", type: t.refcount },
      ]);
      return { value: e, size: 64 };
    },
    want: [0, 0],
  },
  {
    name: "a node type owning a node type that owns one: an ownership cycle",
    build(b, t) {
      const inner = b.addStructAuto("inner", [{ name: "node", type: t.node }]);
      void inner;
      const mid = b.addStructAuto("mid", [
        { name: "node", type: t.node },
        { name: "lock", type: t.lock },
        { name: "head", type: t.head },
      ]);
      b.addDeclTag("contains:inner:node", mid, 2);
      const outer = b.addStructAuto("outer", [
        { name: "node", type: t.node },
        { name: "lock", type: t.lock },
        { name: "head", type: t.head },
      ]);
      b.addDeclTag("contains:mid:node", outer, 2);
      return { value: outer, size: 48 };
    },
    want: [-40, -9],
  },
  {
    name: "a lock in a read-only-to-programs map",
    build(b, t) {
      const v = b.addStructAuto("value", [
        { name: "lock", type: t.lock },
        { name: "x", type: t.int },
      ]);
      return { value: v, size: 8 };
    },
    flags: BPF_F_RDONLY_PROG,
    want: [0, -13],
  },
  {
    name: "a list head in sk_storage",
    build(b, t) {
      elem(b, t);
      const v = b.addStructAuto("value", [
        { name: "lock", type: t.lock },
        { name: "head", type: t.head },
      ]);
      b.addDeclTag("contains:elem:node", v, 1);
      return { value: v, size: 24 };
    },
    map: T.BPF_MAP_TYPE_SK_STORAGE,
    want: [0, -95],
  },
  {
    name: "a lock and a list head in a global data section (private(...))",
    build(b, t) {
      elem(b, t);
      const lockVar = b.addVar("glock", t.lock, 1);
      const headVar = b.addVar("ghead", t.head, 1);
      b.addDeclTag("contains:elem:node", headVar, -1);
      const sec = b.addDatasec(".data.A", 32, [
        { type: lockVar, offset: 0, size: 4 },
        { type: headVar, offset: 8, size: 16 },
      ]);
      return { value: sec, size: 32 };
    },
    want: [0, 0],
  },
];

function ops(c: Case): { ops: MapOp[]; btf: Uint8Array; value: number } {
  const b = new BtfBuilder();
  const t = graphTypes(b);
  const { value, size } = c.build(b, t);
  const btf = b.build();
  const map = c.map ?? T.BPF_MAP_TYPE_ARRAY;
  const datasec = Btf.parse(btf).kindOf(value) === 15;
  const keyed = map === T.BPF_MAP_TYPE_SK_STORAGE ? [4, size, 0, 1 /* NO_PREALLOC */] : [4, size, datasec ? 1 : 4, 0];
  const flags = keyed[3] | (c.flags ?? 0);
  return {
    btf,
    value,
    ops: [
      ["btf", Buffer.from(btf).toString("hex")],
      ["create_btf", map, keyed[0], keyed[1], keyed[2], flags, datasec ? 0 : t.int, value],
    ],
  };
}

test("map creation with special fields: the errnos of BTF_LOAD and MAP_CREATE", () => {
  for (const c of CASES) {
    const ours = ourOps(ops(c).ops);
    // A failed BTF_LOAD leaves no BTF fd: the create then fails with EBADF.
    assert.deepEqual(ours, c.want, c.name);
  }
});

test("the host kernel agrees on every case", { skip }, () => {
  for (const c of CASES) assert.deepEqual(hostOps(ops(c).ops), c.want, c.name);
});

test("btf_parse_fields: the record of a map value, offsets sorted, graph roots resolved", () => {
  const c = CASES[0];
  const { btf, value } = ops(c);
  const rec = btfParseFields(Btf.parse(btf), value, MAP_VALUE_FIELDS, 24);
  assert.ok(rec);
  assert.equal(rec.spinLockOff, 0);
  assert.deepEqual(
    rec.fields.map((f) => [f.type, f.offset, f.size]),
    [
      [BPF_SPIN_LOCK, 0, 4],
      [BPF_LIST_HEAD, 8, 16],
    ],
  );
  assert.equal(rec.fields[1].graphRoot?.nodeOffset, 8);
  void [BPF_LIST_NODE, BPF_RB_NODE, BPF_REFCOUNT, BPF_TIMER];
});

test("the map keeps its record; a value whose fields do not parse keeps the error", () => {
  for (const [i, want] of [
    [0, "record"],
    [2, "error"],
  ] as const) {
    const { k, p } = boot();
    const o = ops(CASES[i]);
    const btfFd = k.bpf(p, bpf_cmd.BPF_BTF_LOAD, { btf: o.btf, btf_size: o.btf.length });
    const size = i === 0 ? 24 : 32;
    const fd = k.bpf(p, bpf_cmd.BPF_MAP_CREATE, {
      map_type: T.BPF_MAP_TYPE_ARRAY,
      key_size: 4,
      value_size: size,
      max_entries: 4,
      btf_fd: btfFd,
      btf_key_type_id: 1,
      btf_value_type_id: o.value,
    });
    const map = p.files.get(fd).private_data as BpfMap;
    if (want === "record") assert.ok(map.record && !(map.record instanceof BpfError) && map.record.spinLockOff === 0);
    else assert.ok(map.record instanceof BpfError);
  }
});
