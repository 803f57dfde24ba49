/**
 * Program-allocated objects and the collections they live in (kernel/bpf/helpers.c:
 * bpf_obj_new_impl, bpf_obj_drop_impl, bpf_refcount_acquire_impl, bpf_list_*, bpf_rbtree_*;
 * bpf_obj_free_fields, bpf_list_head_free, bpf_rb_root_free). Everything lives in VM memory with
 * the kernel's layouts: `struct list_head` for bpf_list_head, `struct bpf_list_node_kern`
 * {list_head, owner} for nodes, `struct rb_root_cached` for bpf_rb_root and `struct
 * bpf_rb_node_kern` {rb_node, owner} for nodes, a red-black tree as lib/rbtree.c keeps it.
 */
import {
  BPF_KPTR_PERCPU,
  BPF_KPTR_REF,
  BPF_KPTR_UNREF,
  BPF_LIST_HEAD,
  BPF_LIST_NODE,
  BPF_RB_NODE,
  BPF_RB_ROOT,
  BPF_TIMER,
  BPF_WORKQUEUE,
  type BtfField,
  type BtfRecord,
  type BtfStructMeta,
} from "../btf/record.js";
import type { BtfComposite } from "../btf/types.js";
import { BTF_KIND_STRUCT, BTF_KIND_UNION } from "../uapi/btf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import type { BpfMap, BpfProg, MemRegion } from "./bpf.js";
import { btfFindDtorKfunc, kptrXchg } from "./bpf_kptr.js";
import { bpf_timer_cancel_and_free } from "./bpf_timer.js";
import { bpf_wq_cancel_and_free } from "./bpf_wq.js";
import type { HelperArgs, Kernel } from "./kernel.js";
import { allocPercpu, freePercpu } from "./percpu.js";

/** BPF_PTR_POISON: a node being linked (owner claimed, not yet set). */
const BPF_PTR_POISON = 0xeb9f_0000n;

/** One bpf_obj_new allocation. */
export interface BpfAllocObj {
  readonly region: MemRegion;
  readonly record: BtfRecord | null;
  /** From bpf_percpu_obj_new: one copy per CPU (bpf_global_percpu_ma). */
  readonly percpu?: boolean;
  freed: boolean;
}

/** The allocator's state (bpf_global_ma and what the simulated kernel needs to find objects). */
export class BpfGraphState {
  /** Live objects by address. */
  readonly objs = new Map<number, BpfAllocObj>();
  /** Graph node field address -> its object (the `off` the verifier would pass). */
  readonly nodeObj = new Map<number, BpfAllocObj>();
  allocated = 0;
  freed = 0;
}

const graphState = new WeakMap<Kernel, BpfGraphState>();

export function bpfGraph(k: Kernel): BpfGraphState {
  let s = graphState.get(k);
  if (!s) graphState.set(k, (s = new BpfGraphState()));
  return s;
}

// ---- memory accessors (the kernel's own accesses: no program permission check) ----

function rd(k: Kernel, addr: number): number {
  const b = k.mem.bytes(addr, 8);
  const dv = new DataView(b.buffer, b.byteOffset, 8);
  return Number(dv.getBigUint64(0, true));
}

function wr(k: Kernel, addr: number, v: number | bigint): void {
  const b = k.mem.bytes(addr, 8);
  new DataView(b.buffer, b.byteOffset, 8).setBigUint64(0, BigInt(v), true);
}

// ---- allocation ----

/** bpf_obj_new_impl: a zeroed object of the program's struct `typeId` (refcount 1), or 0. */
export function bpfObjNew(k: Kernel, prog: BpfProg, typeId: number): number {
  const btf = prog.aux.btf;
  if (!btf) return 0;
  const t = btf.btf.tryTypeById(typeId);
  if (!t || (t.kind !== BTF_KIND_STRUCT && t.kind !== BTF_KIND_UNION)) return 0;
  const meta: BtfStructMeta | undefined = btf.structMetas.get(typeId);
  const size = (t as BtfComposite).size;
  const region = k.mem.alloc(Math.max(size, 1), { perm: "rw", kind: "mem", name: `bpf_obj_new ${t.name}` });
  const obj: BpfAllocObj = { region, record: meta?.record ?? null, freed: false };
  const s = bpfGraph(k);
  s.objs.set(region.addr, obj);
  s.allocated++;
  for (const f of obj.record?.fields ?? []) {
    if (f.type & (BPF_LIST_NODE | BPF_RB_NODE)) s.nodeObj.set(region.addr + f.offset, obj);
  }
  // bpf_obj_init: special fields zeroed (the whole object is), the refcount starts at 1.
  if (obj.record && obj.record.refcountOff >= 0) setRefcount(k, region.addr + obj.record.refcountOff, 1);
  return region.addr;
}

