/**
 * net/core/skbuff.c, as far as a packet scheduler needs it: `struct sk_buff` objects in VM memory
 * laid out by the simulated kernel's BTF, reference-counted (`users`), freed by kfree_skb /
 * consume_skb, with qdisc_skb_cb in cb[]. The allocator keeps the kernel's accounting (allocated,
 * freed, live) so a run can prove that no skb leaked and none was freed twice.
 */
import type { Btf } from "../../btf/btf.js";
import type { BtfComposite } from "../../btf/types.js";
import type { MemRegion } from "../../kernel/bpf.js";
import type { Kernel } from "../../kernel/kernel.js";
import { BTF_KIND_STRUCT, BTF_KIND_UNION } from "../../uapi/btf.js";
import type { VmMemory } from "../../vm/memory.js";

/** Byte offset of member `name` of struct `structId`, looking through anonymous members. */
export function memberOffset(btf: Btf, structId: number, name: string): number {
  const find = (id: number, base: number): number => {
    const t = btf.typeById(id);
    if (t.kind !== BTF_KIND_STRUCT && t.kind !== BTF_KIND_UNION) return -1;
    for (const m of (t as BtfComposite).members) {
      if (m.name === name) return base + m.bitOffset / 8;
    }
    for (const m of (t as BtfComposite).members) {
      if (m.name !== "") continue;
      const r = find(m.type, base + m.bitOffset / 8);
      if (r >= 0) return r;
    }
    return -1;
  };
  const off = find(structId, 0);
  if (off < 0) throw new Error(`qdisc btf: no member ${name} in ${btf.typeById(structId).name}`);
  return off;
}

export function structId(btf: Btf, name: string): number {
  const id = btf.findByNameKind(name, BTF_KIND_STRUCT);
  if (id < 0) throw new Error(`qdisc btf: no struct ${name}`);
  return id;
}

/** sizeof(struct ...) of a struct by id. */
export function structSize(btf: Btf, id: number): number {
  return (btf.typeById(id) as BtfComposite).size;
}

/** Where the kernel reads and writes an sk_buff (from vmlinux BTF). */
export interface SkbLayout {
  readonly size: number;
  readonly next: number;
  readonly sk: number;
  readonly tstamp: number;
  readonly cb: number;
  readonly len: number;
  readonly priority: number;
  readonly hash: number;
  readonly queue_mapping: number;
  readonly users: number;
  /** cb + qdisc_skb_cb.pkt_len */
  readonly pkt_len: number;
}

export function skbLayout(btf: Btf): SkbLayout {
  const skb = structId(btf, "sk_buff");
  const cb = memberOffset(btf, skb, "cb");
  return {
    size: (btf.typeById(skb) as BtfComposite).size,
    next: memberOffset(btf, skb, "next"),
    sk: memberOffset(btf, skb, "sk"),
    tstamp: memberOffset(btf, skb, "tstamp"),
    cb,
    len: memberOffset(btf, skb, "len"),
    priority: memberOffset(btf, skb, "priority"),
    hash: memberOffset(btf, skb, "hash"),
    queue_mapping: memberOffset(btf, skb, "queue_mapping"),
    users: memberOffset(btf, skb, "users"),
    pkt_len: cb + memberOffset(btf, structId(btf, "qdisc_skb_cb"), "pkt_len"),
  };
}

/** One packet. `addr` is its `struct sk_buff` in VM memory; `meta` is whatever the sender attached. */
export class SkBuff {
  /** The flow the simulation accounts it to. */
  flow = 0;
  /** The sender's packet (a TCP segment), handed on when the skb leaves the qdisc. */
  meta: unknown = undefined;
  /** When it entered the qdisc (ns, the scheduler's clock), for queueing delay. */
  enqueuedAt = 0;
  /** Its packet bytes (skb->data, skb->len bytes, linear), made the first time something reads them. */
  dataRegion: MemRegion | undefined = undefined;

  constructor(
    readonly pool: SkbPool,
    readonly addr: number,
    readonly region: MemRegion,
  ) {}

