/**
 * Dynptrs at run time (kernel/bpf/helpers.c: bpf_dynptr_kern, bpf_dynptr_from_mem/read/write/data,
 * the common kfuncs bpf_dynptr_slice(_rdwr), adjust, is_null, is_rdonly, size, clone; net/core/
 * filter.c: bpf_dynptr_from_skb(_rdonly)). A `struct bpf_dynptr` is 16 bytes on the program's
 * stack: the data pointer (an skb's address for an skb dynptr), a u32 whose low 24 bits are the
 * size, bits 28-30 the type and bit 31 read-only, and a u32 offset into the data.
 */
import type { BtfBuilder } from "../btf/builder.js";
import { bpf_func_id as F, bpf_prog_type as T } from "../uapi/bpf.js";
import { BTF_FUNC_GLOBAL } from "../uapi/btf.js";
import { E2BIG, EFAULT, EINVAL, ERANGE } from "../uapi/errno.js";
import {
  BPF_DYNPTR_TYPE_LOCAL,
  BPF_DYNPTR_TYPE_RINGBUF,
  BPF_DYNPTR_TYPE_SKB,
  skbDynptrRdonly,
} from "../verifier/dynptr.js";
import { KF_RET_NULL, KF_TRUSTED_ARGS, type KfuncFilterProg } from "../verifier/env.js";
import type { ProgKernelFn } from "./bpf_graph_kfuncs.js";
import type { KernelBaseTypes } from "./init.js";
import type { HelperArgs, Kernel, KernelFn } from "./kernel.js";

const DYNPTR_MAX_SIZE = (1 << 24) - 1;
const DYNPTR_TYPE_SHIFT = 28;
const DYNPTR_SIZE_MASK = 0xffffff;
const DYNPTR_RDONLY_BIT = 0x80000000;

/** The linear data of an skb: where its bytes are and how many (skb->data, skb->len). */
export interface SkbData {
  readonly data: number;
  readonly len: number;
}

/** Who knows the skbs of one kernel (the packet scheduler): an skb's data by its address. */
const skbSources = new WeakMap<Kernel, ((addr: number) => SkbData | undefined)[]>();

/** A subsystem owning skbs lets skb dynptrs reach their bytes. */
export function addSkbDataSource(k: Kernel, fn: (addr: number) => SkbData | undefined): void {
  const l = skbSources.get(k) ?? [];
  l.push(fn);
  skbSources.set(k, l);
}

function skbData(k: Kernel, addr: number): SkbData | undefined {
  for (const fn of skbSources.get(k) ?? []) {
    const d = fn(addr);
    if (d) return d;
  }
  return undefined;
}

/** bpf_dynptr_check_size: -E2BIG past the 24 bits a dynptr's size has. */
export function dynptrCheckSize(size: bigint | number): number {
  return BigInt(size) > BigInt(DYNPTR_MAX_SIZE) ? -E2BIG : 0;
}

/** struct bpf_dynptr_kern at `addr`: read once, written through (fields cached). */
export class DynptrKern {
  data: number;
  sizeWord: number;
  offset: number;
  constructor(
    readonly k: Kernel,
    readonly addr: number,
  ) {
    const dv = this.view();
    this.data = Number(dv.getBigUint64(0, true));
    this.sizeWord = dv.getUint32(8, true);
    this.offset = dv.getUint32(12, true);
  }
  /** A fresh view for each write: VM memory may grow (and move) between two accesses. */
  private view(): DataView {
    const b = this.k.mem.bytes(this.addr, 16);
    return new DataView(b.buffer, b.byteOffset, 16);
  }
  private store(): void {
    const dv = this.view();
    dv.setBigUint64(0, BigInt(this.data), true);
    dv.setUint32(8, this.sizeWord >>> 0, true);
    dv.setUint32(12, this.offset >>> 0, true);
  }
  get size(): number {
    return this.sizeWord & DYNPTR_SIZE_MASK;
  }
  get type(): number {
    return (this.sizeWord >>> DYNPTR_TYPE_SHIFT) & 7;
  }
  get rdonly(): boolean {
    return (this.sizeWord & DYNPTR_RDONLY_BIT) !== 0;
  }
  /** bpf_dynptr_init. */
  init(data: number, type: number, offset: number, size: number, rdonly = false): void {
    this.data = data;
    this.sizeWord = (size | (type << DYNPTR_TYPE_SHIFT) | (rdonly ? DYNPTR_RDONLY_BIT : 0)) >>> 0;
    this.offset = offset;
    this.store();
  }
  /** bpf_dynptr_set_null. */
  setNull(): void {
    this.data = 0;
    this.sizeWord = 0;
    this.offset = 0;
    this.store();
  }
  setSize(size: number): void {
    this.sizeWord = ((this.sizeWord & ~DYNPTR_SIZE_MASK) | size) >>> 0;
    this.store();
  }
  setOffset(off: number): void {
    this.offset = off >>> 0;
    this.store();
  }
  /** bpf_dynptr_check_off_len: -E2BIG when [offset, offset + len) leaves the dynptr. */
  checkOffLen(offset: bigint, len: bigint): number {
    const size = BigInt(this.size);
    return len > size || offset > size - len ? -E2BIG : 0;
  }
}

