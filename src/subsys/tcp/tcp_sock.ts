/**
 * Memory-backed views of struct tcp_sock, ack_sample and rate_sample.
 *
 * The structs live in "kernel memory" (a DataView plus a base offset and the address a BPF program sees),
 * laid out by the simulated kernel's BTF (./btf.ts). Field offsets are resolved once, when this module
 * loads, and each field becomes a plain getter/setter on the prototype, so TypeScript code reads
 * `sk.snd_cwnd` while a BPF program reads the same bytes through CO-RE-relocated loads.
 */

import { type FieldLayout, layoutTcpTypes, type StructLayout } from "./btf.js";
import type { TcpCongestionOps } from "./tcp_cong.js";
import { type MinmaxRef, minmax_get } from "./win_minmax.js";

export const TCP_LAYOUTS: Map<string, StructLayout> = layoutTcpTypes();

/** The kernel's clocks as TCP uses them: jiffies at CONFIG_HZ and ktime in ns. The simulator drives them. */
export interface KernelClock {
  readonly HZ: number;
  /** ktime_get_ns(): monotonic ns since boot. */
  ktime_get_ns(): number;
  /** jiffies (64-bit, starting at INITIAL_JIFFIES like Linux so 32-bit wrap is exercised early). */
  jiffies(): number;
}

/** tcp_jiffies32 */
export function tcp_jiffies32(clock: KernelClock): number {
  return clock.jiffies() >>> 0;
}

/** tcp_clock_us(): the microsecond clock tcp_mstamp is refreshed from. */
export function tcp_clock_us(clock: KernelClock): number {
  return Math.floor(clock.ktime_get_ns() / 1000);
}

/** tcp_min_rtt */
export function tcp_min_rtt(sk: { rtt_min: MinmaxRef }): number {
  return minmax_get(sk.rtt_min);
}

/** A clock that stands still unless advanced: for unit tests of the ops. */
export class ManualClock implements KernelClock {
  readonly HZ: number;
  ns = 1e9;
  constructor(HZ = 1000) {
    this.HZ = HZ;
  }
  ktime_get_ns(): number {
    return this.ns;
  }
  jiffies(): number {
    return Math.floor((this.ns * this.HZ) / 1e9) + INITIAL_JIFFIES_OFFSET(this.HZ);
  }
}

/** INITIAL_JIFFIES = (unsigned long)(unsigned int)(-300 * HZ): wraps 32 bits five minutes after boot. */
export function INITIAL_JIFFIES_OFFSET(HZ: number): number {
  return (-300 * HZ) >>> 0;
}

/** Where a struct lives: a view on the memory, the byte offset inside it, and its address for BPF. */
export interface KernelMem {
  view: DataView;
  offset: number;
  addr: number;
}

/** Allocates zeroed kernel memory; the default is a plain ArrayBuffer, a VmMemory region later. */
export interface KernelAllocator {
  alloc(size: number, align: number): KernelMem;
}

let nextFakeAddr = 0x7fff_0000_0000; // stays an exact double
export const arrayBufferAllocator: KernelAllocator = {
  alloc(size: number): KernelMem {
    const buf = new ArrayBuffer(size);
    // A kernel-looking address so a BPF pointer is never 0; only meaningful with a real VmMemory.
    const addr = nextFakeAddr;
    nextFakeAddr += 4096;
    return { view: new DataView(buf), offset: 0, addr };
  },
};

const TWO32 = 2 ** 32;

function accessor(f: FieldLayout): PropertyDescriptor {
  const off = f.offset;
  if (f.bits !== undefined) {
    const shift = f.bitOffset - f.offset * 8;
    const mask = (1 << f.bits) - 1;
    return {
      get(this: StructView) {
        return (this.mem.view.getUint8(this.mem.offset + off) >> shift) & mask;
      },
      set(this: StructView, v: number) {
        const o = this.mem.offset + off;
        const old = this.mem.view.getUint8(o);
        this.mem.view.setUint8(o, (old & ~(mask << shift)) | ((v & mask) << shift));
      },
    };
  }
  switch (f.size) {
    case 1:
      return {
        get(this: StructView) {
          return this.mem.view.getUint8(this.mem.offset + off);
        },
        set(this: StructView, v: number) {
          this.mem.view.setUint8(this.mem.offset + off, v);
        },
      };
    case 2:
      return {
        get(this: StructView) {
          return this.mem.view.getUint16(this.mem.offset + off, true);
        },
        set(this: StructView, v: number) {
          this.mem.view.setUint16(this.mem.offset + off, v, true);
        },
      };
    case 4:
      return f.signed
        ? {
            get(this: StructView) {
              return this.mem.view.getInt32(this.mem.offset + off, true);
            },
            set(this: StructView, v: number) {
              this.mem.view.setInt32(this.mem.offset + off, v, true);
            },
          }
        : {
            get(this: StructView) {
              return this.mem.view.getUint32(this.mem.offset + off, true);
            },
            set(this: StructView, v: number) {
              this.mem.view.setUint32(this.mem.offset + off, v >>> 0, true);
            },
          };
    case 8:
      // Values stay below 2^53 (times in us, rates in bytes/s); split in two 32-bit halves, no BigInt.
      return {
        get(this: StructView) {
          const o = this.mem.offset + off;
          const lo = this.mem.view.getUint32(o, true);
          const hi = f.signed ? this.mem.view.getInt32(o + 4, true) : this.mem.view.getUint32(o + 4, true);
          return hi * TWO32 + lo;
        },
        set(this: StructView, v: number) {
          const o = this.mem.offset + off;
          this.mem.view.setUint32(o, v >>> 0, true);
          this.mem.view.setUint32(o + 4, Math.floor(v / TWO32) >>> 0, true);
        },
      };
    default:
      throw new Error(`tcp_sock: no accessor for a ${f.size}-byte field`);
  }
}