  get len(): number {
    return this.pool.mem.readU32(this.addr + this.pool.L.len);
  }
  get users(): number {
    return this.pool.mem.readU32(this.addr + this.pool.L.users);
  }
  /** qdisc_pkt_len(): qdisc_skb_cb(skb)->pkt_len. */
  get pktLen(): number {
    return this.pool.mem.readU32(this.addr + this.pool.L.pkt_len);
  }
  set pktLen(v: number) {
    this.pool.mem.writeU32(this.addr + this.pool.L.pkt_len, v);
  }
  /** skb->tstamp: the earliest departure time (EDT) a paced sender set, ns; 0 = none. */
  get tstamp(): bigint {
    return this.pool.mem.readU64(this.addr + this.pool.L.tstamp);
  }
  set tstamp(v: bigint) {
    this.pool.mem.writeU64(this.addr + this.pool.L.tstamp, v);
  }
  get tstampNs(): number {
    return this.pool.mem.readU64Number(this.addr + this.pool.L.tstamp);
  }
  get hash(): number {
    return this.pool.mem.readU32(this.addr + this.pool.L.hash);
  }
  set hash(v: number) {
    this.pool.mem.writeU32(this.addr + this.pool.L.hash, v);
  }
  get sk(): number {
    return this.pool.mem.readU64Number(this.addr + this.pool.L.sk);
  }
  get priority(): number {
    return this.pool.mem.readU32(this.addr + this.pool.L.priority);
  }
  set priority(v: number) {
    this.pool.mem.writeU32(this.addr + this.pool.L.priority, v);
  }
  /** skb->next: the to_free list and the qdiscs' own lists link through it. */
  get next(): number {
    return this.pool.mem.readU64Number(this.addr + this.pool.L.next);
  }
  set next(v: number) {
    this.pool.mem.writeU64(this.addr + this.pool.L.next, v);
  }
}

export interface SkbAllocOpts {
  len: number;
  /** skb->sk (a struct sock address), 0 for none. */
  sk?: number;
  hash?: number;
  tstamp?: bigint;
  priority?: number;
  flow?: number;
  meta?: unknown;
}

/** What the kernel counts about skbs; a clean run ends with allocated === freed and no errors. */
export interface SkbStats {
  allocated: number;
  freed: number;
  /** kfree_skb: dropped (as opposed to consumed after transmission). */
  dropped: number;
  live: number;
  /** Frees of an skb whose last reference was already gone (a kernel BUG: use after free). */
  doubleFree: number;
}

/**
 * The skb slab: objects are recycled (as kmem_cache does), so a stale pointer a program kept
 * would see another packet, never unmapped memory.
 */
export class SkbPool {
  readonly mem: VmMemory;
  readonly L: SkbLayout;
  private readonly live = new Map<number, SkBuff>();
  private readonly spare: MemRegion[] = [];
  private readonly spareData: MemRegion[] = [];
  readonly stats: SkbStats = { allocated: 0, freed: 0, dropped: 0, live: 0, doubleFree: 0 };
  /** Called as an skb's last reference goes (consumed: transmitted; else dropped). */
  onFree?: (skb: SkBuff, consumed: boolean) => void;

  constructor(readonly kernel: Kernel) {
    const btf = kernel.btfVmlinux;
    if (!btf) throw new Error("skbuff: the kernel has no vmlinux BTF");
    this.mem = kernel.mem as unknown as VmMemory;
    this.L = skbLayout(btf);
  }

  /** alloc_skb(): one reference, zeroed, len and qdisc_skb_cb.pkt_len set. */
  alloc(o: SkbAllocOpts): SkBuff {
    const region =
      this.spare.pop() ?? this.kernel.mem.alloc(this.L.size, { perm: "rw", kind: "kobj", name: "sk_buff" });
    this.mem.bytes(region.addr, this.L.size).fill(0);
    const skb = new SkBuff(this, region.addr, region);
    const a = region.addr;
    const L = this.L;
    this.mem.writeU32(a + L.len, o.len);
    this.mem.writeU32(a + L.pkt_len, o.len);
    this.mem.writeU32(a + L.users, 1);
    if (o.sk) this.mem.writeU64(a + L.sk, o.sk);
    if (o.hash) this.mem.writeU32(a + L.hash, o.hash >>> 0);
    if (o.tstamp) this.mem.writeU64(a + L.tstamp, o.tstamp);
    if (o.priority) this.mem.writeU32(a + L.priority, o.priority);
    skb.flow = o.flow ?? 0;
    skb.meta = o.meta;
    this.live.set(a, skb);
    this.stats.allocated++;
    this.stats.live++;
    return skb;
  }

  /**
   * skb->data: the packet as the device will send it, made on first use (a dynptr over the skb):
   * an Ethernet header, IPv4 and TCP headers for the skb's flow (10.0.0.<flow+1>:<40000+flow> to
   * 10.0.1.1:5201; ECN bits, sequence number and ACK flag from the TCP segment it carries, when
   * it carries one), then zeroed payload, skb->len bytes in all.
   */
  packetData(skb: SkBuff): { data: number; len: number } {
    const len = skb.len;
    if (!skb.dataRegion) {
      // Data buffers are recycled like the skbs (a kmalloc cache of 2 KiB objects for MTU frames).
      const cap = Math.max(len, DATA_CHUNK);
      const spare = cap === DATA_CHUNK ? this.spareData.pop() : undefined;
      skb.dataRegion = spare ?? this.kernel.mem.alloc(cap, { perm: "rw", kind: "kobj", name: "skb data" });
      const b = this.mem.bytes(skb.dataRegion.addr, Math.max(len, 1));
      b.fill(0);
      const hdr = packetHeaders(skb.flow, len, skb.meta);
      b.set(hdr.subarray(0, Math.min(hdr.length, len)));
    }
    return { data: skb.dataRegion.addr, len };
  }

