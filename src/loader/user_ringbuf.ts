/**
 * The producer side of user ring buffers, as libbpf's src/ringbuf.c: user_ring_buffer__new /
 * reserve / reserve_blocking / submit / discard / free. The map is mmap()ed as libbpf maps it:
 * the consumer position's page read-only, the producer position's page and the data (twice, so a
 * record wrapping past the end writes as one) read-write. Reserving writes the record's header
 * with the busy bit and moves the producer position past it; submitting clears the bit (after
 * the payload is in the ring), discarding sets the discard bit, and a program's
 * bpf_user_ringbuf_drain then takes or skips the record.
 *
 * libbpf hands out a pointer into the mapping; here a sample is a buffer of the reserved size
 * that submit copies into the ring before it clears the busy bit, which is when the kernel may
 * first read it. Nothing runs concurrently in a simulated kernel, so reserve_blocking cannot wait
 * for a drain: it answers as its last try does once the timeout has passed.
 */
import type { UserMapping } from "../kernel/bpf.js";
import { bpf_map_type } from "../uapi/bpf.js";
import { BpfError, E2BIG, EINVAL, ENOSPC } from "../uapi/errno.js";
import { type BpfHandle, bpf_map_get_info_by_fd, mmap } from "./bpf.js";

const PAGE_SIZE = 4096;
const BPF_RINGBUF_BUSY_BIT = 0x80000000;
const BPF_RINGBUF_DISCARD_BIT = 0x40000000;
const BPF_RINGBUF_HDR_SZ = 8;

export interface UserRingBufferOpts {
  /** libbpf's print callback for the warnings user_ring_buffer__new logs. */
  print?: (level: "warn", msg: string) => void;
}

/** A reserved record: fill `data`, then submit or discard it. */
export interface UserRingBufferSample {
  readonly data: Uint8Array;
  /** The payload's position in the ring (the header is 8 bytes before it). */
  readonly pos: bigint;
  committed: boolean;
}

/** struct user_ring_buffer. */
export class UserRingBuffer {
  freed = false;
  constructor(
    readonly mapFd: number,
    readonly mask: number,
    /** The consumer position's page (read-only). */
    private readonly consumer: UserMapping,
    /** The producer position's page, then the data pages twice (read-write). */
    private readonly producerAndData: UserMapping,
  ) {}

  private static u64(m: UserMapping, off: number): bigint {
    const b = m.read(off, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }
  get consumerPos(): bigint {
    return UserRingBuffer.u64(this.consumer, 0);
  }
  get producerPos(): bigint {
    return UserRingBuffer.u64(this.producerAndData, 0);
  }
  set producerPos(v: bigint) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    this.producerAndData.write(0, b);
  }
  /** Write `bytes` at ring position `pos` (through the double mapping: no wrap to handle). */
  writeAt(pos: bigint, bytes: Uint8Array): void {
    this.producerAndData.write(PAGE_SIZE + Number(pos & BigInt(this.mask)), bytes);
  }
  hdrLen(pos: bigint): number {
    const b = this.producerAndData.read(PAGE_SIZE + Number(pos & BigInt(this.mask)), 4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  }
  setHdrLen(pos: bigint, len: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, len >>> 0, true);
    this.writeAt(pos, b);
  }
}

/** user_ring_buffer__new: map `mapFd`'s ring for producing; throws libbpf's errno (NULL). */
export function user_ring_buffer__new(h: BpfHandle, mapFd: number, opts: UserRingBufferOpts = {}): UserRingBuffer {
  const warn = (msg: string) => opts.print?.("warn", msg);
  const fail = (err: number): never => {
    throw new BpfError(-err, `user_ring_buffer__new: map fd ${mapFd}`);
  };
  const info: { type?: number; max_entries?: number } = {};
  const err = bpf_map_get_info_by_fd(h, mapFd, info);
  if (err < 0) {
    warn(`user ringbuf: failed to get map info for fd=${mapFd}: ${err}`);
    fail(err);
  }
  if (info.type !== bpf_map_type.BPF_MAP_TYPE_USER_RINGBUF) {
    warn(`user ringbuf: map fd=${mapFd} is not BPF_MAP_TYPE_USER_RINGBUF`);
    fail(-EINVAL);
  }
  const maxEntries = info.max_entries ?? 0;
  const consumer = mmap(h, mapFd, PAGE_SIZE, false, 0);
  if (typeof consumer === "number") {
    warn(`user ringbuf: failed to mmap consumer page for map fd=${mapFd}: ${consumer}`);
    return fail(consumer);
  }
  const mmapSz = PAGE_SIZE + 2 * maxEntries;
  if (mmapSz > Number.MAX_SAFE_INTEGER) {
    warn(`user ringbuf: ring buf size (${maxEntries}) is too big`);
    fail(-E2BIG);
  }
  const data = mmap(h, mapFd, mmapSz, true, PAGE_SIZE);
  if (typeof data === "number") {
    warn(`user ringbuf: failed to mmap data pages for map fd=${mapFd}: ${data}`);
    return fail(data);
  }
  return new UserRingBuffer(mapFd, maxEntries - 1, consumer, data);
}

