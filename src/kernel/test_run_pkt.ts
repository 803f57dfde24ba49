/**
 * net/bpf/test_run.c for the packet program types: bpf_prog_test_run_skb (socket filters, tc)
 * and bpf_prog_test_run_xdp. The packet is copied into VM memory; the context is the uapi struct
 * (`struct __sk_buff`, `struct xdp_md`) with the packet's addresses in its data fields, as the
 * verifier (src/kernel/filter.ts) lets the program read them.
 */
import { bpf_attach_type, bpf_prog_type } from "../uapi/bpf.js";
import { BpfError, E2BIG, EFAULT, EINVAL, ENODEV, ENOSPC } from "../uapi/errno.js";
import type { BpfProg } from "./bpf.js";
import type { ProgTestRunAttr } from "./bpf_attr.js";
import { num } from "./bpf_attr.js";
import { SIZEOF_SK_BUFF_MD, SIZEOF_XDP_MD, SKB, XDP_MD } from "./filter.js";
import { pktRunBegin, pktRunEnd, type XdpBuff } from "./filter_helpers.js";
import { ETH_HLEN, SHINFO_SIZE, SkBuff } from "./skbuff.js";
import { bpf_test_run } from "./test_run.js";

/** Program types whose test run is bpf_prog_test_run_skb. */
export const SKB_TEST_RUN_PROG_TYPES: readonly number[] = [
  bpf_prog_type.BPF_PROG_TYPE_SOCKET_FILTER,
  bpf_prog_type.BPF_PROG_TYPE_SCHED_CLS,
  bpf_prog_type.BPF_PROG_TYPE_SCHED_ACT,
  bpf_prog_type.BPF_PROG_TYPE_CGROUP_SKB,
  bpf_prog_type.BPF_PROG_TYPE_LWT_IN,
  bpf_prog_type.BPF_PROG_TYPE_LWT_OUT,
  bpf_prog_type.BPF_PROG_TYPE_LWT_XMIT,
];

const PAGE_SIZE = 4096;
/** NET_SKB_PAD + NET_IP_ALIGN (x86-64). */
const SKB_HEADROOM = 64;
const XDP_PACKET_HEADROOM = 256;
/** The loopback device: the only one test runs find (dev_get_by_index). */
const LOOPBACK_IFINDEX = 1;
const GSO_MAX_SEGS = 65535;
const GSO_LEGACY_MAX_SIZE = 65536;

/** bpf_ctx_init: ctx_in of at most `max` bytes (a longer one only with a zero tail), zero-padded. */
function ctxInit(attr: ProgTestRunAttr, max: number): Uint8Array | null {
  const sizeIn = num(attr.ctx_size_in);
  const sizeOut = num(attr.ctx_size_out);
  if (!attr.ctx_in && !attr.ctx_out) return null;
  const data = new Uint8Array(max);
  if (attr.ctx_in && sizeIn) {
    if (attr.ctx_in.length < sizeIn) throw new BpfError(EFAULT, "ctx_in is shorter than ctx_size_in");
    // bpf_check_uarg_tail_zero: bytes past the struct must be zero.
    if (attr.ctx_in.subarray(max, sizeIn).some((b) => b !== 0)) throw new BpfError(E2BIG, "ctx_in has a non-zero tail");
    data.set(attr.ctx_in.subarray(0, Math.min(sizeIn, max)));
  }
  if (attr.ctx_out && sizeOut && attr.ctx_out.length < sizeOut) throw new BpfError(EFAULT, "ctx_out too short");
  return data;
}

/** bpf_test_init: the packet bytes (at least an Ethernet header, at most what a page holds). */
function dataIn(attr: ProgTestRunAttr, size: number, maxSize: number): Uint8Array {
  if (size < ETH_HLEN || size > maxSize)
    throw new BpfError(EINVAL, `data_size_in ${size} out of [${ETH_HLEN}, ${maxSize}]`);
  const d = attr.data_in;
  if (!d || d.length < size) throw new BpfError(EFAULT, "data_in is shorter than data_size_in");
  return d.subarray(0, size);
}

