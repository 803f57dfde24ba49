import { BpfError, EINVAL, ENOMEM } from "../uapi/errno.js";
import { VmFault } from "./fault.js";

/**
 * The sandboxed address space every BPF program runs in.
 *
 * One flat space backed by a growable `WebAssembly.Memory`, so a later WebAssembly JIT can
 * run on the same bytes. An address handed to a program is the byte offset into that memory,
 * as a 64-bit value whose high half is 0. The first 64 KiB are never mapped, so NULL and small
 * integers always fault; addresses at or above 4 GiB (high half != 0) always fault.
 *
 * Regions are bump-allocated with unmapped guard gaps (GUARD bytes) between them. A shadow
 * byte per byte of memory records the program's permission (SHADOW_R | SHADOW_W), 0 meaning
 * unmapped. Since no access is wider than 8 bytes and the gaps are wider than that, checking
 * the first and last byte of an access proves the whole access lies in one mapped region.
 * Freeing a region clears its shadow (use-after-free faults) and lets a later allocation that
 * fits reuse its bytes.
 *
 * Native code (kernel, helpers) reads and writes through the methods here: they only require
 * the bytes to be mapped, whatever the program's permission, because the kernel writes into
 * objects that programs may only read (ctx, rodata).
 */

export type RegionKind = "stack" | "ctx" | "map_value" | "kobj" | "rodata" | "mem" | "data";
export type RegionPerm = "r" | "rw";

export interface AllocOpts {
  perm: RegionPerm;
  kind: RegionKind;
  name?: string;
  /** Power of two, default 8. */
  align?: number;
}

export interface Region {
  readonly addr: number;
  readonly size: number;
  readonly perm: RegionPerm;
  readonly kind: RegionKind;
  readonly name: string;
  freed: boolean;
}

export interface VmMemoryOpts {
  /** Initial size in bytes (rounded up to 64 KiB pages); the memory grows on demand. Default 256 KiB. */
  initialBytes?: number;
  /** Largest size the memory may grow to, in bytes. Default 1 GiB. */
  maxBytes?: number;
}

export const SHADOW_R = 1;
export const SHADOW_W = 2;
/** Lowest address ever mapped. */
export const VM_BASE = 0x10000;
/** Unmapped bytes around every region. */
export const GUARD = 16;
const PAGE = 65536;

