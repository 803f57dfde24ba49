/**
 * The sk_buff of a test run (net/core/skbuff.c, the linear case): one buffer in VM memory with
 * headroom before data and tailroom after it, the mac and network header offsets, and the hash
 * state. The program's context is the uapi `struct __sk_buff` itself, so every change to data,
 * length, protocol, hash or VLAN tag is written back into it (bpf_compute_data_pointers and the
 * fields convert_ctx_accesses would read).
 */
import type { MemRegion } from "./bpf.js";
import { SKB } from "./filter.js";
import type { Kernel } from "./kernel.js";

export const ETH_HLEN = 14;
/** SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64. */
export const SHINFO_SIZE = 320;
/** SKB_MAX_ALLOC: the most a BPF helper may grow an skb to (BPF_SKB_MAX_LEN). */
export const BPF_SKB_MAX_LEN = (4096 << 2) - SHINFO_SIZE;

/** The kmalloc bucket an allocation of `n` bytes lands in (ksize). */
function ksize(n: number): number {
  if (n <= 96) return n <= 64 ? Math.max(8, 2 ** Math.ceil(Math.log2(n))) : 96;
  if (n <= 192) return n <= 128 ? 128 : 192;
  return 2 ** Math.ceil(Math.log2(n));
}

const view = (k: Kernel, addr: number, n: number): DataView => {
  const b = k.mem.bytes(addr, n);
  return new DataView(b.buffer, b.byteOffset, n);
};
/** Kernel loads and stores of VM memory (little-endian unless `be`). */
export const u32 = (k: Kernel, addr: number): number => view(k, addr, 4).getUint32(0, true);
export const setU32 = (k: Kernel, addr: number, v: number): void => view(k, addr, 4).setUint32(0, v >>> 0, true);
export const u16 = (k: Kernel, addr: number, be = false): number => view(k, addr, 2).getUint16(0, !be);
export const setU16 = (k: Kernel, addr: number, v: number, be = false): void =>
  view(k, addr, 2).setUint16(0, v & 0xffff, !be);

export class SkBuff {
  private region: MemRegion;
  /** Offsets from the buffer's start. */
  private dataOff: number;
  len: number;
  macOff: number;
  netOff: number;
  /** skb->l4_hash and skb->sw_hash. */
  l4Hash = false;
  swHash = false;

  constructor(
    private readonly k: Kernel,
    readonly ctx: number,
    frame: Uint8Array,
    headroom: number,
  ) {
    // bpf_test_init + build_skb: the tailroom is what the kmalloc bucket leaves.
    const cap = ksize(headroom + frame.length + SHINFO_SIZE) - SHINFO_SIZE;
    this.region = k.mem.alloc(cap, { perm: "rw", kind: "mem", name: "test_run skb data" });
    k.mem.bytes(this.region.addr + headroom, frame.length).set(frame);
    this.dataOff = headroom;
    this.len = frame.length;
    this.macOff = headroom;
    this.netOff = headroom + ETH_HLEN;
  }

  get head(): number {
    return this.region.addr;
  }
  get data(): number {
    return this.region.addr + this.dataOff;
  }
  get end(): number {
    return this.data + this.len;
  }
  get mac(): number {
    return this.region.addr + this.macOff;
  }
  get net(): number {
    return this.region.addr + this.netOff;
  }
  get headroom(): number {
    return this.dataOff;
  }
  get tailroom(): number {
    return this.region.size - this.dataOff - this.len;
  }
  /** The bytes [data, data + len) as they are now (a copy). */
  bytes(): Uint8Array {
    return this.k.mem.bytes(this.data, this.len).slice();
  }
  view(off: number, n: number): Uint8Array {
    return this.k.mem.bytes(this.data + off, n);
  }

  /** pskb_expand_head: at least `head` bytes of headroom and `tail` of tailroom, in a new buffer. */
  expand(head: number, tail: number): void {
    if (this.headroom >= head && this.tailroom >= tail) return;
    const nhead = Math.max(head, this.headroom);
    const cap = ksize(nhead + this.len + Math.max(tail, this.tailroom) + SHINFO_SIZE) - SHINFO_SIZE;
    const r = this.k.mem.alloc(cap, { perm: "rw", kind: "mem", name: "test_run skb data" });
    const shift = nhead - this.dataOff;
    this.k.mem.bytes(r.addr + nhead, this.len).set(this.k.mem.bytes(this.data, this.len));
    this.k.mem.free(this.region);
    this.region = r;
    this.dataOff = nhead;
    this.macOff += shift;
    this.netOff += shift;
  }

  /** __skb_push: `n` more bytes in front of data (the caller made the room). */
  push(n: number): void {
    this.dataOff -= n;
    this.len += n;
  }
  /** __skb_pull. */
  pull(n: number): void {
    this.dataOff += n;
    this.len -= n;
  }
  /** Grow (zeroed) or trim the tail to `newLen` bytes. */
  setLen(newLen: number): void {
    if (newLen > this.len) {
      this.expand(0, newLen - this.len);
      this.k.mem.bytes(this.end, newLen - this.len).fill(0);
    }
    this.len = newLen;
  }

  /** The __sk_buff's view of a field (a u32 at `off`). */
  ctxGet(off: number): number {
    return u32(this.k, this.ctx + off);
  }
  ctxSet(off: number, v: number): void {
    setU32(this.k, this.ctx + off, v);
  }

  /** bpf_compute_data_pointers, and skb->len as the context reads it. */
  sync(): void {
    this.ctxSet(SKB.data, this.data);
    this.ctxSet(SKB.data_meta, this.data);
    this.ctxSet(SKB.data_end, this.end);
    this.ctxSet(SKB.len, this.len);
  }

  /** skb_clear_hash. */
  clearHash(): void {
    this.ctxSet(SKB.hash, 0);
    this.l4Hash = false;
    this.swHash = false;
  }

  free(): void {
    this.k.mem.free(this.region);
  }
}
