import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { BtfBuilder } from "../../src/btf/builder.js";
import type { BpfProg, BtfObject } from "../../src/kernel/bpf.js";
import {
  bpfGraph,
  bpfListAdd,
  bpfListDel,
  bpfListPeek,
  bpfObjDrop,
  bpfObjFreeFields,
  bpfObjNew,
  bpfRbtreeAdd,
  bpfRbtreeChild,
  bpfRbtreeFirst,
  bpfRbtreeRemove,
  bpfRbtreeRoot,
  bpfRefcountAcquire,
} from "../../src/kernel/bpf_graph.js";
import type { Kernel } from "../../src/kernel/kernel.js";
import { bpf_cmd } from "../../src/uapi/bpf.js";
import { BTF_INT_SIGNED } from "../../src/uapi/btf.js";
import { boot } from "./util.js";

/** A program BTF with `struct elem { long key; bpf_list_node node; bpf_rb_node rb; bpf_refcount ref; }`. */
function setup(): { k: Kernel; prog: BpfProg; elem: number; holder: number } {
  const { k, p } = boot();
  const b = new BtfBuilder();
  const int = b.addInt("int", 4, BTF_INT_SIGNED);
  const long = b.addInt("long", 8, BTF_INT_SIGNED);
  const u64 = b.addInt("unsigned long long", 8);
  const u32 = b.addInt("unsigned int", 4);
  const arr = (e: number, n: number) => b.addArray(e, int, n);
  const lock = b.addStructAuto("bpf_spin_lock", [{ name: "val", type: u32 }]);
  const head = b.addStructAuto("bpf_list_head", [{ name: "__opaque", type: arr(u64, 2) }]);
  const node = b.addStructAuto("bpf_list_node", [{ name: "__opaque", type: arr(u64, 3) }]);
  const root = b.addStructAuto("bpf_rb_root", [{ name: "__opaque", type: arr(u64, 2) }]);
  const rb = b.addStructAuto("bpf_rb_node", [{ name: "__opaque", type: arr(u64, 4) }]);
  const ref = b.addStructAuto("bpf_refcount", [{ name: "__opaque", type: arr(u32, 1) }]);
  const elem = b.addStructAuto("elem", [
    { name: "key", type: long },
    { name: "node", type: node },
    { name: "rb", type: rb },
    { name: "ref", type: ref },
  ]);
  // An object owning a list of elems: bpf_list_head_free on drop.
  const holder = b.addStructAuto("holder", [
    { name: "lock", type: lock },
    { name: "head", type: head },
    { name: "root", type: root },
  ]);
  b.addDeclTag("contains:elem:node", holder, 1);
  b.addDeclTag("contains:elem:rb", holder, 2);
  const data = b.build();
  const fd = k.bpf(p, bpf_cmd.BPF_BTF_LOAD, { btf: data, btf_size: data.length });
  const btf = p.files.get(fd).private_data as BtfObject;
  const prog = { aux: { btf } } as unknown as BpfProg;
  return { k, prog, elem, holder };
}

const key = (k: Kernel, obj: number): bigint => new DataView(k.mem.bytes(obj, 8).slice().buffer).getBigInt64(0, true);
const setKey = (k: Kernel, obj: number, v: number) =>
  new DataView(k.mem.bytes(obj, 8).buffer, k.mem.bytes(obj, 8).byteOffset, 8).setBigInt64(0, BigInt(v), true);

test("bpf_obj_new: a zeroed object with its refcount at 1; drop frees it after RCU when refcounted", () => {
  const { k, prog, elem } = setup();
  const o = bpfObjNew(k, prog, elem);
  assert.ok(o > 0);
  assert.equal(key(k, o), 0n);
  assert.equal(new DataView(k.mem.bytes(o + 64, 4).slice().buffer).getUint32(0, true), 1);
  assert.equal(bpfRefcountAcquire(k, o), o);
  bpfObjDrop(k, o); // 2 -> 1: still there
  assert.equal(bpfGraph(k).objs.get(o)?.freed, false);
  bpfObjDrop(k, o);
  assert.equal(bpfGraph(k).objs.get(o)?.freed, true);
  k.quiesce();
  assert.equal(bpfGraph(k).objs.has(o), false);
  assert.throws(() => k.mem.bytes(o, 8));
  assert.equal(bpfObjNew(k, prog, 1), 0, "not a struct");
});

