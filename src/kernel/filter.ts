/**
 * net/core/filter.c, the context side: which fields of `struct __sk_buff`, `struct xdp_md` and
 * `struct sk_msg_md` each program type may read or write (the *_is_valid_access functions), and
 * the packet pointers its data, data_meta and data_end loads give. The context a program sees at
 * run time is that uapi struct itself (test_run.ts lays it out), so no access is rewritten: the
 * VM's addresses fit the 32-bit data fields.
 */
import { bpf_attach_type, bpf_prog_type } from "../uapi/bpf.js";
import type { CtxAccessResult, VerifierEnv, VerifierOps } from "../verifier/env.js";
import { PTR_TO_PACKET, PTR_TO_PACKET_END, PTR_TO_PACKET_META } from "../verifier/reg_state.js";
import { cgSkbFuncProto, skFilterFuncProto, tcClsActFuncProto, xdpFuncProto } from "./filter_protos.js";

/** struct __sk_buff (include/uapi/linux/bpf.h): member offsets. */
export const SKB = {
  len: 0,
  pkt_type: 4,
  mark: 8,
  queue_mapping: 12,
  protocol: 16,
  vlan_present: 20,
  vlan_tci: 24,
  vlan_proto: 28,
  priority: 32,
  ingress_ifindex: 36,
  ifindex: 40,
  tc_index: 44,
  cb: 48,
  hash: 68,
  tc_classid: 72,
  data: 76,
  data_end: 80,
  napi_id: 84,
  family: 88,
  remote_ip4: 92,
  local_ip4: 96,
  remote_ip6: 100,
  local_ip6: 116,
  remote_port: 132,
  local_port: 136,
  data_meta: 140,
  flow_keys: 144,
  tstamp: 152,
  wire_len: 160,
  gso_segs: 164,
  sk: 168,
  gso_size: 176,
  tstamp_type: 180,
  hwtstamp: 184,
} as const;
export const SIZEOF_SK_BUFF_MD = 192;

/** struct xdp_md. */
export const XDP_MD = {
  data: 0,
  data_end: 4,
  data_meta: 8,
  ingress_ifindex: 12,
  rx_queue_index: 16,
  egress_ifindex: 20,
};
export const SIZEOF_XDP_MD = 24;

/** struct sk_msg_md. */
const SK_MSG_MD = { data: 0, data_end: 8, family: 16, size: 68, sk: 72 };

type Access = CtxAccessResult | undefined;
const OK: CtxAccessResult = {};

/** bpf_ctx_range(TYPE, MEMBER) of a u32 member: does `off` fall inside it? */
const in32 = (off: number, member: number): boolean => off >= member && off < member + 4;
const inRange = (off: number, from: number, toEnd: number): boolean => off >= from && off < toEnd;
/** bpf_ctx_range_till(__sk_buff, family, local_port). */
const inSkLookupFields = (off: number): boolean => inRange(off, SKB.family, SKB.local_port + 4);
const inCb = (off: number): boolean => inRange(off, SKB.cb, SKB.cb + 20);

/** bpf_ctx_narrow_access_ok. */
const narrowOk = (size: number, sizeDefault: number): boolean => size <= sizeDefault && (size & (size - 1)) === 0;

/** bpf_skb_is_valid_access: what every __sk_buff program type shares. */
function skbIsValidAccess(off: number, size: number, write: boolean, res: CtxAccessResult = OK): Access {
  if (off < 0 || off >= SIZEOF_SK_BUFF_MD) return undefined;
  if (off % size !== 0) return undefined;
  if (inCb(off)) return off + size > SKB.cb + 20 ? undefined : res;
  if (
    inRange(off, SKB.remote_ip6, SKB.remote_ip6 + 16) ||
    inRange(off, SKB.local_ip6, SKB.local_ip6 + 16) ||
    in32(off, SKB.remote_ip4) ||
    in32(off, SKB.local_ip4) ||
    in32(off, SKB.data) ||
    in32(off, SKB.data_meta) ||
    in32(off, SKB.data_end)
  )
    return size === 4 ? res : undefined;
  if (inRange(off, SKB.flow_keys, SKB.flow_keys + 8)) return undefined;
  if (inRange(off, SKB.hwtstamp, SKB.hwtstamp + 8)) return write || size !== 8 ? undefined : res;
  if (inRange(off, SKB.tstamp, SKB.tstamp + 8)) return size !== 8 ? undefined : res;
  // The socket pointer (PTR_TO_SOCK_COMMON_OR_NULL) is not modelled.
  if (off === SKB.sk) return undefined;
  if (off === SKB.tstamp_type) return undefined;
  // Padding between tstamp_type and hwtstamp.
  if (off > SKB.tstamp_type && off < SKB.hwtstamp) return undefined;
  if (write) return size === 4 ? res : undefined;
  return narrowOk(size, 4) ? res : undefined;
}

