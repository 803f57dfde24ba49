/**
 * Loops the kernel runs for programs (kernel/bpf/bpf_iter.c): the bpf_loop and
 * bpf_for_each_map_elem helpers, which call a BPF callback, and the open-coded numeric iterator
 * kfuncs bpf_iter_num_new/next/destroy over a `struct bpf_iter_num` on the program's stack.
 */
import type { BtfBuilder } from "../btf/builder.js";
import { bpf_func_id as F } from "../uapi/bpf.js";
import { BTF_FUNC_GLOBAL } from "../uapi/btf.js";
import { E2BIG, EINVAL, ENOENT } from "../uapi/errno.js";
import { KF_ITER_DESTROY, KF_ITER_NEW, KF_ITER_NEXT, KF_RET_NULL } from "../verifier/env.js";
import type { BpfMap } from "./bpf.js";
import type { KernelBaseTypes } from "./init.js";
import type { HelperArgs, Kernel } from "./kernel.js";

/** BPF_MAX_LOOPS: the most iterations bpf_loop and an iterator may run (8M). */
export const BPF_MAX_LOOPS = 8 * 1024 * 1024;

/** The enum include/linux/bpf.h exposes the limits through, so BTF (and vmlinux.h) has them. */
export function declareLoopConsts(b: BtfBuilder): void {
  b.addEnum("", 4, [
    { name: "BPF_MAX_LOOPS", val: BPF_MAX_LOOPS },
    { name: "BPF_MAX_TIMED_LOOPS", val: 0xffff },
  ]);
}

/** struct bpf_iter_num (opaque, 8 bytes) and the three kfuncs, as vmlinux BTF has them. */
export function declareIterTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  const it = b.addStructAuto("bpf_iter_num", [{ name: "__opaque", type: b.addArray(base.u64, base.int, 1) }]);
  const itPtr = b.addPtr(it);
  const fn = (name: string, ret: number, params: { name: string; type: number }[]) =>
    b.addFunc(name, b.addFuncProto(ret, params), BTF_FUNC_GLOBAL);
  fn("bpf_iter_num_new", base.int, [
    { name: "it", type: itPtr },
    { name: "start", type: base.int },
    { name: "end", type: base.int },
  ]);
  fn("bpf_iter_num_next", b.addPtr(base.int), [{ name: "it", type: itPtr }]);
  fn("bpf_iter_num_destroy", 0, [{ name: "it", type: itPtr }]);
}

type Callback = (fn: bigint, args: readonly (bigint | number)[]) => bigint;

function callbackOf(c: HelperArgs): Callback {
  if (!c.invokeCallback) throw new Error("bpf_loop: the runtime cannot call BPF callbacks");
  return (fn, args) => (c.invokeCallback as Callback)(fn, args);
}

/** bpf_loop(nr_loops, callback_fn, callback_ctx, flags): calls until the callback returns 1. */
function bpfLoop(c: HelperArgs): number {
  const nr = Number(c.arg(1) & 0xffffffffn);
  if (c.arg(4) !== 0n) return -EINVAL;
  if (nr > BPF_MAX_LOOPS) return -E2BIG;
  const call = callbackOf(c);
  const fn = c.arg(2);
  const ctx = c.arg(3);
  for (let i = 0; i < nr; i++) {
    // return value: 0 - continue, 1 - stop and return
    if (call(fn, [BigInt(i), ctx, 0n, 0n, 0n]) !== 0n) return i + 1;
  }
  return nr;
}

/**
 * bpf_for_each_map_elem(map, callback_fn, callback_ctx, flags): the callback gets (map, &key,
 * &value, ctx) for each element until it returns 1; the result is how many it was called for.
 */
function bpfForEachMapElem(c: HelperArgs, k: Kernel): number {
  const map: BpfMap | undefined = k.mapByAddr.get(c.argNum(1));
  if (!map) return -EINVAL;
  if (c.arg(4) !== 0n) return -EINVAL;
  const call = callbackOf(c);
  const keyRegion = k.mem.alloc(map.key_size, { perm: "r", kind: "stack", name: "for_each key" });
  let n = 0;
  try {
    let key: Uint8Array | null = null;
    for (;;) {
      try {
        key = map.ops.map_get_next_key(map, key);
      } catch (e) {
        if ((e as { errno?: number }).errno === ENOENT) break;
        throw e;
      }
      const value = map.ops.map_lookup_elem(map, key);
      if (!value) continue;
      k.mem.bytes(keyRegion.addr, map.key_size).set(key);
      n++;
      if (call(c.arg(2), [c.arg(1), BigInt(keyRegion.addr), BigInt(value), c.arg(3), 0n]) !== 0n) break;
    }
  } finally {
    k.mem.free(keyRegion);
  }
  return n;
}

/** struct bpf_iter_num_kern { int cur; int end; } in the iterator's 8 bytes. */
function iterNew(c: HelperArgs, k: Kernel): number {
  const s = k.mem.bytes(c.argNum(1), 8);
  const dv = new DataView(s.buffer, s.byteOffset, 8);
  const start = Number(BigInt.asIntN(32, c.arg(2)));
  const end = Number(BigInt.asIntN(32, c.arg(3)));
  dv.setInt32(0, 0, true);
  dv.setInt32(4, 0, true);
  if (start > end) return -EINVAL;
  if (end - start > BPF_MAX_LOOPS) return -E2BIG;
  // cur is one before the first value: next() increments first.
  dv.setInt32(0, start - 1, true);
  dv.setInt32(4, end, true);
  return 0;
}

function iterNext(c: HelperArgs, k: Kernel): number {
  const addr = c.argNum(1);
  const s = k.mem.bytes(addr, 8);
  const dv = new DataView(s.buffer, s.byteOffset, 8);
  const cur = dv.getInt32(0, true);
  const end = dv.getInt32(4, true);
  if (cur + 1 >= end) {
    dv.setInt32(0, 0, true);
    dv.setInt32(4, 0, true);
    return 0;
  }
  dv.setInt32(0, cur + 1, true);
  return addr;
}

function iterDestroy(c: HelperArgs, k: Kernel): number {
  k.mem.bytes(c.argNum(1), 8).fill(0);
  return 0;
}

export function registerIterHelpers(k: Kernel): void {
  k.registerHelper(F.BPF_FUNC_loop, bpfLoop);
  k.registerHelper(F.BPF_FUNC_for_each_map_elem, bpfForEachMapElem);
  k.registerKfunc("bpf_iter_num_new", undefined, iterNew, KF_ITER_NEW);
  k.registerKfunc("bpf_iter_num_next", undefined, iterNext, KF_ITER_NEXT | KF_RET_NULL);
  k.registerKfunc("bpf_iter_num_destroy", undefined, iterDestroy, KF_ITER_DESTROY);
}
