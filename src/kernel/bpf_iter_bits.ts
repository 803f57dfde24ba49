/**
 * The bit iterator of kernel/bpf/helpers.c: bpf_iter_bits_new/next/destroy over a
 * `struct bpf_iter_bits` on the program's stack, yielding the index of each set bit of `nr_words`
 * u64 words read (nofault) from any kernel address. sched_ext's common.bpf.h builds
 * `for_each_possible_cpu` / `for_each_online_cpu` on it, so a scheduler's vmlinux.h needs the type.
 */
import type { BtfBuilder } from "../btf/builder.js";
import { BTF_FUNC_GLOBAL } from "../uapi/btf.js";
import { E2BIG, EFAULT, EINVAL } from "../uapi/errno.js";
import { KF_ITER_DESTROY, KF_ITER_NEW, KF_ITER_NEXT, KF_RET_NULL } from "../verifier/env.js";
import type { MemRegion } from "./bpf.js";
import type { KernelBaseTypes } from "./init.js";
import type { HelperArgs, Kernel } from "./kernel.js";

/** BITS_ITER_NR_WORDS_MAX: the most words one iterator copies (511). */
export const BITS_ITER_NR_WORDS_MAX = 511;

/** struct bpf_iter_bits (opaque, 16 bytes) and its three kfuncs, as vmlinux BTF has them. */
export function declareIterBitsTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  const it = b.addStructAuto("bpf_iter_bits", [{ name: "__opaque", type: b.addArray(base.u64, base.int, 2) }]);
  const itPtr = b.addPtr(it);
  const fn = (name: string, ret: number, params: { name: string; type: number }[]) =>
    b.addFunc(name, b.addFuncProto(ret, params), BTF_FUNC_GLOBAL);
  fn("bpf_iter_bits_new", base.int, [
    { name: "it", type: itPtr },
    { name: "unsafe_ptr__ign", type: b.addPtr(b.addConst(base.u64)) },
    { name: "nr_words", type: base.u32 },
  ]);
  fn("bpf_iter_bits_next", b.addPtr(base.int), [{ name: "it", type: itPtr }]);
  fn("bpf_iter_bits_destroy", 0, [{ name: "it", type: itPtr }]);
}

/*
 * struct bpf_iter_bits_kern { union { u64 *bits; u64 bits_copy; }; int nr_bits; int bit; }:
 * up to 64 bits are copied into the iterator itself, more into an allocation it points to.
 */
const OFF_BITS = 0;
const OFF_NR_BITS = 8;
const OFF_BIT = 12;

export function registerIterBitsKfuncs(k: Kernel): void {
  const allocs = new Map<number, MemRegion>();
  const kit = (c: HelperArgs) => {
    const s = k.mem.bytes(c.argNum(1), 16);
    return new DataView(s.buffer, s.byteOffset, 16);
  };
  k.registerKfunc(
    "bpf_iter_bits_new",
    undefined,
    (c) => {
      const dv = kit(c);
      dv.setBigUint64(OFF_BITS, 0n, true);
      dv.setInt32(OFF_NR_BITS, 0, true);
      dv.setInt32(OFF_BIT, -1, true);
      const src = c.argNum(2);
      const nrWords = c.argNum(3) >>> 0;
      if (!src || !nrWords) return -EINVAL;
      if (nrWords > BITS_ITER_NR_WORDS_MAX) return -E2BIG;
      const nrBytes = nrWords * 8;
      let bytes: Uint8Array;
      try {
        bytes = k.mem.bytes(src, nrBytes).slice();
      } catch {
        return -EFAULT;
      }
      if (nrWords === 1) {
        dv.setBigUint64(OFF_BITS, new DataView(bytes.buffer).getBigUint64(0, true), true);
      } else {
        const r = k.mem.alloc(nrBytes, { perm: "r", kind: "kobj", name: "bpf_iter_bits" });
        k.mem.bytes(r.addr, nrBytes).set(bytes);
        allocs.set(r.addr, r);
        dv.setBigUint64(OFF_BITS, BigInt(r.addr), true);
      }
      dv.setInt32(OFF_NR_BITS, nrBytes * 8, true);
      return 0;
    },
    KF_ITER_NEW,
  );
  k.registerKfunc(
    "bpf_iter_bits_next",
    undefined,
    (c) => {
      const dv = kit(c);
      const nrBits = dv.getInt32(OFF_NR_BITS, true);
      let bit = dv.getInt32(OFF_BIT, true);
      if (!nrBits || bit >= nrBits) return 0;
      const words = nrBits === 64 ? kit(c) : null;
      const base = nrBits === 64 ? 0 : Number(dv.getBigUint64(OFF_BITS, true));
      const byteAt = (i: number) => (words ? words.getUint8(OFF_BITS + i) : k.mem.bytes(base + i, 1)[0]);
      // find_next_bit(bits, nr_bits, bit + 1)
      for (bit = bit + 1; bit < nrBits; bit++) if (byteAt(bit >> 3) & (1 << (bit & 7))) break;
      dv.setInt32(OFF_BIT, bit, true);
      return bit >= nrBits ? 0 : c.argNum(1) + OFF_BIT;
    },
    KF_ITER_NEXT | KF_RET_NULL,
  );
  k.registerKfunc(
    "bpf_iter_bits_destroy",
    undefined,
    (c) => {
      const dv = kit(c);
      if (dv.getInt32(OFF_NR_BITS, true) <= 64) return 0;
      const addr = Number(dv.getBigUint64(OFF_BITS, true));
      const r = allocs.get(addr);
      if (r) {
        allocs.delete(addr);
        k.mem.free(r);
      }
      return 0;
    },
    KF_ITER_DESTROY,
  );
}
