/**
 * The graph kfuncs as vmlinux declares and registers them (kernel/bpf/helpers.c generic_btf_ids
 * with their BTF_ID_FLAGS): the opaque UAPI structs, each FUNC with the kernel's prototype and
 * argument names (the verifier reads the `__k`, `__ign`, `__alloc`, `__refcounted_kptr`
 * suffixes), and the implementations over src/kernel/bpf_graph.ts.
 */
import type { BtfBuilder } from "../btf/builder.js";
import { bpf_func_id } from "../uapi/bpf.js";
import { BTF_FUNC_GLOBAL } from "../uapi/btf.js";
import type { BpfProg } from "./bpf.js";
import {
  bpfListAdd,
  bpfListDel,
  bpfListPeek,
  bpfObjDrop,
  bpfObjNew,
  bpfPercpuObjNew,
  bpfRbtreeAdd,
  bpfRbtreeChild,
  bpfRbtreeFirst,
  bpfRbtreeRemove,
  bpfRbtreeRoot,
  bpfRefcountAcquire,
} from "./bpf_graph.js";
import { registerKptrHelpers } from "./bpf_kptr.js";
import type { KernelBaseTypes } from "./init.js";
import type { HelperArgs, Kernel, KernelFn } from "./kernel.js";

/** KF_* (include/linux/btf.h), as the verifier reads them. */
const KF_ACQUIRE = 1 << 0;
const KF_RELEASE = 1 << 1;
const KF_RET_NULL = 1 << 2;
const KF_RCU = 1 << 7;

/** The UAPI structs of include/uapi/linux/bpf.h that BPF programs embed. */
export function declareGraphTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  const opaque = (name: string, elem: number, n: number) =>
    b.addStructAuto(name, [{ name: "__opaque", type: b.addArray(elem, base.int, n) }]);
  b.addStructAuto("bpf_spin_lock", [{ name: "val", type: base.u32 }]);
  const head = opaque("bpf_list_head", base.u64, 2);
  const node = opaque("bpf_list_node", base.u64, 3);
  const root = opaque("bpf_rb_root", base.u64, 2);
  const rbnode = opaque("bpf_rb_node", base.u64, 4);
  opaque("bpf_refcount", base.u32, 1);
  const voidp = b.addPtr(0);
  const headp = b.addPtr(head);
  const nodep = b.addPtr(node);
  const rootp = b.addPtr(root);
  const rbnodep = b.addPtr(rbnode);
  const less = b.addPtr(
    b.addFuncProto(base.bool, [
      { name: "", type: rbnodep },
      { name: "", type: b.addPtr(b.addConst(rbnode)) },
    ]),
  );
  const fn = (name: string, ret: number, params: [string, number][]) =>
    b.addFunc(
      name,
      b.addFuncProto(
        ret,
        params.map(([n, type]) => ({ name: n, type })),
      ),
      BTF_FUNC_GLOBAL,
    );
  const u64 = base.u64;
  fn("bpf_obj_new_impl", voidp, [
    ["local_type_id__k", u64],
    ["meta__ign", voidp],
  ]);
  fn("bpf_obj_drop_impl", 0, [
    ["p__alloc", voidp],
    ["meta__ign", voidp],
  ]);
  fn("bpf_percpu_obj_new_impl", voidp, [
    ["local_type_id__k", u64],
    ["meta__ign", voidp],
  ]);
  fn("bpf_percpu_obj_drop_impl", 0, [
    ["p__alloc", voidp],
    ["meta__ign", voidp],
  ]);
  fn("bpf_refcount_acquire_impl", voidp, [
    ["p__refcounted_kptr", voidp],
    ["meta__ign", voidp],
  ]);
  for (const name of ["bpf_list_push_front_impl", "bpf_list_push_back_impl"])
    fn(name, base.int, [
      ["head", headp],
      ["node", nodep],
      ["meta__ign", voidp],
      ["off", u64],
    ]);
  for (const name of ["bpf_list_pop_front", "bpf_list_pop_back", "bpf_list_front", "bpf_list_back"])
    fn(name, nodep, [["head", headp]]);
  fn("bpf_rbtree_add_impl", base.int, [
    ["root", rootp],
    ["node", rbnodep],
    ["less", less],
    ["meta__ign", voidp],
    ["off", u64],
  ]);
  for (const name of ["bpf_rbtree_first", "bpf_rbtree_root"]) fn(name, rbnodep, [["root", rootp]]);
  for (const name of ["bpf_rbtree_remove", "bpf_rbtree_left", "bpf_rbtree_right"])
    fn(name, rbnodep, [
      ["root", rootp],
      ["node", rbnodep],
    ]);
}

