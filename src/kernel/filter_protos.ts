/**
 * net/core/filter.c, the helper side: the bpf_func_protos of the packet helpers structops runs
 * (src/kernel/filter_helpers.ts), and which of them each packet program type may call
 * (sk_filter_func_proto, tc_cls_act_func_proto, xdp_func_proto, cg_skb_func_proto), before the
 * base protos every program type shares.
 */
import { bpf_func_id } from "../uapi/bpf.js";
import type { VerifierEnv } from "../verifier/env.js";
import {
  ARG_ANYTHING,
  ARG_CONST_SIZE,
  ARG_CONST_SIZE_OR_ZERO,
  ARG_MAYBE_NULL,
  ARG_MEM_RDONLY,
  ARG_PTR_TO_CTX,
  ARG_PTR_TO_MEM,
  ARG_PTR_TO_UNINIT_MEM,
  bpfBaseFuncProto,
  type FuncProto,
  funcIdName,
  RET_INTEGER,
} from "../verifier/helper_protos.js";

const F = bpf_func_id;

function proto(funcId: number, argTypes: number[], extra: Partial<FuncProto> = {}): FuncProto {
  return { name: funcIdName(funcId), funcId, retType: RET_INTEGER, argTypes, ...extra };
}

const ctxOnly = (id: number) => proto(id, [ARG_PTR_TO_CTX]);
const ctxAnd = (id: number, n: number) => proto(id, [ARG_PTR_TO_CTX, ...Array<number>(n).fill(ARG_ANYTHING)]);

export const bpf_skb_store_bytes_proto = proto(F.BPF_FUNC_skb_store_bytes, [
  ARG_PTR_TO_CTX,
  ARG_ANYTHING,
  ARG_PTR_TO_MEM | ARG_MEM_RDONLY,
  ARG_CONST_SIZE,
  ARG_ANYTHING,
]);
export const bpf_skb_load_bytes_proto = proto(F.BPF_FUNC_skb_load_bytes, [
  ARG_PTR_TO_CTX,
  ARG_ANYTHING,
  ARG_PTR_TO_UNINIT_MEM,
  ARG_CONST_SIZE,
]);
export const bpf_skb_load_bytes_relative_proto = proto(F.BPF_FUNC_skb_load_bytes_relative, [
  ARG_PTR_TO_CTX,
  ARG_ANYTHING,
  ARG_PTR_TO_UNINIT_MEM,
  ARG_CONST_SIZE,
  ARG_ANYTHING,
]);
export const bpf_skb_pull_data_proto = ctxAnd(F.BPF_FUNC_skb_pull_data, 1);
export const bpf_l3_csum_replace_proto = ctxAnd(F.BPF_FUNC_l3_csum_replace, 4);
export const bpf_l4_csum_replace_proto = ctxAnd(F.BPF_FUNC_l4_csum_replace, 4);
export const bpf_csum_diff_proto = proto(
  F.BPF_FUNC_csum_diff,
  [
    ARG_PTR_TO_MEM | ARG_MAYBE_NULL | ARG_MEM_RDONLY,
    ARG_CONST_SIZE_OR_ZERO,
    ARG_PTR_TO_MEM | ARG_MAYBE_NULL | ARG_MEM_RDONLY,
    ARG_CONST_SIZE_OR_ZERO,
    ARG_ANYTHING,
  ],
  { pktAccess: true },
);
export const bpf_csum_update_proto = ctxAnd(F.BPF_FUNC_csum_update, 1);
export const bpf_csum_level_proto = ctxAnd(F.BPF_FUNC_csum_level, 1);
export const bpf_skb_vlan_push_proto = ctxAnd(F.BPF_FUNC_skb_vlan_push, 2);
export const bpf_skb_vlan_pop_proto = ctxOnly(F.BPF_FUNC_skb_vlan_pop);
export const bpf_skb_change_proto_proto = ctxAnd(F.BPF_FUNC_skb_change_proto, 2);
export const bpf_skb_change_type_proto = ctxAnd(F.BPF_FUNC_skb_change_type, 1);
export const bpf_skb_adjust_room_proto = ctxAnd(F.BPF_FUNC_skb_adjust_room, 3);
export const bpf_skb_change_tail_proto = ctxAnd(F.BPF_FUNC_skb_change_tail, 2);
export const bpf_skb_change_head_proto = ctxAnd(F.BPF_FUNC_skb_change_head, 2);
export const bpf_get_hash_recalc_proto = ctxOnly(F.BPF_FUNC_get_hash_recalc);
export const bpf_set_hash_invalid_proto = ctxOnly(F.BPF_FUNC_set_hash_invalid);
export const bpf_set_hash_proto = ctxAnd(F.BPF_FUNC_set_hash, 1);
/** bpf_redirect and bpf_xdp_redirect: (ifindex, flags), no context. */
export const bpf_redirect_proto = proto(F.BPF_FUNC_redirect, [ARG_ANYTHING, ARG_ANYTHING]);
export const bpf_xdp_adjust_head_proto = ctxAnd(F.BPF_FUNC_xdp_adjust_head, 1);
export const bpf_xdp_adjust_tail_proto = ctxAnd(F.BPF_FUNC_xdp_adjust_tail, 1);
export const bpf_xdp_adjust_meta_proto = ctxAnd(F.BPF_FUNC_xdp_adjust_meta, 1);
export const bpf_xdp_get_buff_len_proto = ctxOnly(F.BPF_FUNC_xdp_get_buff_len);
export const bpf_xdp_load_bytes_proto = proto(F.BPF_FUNC_xdp_load_bytes, [
  ARG_PTR_TO_CTX,
  ARG_ANYTHING,
  ARG_PTR_TO_UNINIT_MEM,
  ARG_CONST_SIZE,
]);
export const bpf_xdp_store_bytes_proto = proto(F.BPF_FUNC_xdp_store_bytes, [
  ARG_PTR_TO_CTX,
  ARG_ANYTHING,
  ARG_PTR_TO_UNINIT_MEM,
  ARG_CONST_SIZE,
]);