/**
 * bpf_test_finish: data_out gets at most data_size_out bytes (ENOSPC, after everything else is
 * written, when the packet was longer); data_size_out the packet's size; ctx_out the context.
 */
function testFinish(
  attr: ProgTestRunAttr,
  out: Uint8Array,
  ctxOut: Uint8Array | null,
  retval: number,
  duration: number,
): void {
  let copy = out.length;
  let nospc = false;
  const cap = num(attr.data_size_out);
  if (attr.data_out && cap && copy > cap) {
    copy = cap;
    nospc = true;
  }
  if (attr.data_out) attr.data_out.set(out.subarray(0, Math.min(copy, attr.data_out.length)));
  attr.data_size_out = out.length;
  attr.retval = retval;
  attr.duration = duration;
  if (ctxOut && attr.ctx_out) {
    const n = Math.min(ctxOut.length, num(attr.ctx_size_out) || ctxOut.length, attr.ctx_out.length);
    attr.ctx_out.set(ctxOut.subarray(0, n));
    attr.ctx_size_out = ctxOut.length;
  }
  if (nospc) throw new BpfError(ENOSPC, `data_out holds ${cap} of ${out.length} bytes`);
}

const rangeIsZero = (b: Uint8Array, from: number, to: number): boolean => b.subarray(from, to).every((x) => x === 0);

/**
 * convert___skb_to_skb: only mark, priority, ingress_ifindex, ifindex, cb[], tstamp, wire_len,
 * gso_segs, gso_size and hwtstamp may be set by the caller.
 */
function checkSkbCtx(c: Uint8Array, len: number): void {
  const dv = new DataView(c.buffer, c.byteOffset, c.byteLength);
  const bad = (why: string): never => {
    throw new BpfError(EINVAL, `__sk_buff: ${why}`);
  };
  if (
    !rangeIsZero(c, 0, SKB.mark) ||
    !rangeIsZero(c, SKB.mark + 4, SKB.priority) ||
    !rangeIsZero(c, SKB.ifindex + 4, SKB.cb) ||
    !rangeIsZero(c, SKB.cb + 20, SKB.tstamp) ||
    !rangeIsZero(c, SKB.gso_segs + 4, SKB.gso_size) ||
    !rangeIsZero(c, SKB.gso_size + 4, SKB.hwtstamp)
  )
    bad("a field test runs do not take is set");
  const wire = dv.getUint32(SKB.wire_len, true);
  if (wire !== 0 && (wire < len || wire > GSO_LEGACY_MAX_SIZE)) bad("wire_len out of range");
  if (dv.getUint32(SKB.gso_segs, true) > GSO_MAX_SEGS) bad("gso_segs over GSO_MAX_SEGS");
  if (dv.getUint32(SKB.ifindex, true) > LOOPBACK_IFINDEX) throw new BpfError(ENODEV, "no such ifindex");
}

/** eth_type_trans on the loopback device (address 00:00:00:00:00:00): pkt_type. */
function pktType(frame: Uint8Array): number {
  const dst = frame.subarray(0, 6);
  if (dst[0]! & 1) return dst.every((b) => b === 0xff) ? 1 /* BROADCAST */ : 2 /* MULTICAST */;
  return dst.every((b) => b === 0) ? 0 /* HOST */ : 3 /* OTHERHOST */;
}

/**
 * bpf_prog_test_run_skb: data_in is the frame from its Ethernet header. tc programs (is_l2) see
 * data from there; the others (socket filters) after the header, as eth_type_trans pulled it.
 */