/**
 * user_ring_buffer__reserve: room for a `size`-byte record, or a negative errno (libbpf: NULL
 * with errno): E2BIG for a size using the header's flag bits or larger than the ring, ENOSPC when
 * the records not yet drained leave too little room (a user ring may fill up completely).
 */
export function user_ring_buffer__reserve(rb: UserRingBuffer, size: number): UserRingBufferSample | number {
  if (size < 0 || size > 0xffffffff || size & (BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)) return -E2BIG;
  const cons = rb.consumerPos;
  const prod = rb.producerPos;
  const maxSize = rb.mask + 1;
  const avail = BigInt(maxSize) - (prod - cons);
  const total = Math.floor((size + BPF_RINGBUF_HDR_SZ + 7) / 8) * 8;
  if (total > maxSize) return -E2BIG;
  if (avail < BigInt(total)) return -ENOSPC;
  const hdr = new Uint8Array(8);
  new DataView(hdr.buffer).setUint32(0, (size | BPF_RINGBUF_BUSY_BIT) >>> 0, true);
  rb.writeAt(prod, hdr);
  rb.producerPos = prod + BigInt(total);
  return { data: new Uint8Array(size), pos: prod + BigInt(BPF_RINGBUF_HDR_SZ), committed: false };
}

/**
 * user_ring_buffer__reserve_blocking: as reserve; while the ring is full it would wait up to
 * `timeoutMs` (-1: for ever) for a drain, which cannot happen while the caller waits here, so it
 * gives reserve's answer. EINVAL for a negative timeout other than -1.
 */
export function user_ring_buffer__reserve_blocking(
  rb: UserRingBuffer,
  size: number,
  timeoutMs: number,
): UserRingBufferSample | number {
  if (timeoutMs < 0 && timeoutMs !== -1) return -EINVAL;
  return user_ring_buffer__reserve(rb, size);
}

/** user_ringbuf_commit: the payload into the ring, then the header's busy bit cleared. */
function commit(rb: UserRingBuffer, sample: UserRingBufferSample, discard: boolean): void {
  if (sample.committed) throw new BpfError(EINVAL, "user ring buffer sample committed twice");
  sample.committed = true;
  if (!discard && sample.data.length) rb.writeAt(sample.pos, sample.data);
  const hdrPos = sample.pos - BigInt(BPF_RINGBUF_HDR_SZ);
  let len = (rb.hdrLen(hdrPos) & ~BPF_RINGBUF_BUSY_BIT) >>> 0;
  if (discard) len = (len | BPF_RINGBUF_DISCARD_BIT) >>> 0;
  rb.setHdrLen(hdrPos, len);
}

/** user_ring_buffer__submit: the record becomes visible to bpf_user_ringbuf_drain. */
export function user_ring_buffer__submit(rb: UserRingBuffer, sample: UserRingBufferSample): void {
  commit(rb, sample, false);
}

/** user_ring_buffer__discard: the drain skips the record (and frees its room). */
export function user_ring_buffer__discard(rb: UserRingBuffer, sample: UserRingBufferSample): void {
  commit(rb, sample, true);
}

/** user_ring_buffer__free: the mappings go (the map stays with its fd). */
export function user_ring_buffer__free(rb: UserRingBuffer | null): void {
  if (rb) rb.freed = true;
}