/** The largest per-CPU object (BPF_GLOBAL_PERCPU_MA_MAX_SIZE). */
export const BPF_GLOBAL_PERCPU_MA_MAX_SIZE = 512;

/**
 * bpf_percpu_obj_new_impl: a zeroed copy of the program's struct `typeId` for every CPU (the
 * verifier proved it a struct of scalars without special fields), as a per-CPU pointer, or 0.
 */
export function bpfPercpuObjNew(k: Kernel, prog: BpfProg, typeId: number): number {
  const t = prog.aux.btf?.btf.tryTypeById(typeId);
  if (!t || (t.kind !== BTF_KIND_STRUCT && t.kind !== BTF_KIND_UNION)) return 0;
  const size = (t as BtfComposite).size;
  if (size > BPF_GLOBAL_PERCPU_MA_MAX_SIZE) return 0;
  const region = allocPercpu(k, size, `bpf_percpu_obj_new ${t.name}`);
  const s = bpfGraph(k);
  s.objs.set(region.addr, { region, record: null, percpu: true, freed: false });
  s.allocated++;
  return region.addr;
}

function refcount(k: Kernel, addr: number): number {
  const b = k.mem.bytes(addr, 4);
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

function setRefcount(k: Kernel, addr: number, v: number): void {
  const b = k.mem.bytes(addr, 4);
  new DataView(b.buffer, b.byteOffset, 4).setUint32(0, v >>> 0, true);
}

/**
 * __bpf_obj_drop_impl: a refcounted object goes when its last reference does, any other at once;
 * its lists and trees are emptied first, dropping what they hold. Its memory is freed after an RCU
 * grace period (bpf_mem_free_rcu, for every object since 6.6): a non-owning reference read in the
 * same critical section still finds it.
 */
export function bpfObjDrop(k: Kernel, addr: number): void {
  const s = bpfGraph(k);
  const obj = s.objs.get(addr);
  if (!obj || obj.freed) return;
  const rec = obj.record;
  if (rec && rec.refcountOff >= 0) {
    const ra = addr + rec.refcountOff;
    const n = refcount(k, ra);
    if (n > 1) {
      setRefcount(k, ra, n - 1);
      return;
    }
    setRefcount(k, ra, 0);
  }
  if (rec) bpfObjFreeFields(k, rec, addr);
  obj.freed = true;
  const release = () => {
    s.objs.delete(addr);
    for (const f of rec?.fields ?? []) if (f.type & (BPF_LIST_NODE | BPF_RB_NODE)) s.nodeObj.delete(addr + f.offset);
    if (obj.percpu) freePercpu(k, addr);
    else k.mem.free(obj.region);
    s.freed++;
  };
  k.rcu.callRcu(release);
}

/** bpf_refcount_acquire_impl: one more owner of a refcounted object (0 if it is already going). */
export function bpfRefcountAcquire(k: Kernel, addr: number): number {
  const obj = bpfGraph(k).objs.get(addr);
  if (!obj?.record || obj.record.refcountOff < 0) return 0;
  const ra = addr + obj.record.refcountOff;
  const n = refcount(k, ra);
  // refcount_inc_not_zero: a non-owning reference may see an object whose last owner dropped it.
  if (n === 0) return 0;
  setRefcount(k, ra, n + 1);
  return addr;
}

/**
 * bpf_obj_free_fields: empty the value's lists and trees; a referenced kptr still held is taken
 * out and released (a kernel object through its type's destructor, an allocated one dropped with
 * what it holds), an untrusted one is cleared.
 */
export function bpfObjFreeFields(k: Kernel, rec: BtfRecord, addr: number): void {
  for (const f of rec.fields) {
    if (f.type === BPF_LIST_HEAD) bpfListHeadFree(k, f, addr + f.offset);
    else if (f.type === BPF_RB_ROOT) bpfRbRootFree(k, f, addr + f.offset);
    else if (f.type === BPF_KPTR_UNREF) kptrXchg(k, addr + f.offset, 0n);
    else if (f.type === BPF_KPTR_REF || f.type === BPF_KPTR_PERCPU) {
      const p = Number(kptrXchg(k, addr + f.offset, 0n));
      if (!p) continue;
      if (!f.kptr?.btf) bpfObjDrop(k, p);
      else btfFindDtorKfunc(k, f.kptr.name)?.dtor(k, p);
    } else if (f.type === BPF_TIMER) bpf_timer_cancel_and_free(k, addr + f.offset);
    else if (f.type === BPF_WORKQUEUE) bpf_wq_cancel_and_free(k, addr + f.offset);
  }
}

// ---- lists ----

function listInitLazy(k: Kernel, h: number): void {
  // A zeroed head (from the map or bpf_obj_new) becomes an empty list on first use.
  if (rd(k, h) === 0) {
    wr(k, h, h);
    wr(k, h + 8, h);
  }
}

/** __bpf_list_add. Node layout: {next, prev, owner}. */
export function bpfListAdd(k: Kernel, head: number, node: number, tail: boolean): number {
  listInitLazy(k, head);
  if (rd(k, node + 16) !== 0) {
    // Already in a collection: the reference passed in is dropped (__bpf_obj_drop_impl).
    const obj = bpfGraph(k).nodeObj.get(node);
    if (obj) bpfObjDrop(k, obj.region.addr);
    return -EINVAL;
  }
  wr(k, node + 16, BPF_PTR_POISON);
  const prev = tail ? rd(k, head + 8) : head;
  const next = rd(k, prev);
  wr(k, node, next);
  wr(k, node + 8, prev);
  wr(k, prev, node);
  wr(k, next + 8, node);
  wr(k, node + 16, head);
  return 0;
}

/** __bpf_list_del: the first (or last) node, unlinked, or 0. */
export function bpfListDel(k: Kernel, head: number, tail: boolean): number {
  listInitLazy(k, head);
  const n = tail ? rd(k, head + 8) : rd(k, head);
  if (n === head) return 0;
  if (rd(k, n + 16) !== head) return 0;
  const next = rd(k, n);
  const prev = rd(k, n + 8);
  wr(k, prev, next);
  wr(k, next + 8, prev);
  // list_del_init.
  wr(k, n, n);
  wr(k, n + 8, n);
  wr(k, n + 16, 0);
  return n;
}

/** bpf_list_front / bpf_list_back: the node, still linked, or 0. */
export function bpfListPeek(k: Kernel, head: number, tail: boolean): number {
  const first = rd(k, head);
  if (first === 0 || first === head) return 0;
  return tail ? rd(k, head + 8) : first;
}

/** bpf_list_head_free: every node unlinked and its object dropped. */
function bpfListHeadFree(k: Kernel, _f: BtfField, head: number): void {
  if (rd(k, head) === 0) return;
  for (let n = bpfListDel(k, head, false); n; n = bpfListDel(k, head, false)) {
    const obj = bpfGraph(k).nodeObj.get(n);
    if (obj) bpfObjDrop(k, obj.region.addr);
  }
  wr(k, head, 0);
  wr(k, head + 8, 0);
}

// ---- red-black trees (lib/rbtree.c's algorithm over VM memory) ----
// rb_node: {__rb_parent_color, rb_right, rb_left}; color bit 1 = black. Root: {rb_node, rb_leftmost}.

const RB_BLACK = 1;
const parentOf = (k: Kernel, n: number): number => rd(k, n) & ~3;
const isBlack = (k: Kernel, n: number): boolean => n === 0 || (rd(k, n) & 1) === RB_BLACK;
const right = (k: Kernel, n: number): number => rd(k, n + 8);
const left = (k: Kernel, n: number): number => rd(k, n + 16);
const setParent = (k: Kernel, n: number, p: number): void => wr(k, n, p | (rd(k, n) & 1));
const setColor = (k: Kernel, n: number, black: boolean): void => wr(k, n, (rd(k, n) & ~1) | (black ? 1 : 0));

class RbTree {
  constructor(
    readonly k: Kernel,
    readonly root: number,
  ) {}

  get top(): number {
    return rd(this.k, this.root);
  }

  private replaceChild(oldN: number, newN: number, parent: number): void {
    const k = this.k;
    if (!parent) wr(k, this.root, newN);
    else if (left(k, parent) === oldN) wr(k, parent + 16, newN);
    else wr(k, parent + 8, newN);
  }

  private rotate(x: number, toLeft: boolean): void {
    const k = this.k;
    const childOff = toLeft ? 8 : 16; // the child that moves up
    const otherOff = toLeft ? 16 : 8;
    const y = rd(k, x + childOff);
    const moved = rd(k, y + otherOff);
    wr(k, x + childOff, moved);
    if (moved) setParent(k, moved, x);
    const p = parentOf(k, x);
    setParent(k, y, p);
    this.replaceChild(x, y, p);
    wr(k, y + otherOff, x);
    setParent(k, x, y);
  }

  insertColor(n: number): void {
    const k = this.k;
    let node = n;
    for (;;) {
      const parent = parentOf(k, node);
      if (!parent) {
        setColor(k, node, true);
        return;
      }
      if (isBlack(k, parent)) return;
      const gparent = parentOf(k, parent);
      const parentIsLeft = left(k, gparent) === parent;
      const uncle = parentIsLeft ? right(k, gparent) : left(k, gparent);
      if (uncle && !isBlack(k, uncle)) {
        setColor(k, parent, true);
        setColor(k, uncle, true);
        setColor(k, gparent, false);
        node = gparent;
        continue;
      }
      let p = parent;
      if (parentIsLeft ? right(k, parent) === node : left(k, parent) === node) {
        this.rotate(parent, parentIsLeft);
        p = node;
      }
      setColor(k, p, true);
      setColor(k, gparent, false);
      this.rotate(gparent, !parentIsLeft);
      return;
    }
  }

  erase(z: number): void {
    const k = this.k;
    let x: number;
    let xParent: number;
    let removedBlack: boolean;
    if (!left(k, z) || !right(k, z)) {
      x = left(k, z) || right(k, z);
      xParent = parentOf(k, z);
      removedBlack = isBlack(k, z);
      if (x) setParent(k, x, xParent);
      this.replaceChild(z, x, xParent);
    } else {
      // The successor takes z's place and colour.
      let y = right(k, z);
      while (left(k, y)) y = left(k, y);
      removedBlack = isBlack(k, y);
      x = right(k, y);
      if (parentOf(k, y) === z) xParent = y;
      else {
        xParent = parentOf(k, y);
        wr(k, xParent + 16, x);
        if (x) setParent(k, x, xParent);
        wr(k, y + 8, right(k, z));
        setParent(k, right(k, z), y);
      }
      const zp = parentOf(k, z);
      this.replaceChild(z, y, zp);
      wr(k, y, zp | (rd(k, z) & 1));
      wr(k, y + 16, left(k, z));
      setParent(k, left(k, z), y);
    }
    if (removedBlack) this.eraseColor(x, xParent);
  }

  private eraseColor(xIn: number, parentIn: number): void {
    const k = this.k;
    let x = xIn;
    let parent = parentIn;
    while (x !== this.top && isBlack(k, x)) {
      const xIsLeft = left(k, parent) === x;
      let w = xIsLeft ? right(k, parent) : left(k, parent);
      if (!isBlack(k, w)) {
        setColor(k, w, true);
        setColor(k, parent, false);
        this.rotate(parent, xIsLeft);
        w = xIsLeft ? right(k, parent) : left(k, parent);
      }
      const near = xIsLeft ? left(k, w) : right(k, w);
      const far = xIsLeft ? right(k, w) : left(k, w);
      if (isBlack(k, near) && isBlack(k, far)) {
        setColor(k, w, false);
        x = parent;
        parent = parentOf(k, x);
        continue;
      }
      if (isBlack(k, far)) {
        setColor(k, near, true);
        setColor(k, w, false);
        this.rotate(w, !xIsLeft);
        w = xIsLeft ? right(k, parent) : left(k, parent);
      }
      setColor(k, w, isBlack(k, parent));
      setColor(k, parent, true);
      const far2 = xIsLeft ? right(k, w) : left(k, w);
      if (far2) setColor(k, far2, true);
      this.rotate(parent, xIsLeft);
      x = this.top;
      break;
    }
    if (x) setColor(k, x, true);
  }

  /** rb_next. */
  next(n: number): number {
    const k = this.k;
    if (right(k, n)) {
      let c = right(k, n);
      while (left(k, c)) c = left(k, c);
      return c;
    }
    let c = n;
    let p = parentOf(k, c);
    while (p && c === right(k, p)) {
      c = p;
      p = parentOf(k, p);
    }
    return p;
  }
}

/**
 * __bpf_rbtree_add: walk from the root asking `less(node, parent)`, link, rebalance, keep the
 * cached leftmost. Node layout: {parent_color, right, left, owner}.
 */
export function bpfRbtreeAdd(k: Kernel, root: number, node: number, less: (a: number, b: number) => boolean): number {
  if (rd(k, node + 24) !== 0) {
    const obj = bpfGraph(k).nodeObj.get(node);
    if (obj) bpfObjDrop(k, obj.region.addr);
    return -EINVAL;
  }
  wr(k, node + 24, BPF_PTR_POISON);
  let parent = 0;
  let cur = rd(k, root);
  let goLeft = false;
  let leftmost = true;
  while (cur) {
    parent = cur;
    goLeft = less(node, parent);
    if (goLeft) cur = left(k, parent);
    else {
      cur = right(k, parent);
      leftmost = false;
    }
  }
  wr(k, node, parent); // red
  wr(k, node + 8, 0);
  wr(k, node + 16, 0);
  if (!parent) wr(k, root, node);
  else wr(k, parent + (goLeft ? 16 : 8), node);
  new RbTree(k, root).insertColor(node);
  if (leftmost) wr(k, root + 8, node);
  wr(k, node + 24, root);
  return 0;
}

/** bpf_rbtree_remove: unlink `node` if this tree owns it, else 0. */
export function bpfRbtreeRemove(k: Kernel, root: number, node: number): number {
  if (rd(k, node + 24) !== root) return 0;
  const t = new RbTree(k, root);
  if (rd(k, root + 8) === node) wr(k, root + 8, t.next(node));
  t.erase(node);
  // RB_CLEAR_NODE: parent points to itself.
  wr(k, node, node);
  wr(k, node + 8, 0);
  wr(k, node + 16, 0);
  wr(k, node + 24, 0);
  return node;
}

export const bpfRbtreeFirst = (k: Kernel, root: number): number => rd(k, root + 8);
export const bpfRbtreeRoot = (k: Kernel, root: number): number => rd(k, root);
/** bpf_rbtree_left / bpf_rbtree_right: a child of a node this tree owns, else 0. */
export function bpfRbtreeChild(k: Kernel, root: number, node: number, isLeft: boolean): number {
  if (rd(k, node + 24) !== root) return 0;
  return isLeft ? left(k, node) : right(k, node);
}

/** bpf_rb_root_free: every node unlinked and its object dropped. */
function bpfRbRootFree(k: Kernel, _f: BtfField, root: number): void {
  for (let n = bpfRbtreeFirst(k, root); n; n = bpfRbtreeFirst(k, root)) {
    bpfRbtreeRemove(k, root, n);
    const obj = bpfGraph(k).nodeObj.get(n);
    if (obj) bpfObjDrop(k, obj.region.addr);
  }
}

/** What a graph kfunc needs besides its arguments: the calling program, callbacks. */
export interface GraphCall extends HelperArgs {
  invokeCallback?(fnAddr: bigint | number, args: readonly (bigint | number)[]): bigint;
}

/** bpf_obj_free_fields(map->record, value) for a map value at `addr` (a no-op without fields). */
export function mapFreeFields(map: BpfMap, addr: number): void {
  const rec = map.record;
  if (!rec || rec instanceof BpfError) return;
  bpfObjFreeFields(map.kernel, rec, addr);
}

/**
 * copy_map_value: a syscall or helper update writes the value around its special fields, which
 * stay as the kernel keeps them (a list head is not overwritten with user bytes).
 */
export function copyMapValue(map: BpfMap, dst: Uint8Array, src: Uint8Array): void {
  const rec = map.record;
  if (!rec || rec instanceof BpfError) {
    dst.set(src.subarray(0, dst.length));
    return;
  }
  let off = 0;
  for (const f of rec.fields) {
    dst.set(src.subarray(off, f.offset), off);
    off = f.offset + f.size;
  }
  dst.set(src.subarray(off, dst.length), off);
}