/** Base of every memory-backed struct view. */
export class StructView {
  readonly mem: KernelMem;
  readonly layout: StructLayout;
  constructor(layout: StructLayout, alloc: KernelAllocator = arrayBufferAllocator) {
    this.layout = layout;
    this.mem = alloc.alloc(layout.size, layout.align);
  }
  /** The address a BPF program receives for this struct. */
  get addr(): number {
    return this.mem.addr;
  }
  /** Byte offset of a member path ("icsk_ca_priv", "inet_conn.icsk_ack.pending") in this struct. */
  offsetof(path: string): number {
    const f = this.layout.fields.get(path);
    if (!f) throw new Error(`${this.layout.name}: no member ${path}`);
    return f.offset;
  }
}

/** Install accessors for short names resolved to member paths, failing at load if the layout lacks one. */
function install(cls: { prototype: object }, layout: StructLayout, names: readonly string[], aliases = {}): void {
  const leaf = new Map<string, string>();
  for (const path of layout.fields.keys()) {
    const last = path.slice(path.lastIndexOf(".") + 1);
    if (!leaf.has(last)) leaf.set(last, path);
  }
  const alias = aliases as Record<string, string>;
  for (const name of names) {
    const path = alias[name] ?? leaf.get(name);
    const f = path === undefined ? undefined : layout.fields.get(path);
    if (!f) throw new Error(`${layout.name}: no member for ${name}`);
    Object.defineProperty(cls.prototype, name, { ...accessor(f), configurable: true });
  }
}

const TCP_SOCK_FIELDS = [
  // struct sock / sock_common
  "sk_state",
  "sk_pacing_rate",
  "sk_max_pacing_rate",
  "sk_pacing_status",
  "sk_pacing_shift",
  "sk_gso_max_size",
  "sk_gso_max_segs",
  "sk_sndbuf",
  // struct inet_connection_sock
  "icsk_rto",
  "icsk_rto_min",
  "icsk_ca_state",
  "icsk_ca_initialized",
  "icsk_ca_setsockopt",
  "icsk_ca_dst_locked",
  "icsk_retransmits",
  "icsk_backoff",
  "icsk_ack_pending",
  "icsk_ack_quick",
  "icsk_ack_pingpong",
  "icsk_ack_ato",
  "icsk_ack_lrcvtime",
  "icsk_ack_rcv_mss",
  "icsk_ack_timeout",
  // struct tcp_sock
  "snd_cwnd",
  "snd_ssthresh",
  "snd_una",
  "snd_nxt",
  "packets_out",
  "sacked_out",
  "lost_out",
  "retrans_out",
  "snd_cwnd_cnt",
  "snd_cwnd_clamp",
  "snd_cwnd_stamp",
  "prior_cwnd",
  "prior_ssthresh",
  "high_seq",
  "undo_marker",
  "undo_retrans",
  "retrans_stamp",
  "prr_delivered",
  "prr_out",
  "reordering",
  "mss_cache",
  "srtt_us",
  "mdev_us",
  "mdev_max_us",
  "rttvar_us",
  "rtt_seq",
  "tcp_mstamp",
  "lsndtime",
  "max_packets_out",
  "cwnd_usage_seq",
  "is_cwnd_limited",
  "is_sack_reneg",
  "ecn_flags",
  "delivered",
  "delivered_ce",
  "lost",
  "app_limited",
  "first_tx_mstamp",
  "delivered_mstamp",
  "rate_delivered",
  "rate_interval_us",
  "rcv_nxt",
  "rcv_wnd",
  "snd_wnd",
  "write_seq",
  "bytes_acked",
  "bytes_received",
  "segs_out",
  "data_segs_out",
  "total_retrans",
  "tcp_wstamp_ns",
  "tcp_clock_cache",
] as const;

