/**
 * BPF_MAP_TYPE_RINGBUF (kernel/bpf/ringbuf.c): a multi-producer, single-consumer ring of records.
 * The area is struct bpf_ringbuf as the kernel lays it out in pages: one page the consumer never
 * maps, the consumer position's page, the producer position's page, then the data pages. The
 * kernel maps the data pages twice in a row so that a record wrapping past the end is contiguous;
 * here the second copy is plain memory a record's overflowing tail is written to, folded back to
 * the start of the ring when the record is committed, so the ring (and what a consumer reads
 * through bpf_ringbuf_mmap) always holds every committed byte in place.
 *
 * A record is an 8-byte header (u32 len with the busy and discard bits, u32 page offset from the
 * ring to the header's page) and its payload, 8-byte aligned. Reserving advances the producer
 * position with the busy bit set; submit or discard clears it (discard also sets the discard bit)
 * and may wake the consumer.
 */
import { bpf_func_id as F } from "../uapi/bpf.js";
import { BpfError, E2BIG, EAGAIN, EFAULT, EINVAL, ENOTSUPP, EPERM } from "../uapi/errno.js";
import { BPF_DYNPTR_TYPE_RINGBUF } from "../verifier/dynptr.js";
import { BpfMap, type BpfMapOps, type MemRegion, type UserMapping } from "./bpf.js";
import type { MapCreateAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { DynptrKern, dynptrCheckSize } from "./bpf_dynptr.js";
import type { HelperArgs, Kernel } from "./kernel.js";
import { bpf_map_meta_equal } from "./map_in_map.js";

const PAGE_SHIFT = 12;
/** kernel.ts's PAGE_SIZE (not imported: kernel.ts boots through this module). */
const PAGE_SIZE = 1 << PAGE_SHIFT;
/** uapi: the header's flag bits and size. */
export const BPF_RINGBUF_BUSY_BIT = 1 << 31;
export const BPF_RINGBUF_DISCARD_BIT = 1 << 30;
export const BPF_RINGBUF_HDR_SZ = 8;
/** uapi: bpf_ringbuf_submit/discard/output flags, bpf_ringbuf_query flags. */
export const BPF_RB_NO_WAKEUP = 1;
export const BPF_RB_FORCE_WAKEUP = 2;
export const BPF_RB_AVAIL_DATA = 0;
export const BPF_RB_RING_SIZE = 1;
export const BPF_RB_CONS_POS = 2;
export const BPF_RB_PROD_POS = 3;

const EPOLLIN = 0x1;
const EPOLLRDNORM = 0x40;
const RINGBUF_CREATE_FLAG_MASK = 1 << 2; // BPF_F_NUMA_NODE
/** Pages before the data: the non-mmap()able part (RINGBUF_PGOFF), then consumer and producer. */
export const RINGBUF_PGOFF = 1;
const RINGBUF_POS_PAGES = 2;
const RINGBUF_NR_META_PAGES = RINGBUF_PGOFF + RINGBUF_POS_PAGES;
const RINGBUF_MAX_RECORD_SZ = Math.floor(0xffffffff / 4);
const RINGBUF_MAX_DATA_SZ = ((1 << 24) - RINGBUF_POS_PAGES - RINGBUF_PGOFF) * PAGE_SIZE;
/** sizeof(struct bpf_ringbuf_map) on x86-64 (6.18). */
const SIZEOF_BPF_RINGBUF_MAP = 256;

export class BpfRingbuf extends BpfMap {
  /** The whole struct bpf_ringbuf: meta pages, data, and the data's second copy. */
  readonly area: MemRegion;
  readonly mask: number;
  readonly nrPages: number;
  /** Consumer wakeups queued (irq_work_queue of bpf_ringbuf_notify). */
  wakeups = 0;

  constructor(k: Kernel, ops: BpfMapOps, attr: MapCreateAttr) {
    super(k, ops, attr);
    const size = this.max_entries;
    this.mask = size - 1;
    this.nrPages = RINGBUF_NR_META_PAGES + size / PAGE_SIZE;
    this.area = k.mem.alloc(RINGBUF_NR_META_PAGES * PAGE_SIZE + 2 * size, {
      perm: "rw",
      kind: "ringbuf",
      name: "ringbuf",
      align: PAGE_SIZE,
    });
  }

  get dataAddr(): number {
    return this.area.addr + RINGBUF_NR_META_PAGES * PAGE_SIZE;
  }
  private pos(page: number): bigint {
    const b = this.kernel.mem.bytes(this.area.addr + page * PAGE_SIZE, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }
  private setPos(page: number, v: bigint): void {
    const b = this.kernel.mem.bytes(this.area.addr + page * PAGE_SIZE, 8);
    new DataView(b.buffer, b.byteOffset, 8).setBigUint64(0, BigInt.asUintN(64, v), true);
  }
  get consumerPos(): bigint {
    return this.pos(RINGBUF_PGOFF);
  }
  set consumerPos(v: bigint) {
    this.setPos(RINGBUF_PGOFF, v);
  }
  get producerPos(): bigint {
    return this.pos(RINGBUF_PGOFF + 1);
  }
  set producerPos(v: bigint) {
    this.setPos(RINGBUF_PGOFF + 1, v);
  }
  /** ringbuf_total_data_sz. */
  get totalDataSize(): number {
    return this.mask + 1;
  }
  /** ringbuf_avail_data_sz. */
  get availData(): bigint {
    return this.producerPos - this.consumerPos;
  }

  private hdr(addr: number): DataView {
    const b = this.kernel.mem.bytes(addr, BPF_RINGBUF_HDR_SZ);
    return new DataView(b.buffer, b.byteOffset, BPF_RINGBUF_HDR_SZ);
  }

  /** __bpf_ringbuf_reserve: the sample's address, or 0. */
  reserve(size: bigint): number {
    if (size > BigInt(RINGBUF_MAX_RECORD_SZ)) return 0;
    const len = (Number(size) + BPF_RINGBUF_HDR_SZ + 7) & ~7;
    if (len > this.totalDataSize) return 0;
    const cons = this.consumerPos;
    const prod = this.producerPos;
    const next = prod + BigInt(len);
    // The producer may run at most ringbuf_size - 1 bytes ahead of the consumer.
    if (next - cons > BigInt(this.mask)) return 0;
    const off = Number(prod & BigInt(this.mask));
    const hdr = this.dataAddr + off;
    const dv = this.hdr(hdr);
    dv.setUint32(0, (Number(size) | BPF_RINGBUF_BUSY_BIT) >>> 0, true);
    dv.setUint32(4, (hdr - this.area.addr) >>> PAGE_SHIFT, true);
    this.producerPos = next;
    return hdr + BPF_RINGBUF_HDR_SZ;
  }

  /** bpf_ringbuf_commit for a sample of this ring. */
  commit(sample: number, flags: bigint, discard: boolean): void {
    const hdrAddr = sample - BPF_RINGBUF_HDR_SZ;
    const dv = this.hdr(hdrAddr);
    const len = dv.getUint32(0, true);
    const recPos = hdrAddr - this.dataAddr;
    // The part written past the end of the ring (the kernel's second mapping) is the ring's start.
    const size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
    const end = recPos + ((size + BPF_RINGBUF_HDR_SZ + 7) & ~7);
    if (end > this.totalDataSize) {
      const over = end - this.totalDataSize;
      const mem = this.kernel.mem;
      mem.bytes(this.dataAddr, over).set(mem.bytes(this.dataAddr + this.totalDataSize, over).slice());
    }
    let newLen = (len ^ BPF_RINGBUF_BUSY_BIT) >>> 0;
    if (discard) newLen = (newLen | BPF_RINGBUF_DISCARD_BIT) >>> 0;
    dv.setUint32(0, newLen, true);
    const cons = Number(this.consumerPos & BigInt(this.mask));
    if (flags & BigInt(BPF_RB_FORCE_WAKEUP)) this.wakeups++;
    else if (cons === recPos && !(flags & BigInt(BPF_RB_NO_WAKEUP))) this.wakeups++;
  }

  /**
   * What mmap() of the ring shows a consumer: the consumer position (writable), the producer
   * position, and `len` data bytes from ring offset `off`, wrapping as the double mapping does.
   */
  readData(off: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const mem = this.kernel.mem;
    let done = 0;
    while (done < len) {
      const at = (off + done) & this.mask;
      const n = Math.min(len - done, this.totalDataSize - at);
      out.set(mem.bytes(this.dataAddr + at, n), done);
      done += n;
    }
    return out;
  }
}

/** The ring a sample belongs to (bpf_ringbuf_restore_from_rec: the header's page offset). */
const rings = new WeakMap<Kernel, Map<number, BpfRingbuf>>();

function restoreFromRec(k: Kernel, sample: number): BpfRingbuf | undefined {
  const hdr = sample - BPF_RINGBUF_HDR_SZ;
  const b = k.mem.bytes(hdr, BPF_RINGBUF_HDR_SZ);
  const pgOff = new DataView(b.buffer, b.byteOffset, BPF_RINGBUF_HDR_SZ).getUint32(4, true);
  const base = (hdr & ~(PAGE_SIZE - 1)) - pgOff * PAGE_SIZE;
  return rings.get(k)?.get(base);
}

function ringArg(k: Kernel, c: HelperArgs, i: number): BpfRingbuf {
  const map = k.mapByAddr.get(c.argNum(i));
  if (!(map instanceof BpfRingbuf)) throw new BpfError(EINVAL, `r${i} is not a ring buffer map`);
  return map;
}

export const ringbuf_map_ops: BpfMapOps = {
  map_meta_equal: bpf_map_meta_equal,
  map_btf_name: "bpf_ringbuf_map",
  map_alloc_check(attr) {
    if (num(attr.map_flags) & ~RINGBUF_CREATE_FLAG_MASK) throw new BpfError(EINVAL, "ringbuf: unknown map flags");
    const n = num(attr.max_entries);
    if (num(attr.key_size) || num(attr.value_size) || n === 0 || n & (n - 1) || n % PAGE_SIZE)
      throw new BpfError(
        EINVAL,
        "ringbuf: key_size and value_size must be 0, max_entries a power of 2 and a multiple of the page size",
      );
    if (n > RINGBUF_MAX_DATA_SZ) throw new BpfError(E2BIG, "ringbuf: max_entries too large");
  },
  map_alloc_cost(attr) {
    const n = num(attr.max_entries);
    return (
      SIZEOF_BPF_RINGBUF_MAP + RINGBUF_NR_META_PAGES * PAGE_SIZE + n + (RINGBUF_NR_META_PAGES + (2 * n) / PAGE_SIZE) * 8
    );
  },
  map_alloc(attr, k) {
    const rb = new BpfRingbuf(k, ringbuf_map_ops, attr);
    const m = rings.get(k) ?? new Map<number, BpfRingbuf>();
    m.set(rb.area.addr, rb);
    rings.set(k, m);
    return rb;
  },
  map_free(map) {
    const rb = map as BpfRingbuf;
    rings.get(map.kernel)?.delete(rb.area.addr);
    map.kernel.mem.free(rb.area);
  },
  map_lookup_elem() {
    throw new BpfError(ENOTSUPP, "ring buffers have no elements to look up");
  },
  map_update_elem() {
    throw new BpfError(ENOTSUPP, "ring buffers have no elements to update");
  },
  map_delete_elem() {
    throw new BpfError(ENOTSUPP, "ring buffers have no elements to delete");
  },
  map_get_next_key() {
    throw new BpfError(ENOTSUPP, "ring buffers have no keys");
  },
  map_mmap: ringbufMmap,
  /** ringbuf_map_poll_kern: readable while the producer is ahead of the consumer. */
  map_poll(map) {
    return (map as BpfRingbuf).availData ? EPOLLIN | EPOLLRDNORM : 0;
  },
  /** ringbuf_map_mem_usage. */
  map_mem_usage(map) {
    const rb = map as BpfRingbuf;
    const nrData = map.max_entries / PAGE_SIZE;
    return SIZEOF_BPF_RINGBUF_MAP + rb.nrPages * PAGE_SIZE + (RINGBUF_NR_META_PAGES + 2 * nrData) * 8;
  },
};

/**
 * ringbuf_map_mmap_kern: the consumer's view of a ring from page `pgoff` of the mmap()able part
 * (0: the consumer position, 1: the producer position, 2 on: the data, twice). Only the consumer
 * page may be mapped writable (EPERM otherwise); remap_vmalloc_range refuses a range past the end.
 */
function ringbufMmap(map: BpfMap, pgoff: number, len: number, write: boolean): UserMapping {
  const rb = map as BpfRingbuf;
  if (write && (pgoff !== 0 || len !== PAGE_SIZE))
    throw new BpfError(EPERM, "only the consumer position's page of a ring buffer may be mapped writable");
  const pages = RINGBUF_POS_PAGES + (2 * map.max_entries) / PAGE_SIZE;
  if (len <= 0 || pgoff < 0 || pgoff + Math.ceil(len / PAGE_SIZE) > pages)
    throw new BpfError(EINVAL, "mapping past the end of the ring buffer");
  const start = pgoff * PAGE_SIZE;
  const mem = rb.kernel.mem;
  const check = (off: number, n: number) => {
    if (off < 0 || n < 0 || off + n > len) throw new BpfError(EFAULT, "access outside the mapping");
  };
  return {
    length: len,
    writable: write,
    read(off, n) {
      check(off, n);
      const out = new Uint8Array(n);
      // Positions' pages as they are; data pages through the ring (its second copy is the first).
      for (let i = 0; i < n; ) {
        const at = start + off + i;
        const page = Math.floor(at / PAGE_SIZE);
        const chunk = Math.min(n - i, PAGE_SIZE - (at % PAGE_SIZE));
        if (page < RINGBUF_POS_PAGES) out.set(mem.bytes(rb.area.addr + RINGBUF_PGOFF * PAGE_SIZE + at, chunk), i);
        else out.set(rb.readData(at - RINGBUF_POS_PAGES * PAGE_SIZE, chunk), i);
        i += chunk;
      }
      return out;
    },
    write(off, data) {
      if (!write) throw new BpfError(EFAULT, "write to a read-only mapping");
      check(off, data.length);
      mem.bytes(rb.area.addr + RINGBUF_PGOFF * PAGE_SIZE + start + off, data.length).set(data);
    },
  };
}

/** The ring buffer helpers of kernel/bpf/ringbuf.c. */
export function registerRingbufHelpers(k: Kernel): void {
  k.registerHelper(F.BPF_FUNC_ringbuf_reserve, (c) => {
    if (c.arg(3)) return 0;
    return ringArg(k, c, 1).reserve(c.arg(2));
  });
  const commit = (discard: boolean) => (c: HelperArgs) => {
    const sample = c.argNum(1);
    restoreFromRec(k, sample)?.commit(sample, c.arg(2), discard);
    return 0;
  };
  k.registerHelper(F.BPF_FUNC_ringbuf_submit, commit(false));
  k.registerHelper(F.BPF_FUNC_ringbuf_discard, commit(true));
  k.registerHelper(F.BPF_FUNC_ringbuf_output, (c) => {
    const flags = c.arg(4);
    if (flags & ~BigInt(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) return -EINVAL;
    const rb = ringArg(k, c, 1);
    const size = Number(c.arg(3));
    const rec = rb.reserve(c.arg(3));
    if (!rec) return -EAGAIN;
    if (size) k.mem.bytes(rec, size).set(k.mem.bytes(c.argNum(2), size).slice());
    rb.commit(rec, flags, false);
    return 0;
  });
  k.registerHelper(F.BPF_FUNC_ringbuf_query, (c) => {
    const rb = ringArg(k, c, 1);
    switch (c.arg(2)) {
      case BigInt(BPF_RB_AVAIL_DATA):
        return BigInt.asUintN(64, rb.availData);
      case BigInt(BPF_RB_RING_SIZE):
        return rb.totalDataSize;
      case BigInt(BPF_RB_CONS_POS):
        return rb.consumerPos;
      case BigInt(BPF_RB_PROD_POS):
        return rb.producerPos;
      default:
        return 0;
    }
  });
  k.registerHelper(F.BPF_FUNC_ringbuf_reserve_dynptr, (c) => {
    const p = new DynptrKern(k, c.argNum(4));
    const size = c.arg(2) & 0xffffffffn;
    if (c.arg(3)) {
      p.setNull();
      return -EINVAL;
    }
    const err = dynptrCheckSize(size);
    if (err) {
      p.setNull();
      return err;
    }
    const sample = ringArg(k, c, 1).reserve(size);
    if (!sample) {
      p.setNull();
      return -EINVAL;
    }
    p.init(sample, BPF_DYNPTR_TYPE_RINGBUF, 0, Number(size));
    return 0;
  });
  const commitDynptr = (discard: boolean) => (c: HelperArgs) => {
    const p = new DynptrKern(k, c.argNum(1));
    if (!p.data) return 0;
    restoreFromRec(k, p.data)?.commit(p.data, c.arg(2), discard);
    p.setNull();
    return 0;
  };
  k.registerHelper(F.BPF_FUNC_ringbuf_submit_dynptr, commitDynptr(false));
  k.registerHelper(F.BPF_FUNC_ringbuf_discard_dynptr, commitDynptr(true));
}