const table = (protos: FuncProto[]): ReadonlyMap<number, FuncProto> => new Map(protos.map((p) => [p.funcId, p]));

/** sk_filter_func_proto. */
const SK_FILTER = table([bpf_skb_load_bytes_proto, bpf_skb_load_bytes_relative_proto]);
/** cg_skb_func_proto (the packet part). */
const CG_SKB = SK_FILTER;
/** tc_cls_act_func_proto (what structops runs of it). */
const TC_CLS_ACT = table([
  bpf_skb_store_bytes_proto,
  bpf_skb_load_bytes_proto,
  bpf_skb_load_bytes_relative_proto,
  bpf_skb_pull_data_proto,
  bpf_csum_diff_proto,
  bpf_csum_update_proto,
  bpf_csum_level_proto,
  bpf_l3_csum_replace_proto,
  bpf_l4_csum_replace_proto,
  bpf_skb_vlan_push_proto,
  bpf_skb_vlan_pop_proto,
  bpf_skb_change_proto_proto,
  bpf_skb_change_type_proto,
  bpf_skb_adjust_room_proto,
  bpf_skb_change_tail_proto,
  bpf_skb_change_head_proto,
  bpf_redirect_proto,
  bpf_get_hash_recalc_proto,
  bpf_set_hash_invalid_proto,
  bpf_set_hash_proto,
]);
/** xdp_func_proto. */
const XDP = table([
  bpf_csum_diff_proto,
  bpf_xdp_adjust_head_proto,
  bpf_xdp_adjust_meta_proto,
  bpf_xdp_adjust_tail_proto,
  bpf_redirect_proto,
  bpf_xdp_get_buff_len_proto,
  bpf_xdp_load_bytes_proto,
  bpf_xdp_store_bytes_proto,
]);

type GetFuncProto = (funcId: number, env: VerifierEnv) => FuncProto | undefined;
const withBase =
  (t: ReadonlyMap<number, FuncProto>): GetFuncProto =>
  (id, env) =>
    t.get(id) ?? bpfBaseFuncProto(id, !!env.privileged);

export const skFilterFuncProto = withBase(SK_FILTER);
export const cgSkbFuncProto = withBase(CG_SKB);
export const tcClsActFuncProto = withBase(TC_CLS_ACT);
export const xdpFuncProto = withBase(XDP);