export function testRunSkb(prog: BpfProg, attr: ProgTestRunAttr): void {
  if (num(attr.flags) || num(attr.cpu) || num(attr.batch_size))
    throw new BpfError(EINVAL, "skb test_run takes no flags, cpu or batch_size");
  const size = num(attr.data_size_in);
  const frame = dataIn(attr, size, PAGE_SIZE - SKB_HEADROOM - SHINFO_SIZE);
  const ctxIn = ctxInit(attr, SIZEOF_SK_BUFF_MD);
  if (ctxIn) checkSkbCtx(ctxIn, size);
  const isL2 =
    prog.type === bpf_prog_type.BPF_PROG_TYPE_SCHED_CLS || prog.type === bpf_prog_type.BPF_PROG_TYPE_SCHED_ACT;
  const k = prog.kernel;
  const ctx = k.mem.alloc(SIZEOF_SK_BUFF_MD, { perm: "rw", kind: "ctx", name: "test_run __sk_buff" });
  // eth_type_trans pulled the Ethernet header; tc programs (is_l2) get it pushed back.
  const skb = new SkBuff(k, ctx.addr, frame, SKB_HEADROOM);
  try {
    if (!isL2) skb.pull(ETH_HLEN);
    const c = k.mem.bytes(ctx.addr, SIZEOF_SK_BUFF_MD);
    if (ctxIn) c.set(ctxIn);
    const cv = new DataView(c.buffer, c.byteOffset, c.byteLength);
    cv.setUint32(SKB.pkt_type, pktType(frame), true);
    // skb->protocol is big-endian: the two bytes as they are in the frame.
    cv.setUint32(SKB.protocol, frame[12]! | (frame[13]! << 8), true);
    cv.setUint32(SKB.ifindex, LOOPBACK_IFINDEX, true);
    if (!cv.getUint32(SKB.wire_len, true)) cv.setUint32(SKB.wire_len, size, true);
    skb.sync();
    const run = { kind: "skb" as const, skb };
    pktRunBegin(run);
    let result: { retval: number; duration: number };
    try {
      result = bpf_test_run(prog, ctx.addr, num(attr.repeat));
    } finally {
      pktRunEnd(run);
    }
    const { retval, duration } = result;
    // The header eth_type_trans pulled is pushed back zeroed for the others.
    if (!isL2) {
      skb.expand(ETH_HLEN, 0);
      skb.push(ETH_HLEN);
      skb.view(0, ETH_HLEN).fill(0);
    }
    const out = skb.bytes();
    let ctxOut: Uint8Array | null = null;
    if (ctxIn) {
      // convert_skb_to___skb: the caller's fields, as the program left them.
      const now = k.mem.bytes(ctx.addr, SIZEOF_SK_BUFF_MD);
      ctxOut = new Uint8Array(SIZEOF_SK_BUFF_MD);
      for (const [from, to] of [
        [SKB.mark, SKB.mark + 4],
        [SKB.priority, SKB.priority + 4],
        [SKB.ingress_ifindex, SKB.ifindex + 4],
        [SKB.cb, SKB.cb + 20],
        [SKB.tstamp, SKB.tstamp + 8],
        [SKB.wire_len, SKB.gso_segs + 4],
        [SKB.gso_size, SKB.gso_size + 4],
        [SKB.hwtstamp, SKB.hwtstamp + 8],
      ] as const)
        ctxOut.set(now.subarray(from, to), from);
    }
    testFinish(attr, out, ctxOut, retval, duration);
  } finally {
    // kfree_skb(skb) then kfree(ctx), as bpf_prog_test_run_skb's exit does: freed in the reverse
    // order of allocation, the next run finds both where this one had them.
    skb.free();
    k.mem.free(ctx);
  }
}

/**
 * bpf_prog_test_run_xdp: the packet after XDP_PACKET_HEADROOM bytes of headroom; ctx_in's data
 * is the length of metadata at the head of data_in (data_meta 0, data_end the size). Multi-buffer
 * frames and BPF_F_TEST_XDP_LIVE_FRAMES are not modelled (EINVAL).
 */
