/**
 * The consumer side of BPF ring buffers, as libbpf's src/ringbuf.c: ring_buffer__new / add /
 * poll / consume / consume_n / free and the ring__* accessors. Each ring is mmap()ed as libbpf
 * maps it: the consumer position's page writable, the producer position's page and the data
 * (twice, so a record wrapping past the end reads as one) read-only. Records are read in order
 * from the consumer position: a busy one stops the walk, a discarded one is skipped, each other
 * goes to the ring's callback, and the consumer position advances past what was read.
 *
 * There is nothing to wait for in a simulated kernel: ring_buffer__poll consumes the rings whose
 * fd reports EPOLLIN now and returns at once (as when the timeout expires) when none does.
 */
import type { UserMapping } from "../kernel/bpf.js";
import { bpf_map_type } from "../uapi/bpf.js";
import { BpfError, E2BIG, EINVAL } from "../uapi/errno.js";
import { type BpfHandle, bpf_map_get_info_by_fd, mmap, poll } from "./bpf.js";

const PAGE_SIZE = 4096;
const BPF_RINGBUF_BUSY_BIT = 0x80000000;
const BPF_RINGBUF_DISCARD_BIT = 0x40000000;
const BPF_RINGBUF_HDR_SZ = 8;
const EPOLLIN = 0x1;
const INT_MAX = 0x7fffffff;

/**
 * ring_buffer_sample_fn: called with each record's bytes (a copy) and its length; a negative
 * return stops consumption and is returned by the consume/poll call.
 */
export type RingBufferSampleFn = (ctx: unknown, data: Uint8Array, size: number) => number;

export interface RingBufferOpts {
  /** libbpf's print callback for the warnings ring_buffer__add logs. */
  print?: (level: "warn", msg: string) => void;
}

/** roundup_len: the header's flag bits dropped, plus the header, 8-byte aligned. */
function roundupLen(len: number): number {
  return (((len & 0x3fffffff) + BPF_RINGBUF_HDR_SZ + 7) >>> 3) << 3;
}

/** struct ring: one ring buffer map of a ring_buffer manager. */
export class Ring {
  constructor(
    readonly mapFd: number,
    readonly sampleCb: RingBufferSampleFn,
    readonly ctx: unknown,
    readonly mask: number,
    /** The consumer position's page (read-write). */
    private readonly consumer: UserMapping,
    /** The producer position's page, then the data pages twice (read-only). */
    private readonly producerAndData: UserMapping,
  ) {}

  private static u64(m: UserMapping, off: number): bigint {
    const b = m.read(off, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }
  get consumerPos(): bigint {
    return Ring.u64(this.consumer, 0);
  }
  set consumerPos(v: bigint) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    this.consumer.write(0, b);
  }
  get producerPos(): bigint {
    return Ring.u64(this.producerAndData, 0);
  }
  /** The ring's data bytes from position `pos` (the double mapping makes a wrapped record contiguous). */
  private data(pos: bigint, len: number): Uint8Array {
    return this.producerAndData.read(PAGE_SIZE + Number(pos & BigInt(this.mask)), len);
  }

  /** ringbuf_process_ring: up to n records; their count, or the callback's negative result. */
  process(n: number): number {
    let cnt = 0;
    let cons = this.consumerPos;
    let gotNew: boolean;
    do {
      gotNew = false;
      const prod = this.producerPos;
      while (cons < prod) {
        const hdr = this.data(cons, BPF_RINGBUF_HDR_SZ);
        const len = new DataView(hdr.buffer).getUint32(0, true);
        // Not committed yet: stop here for now.
        if (len & BPF_RINGBUF_BUSY_BIT) return cnt;
        gotNew = true;
        const at = cons;
        cons += BigInt(roundupLen(len));
        if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
          const sample = this.data(at + BigInt(BPF_RINGBUF_HDR_SZ), len);
          const err = this.sampleCb(this.ctx, sample, len);
          if (err < 0) {
            this.consumerPos = cons;
            return err;
          }
          cnt++;
        }
        this.consumerPos = cons;
        if (cnt >= n) return cnt;
      }
    } while (gotNew);
    return cnt;
  }

  /** ring__avail_data_size. */
  get availDataSize(): bigint {
    return this.producerPos - this.consumerPos;
  }
  /** ring__size. */
  get size(): number {
    return this.mask + 1;
  }
}

/** struct ring_buffer: the rings one consumer polls. */
export class RingBuffer {
  readonly rings: Ring[] = [];
  freed = false;
  constructor(
    readonly h: BpfHandle,
    private readonly opts: RingBufferOpts,
  ) {}
  warn(msg: string): void {
    this.opts.print?.("warn", msg);
  }
}