const pktRes = (off: number, meta: boolean): CtxAccessResult =>
  in32(off, SKB.data)
    ? { regType: PTR_TO_PACKET }
    : in32(off, SKB.data_end)
      ? { regType: PTR_TO_PACKET_END }
      : meta && in32(off, SKB.data_meta)
        ? { regType: PTR_TO_PACKET_META }
        : OK;

/** sk_filter_is_valid_access: socket filters read no packet pointers and write only cb[]. */
function skFilterIsValidAccess(off: number, size: number, write: boolean): Access {
  if (
    in32(off, SKB.tc_classid) ||
    in32(off, SKB.data) ||
    in32(off, SKB.data_meta) ||
    in32(off, SKB.data_end) ||
    inSkLookupFields(off) ||
    inRange(off, SKB.tstamp, SKB.tstamp + 8) ||
    in32(off, SKB.wire_len) ||
    inRange(off, SKB.hwtstamp, SKB.hwtstamp + 8)
  )
    return undefined;
  if (write && !inCb(off)) return undefined;
  return skbIsValidAccess(off, size, write);
}

/** tc_cls_act_is_valid_access (sched_cls, sched_act). */
function tcClsActIsValidAccess(off: number, size: number, write: boolean): Access {
  if (write) {
    const ok =
      in32(off, SKB.mark) ||
      in32(off, SKB.tc_index) ||
      in32(off, SKB.priority) ||
      in32(off, SKB.tc_classid) ||
      inCb(off) ||
      inRange(off, SKB.tstamp, SKB.tstamp + 8) ||
      in32(off, SKB.queue_mapping);
    if (!ok) return undefined;
  }
  if (inSkLookupFields(off)) return undefined;
  if (off === SKB.tstamp_type) return size === 1 ? OK : undefined;
  return skbIsValidAccess(off, size, write, pktRes(off, true));
}

/** cg_skb_is_valid_access: data and data_end need CAP_BPF; writes to mark, priority, cb[], tstamp. */
function cgSkbIsValidAccess(off: number, size: number, write: boolean, env?: VerifierEnv): Access {
  if (in32(off, SKB.tc_classid) || in32(off, SKB.data_meta) || in32(off, SKB.wire_len)) return undefined;
  if ((in32(off, SKB.data) || in32(off, SKB.data_end)) && !env?.privileged) return undefined;
  if (write) {
    const ok = in32(off, SKB.mark) || in32(off, SKB.priority) || inCb(off);
    const tstamp = inRange(off, SKB.tstamp, SKB.tstamp + 8);
    if (!ok && !(tstamp && env?.privileged)) return undefined;
  }
  return skbIsValidAccess(off, size, write, pktRes(off, false));
}

/** lwt_is_valid_access (lwt_in, lwt_out, lwt_xmit, lwt_seg6local). */
function lwtIsValidAccess(off: number, size: number, write: boolean): Access {
  if (
    in32(off, SKB.tc_classid) ||
    inSkLookupFields(off) ||
    in32(off, SKB.data_meta) ||
    inRange(off, SKB.tstamp, SKB.tstamp + 8) ||
    in32(off, SKB.wire_len) ||
    inRange(off, SKB.hwtstamp, SKB.hwtstamp + 8)
  )
    return undefined;
  if (write && !(in32(off, SKB.mark) || in32(off, SKB.priority) || inCb(off))) return undefined;
  return skbIsValidAccess(off, size, write, pktRes(off, false));
}