export function testRunXdp(prog: BpfProg, attr: ProgTestRunAttr): void {
  const eat = prog.expected_attach_type;
  if (eat === bpf_attach_type.BPF_XDP_DEVMAP || eat === bpf_attach_type.BPF_XDP_CPUMAP)
    throw new BpfError(EINVAL, "devmap and cpumap programs do not test run");
  if (num(attr.flags)) throw new BpfError(EINVAL, "live frames are not modelled");
  if (num(attr.cpu) || num(attr.batch_size)) throw new BpfError(EINVAL, "xdp test_run takes no cpu or batch_size");
  const ctxIn = ctxInit(attr, SIZEOF_XDP_MD);
  const size = num(attr.data_size_in);
  let meta = 0;
  let ingress = 0;
  let rxq = 0;
  if (ctxIn) {
    const dv = new DataView(ctxIn.buffer, ctxIn.byteOffset, ctxIn.byteLength);
    meta = dv.getUint32(XDP_MD.data, true);
    const end = dv.getUint32(XDP_MD.data_end, true);
    ingress = dv.getUint32(XDP_MD.ingress_ifindex, true);
    rxq = dv.getUint32(XDP_MD.rx_queue_index, true);
    // There can't be user data before the metadata; metadata is u32-aligned, at most 32 bytes.
    if (dv.getUint32(XDP_MD.data_meta, true) || end !== size || meta > end || meta & 3 || meta > 32)
      throw new BpfError(EINVAL, "xdp_md: data_meta, data or data_end out of place");
    if (dv.getUint32(XDP_MD.egress_ifindex, true)) throw new BpfError(EINVAL, "xdp_md: egress_ifindex is set");
    if (!ingress && rxq) throw new BpfError(EINVAL, "xdp_md: rx_queue_index without ingress_ifindex");
    if (ingress > LOOPBACK_IFINDEX) throw new BpfError(ENODEV, "no such ingress_ifindex");
    if (ingress && rxq >= 1) throw new BpfError(EINVAL, "xdp_md: no such rx queue");
  }
  const frame = dataIn(attr, size, PAGE_SIZE - XDP_PACKET_HEADROOM - SHINFO_SIZE);
  const k = prog.kernel;
  // The frame is a page (frame_sz), of which the shared info's tail is not the packet's.
  const buf = k.mem.alloc(PAGE_SIZE - SHINFO_SIZE, { perm: "rw", kind: "mem", name: "test_run xdp buff" });
  const ctx = k.mem.alloc(SIZEOF_XDP_MD, { perm: "r", kind: "ctx", name: "test_run xdp_md" });
  try {
    const dataMeta = buf.addr + XDP_PACKET_HEADROOM - meta;
    k.mem.bytes(dataMeta, size).set(frame);
    const c = k.mem.bytes(ctx.addr, SIZEOF_XDP_MD);
    const cv = new DataView(c.buffer, c.byteOffset, c.byteLength);
    cv.setUint32(XDP_MD.data, dataMeta + meta, true);
    cv.setUint32(XDP_MD.data_end, dataMeta + size, true);
    cv.setUint32(XDP_MD.data_meta, dataMeta, true);
    cv.setUint32(XDP_MD.ingress_ifindex, ingress, true);
    cv.setUint32(XDP_MD.rx_queue_index, rxq, true);
    const xdp: XdpBuff = { kind: "xdp", ctx: ctx.addr, hardStart: buf.addr, frameSz: PAGE_SIZE };
    pktRunBegin(xdp);
    let result: { retval: number; duration: number };
    try {
      result = bpf_test_run(prog, ctx.addr, num(attr.repeat));
    } finally {
      pktRunEnd(xdp);
    }
    const { retval, duration } = result;
    // The run may have grown VM memory: views taken before it are stale.
    const after = k.mem.bytes(ctx.addr, SIZEOF_XDP_MD);
    const av = new DataView(after.buffer, after.byteOffset, after.byteLength);
    const start = av.getUint32(XDP_MD.data_meta, true);
    const data = av.getUint32(XDP_MD.data, true);
    const end = av.getUint32(XDP_MD.data_end, true);
    const out = k.mem.bytes(start, end - start).slice();
    let ctxOut: Uint8Array | null = null;
    if (ctxIn) {
      // xdp_convert_buff_to_md: offsets from data_meta again.
      ctxOut = new Uint8Array(SIZEOF_XDP_MD);
      const dv = new DataView(ctxOut.buffer);
      dv.setUint32(XDP_MD.data, data - start, true);
      dv.setUint32(XDP_MD.data_end, end - start, true);
      dv.setUint32(XDP_MD.ingress_ifindex, ingress, true);
      dv.setUint32(XDP_MD.rx_queue_index, rxq, true);
    }
    testFinish(attr, out, ctxOut, retval, duration);
  } finally {
    k.mem.free(ctx);
    k.mem.free(buf);
  }
}
