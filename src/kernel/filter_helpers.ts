/**
 * net/core/filter.c at run time: the tc and XDP helpers on the packet of a test run
 * (src/kernel/test_run_pkt.ts lays it out). Helpers find the skb or xdp_buff by the context's
 * address; bpf_redirect, which takes no context, answers for the innermost run. Checksums are the
 * ones' complement arithmetic of include/net/checksum.h on values as the program passes them
 * (network-order bytes loaded little-endian), which is byte-order neutral.
 */
import { bpf_func_id as F } from "../uapi/bpf.js";
import { EACCES, EALREADY, EFAULT, EINVAL, ENOMEM } from "../uapi/errno.js";
import { SKB, XDP_MD } from "./filter.js";
import type { HelperArgs, Kernel } from "./kernel.js";
import { BPF_SKB_MAX_LEN, ETH_HLEN, type SkBuff, setU16, setU32, u16, u32 } from "./skbuff.js";

const ENOTSUPP = 524;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const XDP_ABORTED = 0;
const XDP_REDIRECT = 4;
const BPF_F_INGRESS = 1n;
const VLAN_HLEN = 4;
/** Raw (big-endian in memory, read little-endian) ETH_P_8021Q, ETH_P_8021AD, ETH_P_IP, ETH_P_IPV6. */
const RAW_8021Q = 0x0081;
const RAW_8021AD = 0xa888;
const RAW_IP = 0x0008;
const RAW_IPV6 = 0xdd86;
/** ip_summed. */
const CHECKSUM_NONE = 0;
const CHECKSUM_UNNECESSARY = 1;

/** The xdp_buff of a test run: the context (struct xdp_md) holds data, data_end and data_meta. */
export interface XdpBuff {
  readonly kind: "xdp";
  readonly ctx: number;
  readonly hardStart: number;
  readonly frameSz: number;
}
type PktRun = { kind: "skb"; skb: SkBuff } | XdpBuff;

const running = new Map<number, PktRun>();
const active: PktRun[] = [];

/** A test run's packet is live for the helpers from here to pktRunEnd. */
export function pktRunBegin(run: PktRun): void {
  const ctx = run.kind === "skb" ? run.skb.ctx : run.ctx;
  running.set(ctx, run);
  active.push(run);
}
export function pktRunEnd(run: PktRun): void {
  running.delete(run.kind === "skb" ? run.skb.ctx : run.ctx);
  active.splice(active.lastIndexOf(run), 1);
}
/** The skb behind a test run's __sk_buff, by the context's address. */
export function skbAt(ctx: number): SkBuff | undefined {
  const r = running.get(ctx);
  return r?.kind === "skb" ? r.skb : undefined;
}
function xdpAt(ctx: number): XdpBuff | undefined {
  const r = running.get(ctx);
  return r?.kind === "xdp" ? r : undefined;
}