/** sk_skb_is_valid_access. */
function skSkbIsValidAccess(off: number, size: number, write: boolean): Access {
  if (
    in32(off, SKB.tc_classid) ||
    in32(off, SKB.data_meta) ||
    inRange(off, SKB.tstamp, SKB.tstamp + 8) ||
    in32(off, SKB.wire_len) ||
    inRange(off, SKB.hwtstamp, SKB.hwtstamp + 8)
  )
    return undefined;
  if (write && !(in32(off, SKB.tc_index) || in32(off, SKB.priority))) return undefined;
  if (in32(off, SKB.mark)) return undefined;
  return skbIsValidAccess(off, size, write, pktRes(off, false));
}

/** xdp_is_valid_access: reads of aligned u32 fields; egress_ifindex only for devmap programs. */
function xdpIsValidAccess(off: number, size: number, write: boolean, env?: VerifierEnv): Access {
  if (env?.expectedAttachType !== bpf_attach_type.BPF_XDP_DEVMAP && off === XDP_MD.egress_ifindex) return undefined;
  if (write) return undefined;
  if (off < 0 || off >= SIZEOF_XDP_MD || off % size !== 0 || size !== 4) return undefined;
  if (off === XDP_MD.data) return { regType: PTR_TO_PACKET };
  if (off === XDP_MD.data_meta) return { regType: PTR_TO_PACKET_META };
  if (off === XDP_MD.data_end) return { regType: PTR_TO_PACKET_END };
  return OK;
}

/** sk_msg_is_valid_access: 64-bit data and data_end, u32 fields; no writes. */
function skMsgIsValidAccess(off: number, size: number, write: boolean): Access {
  if (write || off % size !== 0) return undefined;
  if (off === SK_MSG_MD.data) return size === 8 ? { regType: PTR_TO_PACKET } : undefined;
  if (off === SK_MSG_MD.data_end) return size === 8 ? { regType: PTR_TO_PACKET_END } : undefined;
  // The socket pointer (PTR_TO_SOCKET) is not modelled.
  if (off === SK_MSG_MD.sk) return undefined;
  if (off >= SK_MSG_MD.family && off < SK_MSG_MD.size + 4) return size === 4 ? OK : undefined;
  return undefined;
}

const T = bpf_prog_type;
/** The verifier ops of the packet program types, by program type. */
export const filterVerifierOps: ReadonlyMap<number, VerifierOps> = new Map<number, VerifierOps>([
  [
    T.BPF_PROG_TYPE_SOCKET_FILTER,
    { name: "sk_filter", isValidAccess: skFilterIsValidAccess, getFuncProto: skFilterFuncProto },
  ],
  [
    T.BPF_PROG_TYPE_SCHED_CLS,
    { name: "tc_cls_act", isValidAccess: tcClsActIsValidAccess, getFuncProto: tcClsActFuncProto },
  ],
  [
    T.BPF_PROG_TYPE_SCHED_ACT,
    { name: "tc_cls_act", isValidAccess: tcClsActIsValidAccess, getFuncProto: tcClsActFuncProto },
  ],
  [T.BPF_PROG_TYPE_CGROUP_SKB, { name: "cg_skb", isValidAccess: cgSkbIsValidAccess, getFuncProto: cgSkbFuncProto }],
  [T.BPF_PROG_TYPE_LWT_IN, { name: "lwt_in", isValidAccess: lwtIsValidAccess }],
  [T.BPF_PROG_TYPE_LWT_OUT, { name: "lwt_out", isValidAccess: lwtIsValidAccess }],
  [T.BPF_PROG_TYPE_LWT_XMIT, { name: "lwt_xmit", isValidAccess: lwtIsValidAccess }],
  [T.BPF_PROG_TYPE_LWT_SEG6LOCAL, { name: "lwt_seg6local", isValidAccess: lwtIsValidAccess }],
  [T.BPF_PROG_TYPE_SK_SKB, { name: "sk_skb", isValidAccess: skSkbIsValidAccess }],
  [T.BPF_PROG_TYPE_XDP, { name: "xdp", isValidAccess: xdpIsValidAccess, getFuncProto: xdpFuncProto }],
  [T.BPF_PROG_TYPE_SK_MSG, { name: "sk_msg", isValidAccess: skMsgIsValidAccess }],
]);