/** skb_header_pointer over the linear data: the address of [off, off + len), or 0 past its end. */
function skbPointer(k: Kernel, skbAddr: number, off: number, len: number): number {
  const d = skbData(k, skbAddr);
  if (!d || off + len > d.len) return 0;
  return d.data + off;
}

/** __bpf_dynptr_read. */
function dynptrRead(k: Kernel, dst: number, len: number, src: DynptrKern, offset: bigint, flags: bigint): number {
  if (!src.data || flags) return -EINVAL;
  const err = src.checkOffLen(offset, BigInt(len));
  if (err) return err;
  const off = src.offset + Number(offset);
  if (src.type === BPF_DYNPTR_TYPE_SKB) {
    // __bpf_skb_load_bytes: zeroes the destination when the bytes are not there.
    const p = off > 0xffff ? 0 : skbPointer(k, src.data, off, len);
    if (!p) {
      k.mem.bytes(dst, len).fill(0);
      return -EFAULT;
    }
    k.mem.bytes(dst, len).set(k.mem.bytes(p, len).slice());
    return 0;
  }
  k.mem.bytes(dst, len).set(k.mem.bytes(src.data + off, len).slice());
  return 0;
}

/** __bpf_dynptr_write. */
function dynptrWrite(k: Kernel, dst: DynptrKern, offset: bigint, src: number, len: number, flags: bigint): number {
  if (!dst.data || dst.rdonly) return -EINVAL;
  const err = dst.checkOffLen(offset, BigInt(len));
  if (err) return err;
  const off = dst.offset + Number(offset);
  let to = dst.data + off;
  if (dst.type === BPF_DYNPTR_TYPE_SKB) {
    // __bpf_skb_store_bytes: flags BPF_F_RECOMPUTE_CSUM / BPF_F_INVALIDATE_HASH only.
    if (flags & ~3n || off > 0xffff) return -EINVAL;
    to = skbPointer(k, dst.data, off, len);
    if (!to) return -EFAULT;
  } else if (flags) return -EINVAL;
  k.mem.bytes(to, len).set(k.mem.bytes(src, len).slice());
  return 0;
}

/** bpf_dynptr_slice: a pointer to len bytes (the buffer is for non-linear skbs; ours are linear). */
function dynptrSlice(k: Kernel, p: DynptrKern, offset: bigint, len: bigint): number {
  if (!p.data) return 0;
  if (p.checkOffLen(offset, len)) return 0;
  const off = p.offset + Number(offset);
  switch (p.type) {
    case BPF_DYNPTR_TYPE_LOCAL:
    case BPF_DYNPTR_TYPE_RINGBUF:
      return p.data + off;
    case BPF_DYNPTR_TYPE_SKB:
      // Our skbs are linear: the bytes are always there to point at.
      return skbPointer(k, p.data, off, Number(len));
    default:
      return 0;
  }
}

