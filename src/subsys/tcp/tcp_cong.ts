/**
 * Pluggable TCP congestion control (net/ipv4/tcp_cong.c): the registry of struct tcp_congestion_ops,
 * per-socket assignment, init/cleanup and the setsockopt(TCP_CONGESTION) path.
 *
 * An ops implementation is either TypeScript (tcp_reno.ts, tcp_cubic.ts) or, through struct_ops, a set of
 * BPF trampolines: the stack only ever calls the optional functions below, so it cannot tell them apart.
 */
import { BpfError, EBUSY, EEXIST, EINVAL, ENOENT, EPERM } from "../../uapi/errno.js";
import { TCP_CA_NAME_MAX, TCP_CLOSE, TCP_CONG_NEEDS_ECN, TCP_CONG_NON_RESTRICTED, TCP_LISTEN } from "./btf.js";
import type { AckSample, RateSample, TcpSock } from "./tcp_sock.js";

/** A module or struct_ops map reference: try_module_get / bpf_try_module_get and their put. */
export interface CaOwner {
  get(): boolean;
  put(): void;
}

/** struct tcp_congestion_ops, member for member (kernel 6.18 order). */
export interface TcpCongestionOps {
  ssthresh?(sk: TcpSock): number;
  cong_avoid?(sk: TcpSock, ack: number, acked: number): void;
  set_state?(sk: TcpSock, new_state: number): void;
  cwnd_event?(sk: TcpSock, ev: number): void;
  in_ack_event?(sk: TcpSock, flags: number): void;
  pkts_acked?(sk: TcpSock, sample: AckSample): void;
  min_tso_segs?(sk: TcpSock): number;
  cong_control?(sk: TcpSock, ack: number, flag: number, rs: RateSample): void;
  undo_cwnd?(sk: TcpSock): number;
  sndbuf_expand?(sk: TcpSock): number;
  /** Fills union tcp_cc_info for inet_diag / TCP_CC_INFO; undefined when `ext` asks for nothing it has. */
  get_info?(sk: TcpSock, ext: number): TcpCcInfo | undefined;
  name: string;
  owner?: CaOwner;
  /** jhash of the name, set on registration. */
  key?: number;
  flags: number;
  init?(sk: TcpSock): void;
  release?(sk: TcpSock): void;
}

/** What get_info wrote: the netlink attribute (INET_DIAG_*), the size of the union member, its fields. */
export interface TcpCcInfo {
  attr: number;
  size: number;
  info: Record<string, number>;
}

export const TCP_CA_UNSPEC = 0;

