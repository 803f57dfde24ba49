/**
 * BPF_MAP_TYPE_USER_RINGBUF (kernel/bpf/ringbuf.c): the same struct bpf_ringbuf as a ring buffer,
 * produced by user space and drained by a program. User space maps the consumer position
 * read-only and the producer position and the data (twice) read-write; it writes a record's
 * header with the busy bit, advances the producer position, fills the payload and clears the bit
 * (or sets the discard bit). bpf_user_ringbuf_drain hands each committed record to a callback as
 * a local dynptr over the ring and moves the consumer position past it.
 *
 * The kernel maps the data pages twice in a row; here the area holds the data and a second copy,
 * and every byte user space writes lands in both, so a record wrapping past the end of the ring
 * is contiguous from its start, as the kernel reads it.
 */
import { bpf_func_id as F } from "../uapi/bpf.js";
import { BpfError, E2BIG, EAGAIN, EBUSY, EFAULT, EINVAL, ENODATA, ENOTSUPP, EPERM } from "../uapi/errno.js";
import { BPF_DYNPTR_TYPE_LOCAL } from "../verifier/dynptr.js";
import type { BpfMap, BpfMapOps, UserMapping } from "./bpf.js";
import type { MapCreateAttr } from "./bpf_attr.js";
import { DynptrKern, dynptrCheckSize } from "./bpf_dynptr.js";
import type { HelperArgs, Kernel } from "./kernel.js";
import {
  BPF_RB_FORCE_WAKEUP,
  BPF_RB_NO_WAKEUP,
  BPF_RINGBUF_BUSY_BIT,
  BPF_RINGBUF_DISCARD_BIT,
  BPF_RINGBUF_HDR_SZ,
  BpfRingbuf,
  RINGBUF_PGOFF,
  ringbuf_map_ops,
} from "./ringbuf.js";

const PAGE_SIZE = 4096;
const RINGBUF_POS_PAGES = 2;
const EPOLLOUT = 0x4;
const EPOLLWRNORM = 0x100;
/** BPF_MAX_USER_RINGBUF_SAMPLES: the most records one drain hands to its callback. */
export const BPF_MAX_USER_RINGBUF_SAMPLES = 128 * 1024;

export class BpfUserRingbuf extends BpfRingbuf {
  /** rb->busy: a drain is running (a nested one gets EBUSY). */
  busy = false;

  constructor(k: Kernel, ops: BpfMapOps, attr: MapCreateAttr) {
    super(k, ops, attr);
  }

  /** User space's write of the data pages at ring offset `off` (any of the two copies). */
  writeData(off: number, data: Uint8Array): void {
    const mem = this.kernel.mem;
    const size = this.totalDataSize;
    for (let i = 0; i < data.length; ) {
      const at = (off + i) & this.mask;
      const n = Math.min(data.length - i, size - at);
      const part = data.subarray(i, i + n);
      mem.bytes(this.dataAddr + at, n).set(part);
      mem.bytes(this.dataAddr + size + at, n).set(part);
      i += n;
    }
  }