/** struct bpf_dynptr, struct __sk_buff (its first members) and the dynptr kfuncs, as vmlinux BTF has them. */
export function declareDynptrTypes(b: BtfBuilder, base: KernelBaseTypes): void {
  const dynptr = b.addStructAuto("bpf_dynptr", [{ name: "__opaque", type: b.addArray(base.u64, base.int, 2) }]);
  const pDynptr = b.addPtr(dynptr);
  const pCDynptr = b.addPtr(b.addConst(dynptr));
  const skb = b.addStructAuto("__sk_buff", [
    { name: "len", type: base.u32 },
    { name: "pkt_type", type: base.u32 },
    { name: "mark", type: base.u32 },
    { name: "queue_mapping", type: base.u32 },
    { name: "protocol", type: base.u32 },
  ]);
  const voidPtr = b.addPtr(0);
  const fn = (name: string, ret: number, params: { name: string; type: number }[]) =>
    b.addFunc(name, b.addFuncProto(ret, params), BTF_FUNC_GLOBAL);
  fn("bpf_dynptr_from_skb", base.int, [
    { name: "s", type: b.addPtr(skb) },
    { name: "flags", type: base.u64 },
    { name: "ptr__uninit", type: pDynptr },
  ]);
  for (const name of ["bpf_dynptr_slice", "bpf_dynptr_slice_rdwr"])
    fn(name, voidPtr, [
      { name: "p", type: pCDynptr },
      { name: "offset", type: base.u32 },
      { name: "buffer__opt", type: voidPtr },
      { name: "buffer__szk", type: base.u32 },
    ]);
  fn("bpf_dynptr_adjust", base.int, [
    { name: "p", type: pCDynptr },
    { name: "start", type: base.u32 },
    { name: "end", type: base.u32 },
  ]);
  fn("bpf_dynptr_is_null", base.bool, [{ name: "p", type: pCDynptr }]);
  fn("bpf_dynptr_is_rdonly", base.bool, [{ name: "p", type: pCDynptr }]);
  fn("bpf_dynptr_size", base.u32, [{ name: "p", type: pCDynptr }]);
  fn("bpf_dynptr_clone", base.int, [
    { name: "p", type: pCDynptr },
    { name: "clone__uninit", type: pDynptr },
  ]);
}

/** Program types net/core/filter.c registers bpf_dynptr_from_skb for (their context is __sk_buff). */
export const DYNPTR_SKB_PROG_TYPES: readonly number[] = [
  T.BPF_PROG_TYPE_SOCKET_FILTER,
  T.BPF_PROG_TYPE_SCHED_CLS,
  T.BPF_PROG_TYPE_SCHED_ACT,
  T.BPF_PROG_TYPE_CGROUP_SKB,
  T.BPF_PROG_TYPE_LWT_IN,
  T.BPF_PROG_TYPE_LWT_OUT,
  T.BPF_PROG_TYPE_LWT_XMIT,
  T.BPF_PROG_TYPE_LWT_SEG6LOCAL,
  T.BPF_PROG_TYPE_SK_SKB,
];

/**
 * bpf_dynptr_from_skb, bound per program: the dynptr is read-only where the program may not write
 * packet data (the verifier's specialize_kfunc picks bpf_dynptr_from_skb_rdonly). `structOps`
 * lets struct_ops programs that pass it (a subsystem's kfunc filter, bpf_qdisc's) call it too.
 */
export function registerDynptrFromSkb(k: Kernel, structOps?: (prog: KfuncFilterProg) => boolean): void {
  const types = structOps ? [...DYNPTR_SKB_PROG_TYPES, T.BPF_PROG_TYPE_STRUCT_OPS] : DYNPTR_SKB_PROG_TYPES;
  const impl =
    (rdonly: boolean): KernelFn =>
    (c) => {
      const p = new DynptrKern(k, c.argNum(3));
      if (c.arg(2)) {
        p.setNull();
        return -EINVAL;
      }
      const skb = c.argNum(1);
      const d = skbData(k, skb);
      p.init(skb, BPF_DYNPTR_TYPE_SKB, 0, d?.len ?? 0, rdonly);
      return 0;
    };
  const kf = k.registerKfunc(
    "bpf_dynptr_from_skb",
    undefined,
    impl(false),
    KF_TRUSTED_ARGS,
    types,
    structOps ? (prog) => prog.progType !== T.BPF_PROG_TYPE_STRUCT_OPS || structOps(prog) : undefined,
  );
  (kf as { bind?: ProgKernelFn }).bind = (prog) => impl(skbDynptrRdonly(prog.type));
}