function rol32(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** include/linux/jhash.h jhash() over bytes (Bob Jenkins' lookup3), as the kernel keys a CA by name. */
export function jhash(key: Uint8Array, initval: number): number {
  let a = (0xdeadbeef + key.length + initval) >>> 0;
  let b = a;
  let c = a;
  let length = key.length;
  let k = 0;
  const u32 = (i: number) => (key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24)) >>> 0;
  while (length > 12) {
    a = (a + u32(k)) >>> 0;
    b = (b + u32(k + 4)) >>> 0;
    c = (c + u32(k + 8)) >>> 0;
    // __jhash_mix
    a = (a - c) >>> 0;
    a ^= rol32(c, 4);
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b ^= rol32(a, 6);
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c ^= rol32(b, 8);
    b = (b + a) >>> 0;
    a = (a - c) >>> 0;
    a ^= rol32(c, 16);
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b ^= rol32(a, 19);
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c ^= rol32(b, 4);
    b = (b + a) >>> 0;
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    length -= 12;
    k += 12;
  }
  const byte = (i: number) => key[k + i] ?? 0;
  // The tail switch falls through from the highest byte down.
  if (length >= 12) c = (c + (byte(11) << 24)) >>> 0;
  if (length >= 11) c = (c + (byte(10) << 16)) >>> 0;
  if (length >= 10) c = (c + (byte(9) << 8)) >>> 0;
  if (length >= 9) c = (c + byte(8)) >>> 0;
  if (length >= 8) b = (b + (byte(7) << 24)) >>> 0;
  if (length >= 7) b = (b + (byte(6) << 16)) >>> 0;
  if (length >= 6) b = (b + (byte(5) << 8)) >>> 0;
  if (length >= 5) b = (b + byte(4)) >>> 0;
  if (length >= 4) a = (a + (byte(3) << 24)) >>> 0;
  if (length >= 3) a = (a + (byte(2) << 16)) >>> 0;
  if (length >= 2) a = (a + (byte(1) << 8)) >>> 0;
  if (length >= 1) {
    a = (a + byte(0)) >>> 0;
    // __jhash_final
    c ^= b;
    c = (c - rol32(b, 14)) >>> 0;
    a ^= c;
    a = (a - rol32(c, 11)) >>> 0;
    b ^= a;
    b = (b - rol32(a, 25)) >>> 0;
    c ^= b;
    c = (c - rol32(b, 16)) >>> 0;
    a ^= c;
    a = (a - rol32(c, 4)) >>> 0;
    b ^= a;
    b = (b - rol32(a, 14)) >>> 0;
    c ^= b;
    c = (c - rol32(b, 24)) >>> 0;
  }
  return c >>> 0;
}

/** ca->key = jhash(ca->name, sizeof(ca->name), strlen(ca->name)): all 16 bytes of the NUL-padded name. */
export function tcp_ca_key(name: string): number {
  const buf = new Uint8Array(TCP_CA_NAME_MAX);
  buf.set(new TextEncoder().encode(name).subarray(0, TCP_CA_NAME_MAX - 1));
  return jhash(buf, Math.min(name.length, TCP_CA_NAME_MAX - 1));
}

const ownerGet = (ca: TcpCongestionOps) => (ca.owner ? ca.owner.get() : true);
const ownerPut = (ca: TcpCongestionOps) => ca.owner?.put();

/** tcp_validate_congestion_control: ssthresh, undo_cwnd and (cong_avoid or cong_control) are required. */
export function tcp_validate_congestion_control(ca: TcpCongestionOps): void {
  if (!ca.ssthresh || !ca.undo_cwnd || !(ca.cong_avoid || ca.cong_control)) {
    throw new BpfError(EINVAL, `${ca.name} does not implement required ops`, { member: ca.name });
  }
}

/**
 * One network namespace's view of congestion control: the global list (tcp_cong_list) plus
 * net.ipv4.tcp_congestion_control. Reno is always present, as in the kernel.
 */
export class TcpCongControl {
  /** tcp_cong_list, in registration order (the order net.ipv4.tcp_available_congestion_control shows). */
  private readonly list: TcpCongestionOps[] = [];
  private defaultCa: TcpCongestionOps;
  /** What the kernel logs with pr_notice/pr_err, for tests and the CLI. */
  readonly log: string[] = [];
  readonly reno: TcpCongestionOps;

  constructor(reno: TcpCongestionOps) {
    this.reno = reno;
    this.tcp_register_congestion_control(reno);
    this.defaultCa = reno;
  }

  tcp_ca_find(name: string): TcpCongestionOps | undefined {
    return this.list.find((e) => e.name === name);
  }

  /**
   * Modules that register a CA when first asked for by name (request_module("tcp_%s")): Linux
   * builds bbr and dctcp as tcp_bbr.ko and tcp_dctcp.ko, loaded on setsockopt(TCP_CONGESTION).
   */
  private readonly modules = new Map<string, () => TcpCongestionOps>();

  /** A CA available on demand under `name` (tcp_bbr, tcp_dctcp); not listed until loaded. */
  tcp_add_module(name: string, load: () => TcpCongestionOps): void {
    this.modules.set(name, load);
  }

  /** tcp_ca_find_autoload: find `name`, loading its module (with CAP_NET_ADMIN) if need be. */
  tcp_ca_find_autoload(name: string, cap_net_admin = true): TcpCongestionOps | undefined {
    let ca = this.tcp_ca_find(name);
    const mod = this.modules.get(name);
    if (!ca && cap_net_admin && mod) {
      this.modules.delete(name);
      this.tcp_register_congestion_control(mod());
      ca = this.tcp_ca_find(name);
    }
    return ca;
  }

  tcp_ca_find_key(key: number): TcpCongestionOps | undefined {
    return this.list.find((e) => e.key === key);
  }

  tcp_register_congestion_control(ca: TcpCongestionOps): void {
    try {
      tcp_validate_congestion_control(ca);
    } catch (e) {
      this.log.push(`TCP: ${ca.name} does not implement required ops`);
      throw e;
    }
    ca.key = tcp_ca_key(ca.name);
    if (ca.key === TCP_CA_UNSPEC || this.tcp_ca_find_key(ca.key)) {
      this.log.push(`TCP: ${ca.name} already registered or non-unique key`);
      throw new BpfError(EEXIST, `${ca.name} already registered or non-unique key`, { member: ca.name });
    }
    this.list.push(ca);
  }

  tcp_unregister_congestion_control(ca: TcpCongestionOps): void {
    const i = this.list.indexOf(ca);
    if (i >= 0) this.list.splice(i, 1);
  }

  /**
   * Replace a registered old ca with a new one of the same name (BPF_LINK_UPDATE). As in Linux, sockets
   * already using the old ops keep it (they hold a reference through owner); new sockets and
   * setsockopt(TCP_CONGESTION) get the new one.
   */
  tcp_update_congestion_control(ca: TcpCongestionOps, old_ca: TcpCongestionOps): void {
    ca.key = tcp_ca_key(ca.name);
    const existing = old_ca.key === undefined ? undefined : this.tcp_ca_find_key(old_ca.key);
    if (ca.key === TCP_CA_UNSPEC || !existing || existing.name !== ca.name) {
      this.log.push(`TCP: ${ca.name} not registered or non-unique key`);
      throw new BpfError(EINVAL, `${ca.name} not registered or non-unique key`, { member: ca.name });
    }
    if (existing !== old_ca) {
      this.log.push("TCP: invalid old congestion control algorithm to replace");
      throw new BpfError(EINVAL, "invalid old congestion control algorithm to replace", { member: ca.name });
    }
    // Add the new one before removing the old one to keep one implementation available all the time.
    const i = this.list.indexOf(existing);
    this.list.push(ca);
    this.list.splice(i, 1);
    if (this.defaultCa === existing) this.defaultCa = ca;
  }

  /** net.ipv4.tcp_available_congestion_control */
  tcp_get_available_congestion_control(): string {
    return this.list.map((c) => c.name).join(" ");
  }

  /** net.ipv4.tcp_congestion_control (read) */
  tcp_get_default_congestion_control(): string {
    return this.defaultCa.name;
  }

  /** net.ipv4.tcp_allowed_congestion_control (read) */
  tcp_get_allowed_congestion_control(): string {
    return this.list
      .filter((c) => c.flags & TCP_CONG_NON_RESTRICTED)
      .map((c) => c.name)
      .join(" ");
  }

  /** net.ipv4.tcp_allowed_congestion_control (write): every name must exist, else ENOENT and nothing changes. */
  tcp_set_allowed_congestion_control(val: string): void {
    const names = val.split(" ").filter((n) => n.length > 0);
    for (const n of names) {
      if (!this.tcp_ca_find(n)) throw new BpfError(ENOENT, `tcp_allowed_congestion_control: ${n} not found`);
    }
    for (const c of this.list) c.flags &= ~TCP_CONG_NON_RESTRICTED;
    for (const n of names) this.tcp_ca_find(n)!.flags |= TCP_CONG_NON_RESTRICTED;
  }

  /** net.ipv4.tcp_congestion_control (write, init netns): the default is always allowed. */
  tcp_set_default_congestion_control(name: string): void {
    const ca = this.tcp_ca_find_autoload(name);
    if (!ca) throw new BpfError(ENOENT, `tcp_congestion_control: ${name} not found`);
    if (!ownerGet(ca)) throw new BpfError(EBUSY, `tcp_congestion_control: ${name} is going away`);
    const prev = this.defaultCa;
    this.defaultCa = ca;
    // The first default (reno at boot) was never pinned.
    if (prev !== ca && this.pinnedDefault) ownerPut(prev);
    this.pinnedDefault = true;
    ca.flags |= TCP_CONG_NON_RESTRICTED;
  }
  private pinnedDefault = false;

  /** tcp_assign_congestion_control: a new socket takes the netns default (reno if it cannot be pinned). */
  tcp_assign_congestion_control(sk: TcpSock): void {
    let ca = this.defaultCa;
    if (!ownerGet(ca)) ca = this.reno;
    sk.icsk_ca_ops = ca;
    sk.clear_ca_priv();
    this.ecnXmit(sk, ca);
  }

  /** tcp_init_congestion_control: on establishment. */
  tcp_init_congestion_control(sk: TcpSock): void {
    sk.prior_ssthresh = 0;
    sk.icsk_ca_ops.init?.(sk);
    this.ecnXmit(sk, sk.icsk_ca_ops);
    sk.icsk_ca_initialized = 1;
  }

  private ecnXmit(sk: TcpSock, ca: TcpCongestionOps): void {
    // INET_ECN_xmit / INET_ECN_dontxmit: a CA that needs ECN always sends ECT.
    this.ectOf.set(sk, (ca.flags & TCP_CONG_NEEDS_ECN) !== 0);
  }
  private readonly ectOf = new WeakMap<TcpSock, boolean>();
  /** Whether the socket's CA forces ECT on outgoing segments. */
  caNeedsEcn(sk: TcpSock): boolean {
    return this.ectOf.get(sk) ?? false;
  }

  private tcp_reinit_congestion_control(sk: TcpSock, ca: TcpCongestionOps): void {
    this.tcp_cleanup_congestion_control(sk);
    sk.icsk_ca_ops = ca;
    sk.icsk_ca_setsockopt = 1;
    sk.clear_ca_priv();
    this.ecnXmit(sk, ca);
    if (sk.sk_state !== TCP_CLOSE && sk.sk_state !== TCP_LISTEN) this.tcp_init_congestion_control(sk);
  }

  /** tcp_cleanup_congestion_control: on close or before switching; release() only if init ran. */
  tcp_cleanup_congestion_control(sk: TcpSock): void {
    const ca = sk.icsk_ca_ops;
    if (sk.icsk_ca_initialized && ca.release) ca.release(sk);
    sk.icsk_ca_initialized = 0;
    ownerPut(ca);
  }

  /** setsockopt(TCP_CONGESTION): ENOENT unknown, EPERM restricted without CAP_NET_ADMIN, EBUSY owner going. */
  tcp_set_congestion_control(sk: TcpSock, name: string, load = true, cap_net_admin = true): void {
    if (sk.icsk_ca_dst_locked) throw new BpfError(EPERM, `TCP_CONGESTION: congestion control locked by route`);
    const ca = load ? this.tcp_ca_find_autoload(name, cap_net_admin) : this.tcp_ca_find(name);
    if (ca === sk.icsk_ca_ops) {
      sk.icsk_ca_setsockopt = 1;
      return;
    }
    if (!ca) throw new BpfError(ENOENT, `TCP_CONGESTION: ${name} not found`);
    if (!(ca.flags & TCP_CONG_NON_RESTRICTED || cap_net_admin)) {
      throw new BpfError(EPERM, `TCP_CONGESTION: ${name} is not in tcp_allowed_congestion_control`);
    }
    if (!ownerGet(ca)) throw new BpfError(EBUSY, `TCP_CONGESTION: ${name} is going away`);
    this.tcp_reinit_congestion_control(sk, ca);
  }
}

/** tcp_set_ca_state: tell the CA first, then record the state. */
export function tcp_set_ca_state(sk: TcpSock, ca_state: number): void {
  sk.icsk_ca_ops.set_state?.(sk, ca_state);
  sk.icsk_ca_state = ca_state;
}

/** tcp_get_info's TCP_CC_INFO / inet_diag's INET_DIAG_*INFO: what the socket's CA reports. */
export function tcp_get_cc_info(sk: TcpSock, ext = 0xffffffff): TcpCcInfo | undefined {
  return sk.icsk_ca_ops.get_info?.(sk, ext);
}

/** tcp_ca_event */
export function tcp_ca_event(sk: TcpSock, event: number): void {
  sk.icsk_ca_ops.cwnd_event?.(sk, event);
}