export type TcpSockField = (typeof TCP_SOCK_FIELDS)[number];
export type TcpSockFields = { [K in TcpSockField]: number };

/**
 * struct tcp_sock (which begins with inet_connection_sock, inet_sock, sock and sock_common), plus the
 * kernel-private pointer to the congestion-control ops (icsk_ca_ops) kept as a TypeScript reference.
 */
class TcpSockBase extends StructView {
  icsk_ca_ops!: TcpCongestionOps;
  /** The kernel clock this socket's host runs on (tcp_jiffies32, tcp_mstamp). */
  clock: KernelClock;
  /** A name for traces and errors ("flow 0"). */
  readonly name: string;
  constructor(clock: KernelClock, name = "tcp_sock", alloc?: KernelAllocator) {
    super(TCP_LAYOUTS.get("tcp_sock")!, alloc);
    this.clock = clock;
    this.name = name;
  }
  /** inet_csk_ca(sk): the 104-byte icsk_ca_priv area, as a DataView (the CC's private struct). */
  inet_csk_ca(): DataView {
    // Cached: the CA ops call this on every ACK. Rebuilt if the backing memory was replaced (grown).
    const c = this.caPriv;
    if (c && c.buffer === this.mem.view.buffer) return c;
    const off = this.mem.offset + this.offsetof("inet_conn.icsk_ca_priv");
    this.caPriv = new DataView(this.mem.view.buffer, this.mem.view.byteOffset + off, 13 * 8);
    return this.caPriv;
  }
  private caPriv?: DataView;
  /** tp->rtt_min, the windowed min-RTT filter (win_minmax.ts); tcp_min_rtt(tp) is its minmax_get. */
  get rtt_min(): MinmaxRef {
    return { v: this.mem.view, off: this.mem.offset + this.offsetof("rtt_min") };
  }
  /** memset(icsk->icsk_ca_priv, 0, sizeof(icsk->icsk_ca_priv)) */
  clear_ca_priv(): void {
    const off = this.mem.offset + this.offsetof("inet_conn.icsk_ca_priv");
    for (let i = 0; i < 13 * 8; i++) this.mem.view.setUint8(off + i, 0);
  }
}
export type TcpSock = TcpSockBase & TcpSockFields;
export const TcpSock = TcpSockBase as unknown as new (
  clock: KernelClock,
  name?: string,
  alloc?: KernelAllocator,
) => TcpSock;
install(TcpSockBase, TCP_LAYOUTS.get("tcp_sock")!, TCP_SOCK_FIELDS, {
  sk_state: "inet_conn.icsk_inet.sk.__sk_common.skc_state",
  icsk_ack_pending: "inet_conn.icsk_ack.pending",
  icsk_ack_quick: "inet_conn.icsk_ack.quick",
  icsk_ack_pingpong: "inet_conn.icsk_ack.pingpong",
  icsk_ack_ato: "inet_conn.icsk_ack.ato",
  icsk_ack_lrcvtime: "inet_conn.icsk_ack.lrcvtime",
  icsk_ack_rcv_mss: "inet_conn.icsk_ack.rcv_mss",
  icsk_ack_timeout: "inet_conn.icsk_ack.timeout",
});

const ACK_SAMPLE_FIELDS = ["pkts_acked", "rtt_us", "in_flight"] as const;
/** struct ack_sample, passed to pkts_acked. */
class AckSampleBase extends StructView {
  constructor(alloc?: KernelAllocator) {
    super(TCP_LAYOUTS.get("ack_sample")!, alloc);
  }
}
export type AckSample = AckSampleBase & Record<(typeof ACK_SAMPLE_FIELDS)[number], number>;
export const AckSample = AckSampleBase as unknown as new (alloc?: KernelAllocator) => AckSample;
install(AckSampleBase, TCP_LAYOUTS.get("ack_sample")!, ACK_SAMPLE_FIELDS);

const RATE_SAMPLE_FIELDS = [
  "prior_mstamp",
  "prior_delivered",
  "prior_delivered_ce",
  "delivered",
  "delivered_ce",
  "interval_us",
  "snd_interval_us",
  "rcv_interval_us",
  "rtt_us",
  "losses",
  "acked_sacked",
  "prior_in_flight",
  "last_end_seq",
  "is_app_limited",
  "is_retrans",
  "is_ack_delayed",
] as const;
/** struct rate_sample, passed to cong_control. */
class RateSampleBase extends StructView {
  constructor(alloc?: KernelAllocator) {
    super(TCP_LAYOUTS.get("rate_sample")!, alloc);
  }
}
export type RateSample = RateSampleBase & Record<(typeof RATE_SAMPLE_FIELDS)[number], number>;
export const RateSample = RateSampleBase as unknown as new (alloc?: KernelAllocator) => RateSample;
install(RateSampleBase, TCP_LAYOUTS.get("rate_sample")!, RATE_SAMPLE_FIELDS);