// include/net/checksum.h, 32 and 16 bits.
const csumAdd = (a: number, b: number): number => {
  const r = (a + b) >>> 0;
  return (r + (r < b >>> 0 ? 1 : 0)) >>> 0;
};
const csumSub = (a: number, b: number): number => csumAdd(a, ~b >>> 0);
const csumFold = (c: number): number => {
  let s = (c & 0xffff) + (c >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
};
/** csum_replace4 / inet_proto_csum_replace4 without CHECKSUM_PARTIAL. */
const replace4 = (sum: number, from: number, to: number): number =>
  csumFold(csumAdd(csumSub(~sum >>> 0, from >>> 0), to >>> 0));
/** csum_replace_by_diff. */
const replaceByDiff = (sum: number, diff: number): number => csumFold(csumAdd(diff >>> 0, ~sum >>> 0));

/** csum_partial: the ones' complement sum of the bytes (16-bit little-endian words, a last odd byte low), 32 bits wide. */
function csumPartial(b: Uint8Array, seed: number): number {
  let s = seed >>> 0;
  let i = 0;
  for (; i + 1 < b.length; i += 2) s = csumAdd(s, b[i]! | (b[i + 1]! << 8));
  if (i < b.length) s = csumAdd(s, b[i]!);
  return s;
}
/** csum_from32to16: the 32-bit sum folded to 16 bits (not inverted). */
const csumFrom32to16 = (s: number): number => (((s + (((s >>> 16) | (s << 16)) >>> 0)) >>> 0) >>> 16) & 0xffff;

const lo32 = (c: HelperArgs, i: number): number => Number(c.arg(i) & 0xffffffffn);
const s32 = (c: HelperArgs, i: number): number => lo32(c, i) | 0;

/** skb_ensure_writable: the first `n` bytes must be in the packet. */
const writable = (skb: SkBuff, n: number): boolean => n <= skb.len;

/** bpf_skb_net_hdr_push: `len` zeroed bytes at `off` from data, headers before it moved up. */
function netHdrPush(k: Kernel, skb: SkBuff, off: number, len: number): void {
  skb.expand(len, 0);
  const d = skb.data;
  k.mem.bytes(d - len, off).set(k.mem.bytes(d, off).slice());
  skb.push(len);
  skb.view(off, len).fill(0);
  skb.macOff -= len;
  skb.netOff -= len;
}
/** bpf_skb_net_hdr_pop: `len` bytes at `off` from data removed. */
function netHdrPop(k: Kernel, skb: SkBuff, off: number, len: number): number {
  if (off + len > skb.len) return -ENOMEM;
  const d = skb.data;
  k.mem.bytes(d + len, off).set(k.mem.bytes(d, off).slice());
  skb.pull(len);
  skb.macOff += len;
  skb.netOff += len;
  return 0;
}

/** A deterministic stand-in for the flow dissector's hash (the kernel's is keyed per boot). */
function flowHash(skb: SkBuff): { hash: number; l4: boolean } {
  const net = skb.net - skb.data;
  const b = skb.view(0, skb.len);
  const proto = skb.ctxGet(SKB.protocol) & 0xffff;
  let from = net;
  let to = net;
  let l4 = false;
  if (proto === RAW_IP && b.length >= net + 20) {
    from = net + 12;
    to = net + 20;
    const ihl = (b[net]! & 0xf) * 4;
    if ((b[net + 9] === 6 || b[net + 9] === 17) && b.length >= net + ihl + 4) {
      l4 = true;
      to = net + ihl + 4;
    }
  } else if (proto === RAW_IPV6 && b.length >= net + 40) {
    from = net + 8;
    to = net + 40;
  }
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ b[i]!, 0x01000193) >>> 0;
  return { hash: h || 1, l4 };
}

interface SkbCsum {
  ipSummed: number;
  level: number;
  encapsulation: boolean;
}
const csumState = new WeakMap<SkBuff, SkbCsum>();
const csumOf = (skb: SkBuff): SkbCsum => {
  let s = csumState.get(skb);
  if (!s) csumState.set(skb, (s = { ipSummed: CHECKSUM_NONE, level: 0, encapsulation: false }));
  return s;
};