/** A u32 argument (the upper half of the register is not the callee's). */
const u32 = (c: HelperArgs, i: number): bigint => c.arg(i) & 0xffffffffn;

function dyn(k: Kernel, c: HelperArgs, i: number): DynptrKern {
  return new DynptrKern(k, c.argNum(i));
}

/** The dynptr helpers of bpf_base_func_proto and the common dynptr kfuncs. */
export function registerDynptr(k: Kernel): void {
  k.registerHelper(F.BPF_FUNC_dynptr_from_mem, (c) => {
    const p = dyn(k, c, 4);
    const size = Number(c.arg(2) & 0xffffffffn);
    let err = size > DYNPTR_MAX_SIZE ? -E2BIG : 0;
    if (!err && c.arg(3)) err = -EINVAL;
    if (err) {
      p.setNull();
      return err;
    }
    p.init(c.argNum(1), BPF_DYNPTR_TYPE_LOCAL, 0, size);
    return 0;
  });
  k.registerHelper(F.BPF_FUNC_dynptr_read, (c) =>
    dynptrRead(k, c.argNum(1), Number(c.arg(2) & 0xffffffffn), dyn(k, c, 3), c.arg(4) & 0xffffffffn, c.arg(5)),
  );
  k.registerHelper(F.BPF_FUNC_dynptr_write, (c) =>
    dynptrWrite(k, dyn(k, c, 1), c.arg(2) & 0xffffffffn, c.argNum(3), Number(c.arg(4) & 0xffffffffn), c.arg(5)),
  );
  k.registerHelper(F.BPF_FUNC_dynptr_data, (c) => {
    const p = dyn(k, c, 1);
    const offset = c.arg(2) & 0xffffffffn;
    const len = c.arg(3) & 0xffffffffn;
    if (!p.data || p.checkOffLen(offset, len) || p.rdonly) return 0;
    if (p.type !== BPF_DYNPTR_TYPE_LOCAL && p.type !== BPF_DYNPTR_TYPE_RINGBUF) return 0;
    return p.data + p.offset + Number(offset);
  });
  // common_kfunc_set (every program type).
  k.registerKfunc(
    "bpf_dynptr_slice",
    undefined,
    (c) => dynptrSlice(k, dyn(k, c, 1), u32(c, 2), u32(c, 4)),
    KF_RET_NULL,
  );
  k.registerKfunc(
    "bpf_dynptr_slice_rdwr",
    undefined,
    (c) => {
      const p = dyn(k, c, 1);
      if (!p.data || p.rdonly) return 0;
      return dynptrSlice(k, p, u32(c, 2), u32(c, 4));
    },
    KF_RET_NULL,
  );
  k.registerKfunc("bpf_dynptr_adjust", undefined, (c) => {
    const p = dyn(k, c, 1);
    if (!p.data) return -EINVAL;
    const size = BigInt(p.size);
    const start = u32(c, 2);
    const end = u32(c, 3);
    if (start > size || end > size) return -ERANGE;
    if (start > end) return -EINVAL;
    p.setOffset(p.offset + Number(start));
    p.setSize(Number(end - start));
    return 0;
  });
  k.registerKfunc("bpf_dynptr_is_null", undefined, (c) => (dyn(k, c, 1).data ? 0 : 1));
  k.registerKfunc("bpf_dynptr_is_rdonly", undefined, (c) => {
    const p = dyn(k, c, 1);
    return p.data && p.rdonly ? 1 : 0;
  });
  // A u32 result: -EINVAL for a NULL dynptr arrives as 0xffffffea.
  k.registerKfunc("bpf_dynptr_size", undefined, (c) => {
    const p = dyn(k, c, 1);
    return p.data ? p.size : -EINVAL >>> 0;
  });
  k.registerKfunc("bpf_dynptr_clone", undefined, (c) => {
    const p = dyn(k, c, 1);
    const clone = dyn(k, c, 2);
    if (!p.data) {
      clone.setNull();
      return -EINVAL;
    }
    clone.init(p.data, p.type, p.offset, p.size, p.rdonly);
    return 0;
  });
  registerDynptrFromSkb(k);
}