/** A kfunc whose implementation needs the calling program (bpf_obj_new reads its BTF). */
export type ProgKernelFn = (prog: BpfProg) => KernelFn;

interface CallbackArgs extends HelperArgs {
  invokeCallback?(fnAddr: bigint | number, args: readonly (bigint | number)[]): bigint;
}

/**
 * bpf_spin_lock / bpf_spin_unlock: one CPU runs programs here, so a lock is never contended; the
 * lock word records whether it is held (the verifier proves a program never takes it twice).
 */
function registerSpinLock(k: Kernel): void {
  const word = (c: HelperArgs) => {
    const b = k.mem.bytes(c.argNum(1), 4);
    return new DataView(b.buffer, b.byteOffset, 4);
  };
  k.registerHelper(bpf_func_id.BPF_FUNC_spin_lock, (c) => {
    word(c).setUint32(0, 1, true);
    return 0;
  });
  k.registerHelper(bpf_func_id.BPF_FUNC_spin_unlock, (c) => {
    word(c).setUint32(0, 0, true);
    return 0;
  });
}

/** register_btf_kfunc_id_set(generic_kfunc_set): the graph kfuncs and their flags. */
export function registerGraphKfuncs(k: Kernel): void {
  registerSpinLock(k);
  registerKptrHelpers(k);
  const reg = (name: string, impl: KernelFn, flags: number, bind?: ProgKernelFn) => {
    const kf = k.registerKfunc(name, undefined, impl, flags);
    if (bind) (kf as { bind?: ProgKernelFn }).bind = bind;
  };
  reg(
    "bpf_obj_new_impl",
    () => 0,
    KF_ACQUIRE | KF_RET_NULL,
    (prog) => (c, kk) => bpfObjNew(kk, prog, c.argNum(1)),
  );
  reg(
    "bpf_obj_drop_impl",
    (c, kk) => {
      bpfObjDrop(kk, c.argNum(1));
      return 0;
    },
    KF_RELEASE,
  );
  reg(
    "bpf_percpu_obj_new_impl",
    () => 0,
    KF_ACQUIRE | KF_RET_NULL,
    (prog) => (c, kk) => bpfPercpuObjNew(kk, prog, c.argNum(1)),
  );
  reg(
    "bpf_percpu_obj_drop_impl",
    (c, kk) => {
      bpfObjDrop(kk, c.argNum(1));
      return 0;
    },
    KF_RELEASE,
  );
  reg("bpf_refcount_acquire_impl", (c, kk) => bpfRefcountAcquire(kk, c.argNum(1)), KF_ACQUIRE | KF_RET_NULL | KF_RCU);
  reg("bpf_list_push_front_impl", (c, kk) => bpfListAdd(kk, c.argNum(1), c.argNum(2), false), 0);
  reg("bpf_list_push_back_impl", (c, kk) => bpfListAdd(kk, c.argNum(1), c.argNum(2), true), 0);
  reg("bpf_list_pop_front", (c, kk) => bpfListDel(kk, c.argNum(1), false), KF_ACQUIRE | KF_RET_NULL);
  reg("bpf_list_pop_back", (c, kk) => bpfListDel(kk, c.argNum(1), true), KF_ACQUIRE | KF_RET_NULL);
  reg("bpf_list_front", (c, kk) => bpfListPeek(kk, c.argNum(1), false), KF_RET_NULL);
  reg("bpf_list_back", (c, kk) => bpfListPeek(kk, c.argNum(1), true), KF_RET_NULL);
  reg(
    "bpf_rbtree_add_impl",
    (c, kk) => {
      const cb = c as CallbackArgs;
      const fnAddr = c.arg(3);
      const less = (a: number, b: number) => (cb.invokeCallback?.(fnAddr, [a, b, 0, 0, 0]) ?? 0n) !== 0n;
      return bpfRbtreeAdd(kk, c.argNum(1), c.argNum(2), less);
    },
    0,
  );
  reg("bpf_rbtree_remove", (c, kk) => bpfRbtreeRemove(kk, c.argNum(1), c.argNum(2)), KF_ACQUIRE | KF_RET_NULL);
  reg("bpf_rbtree_first", (c, kk) => bpfRbtreeFirst(kk, c.argNum(1)), KF_RET_NULL);
  reg("bpf_rbtree_root", (c, kk) => bpfRbtreeRoot(kk, c.argNum(1)), KF_RET_NULL);
  reg("bpf_rbtree_left", (c, kk) => bpfRbtreeChild(kk, c.argNum(1), c.argNum(2), true), KF_RET_NULL);
  reg("bpf_rbtree_right", (c, kk) => bpfRbtreeChild(kk, c.argNum(1), c.argNum(2), false), KF_RET_NULL);
}