export function registerFilterHelpers(k: Kernel): void {
  const mem = () => k.mem;
  /** An skb helper: the skb of the context in r1 (none outside a test run: -EINVAL). */
  const skbHelper = (id: number, fn: (skb: SkBuff, c: HelperArgs) => number) =>
    k.registerHelper(id, (c) => {
      const skb = skbAt(c.argNum(1));
      return skb ? fn(skb, c) : -EINVAL;
    });
  const xdpHelper = (id: number, fn: (x: XdpBuff, c: HelperArgs) => number) =>
    k.registerHelper(id, (c) => {
      const x = xdpAt(c.argNum(1));
      return x ? fn(x, c) : -EINVAL;
    });

  // bpf_skb_load_bytes and bpf_xdp_load_bytes share the id space with nothing else; the
  // context tells them apart from bpf_flow_dissector_load_bytes.
  skbHelper(F.BPF_FUNC_skb_load_bytes, (skb, c) => {
    const off = c.arg(2);
    const len = c.argNum(4);
    const to = mem().bytes(c.argNum(3), len);
    if (off > 0x7fffffffn || Number(off) + len > skb.len) {
      to.fill(0);
      return -EFAULT;
    }
    to.set(skb.view(Number(off), len));
    return 0;
  });
  skbHelper(F.BPF_FUNC_skb_load_bytes_relative, (skb, c) => {
    const off = c.arg(2);
    const len = c.argNum(4);
    const to = mem().bytes(c.argNum(3), len);
    const hdr = c.arg(5);
    const start = hdr === 0n ? skb.mac : hdr === 1n ? skb.net : -1;
    if (off > 0xffffn || start < 0 || start + Number(off) + len > skb.end) {
      to.fill(0);
      return -EFAULT;
    }
    to.set(mem().bytes(start + Number(off), len));
    return 0;
  });
  skbHelper(F.BPF_FUNC_skb_store_bytes, (skb, c) => {
    const off = c.arg(2);
    const len = c.argNum(4);
    const flags = c.arg(5);
    if (flags & ~3n) return -EINVAL;
    if (off > 0x7fffffffn) return -EFAULT;
    if (!writable(skb, Number(off) + len)) {
      skb.sync();
      return -EFAULT;
    }
    skb.view(Number(off), len).set(mem().bytes(c.argNum(3), len).slice());
    if (flags & 2n) skb.clearHash();
    skb.sync();
    return 0;
  });
  skbHelper(F.BPF_FUNC_skb_pull_data, (skb, c) => {
    const len = lo32(c, 2) || skb.len;
    skb.sync();
    return writable(skb, len) ? 0 : -ENOMEM;
  });
  const csumReplace = (skb: SkBuff, c: HelperArgs, l4: boolean): number => {
    const off = c.arg(2);
    const from = Number(c.arg(3) & 0xffffffffn);
    const to = Number(c.arg(4) & 0xffffffffn);
    const flags = c.arg(5);
    // l3: BPF_F_HDR_FIELD_MASK; l4 adds BPF_F_PSEUDO_HDR, MARK_MANGLED_0, MARK_ENFORCE, IPV6.
    if (flags & ~(l4 ? 0xffn : 0xfn)) return -EINVAL;
    if (off > 0xffffn || off & 1n) return -EFAULT;
    const o = Number(off);
    if (!writable(skb, o + 2)) {
      skb.sync();
      return -EFAULT;
    }
    skb.sync();
    const at = skb.data + o;
    const sum = u16(k, at);
    const mmzero = l4 && (flags & 0x20n) !== 0n;
    if (mmzero && !(flags & 0x40n) && sum === 0) return 0;
    let out: number;
    switch (Number(flags & 0xfn)) {
      case 0:
        if (c.arg(3) !== 0n) return -EINVAL;
        out = replaceByDiff(sum, to);
        break;
      case 2:
        out = replace4(sum, from & 0xffff, to & 0xffff);
        break;
      case 4:
        out = replace4(sum, from, to);
        break;
      default:
        return -EINVAL;
    }
    if (mmzero && out === 0) out = 0xffff;
    setU16(k, at, out);
    return 0;
  };
  skbHelper(F.BPF_FUNC_l3_csum_replace, (skb, c) => csumReplace(skb, c, false));
  skbHelper(F.BPF_FUNC_l4_csum_replace, (skb, c) => csumReplace(skb, c, true));
  k.registerHelper(F.BPF_FUNC_csum_diff, (c) => {
    const fromSize = c.argNum(2);
    const toSize = c.argNum(4);
    const from = () => k.mem.bytes(c.argNum(1), fromSize);
    const to = () => k.mem.bytes(c.argNum(3), toSize);
    // bpf_csum_diff folds to 16 bits the same way on every architecture.
    const seed = lo32(c, 5);
    let ret = seed;
    if (fromSize && toSize) ret = csumSub(csumPartial(to(), seed), csumPartial(from(), 0));
    else if (toSize) ret = csumPartial(to(), seed);
    else if (fromSize) ret = ~csumPartial(from(), ~seed >>> 0) >>> 0;
    return csumFrom32to16(ret);
  });
  skbHelper(F.BPF_FUNC_csum_update, () => -ENOTSUPP);
  skbHelper(F.BPF_FUNC_csum_level, (skb, c) => {
    const s = csumOf(skb);
    switch (c.arg(2)) {
      case 0n:
        return s.ipSummed === CHECKSUM_UNNECESSARY ? s.level : -EACCES;
      case 1n:
        if (s.ipSummed === CHECKSUM_UNNECESSARY) s.level = Math.min(s.level + 1, 3);
        else if (s.ipSummed === CHECKSUM_NONE) {
          s.ipSummed = CHECKSUM_UNNECESSARY;
          s.level = 0;
        }
        return 0;
      case 2n:
        if (s.ipSummed === CHECKSUM_UNNECESSARY) {
          if (s.level === 0) s.ipSummed = CHECKSUM_NONE;
          else s.level--;
        }
        return 0;
      case 3n:
        if (s.ipSummed === CHECKSUM_UNNECESSARY) {
          s.ipSummed = CHECKSUM_NONE;
          s.level = 0;
        }
        return 0;
      default:
        return -EINVAL;
    }
  });

  // Hashes: skb->hash is the context's hash field.
  skbHelper(F.BPF_FUNC_get_hash_recalc, (skb) => {
    if (!skb.l4Hash && !skb.swHash) {
      const { hash, l4 } = flowHash(skb);
      skb.ctxSet(SKB.hash, hash);
      skb.l4Hash = l4;
    }
    return skb.ctxGet(SKB.hash);
  });
  skbHelper(F.BPF_FUNC_set_hash_invalid, (skb) => {
    skb.clearHash();
    return 0;
  });
  skbHelper(F.BPF_FUNC_set_hash, (skb, c) => {
    skb.ctxSet(SKB.hash, lo32(c, 2));
    skb.l4Hash = true;
    skb.swHash = true;
    return 0;
  });

  // VLAN: the accelerated tag is the context's vlan_present, vlan_tci and vlan_proto.
  const putTag = (skb: SkBuff, proto: number, tci: number) => {
    skb.ctxSet(SKB.vlan_present, 1);
    skb.ctxSet(SKB.vlan_proto, proto);
    skb.ctxSet(SKB.vlan_tci, tci);
  };
  /** __skb_vlan_pop: the tag in the frame after the MAC addresses, out; its TCI, or -errno. */
  const popFrameTag = (skb: SkBuff): number => {
    if (skb.data !== skb.mac || skb.len < ETH_HLEN + VLAN_HLEN) return -EINVAL;
    const tci = u16(k, skb.data + 14, true);
    const inner = u16(k, skb.data + 16);
    k.mem.bytes(skb.data + VLAN_HLEN, 12).set(k.mem.bytes(skb.data, 12).slice());
    skb.pull(VLAN_HLEN);
    if (((inner & 0xff) << 8) + (inner >> 8) >= 0x600) skb.ctxSet(SKB.protocol, inner);
    skb.macOff += VLAN_HLEN;
    if (skb.net - skb.data < ETH_HLEN) skb.netOff = skb.macOff + ETH_HLEN;
    return tci;
  };
  const isVlan = (raw: number) => raw === RAW_8021Q || raw === RAW_8021AD;
  skbHelper(F.BPF_FUNC_skb_vlan_push, (skb, c) => {
    let proto = lo32(c, 2) & 0xffff;
    const tci = lo32(c, 3) & 0xffff;
    if (!isVlan(proto)) proto = RAW_8021Q;
    if (skb.ctxGet(SKB.vlan_present)) {
      if (skb.data !== skb.mac) return -EINVAL;
      // __vlan_insert_tag: the present tag goes into the frame after the MAC addresses.
      skb.expand(VLAN_HLEN, 0);
      const d = skb.data;
      k.mem.bytes(d - VLAN_HLEN, 12).set(k.mem.bytes(d, 12).slice());
      skb.push(VLAN_HLEN);
      setU16(k, skb.data + 12, skb.ctxGet(SKB.vlan_proto));
      setU16(k, skb.data + 14, skb.ctxGet(SKB.vlan_tci), true);
      skb.macOff -= VLAN_HLEN;
      skb.ctxSet(SKB.protocol, skb.ctxGet(SKB.vlan_proto));
    }
    putTag(skb, proto, tci);
    skb.sync();
    return 0;
  });
  skbHelper(F.BPF_FUNC_skb_vlan_pop, (skb) => {
    const ret = (() => {
      if (skb.ctxGet(SKB.vlan_present)) {
        skb.ctxSet(SKB.vlan_present, 0);
        skb.ctxSet(SKB.vlan_tci, 0);
        skb.ctxSet(SKB.vlan_proto, 0);
      } else {
        if (!isVlan(skb.ctxGet(SKB.protocol) & 0xffff)) return 0;
        const t = popFrameTag(skb);
        if (t < 0) return t;
      }
      // The next tag in the frame becomes the accelerated one.
      const proto = skb.ctxGet(SKB.protocol) & 0xffff;
      if (!isVlan(proto)) return 0;
      const t = popFrameTag(skb);
      if (t < 0) return t;
      putTag(skb, proto, t);
      return 0;
    })();
    skb.sync();
    return ret;
  });

  skbHelper(F.BPF_FUNC_skb_change_type, (skb, c) => {
    const t = c.arg(2);
    if (skb.ctxGet(SKB.pkt_type) > 3 || t > 3n) return -EINVAL;
    skb.ctxSet(SKB.pkt_type, Number(t));
    return 0;
  });
  skbHelper(F.BPF_FUNC_skb_change_proto, (skb, c) => {
    const ret = (() => {
      if (c.arg(3)) return -EINVAL;
      const from = skb.ctxGet(SKB.protocol) & 0xffff;
      const to = lo32(c, 2) & 0xffff;
      const off = skb.net - skb.mac;
      if (from === RAW_IP && to === RAW_IPV6) netHdrPush(k, skb, off, 20);
      else if (from === RAW_IPV6 && to === RAW_IP) {
        const r = netHdrPop(k, skb, off, 20);
        if (r) return r;
      } else return -ENOTSUPP;
      skb.ctxSet(SKB.protocol, to);
      skb.clearHash();
      return 0;
    })();
    skb.sync();
    return ret;
  });
  skbHelper(F.BPF_FUNC_skb_adjust_room, (skb, c) => {
    const ret = adjustRoom(k, skb, s32(c, 2), lo32(c, 3), c.arg(4));
    skb.sync();
    return ret;
  });
  skbHelper(F.BPF_FUNC_skb_change_tail, (skb, c) => {
    const newLen = lo32(c, 2);
    const ret = (() => {
      if (c.arg(3) || newLen > BPF_SKB_MAX_LEN || newLen < skb.net - skb.data) return -EINVAL;
      if (csumOf(skb).encapsulation) return -ENOTSUPP;
      skb.setLen(newLen);
      return 0;
    })();
    skb.sync();
    return ret;
  });
  skbHelper(F.BPF_FUNC_skb_change_head, (skb, c) => {
    const room = lo32(c, 2);
    const ret = (() => {
      const newLen = skb.len + room;
      if (c.arg(3) || newLen > BPF_SKB_MAX_LEN || newLen > 0xffffffff) return -EINVAL;
      skb.expand(room, 0);
      skb.push(room);
      skb.view(0, room).fill(0);
      skb.macOff = skb.headroom;
      return 0;
    })();
    skb.sync();
    return ret;
  });

  k.registerHelper(F.BPF_FUNC_redirect, (c) => {
    const xdp = active.at(-1)?.kind === "xdp";
    const flags = c.arg(2);
    if (xdp) return flags ? XDP_ABORTED : XDP_REDIRECT;
    return flags & ~BPF_F_INGRESS ? TC_ACT_SHOT : TC_ACT_REDIRECT;
  });

  // XDP: data, data_end and data_meta are addresses in the xdp_md.
  const xget = (x: XdpBuff, off: number) => u32(k, x.ctx + off);
  const xset = (x: XdpBuff, off: number, v: number) => setU32(k, x.ctx + off, v);
  /** sizeof(struct xdp_frame): the front of the headroom the frame's metadata keeps. */
  const XDP_FRAME_SIZE = 40;
  const SHINFO = 320;
  const xdpMetalenInvalid = (n: number) => (n & 3) !== 0 || n > 255;
  xdpHelper(F.BPF_FUNC_xdp_adjust_head, (x, c) => {
    const off = s32(c, 2);
    const data = xget(x, XDP_MD.data);
    const meta = xget(x, XDP_MD.data_meta);
    const metalen = data - meta;
    const nd = data + off;
    if (nd < x.hardStart + XDP_FRAME_SIZE + metalen || nd > xget(x, XDP_MD.data_end) - ETH_HLEN) return -EINVAL;
    if (metalen) k.mem.bytes(meta + off, metalen).set(k.mem.bytes(meta, metalen).slice());
    xset(x, XDP_MD.data_meta, meta + off);
    xset(x, XDP_MD.data, nd);
    return 0;
  });
  xdpHelper(F.BPF_FUNC_xdp_adjust_tail, (x, c) => {
    const off = s32(c, 2);
    const end = xget(x, XDP_MD.data_end);
    const ne = end + off;
    if (ne > x.hardStart + x.frameSz - SHINFO || ne < xget(x, XDP_MD.data) + ETH_HLEN) return -EINVAL;
    if (off > 0) k.mem.bytes(end, off).fill(0);
    xset(x, XDP_MD.data_end, ne);
    return 0;
  });
  xdpHelper(F.BPF_FUNC_xdp_adjust_meta, (x, c) => {
    const meta = xget(x, XDP_MD.data_meta) + s32(c, 2);
    const data = xget(x, XDP_MD.data);
    if (meta < x.hardStart + XDP_FRAME_SIZE || meta > data) return -EINVAL;
    if (xdpMetalenInvalid(data - meta)) return -EACCES;
    xset(x, XDP_MD.data_meta, meta);
    return 0;
  });
  xdpHelper(F.BPF_FUNC_xdp_get_buff_len, (x) => xget(x, XDP_MD.data_end) - xget(x, XDP_MD.data));
  const xdpBytes = (x: XdpBuff, c: HelperArgs, store: boolean): number => {
    const off = c.arg(2);
    const len = c.argNum(4);
    if (off > 0xffffn || len > 0xffff) return -EFAULT;
    const data = xget(x, XDP_MD.data);
    if (Number(off) + len > xget(x, XDP_MD.data_end) - data) return -EINVAL;
    const pkt = data + Number(off);
    const buf = c.argNum(3);
    if (store) k.mem.bytes(pkt, len).set(k.mem.bytes(buf, len).slice());
    else k.mem.bytes(buf, len).set(k.mem.bytes(pkt, len).slice());
    return 0;
  };
  xdpHelper(F.BPF_FUNC_xdp_load_bytes, (x, c) => xdpBytes(x, c, false));
  xdpHelper(F.BPF_FUNC_xdp_store_bytes, (x, c) => xdpBytes(x, c, true));
}