/** ring_buffer__add: a ring of `mapFd` with its callback; 0 or a negative errno. */
export function ring_buffer__add(rb: RingBuffer, mapFd: number, cb: RingBufferSampleFn, ctx?: unknown): number {
  const info: { type?: number; max_entries?: number } = {};
  const err = bpf_map_get_info_by_fd(rb.h, mapFd, info);
  if (err < 0) {
    rb.warn(`ringbuf: failed to get map info for fd=${mapFd}: ${err}`);
    return err;
  }
  if (info.type !== bpf_map_type.BPF_MAP_TYPE_RINGBUF) {
    rb.warn(`ringbuf: map fd=${mapFd} is not BPF_MAP_TYPE_RINGBUF`);
    return -EINVAL;
  }
  const maxEntries = info.max_entries ?? 0;
  const consumer = mmap(rb.h, mapFd, PAGE_SIZE, true, 0);
  if (typeof consumer === "number") {
    rb.warn(`ringbuf: failed to mmap consumer page for map fd=${mapFd}: ${consumer}`);
    return consumer;
  }
  const mmapSz = PAGE_SIZE + 2 * maxEntries;
  if (mmapSz > Number.MAX_SAFE_INTEGER) {
    rb.warn(`ringbuf: ring buffer size (${maxEntries}) is too big`);
    return -E2BIG;
  }
  const data = mmap(rb.h, mapFd, mmapSz, false, PAGE_SIZE);
  if (typeof data === "number") {
    rb.warn(`ringbuf: failed to mmap data pages for map fd=${mapFd}: ${data}`);
    return data;
  }
  rb.rings.push(new Ring(mapFd, cb, ctx, maxEntries - 1, consumer, data));
  return 0;
}

/** ring_buffer__new: a manager with the ring of `mapFd`; throws the add's error (libbpf: NULL, errno). */
export function ring_buffer__new(
  h: BpfHandle,
  mapFd: number,
  cb: RingBufferSampleFn,
  ctx?: unknown,
  opts: RingBufferOpts = {},
): RingBuffer {
  const rb = new RingBuffer(h, opts);
  const err = ring_buffer__add(rb, mapFd, cb, ctx);
  if (err < 0) throw new BpfError(-err, `ring_buffer__new: map fd ${mapFd}`);
  return rb;
}

/** ring_buffer__free: the rings are unmapped (the maps stay with their fds). */
export function ring_buffer__free(rb: RingBuffer | null): void {
  if (!rb) return;
  rb.rings.length = 0;
  rb.freed = true;
}

/** ring_buffer__consume_n: up to n records over the rings in order; the count or the first error. */
export function ring_buffer__consume_n(rb: RingBuffer, n: number): number {
  let res = 0;
  for (const r of rb.rings) {
    if (n - res <= 0) break;
    const err = r.process(n - res);
    if (err < 0) return err;
    res += err;
  }
  return Math.min(res, INT_MAX);
}

/** ring_buffer__consume: every available record of every ring. */
export function ring_buffer__consume(rb: RingBuffer): number {
  let res = 0;
  for (const r of rb.rings) {
    const err = r.process(INT_MAX);
    if (err < 0) return err;
    res += err;
    if (res > INT_MAX) return INT_MAX;
  }
  return res;
}

/**
 * ring_buffer__poll: the rings whose fd is readable (epoll_wait's events) are consumed; the count
 * of records, or a negative errno. `timeoutMs` cannot pass in a simulated kernel: with no ring
 * readable the call returns 0 at once.
 */
export function ring_buffer__poll(rb: RingBuffer, _timeoutMs: number): number {
  let res = 0;
  for (const r of rb.rings) {
    const ev = poll(rb.h, r.mapFd);
    if (ev < 0) return ev;
    if (!(ev & EPOLLIN)) continue;
    const err = r.process(INT_MAX);
    if (err < 0) return err;
    res += err;
  }
  return Math.min(res, INT_MAX);
}

/** ring_buffer__ring: the ring at `idx`, or undefined (libbpf: NULL, -ENOENT). */
export function ring_buffer__ring(rb: RingBuffer, idx: number): Ring | undefined {
  return rb.rings[idx];
}

/** ring__consumer_pos, ring__producer_pos, ring__avail_data_size, ring__size, ring__map_fd. */
export const ring__consumer_pos = (r: Ring): bigint => r.consumerPos;
export const ring__producer_pos = (r: Ring): bigint => r.producerPos;
export const ring__avail_data_size = (r: Ring): bigint => r.availDataSize;
export const ring__size = (r: Ring): number => r.size;
export const ring__map_fd = (r: Ring): number => r.mapFd;
/** ring__consume_n / ring__consume: this ring alone. */
export const ring__consume_n = (r: Ring, n: number): number => r.process(n);
export const ring__consume = (r: Ring): number => r.process(INT_MAX);