/** The part of WebAssembly.Memory used here (the project's lib settings carry no WebAssembly types). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
const WasmMemoryCtor = (
  globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum?: number }) => WasmMemory } }
).WebAssembly.Memory;

export class VmMemory {
  readonly memory: WasmMemory;
  /**
   * The shadow's own WebAssembly memory (grown with `memory`), so compiled WebAssembly can
   * check permissions with a call into a small module over it rather than into JavaScript.
   */
  readonly shadowMemory: WasmMemory;
  /** Views of the current buffer; replaced when the memory grows (read them afresh after a call out). */
  dv: DataView;
  u8: Uint8Array;
  /** Program permission per byte (SHADOW_R | SHADOW_W); 0 = unmapped. */
  shadow: Uint8Array;
  private top = VM_BASE;
  private readonly maxPages: number;
  /** Freed blocks by capacity (bytes usable before the next guard gap): addresses. */
  private freeByCap = new Map<number, number[]>();
  private live = new Map<number, Region>();
  /** Called after every free (caches of region bounds drop what they hold). */
  readonly freeHooks: ((r: Region) => void)[] = [];

  constructor(opts: VmMemoryOpts = {}) {
    const initial = Math.max(2, Math.ceil((opts.initialBytes ?? 1 << 18) / PAGE));
    this.maxPages = Math.max(initial, Math.ceil((opts.maxBytes ?? 1 << 30) / PAGE));
    this.memory = new WasmMemoryCtor({ initial, maximum: this.maxPages });
    this.u8 = new Uint8Array(this.memory.buffer);
    this.dv = new DataView(this.memory.buffer);
    this.shadowMemory = new WasmMemoryCtor({ initial, maximum: this.maxPages });
    this.shadow = new Uint8Array(this.shadowMemory.buffer);
  }

  /** Allocate a zeroed region. */
  alloc(size: number, opts: AllocOpts): Region {
    if (!Number.isInteger(size) || size < 0) throw new BpfError(EINVAL, `invalid region size ${size}`);
    const align = opts.align ?? 8;
    if (align <= 0 || (align & (align - 1)) !== 0) throw new BpfError(EINVAL, `invalid region alignment ${align}`);
    const cap = Math.max(8, (size + 7) & ~7);
    let addr = this.takeFree(cap, align);
    if (addr < 0) {
      addr = alignUp(this.top + GUARD, align);
      this.ensure(addr + cap + GUARD);
      this.top = addr + cap;
    }
    const region: Region = {
      addr,
      size,
      perm: opts.perm,
      kind: opts.kind,
      name: opts.name ?? opts.kind,
      freed: false,
    };
    this.u8.fill(0, addr, addr + cap);
    this.shadow.fill(opts.perm === "rw" ? SHADOW_R | SHADOW_W : SHADOW_R, addr, addr + size);
    this.live.set(addr, region);
    return region;
  }

  /** Unmap a region: later accesses fault; its bytes may be reused by a later alloc. */
  free(region: Region): void {
    if (region.freed || this.live.get(region.addr) !== region) {
      throw new BpfError(EINVAL, `region ${region.name} at 0x${region.addr.toString(16)} is not allocated`);
    }
    region.freed = true;
    this.live.delete(region.addr);
    const cap = Math.max(8, (region.size + 7) & ~7);
    this.shadow.fill(0, region.addr, region.addr + cap);
    this.putFree(region.addr, cap);
    for (const h of this.freeHooks) h(region);
  }

  /** The live region containing `addr`, if any (slow: for diagnostics and helpers). */
  regionAt(addr: number): Region | undefined {
    if (this.shadow[addr] === undefined || this.shadow[addr] === 0) return undefined;
    for (const r of this.live.values()) if (addr >= r.addr && addr < r.addr + r.size) return r;
    return undefined;
  }

  /** Throw a VmFault unless a program may access [addr, addr+size) (write: needs "rw"). */
  check(addr: number, size: number, write: boolean): void {
    const need = write ? SHADOW_W : SHADOW_R;
    if (!this.allowed(addr, size, need)) {
      throw new VmFault(-1, BigInt(Math.max(0, addr)), size, write ? "write" : "read");
    }
  }

  /** Whether [addr, addr+size) is mapped with at least permission bits `need` (0 = mapped at all). */
  allowed(addr: number, size: number, need: number): boolean {
    if (!Number.isInteger(addr) || addr < VM_BASE || size < 0 || addr + size > this.shadow.length) return false;
    const sh = this.shadow;
    if (size > GUARD) {
      // A whole object from its start (a task_struct, a map value): its live region covers it,
      // and a region's bytes share one permission, so its two ends stand for the rest.
      const r = this.live.get(addr);
      if (r !== undefined && size <= r.size) {
        const a = sh[addr]!;
        const b = sh[addr + size - 1]!;
        return a !== 0 && b !== 0 && (a & b & need) === need;
      }
    }
    for (let i = addr; i < addr + size; i++) {
      const s = sh[i];
      if (s === 0 || (s & need) !== need) return false;
    }
    return true;
  }

  private native(addr: number, size: number): number {
    if (!this.allowed(addr, size, 0)) throw new VmFault(-1, BigInt(Math.max(0, addr)), size, "native");
    return addr;
  }

  readU8(addr: number): number {
    return this.dv.getUint8(this.native(addr, 1));
  }
  readU16(addr: number): number {
    return this.dv.getUint16(this.native(addr, 2), true);
  }
  readU32(addr: number): number {
    return this.dv.getUint32(this.native(addr, 4), true);
  }
  readU64(addr: number): bigint {
    return this.dv.getBigUint64(this.native(addr, 8), true);
  }
  /** A u64 as a number (exact below 2^53). */
  readU64Number(addr: number): number {
    const a = this.native(addr, 8);
    return this.dv.getUint32(a + 4, true) * 4294967296 + this.dv.getUint32(a, true);
  }
  writeU8(addr: number, v: number): void {
    this.dv.setUint8(this.native(addr, 1), v);
  }
  writeU16(addr: number, v: number): void {
    this.dv.setUint16(this.native(addr, 2), v, true);
  }
  writeU32(addr: number, v: number): void {
    this.dv.setUint32(this.native(addr, 4), v >>> 0, true);
  }
  writeU64(addr: number, v: bigint | number): void {
    const a = this.native(addr, 8);
    if (typeof v === "bigint") {
      this.dv.setBigUint64(a, BigInt.asUintN(64, v), true);
    } else {
      this.dv.setUint32(a, v >>> 0, true);
      this.dv.setUint32(a + 4, Math.floor(v / 4294967296) >>> 0, true);
    }
  }

  /** A live view of [addr, addr+len) (invalidated if the memory grows). */
  bytes(addr: number, len: number): Uint8Array {
    this.native(addr, len);
    return this.u8.subarray(addr, addr + len);
  }

  /** Copy `data` into mapped memory at `addr`. */
  writeBytes(addr: number, data: Uint8Array): void {
    this.native(addr, data.length);
    this.u8.set(data, addr);
  }

  /** A NUL-terminated string of at most `max` bytes (faults if it runs off its region). */
  readCString(addr: number, max = 4096): string {
    let end = addr;
    while (end - addr < max) {
      if (this.readU8(end) === 0) break;
      end++;
    }
    return new TextDecoder().decode(this.u8.slice(addr, end));
  }

  /** Bytes currently backing the address space. */
  get byteLength(): number {
    return this.u8.length;
  }

  private putFree(addr: number, cap: number): void {
    const list = this.freeByCap.get(cap);
    if (list) list.push(addr);
    else this.freeByCap.set(cap, [addr]);
  }

  /**
   * A freed block for `cap` bytes: the same capacity first (map values of one map all have one
   * size), else a larger block, split when the rest is worth keeping. -1 if none.
   */
  private takeFree(cap: number, align: number): number {
    const pick = (c: number): number => {
      const list = this.freeByCap.get(c);
      if (!list) return -1;
      for (let i = list.length - 1; i >= 0; i--) {
        const a = list[i];
        if (a % align !== 0) continue;
        list[i] = list[list.length - 1];
        list.pop();
        if (list.length === 0) this.freeByCap.delete(c);
        return a;
      }
      return -1;
    };
    const exact = pick(cap);
    if (exact >= 0) return exact;
    for (const c of this.freeByCap.keys()) {
      if (c < cap) continue;
      const a = pick(c);
      if (a < 0) continue;
      if (c - cap >= 64) this.putFree(a + cap + GUARD, c - cap - GUARD);
      return a;
    }
    return -1;
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    const want = Math.max(pages, Math.ceil(have / PAGE / 2));
    const grow = Math.min(want, this.maxPages - have / PAGE);
    if (grow < pages)
      throw new BpfError(ENOMEM, `VM memory exhausted: ${end} bytes needed, limit ${this.maxPages * PAGE}`);
    this.memory.grow(grow);
    this.u8 = new Uint8Array(this.memory.buffer);
    this.dv = new DataView(this.memory.buffer);
    this.shadowMemory.grow(grow);
    this.shadow = new Uint8Array(this.shadowMemory.buffer);
  }
}

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}