const ADJ_ROOM_FIXED_GSO = 1n;
const ADJ_ROOM_ENCAP_L3_IPV4 = 2n;
const ADJ_ROOM_ENCAP_L3_IPV6 = 4n;
const ADJ_ROOM_ENCAP_L4_GRE = 8n;
const ADJ_ROOM_ENCAP_L4_UDP = 16n;
const ADJ_ROOM_NO_CSUM_RESET = 32n;
const ADJ_ROOM_ENCAP_L2_ETH = 64n;
const ADJ_ROOM_MASK =
  ADJ_ROOM_FIXED_GSO |
  ADJ_ROOM_ENCAP_L3_IPV4 |
  ADJ_ROOM_ENCAP_L3_IPV6 |
  ADJ_ROOM_ENCAP_L4_GRE |
  ADJ_ROOM_ENCAP_L4_UDP |
  ADJ_ROOM_ENCAP_L2_ETH |
  (0xffn << 56n);

/** bpf_skb_adjust_room: room at the network header (BPF_ADJ_ROOM_NET) or after the MAC one. */
function adjustRoom(k: Kernel, skb: SkBuff, lenDiff: number, mode: number, flags: bigint): number {
  const abs = Math.abs(lenDiff);
  const shrink = lenDiff < 0;
  const proto = skb.ctxGet(SKB.protocol) & 0xffff;
  if (flags & ~(ADJ_ROOM_MASK | ADJ_ROOM_NO_CSUM_RESET)) return -EINVAL;
  if (abs > 0xfff) return -EFAULT;
  if (proto !== RAW_IP && proto !== RAW_IPV6) return -ENOTSUPP;
  const baseLen = proto === RAW_IP ? 20 : 40;
  let off = skb.net - skb.mac;
  if (mode === 0) off += baseLen;
  else if (mode !== 1) return -ENOTSUPP;
  const gso = skb.ctxGet(SKB.gso_size) !== 0;
  const lenCur = skb.len - (skb.net - skb.data);
  if ((shrink && (abs >= lenCur || lenCur - abs < baseLen)) || (!shrink && skb.len + abs > BPF_SKB_MAX_LEN && !gso))
    return -ENOTSUPP;
  const st = csumOf(skb);
  let ret = 0;
  if (shrink) {
    if (flags & ~(ADJ_ROOM_FIXED_GSO | ADJ_ROOM_NO_CSUM_RESET)) return -EINVAL;
    // A gso skb of a test run has no gso_type: not TCP, not UDP_L4.
    if (gso) return -ENOTSUPP;
    ret = netHdrPop(k, skb, off, abs);
  } else {
    if (gso) return -ENOTSUPP;
    const innerMac = Number(flags >> 56n);
    const encap = (flags & (ADJ_ROOM_ENCAP_L3_IPV4 | ADJ_ROOM_ENCAP_L3_IPV6)) !== 0n;
    if (encap) {
      if (flags & ADJ_ROOM_ENCAP_L3_IPV4 && flags & ADJ_ROOM_ENCAP_L3_IPV6) return -EINVAL;
      if (flags & ADJ_ROOM_ENCAP_L4_GRE && flags & ADJ_ROOM_ENCAP_L4_UDP) return -EINVAL;
      if (flags & ADJ_ROOM_ENCAP_L2_ETH && innerMac < ETH_HLEN) return -EINVAL;
      if (st.encapsulation) return -EALREADY;
      if (innerMac > abs) return -EINVAL;
    }
    const macLen = skb.net - skb.mac;
    netHdrPush(k, skb, off, abs);
    if (encap) {
      st.encapsulation = true;
      skb.netOff = skb.macOff + macLen;
      if (proto === RAW_IP && flags & ADJ_ROOM_ENCAP_L3_IPV6) skb.ctxSet(SKB.protocol, RAW_IPV6);
      else if (proto === RAW_IPV6 && flags & ADJ_ROOM_ENCAP_L3_IPV4) skb.ctxSet(SKB.protocol, RAW_IP);
    }
  }
  if (!ret && !(flags & ADJ_ROOM_NO_CSUM_RESET) && st.ipSummed === CHECKSUM_UNNECESSARY) {
    st.ipSummed = CHECKSUM_NONE;
    st.level = 0;
  }
  return ret;
}