  /** The live skb at `addr` (a program handed one back), or undefined. */
  byAddr(addr: number): SkBuff | undefined {
    return this.live.get(addr);
  }

  /** skb_get(): one more reference. */
  get(skb: SkBuff): SkBuff {
    this.mem.writeU32(skb.addr + this.L.users, skb.users + 1);
    return skb;
  }

  /** kfree_skb(): drop a reference; the last one frees the skb as a drop. */
  kfree_skb(skb: SkBuff): void {
    this.put(skb, false);
  }

  /** consume_skb(): as kfree_skb, for an skb that did its job (transmitted). */
  consume_skb(skb: SkBuff): void {
    this.put(skb, true);
  }

  /** kfree_skb_list(): free every skb linked through skb->next from `head`. */
  kfree_skb_list(head: number): number {
    let n = 0;
    let addr = head;
    while (addr) {
      const skb = this.live.get(addr);
      if (!skb) {
        this.stats.doubleFree++;
        throw new Error(`kfree_skb_list: 0x${addr.toString(16)} is not a live skb`);
      }
      addr = skb.next;
      skb.next = 0;
      this.kfree_skb(skb);
      n++;
    }
    return n;
  }

  private put(skb: SkBuff, consumed: boolean): void {
    if (this.live.get(skb.addr) !== skb) {
      this.stats.doubleFree++;
      throw new Error(`skb 0x${skb.addr.toString(16)} freed twice`);
    }
    const users = skb.users;
    if (users > 1) {
      this.mem.writeU32(skb.addr + this.L.users, users - 1);
      return;
    }
    this.mem.writeU32(skb.addr + this.L.users, 0);
    this.live.delete(skb.addr);
    this.stats.freed++;
    this.stats.live--;
    if (!consumed) this.stats.dropped++;
    this.onFree?.(skb, consumed);
    if (skb.dataRegion) {
      if (skb.dataRegion.size === DATA_CHUNK) this.spareData.push(skb.dataRegion);
      else this.kernel.mem.free(skb.dataRegion);
    }
    skb.dataRegion = undefined;
    this.spare.push(skb.region);
  }

  /** Every live skb (leak checks). */
  liveSkbs(): IterableIterator<SkBuff> {
    return this.live.values();
  }
}

/** The size of a recycled packet data buffer. */
const DATA_CHUNK = 2048;
const ETH_HLEN = 14;
const ETH_P_IP = 0x0800;
const IPPROTO_TCP = 6;

/** Ethernet + IPv4 + TCP headers (54 bytes, network byte order) of a packet of `len` bytes on `flow`. */
export function packetHeaders(flow: number, len: number, meta: unknown): Uint8Array {
  const h = new Uint8Array(ETH_HLEN + 20 + 20);
  const dv = new DataView(h.buffer);
  const seg = (meta ?? {}) as { ect?: unknown; ce?: unknown; idx?: unknown };
  // Ethernet: 02:00:00:00:01:01 <- 02:00:00:00:00:<flow>.
  h.set([2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, flow & 0xff]);
  dv.setUint16(12, ETH_P_IP);
  // IPv4: version 4, ihl 5; ECN: ECT(0) or CE; DF; ttl 64.
  const ip = ETH_HLEN;
  h[ip] = 0x45;
  h[ip + 1] = seg.ce === true ? 3 : seg.ect === true ? 2 : 0;
  dv.setUint16(ip + 2, Math.max(0, Math.min(len - ETH_HLEN, 0xffff)));
  dv.setUint16(ip + 6, 0x4000);
  h[ip + 8] = 64;
  h[ip + 9] = IPPROTO_TCP;
  dv.setUint32(ip + 12, (0x0a000000 + ((flow + 1) & 0xffff)) >>> 0);
  dv.setUint32(ip + 16, 0x0a000101);
  // TCP: ports, sequence number of the segment's first byte, data offset 5, ACK.
  const tcp = ip + 20;
  dv.setUint16(tcp, 40000 + (flow & 0x3fff));
  dv.setUint16(tcp + 2, 5201);
  const payload = Math.max(len - h.length, 0);
  dv.setUint32(tcp + 4, typeof seg.idx === "number" ? (seg.idx * payload) >>> 0 : 0);
  h[tcp + 12] = 5 << 4;
  h[tcp + 13] = 0x10;
  dv.setUint16(tcp + 14, 65535);
  return h;
}