  /**
   * __bpf_user_ringbuf_peek: the record at the consumer position, as [address, size]; or
   * -ENODATA (nothing committed), -EAGAIN (a discarded record, skipped), -EINVAL / -E2BIG (a
   * header user space got wrong).
   */
  peek(): [number, number] | number {
    const prod = this.producerPos;
    if (prod % 8n) return -EINVAL;
    const cons = this.consumerPos;
    if (cons >= prod) return -ENODATA;
    const hdrAddr = this.dataAddr + Number(cons & BigInt(this.mask));
    const b = this.kernel.mem.bytes(hdrAddr, 4);
    const hdrLen = new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
    const flags = hdrLen & (BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
    const sampleLen = (hdrLen & ~flags) >>> 0;
    const totalLen = (sampleLen + BPF_RINGBUF_HDR_SZ + 7) & ~7;
    if (BigInt(totalLen) > prod - cons) return -EINVAL;
    if (totalLen > this.totalDataSize) return -E2BIG;
    if (dynptrCheckSize(BigInt(sampleLen))) return -E2BIG;
    if (flags & BPF_RINGBUF_DISCARD_BIT) {
      this.consumerPos = cons + BigInt(totalLen);
      return -EAGAIN;
    }
    if (flags & BPF_RINGBUF_BUSY_BIT) return -ENODATA;
    return [this.dataAddr + Number((cons + BigInt(BPF_RINGBUF_HDR_SZ)) & BigInt(this.mask)), sampleLen];
  }

  /** __bpf_user_ringbuf_sample_release. */
  release(size: number): void {
    this.consumerPos += BigInt((size + BPF_RINGBUF_HDR_SZ + 7) & ~7);
  }
}

/**
 * ringbuf_map_mmap_user: the consumer position's page may not be mapped writable (EPERM); the
 * producer position and the data may.
 */
function userRingbufMmap(map: BpfMap, pgoff: number, len: number, write: boolean): UserMapping {
  const rb = map as BpfUserRingbuf;
  if (write && pgoff === 0)
    throw new BpfError(EPERM, "a user ring buffer's consumer position cannot be mapped writable");
  const pages = RINGBUF_POS_PAGES + (2 * map.max_entries) / PAGE_SIZE;
  if (len <= 0 || pgoff < 0 || pgoff + Math.ceil(len / PAGE_SIZE) > pages)
    throw new BpfError(EINVAL, "mapping past the end of the ring buffer");
  const start = pgoff * PAGE_SIZE;
  const mem = rb.kernel.mem;
  const posBase = rb.area.addr + RINGBUF_PGOFF * PAGE_SIZE;
  const dataStart = RINGBUF_POS_PAGES * PAGE_SIZE;
  const check = (off: number, n: number) => {
    if (off < 0 || n < 0 || off + n > len) throw new BpfError(EFAULT, "access outside the mapping");
  };
  return {
    length: len,
    writable: write,
    read(off, n) {
      check(off, n);
      const out = new Uint8Array(n);
      for (let i = 0; i < n; ) {
        const at = start + off + i;
        const chunk = Math.min(n - i, PAGE_SIZE - (at % PAGE_SIZE));
        if (at < dataStart) out.set(mem.bytes(posBase + at, chunk), i);
        else out.set(rb.readData(at - dataStart, chunk), i);
        i += chunk;
      }
      return out;
    },
    write(off, data) {
      if (!write) throw new BpfError(EFAULT, "write to a read-only mapping");
      check(off, data.length);
      for (let i = 0; i < data.length; ) {
        const at = start + off + i;
        const chunk = Math.min(data.length - i, PAGE_SIZE - (at % PAGE_SIZE));
        const part = data.subarray(i, i + chunk);
        if (at < dataStart) mem.bytes(posBase + at, chunk).set(part);
        else rb.writeData(at - dataStart, part);
        i += chunk;
      }
    },
  };
}

export const user_ringbuf_map_ops: BpfMapOps = {
  ...ringbuf_map_ops,
  map_alloc(attr, k) {
    return new BpfUserRingbuf(k, user_ringbuf_map_ops, attr);
  },
  map_free(map) {
    map.kernel.mem.free((map as BpfUserRingbuf).area);
  },
  map_mmap: userRingbufMmap,
  /** user_ringbuf_map_poll_kern: writable while the ring has room. */
  map_poll(map) {
    const rb = map as BpfUserRingbuf;
    return rb.availData < BigInt(rb.totalDataSize) ? EPOLLOUT | EPOLLWRNORM : 0;
  },
  map_lookup_elem() {
    throw new BpfError(ENOTSUPP, "user ring buffers have no elements to look up");
  },
};

type Callback = (fn: bigint, args: readonly (bigint | number)[]) => bigint;

/**
 * bpf_user_ringbuf_drain(map, callback_fn, callback_ctx, flags): each committed record, up to
 * BPF_MAX_USER_RINGBUF_SAMPLES, to the callback as a local dynptr (its struct on the kernel's
 * stack), until it returns 1; the count of records taken (discarded ones excluded), -EBUSY while
 * another drain runs, or the header's error.
 */
function bpfUserRingbufDrain(k: Kernel, c: HelperArgs): number {
  const flags = c.arg(4);
  if (flags & ~BigInt(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) return -EINVAL;
  const rb = k.mapByAddr.get(c.argNum(1));
  if (!(rb instanceof BpfUserRingbuf)) throw new BpfError(EINVAL, "r1 is not a user ring buffer map");
  if (rb.busy) return -EBUSY;
  if (!c.invokeCallback) throw new Error("bpf_user_ringbuf_drain: the runtime cannot call BPF callbacks");
  const call: Callback = (fn, args) => (c.invokeCallback as Callback)(fn, args);
  rb.busy = true;
  const kstack = k.mem.alloc(16, { perm: "rw", kind: "kernel", name: "bpf_user_ringbuf_drain dynptr" });
  let samples = 0;
  let discarded = 0;
  let ret = 0n;
  try {
    for (; samples < BPF_MAX_USER_RINGBUF_SAMPLES && ret === 0n; samples++) {
      const got = rb.peek();
      if (typeof got === "number") {
        if (got === -ENODATA) break;
        if (got === -EAGAIN) {
          discarded++;
          continue;
        }
        return got;
      }
      const [sample, size] = got;
      new DynptrKern(k, kstack.addr).init(sample, BPF_DYNPTR_TYPE_LOCAL, 0, size);
      ret = call(c.arg(2), [BigInt(kstack.addr), c.arg(3), 0n, 0n, 0n]);
      rb.release(size);
    }
    return samples - discarded;
  } finally {
    rb.busy = false;
    k.mem.free(kstack);
    if (flags & BigInt(BPF_RB_FORCE_WAKEUP) || (!(flags & BigInt(BPF_RB_NO_WAKEUP)) && samples > 0)) rb.wakeups++;
  }
}

export function registerUserRingbufHelpers(k: Kernel): void {
  k.registerHelper(F.BPF_FUNC_user_ringbuf_drain, (c) => bpfUserRingbufDrain(k, c));
}