test("lists: push front/back, pop, peek, a node in a list cannot be pushed again", () => {
  const { k, prog, elem, holder } = setup();
  const h = bpfObjNew(k, prog, holder) + 8;
  const objs = [1, 2, 3].map((v) => {
    const o = bpfObjNew(k, prog, elem);
    setKey(k, o, v);
    return o;
  });
  assert.equal(bpfListPeek(k, h, false), 0);
  assert.equal(bpfListAdd(k, h, objs[0] + 8, true), 0);
  assert.equal(bpfListAdd(k, h, objs[1] + 8, true), 0);
  assert.equal(bpfListAdd(k, h, objs[2] + 8, false), 0);
  // 3 1 2
  assert.equal(bpfListPeek(k, h, false), objs[2] + 8);
  assert.equal(bpfListPeek(k, h, true), objs[1] + 8);
  bpfRefcountAcquire(k, objs[0]);
  assert.equal(bpfListAdd(k, h, objs[0] + 8, false), -22, "already owned: -EINVAL and the reference dropped");
  assert.deepEqual(
    [bpfListDel(k, h, false), bpfListDel(k, h, true), bpfListDel(k, h, false), bpfListDel(k, h, false)],
    [objs[2] + 8, objs[1] + 8, objs[0] + 8, 0],
  );
});

test("rbtree: in-order by the callback, the cached leftmost, remove, red-black invariants (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -50, max: 50 }), { maxLength: 40 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (keys, removes) => {
        const { k, prog, elem, holder } = setup();
        const root = bpfObjNew(k, prog, holder) + 24;
        const less = (a: number, b: number) => key(k, a - 32) < key(k, b - 32);
        const live: number[] = [];
        for (const v of keys) {
          const o = bpfObjNew(k, prog, elem);
          setKey(k, o, v);
          assert.equal(bpfRbtreeAdd(k, root, o + 32, less), 0);
          live.push(o);
        }
        for (const r of removes) {
          if (!live.length) break;
          const o = live.splice(r % live.length, 1)[0];
          assert.equal(bpfRbtreeRemove(k, root, o + 32), o + 32);
          assert.equal(bpfRbtreeRemove(k, root, o + 32), 0, "no longer owned");
        }
        // In-order walk from the root through left/right equals the sorted keys.
        const walk = (n: number): bigint[] =>
          n
            ? [...walk(bpfRbtreeChild(k, root, n, true)), key(k, n - 32), ...walk(bpfRbtreeChild(k, root, n, false))]
            : [];
        const sorted = live.map((o) => key(k, o)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        assert.deepEqual(walk(bpfRbtreeRoot(k, root)), sorted);
        assert.equal(bpfRbtreeFirst(k, root) ? key(k, bpfRbtreeFirst(k, root) - 32) : undefined, sorted[0]);
        // Black height equal on every path, no red node with a red child, the root black.
        const rd = (a: number) => Number(new DataView(k.mem.bytes(a, 8).slice().buffer).getBigUint64(0, true));
        const black = (n: number) => n === 0 || (rd(n) & 1) === 1;
        const height = (n: number): number => {
          if (!n) return 1;
          const l = bpfRbtreeChild(k, root, n, true);
          const r = bpfRbtreeChild(k, root, n, false);
          if (!black(n)) assert.ok(black(l) && black(r), "red node with a red child");
          const hl = height(l);
          assert.equal(hl, height(r), "black heights differ");
          return hl + (black(n) ? 1 : 0);
        };
        assert.ok(black(bpfRbtreeRoot(k, root)));
        height(bpfRbtreeRoot(k, root));
      },
    ),
    { numRuns: 60 },
  );
});

test("bpf_obj_free_fields: a dropped holder drops what its list and tree still hold", () => {
  const { k, prog, elem, holder } = setup();
  const hobj = bpfObjNew(k, prog, holder);
  const a = bpfObjNew(k, prog, elem);
  const b = bpfObjNew(k, prog, elem);
  bpfListAdd(k, hobj + 8, a + 8, false);
  bpfRbtreeAdd(k, hobj + 24, b + 32, () => false);
  const rec = bpfGraph(k).objs.get(hobj)?.record;
  assert.ok(rec);
  bpfObjFreeFields(k, rec, hobj);
  k.quiesce(); // refcounted: freed after a grace period
  assert.equal(bpfGraph(k).objs.has(a), false);
  assert.equal(bpfGraph(k).objs.has(b), false);
  bpfObjDrop(k, hobj);
  k.quiesce();
  assert.equal(bpfGraph(k).objs.size, 0);
});

test("bpf_obj_drop of an object without a refcount frees it only after an RCU grace period", () => {
  const { k, prog, holder } = setup();
  const o = bpfObjNew(k, prog, holder);
  setKey(k, o, 42);
  // A program runs inside an RCU read section: what it dropped stays readable until it leaves.
  const reader = k.rcu.rcuReadLock();
  bpfObjDrop(k, o);
  assert.equal(bpfGraph(k).objs.get(o)?.freed, true);
  k.quiesce();
  assert.equal(key(k, o), 42n, "a non-owning reference still reads the object");
  k.rcu.rcuReadUnlock(reader);
  k.quiesce();
  assert.equal(bpfGraph(k).objs.has(o), false);
  assert.throws(() => k.mem.bytes(o, 8));
});
