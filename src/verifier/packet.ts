/**
 * Direct packet access (kernel/bpf/verifier.c): PTR_TO_PACKET, PTR_TO_PACKET_META and
 * PTR_TO_PACKET_END from the context, the range a comparison with data_end proves
 * (find_good_pkt_pointers, try_match_pkt_pointers, mark_pkt_end, is_pkt_ptr_branch_taken),
 * check_packet_access, may_access_direct_pkt_data and clear_all_pkt_pointers.
 *
 * A packet pointer's range is kept in RegState.memSize (the kernel's union of range and
 * mem_size): bytes [ptr, ptr + range) of the pointer's id are known to lie before data_end.
 */
import type { Insn } from "../isa/insn.js";
import { BPF_CLASS, BPF_JGE, BPF_JGT, BPF_JLE, BPF_JLT, BPF_JMP32, BPF_OP, BPF_SRC, BPF_X } from "../isa/opcodes.js";
import { bpf_prog_type } from "../uapi/bpf.js";
import { EACCES, EINVAL } from "../uapi/errno.js";
import { forEachReg, markRegInvalid } from "./refs.js";
import {
  baseType,
  DYNPTR_TYPE_SKB,
  DYNPTR_TYPE_XDP,
  PTR_TO_MEM,
  PTR_TO_PACKET,
  PTR_TO_PACKET_END,
  PTR_TO_PACKET_META,
  type RegState,
} from "./reg_state.js";
import { curFrame, type VerifierState } from "./state.js";
import { tnumAdd, tnumConst, tnumIsConst, tnumStr } from "./tnum.js";
import type { Verifier } from "./verifier.js";

/** Largest offset into a packet (include/linux/bpf.h). */
export const MAX_PACKET_OFF = 0xffff;
/** Ranges of a pointer known to be at data_end, or beyond it (mark_pkt_end). */
export const AT_PKT_END = -1;
export const BEYOND_PKT_END = -2;
/** NET_IP_ALIGN, as check_pkt_ptr_alignment assumes it. */
const NET_IP_ALIGN = 2;

const P = bpf_prog_type;
/** Program types that may only read packet data directly (may_access_direct_pkt_data). */
const PKT_READ_ONLY: readonly number[] = [
  P.BPF_PROG_TYPE_LWT_IN,
  P.BPF_PROG_TYPE_LWT_OUT,
  P.BPF_PROG_TYPE_LWT_SEG6LOCAL,
  P.BPF_PROG_TYPE_SK_REUSEPORT,
  P.BPF_PROG_TYPE_FLOW_DISSECTOR,
  P.BPF_PROG_TYPE_CGROUP_SKB,
];
/** ... and those that may read and write it. */
const PKT_READ_WRITE: readonly number[] = [
  P.BPF_PROG_TYPE_SCHED_CLS,
  P.BPF_PROG_TYPE_SCHED_ACT,
  P.BPF_PROG_TYPE_XDP,
  P.BPF_PROG_TYPE_LWT_XMIT,
  P.BPF_PROG_TYPE_SK_SKB,
  P.BPF_PROG_TYPE_SK_MSG,
];

export const isPktPointer = (r: RegState): boolean => r.type === PTR_TO_PACKET || r.type === PTR_TO_PACKET_META;
export const isPktType = (t: number): boolean =>
  t === PTR_TO_PACKET || t === PTR_TO_PACKET_META || t === PTR_TO_PACKET_END;
export const isPktPointerAny = (r: RegState): boolean => isPktPointer(r) || r.type === PTR_TO_PACKET_END;

/**
 * may_access_direct_pkt_data: a helper (pktAccess: its proto's pkt_access) or a load or store
 * through a packet pointer.
 */
export function mayAccessDirectPktData(progType: number, write: boolean, pktAccess?: boolean): boolean {
  if (PKT_READ_ONLY.includes(progType) && write) return false;
  if (PKT_READ_ONLY.includes(progType) || PKT_READ_WRITE.includes(progType))
    return pktAccess === undefined ? true : pktAccess;
  return progType === P.BPF_PROG_TYPE_CGROUP_SOCKOPT;
}

/** reg_is_init_pkt_pointer: the pointer as the context load gave it. */
function isInitPktPointer(r: RegState, type: number): boolean {
  return r.type === type && r.id === 0 && r.off === 0 && tnumIsConst(r.varOff) && r.varOff.value === 0n;
}

/** check_pkt_ptr_alignment, when alignment is strict (BPF_F_STRICT_ALIGNMENT). */
function checkPktPtrAlignment(v: Verifier, reg: RegState, off: number, size: number): void {
  if (!v.env.strictAlignment || size === 1) return;
  const at = tnumAdd(reg.varOff, tnumConst(BigInt(NET_IP_ALIGN + reg.off + off)));
  if (((at.value | at.mask) & BigInt(size - 1)) !== 0n) {
    const vo = tnumIsConst(reg.varOff) ? `${BigInt.asIntN(64, reg.varOff.value)}` : tnumStr(reg.varOff);
    v.reject(EACCES, `misaligned packet access off ${NET_IP_ALIGN}+${vo}+${reg.off}+${off} size ${size}`);
  }
}

/**
 * check_mem_access for a packet pointer: writes only where the program type allows them, no
 * pointer stored, then check_packet_access at off + reg.off.
 */
export function checkPktMemAccess(
  v: Verifier,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  write: boolean,
  value: RegState | undefined,
  valueReg: number,
): void {
  checkPktPtrAlignment(v, reg, off, size);
  if (write && !mayAccessDirectPktData(v.env.progType, true)) v.reject(EACCES, "cannot write into packet");
  if (write && value && v.isPointerValue(value)) v.reject(EACCES, `R${valueReg} leaks addr into packet`);
  checkPacketAccess(v, regno, reg, off + reg.off, size, false);
}

/** check_packet_access: [off, off + size) of the pointer's range (off includes reg.off). */
export function checkPacketAccess(
  v: Verifier,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  zeroSizeAllowed: boolean,
): void {
  if (reg.smin < 0n) {
    v.reject(EACCES, `R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.`);
  }
  const range = reg.memSize;
  const sizeOk = size > 0 || (size === 0 && zeroSizeAllowed);
  if (range < 0) v.reject(EINVAL, `R${regno} offset is outside of the packet`);
  if (!(off >= 0 && sizeOk && off + size <= range)) {
    v.note(`invalid access to packet, off=${off} size=${size}, R${regno}(id=${reg.id},off=${off},r=${range})`);
    v.reject(EACCES, `R${regno} offset is outside of the packet`);
  }
}

/**
 * find_good_pkt_pointers: `reg` (pkt + off) was found at most data_end (range_right_open:
 * below it): every pointer of its id and type may touch off (off + 1) bytes.
 */
function findGoodPktPointers(st: VerifierState, reg: RegState, type: number, rightOpen: boolean): void {
  if (reg.off < 0 || (reg.off === 0 && rightOpen)) return;
  if (reg.umax > BigInt(MAX_PACKET_OFF) || reg.umax + BigInt(reg.off) > BigInt(MAX_PACKET_OFF)) return;
  const range = reg.off + (rightOpen ? 1 : 0);
  const id = reg.id;
  forEachReg(st, (r) => {
    if (r.type === type && r.id === id && r.memSize < range) r.memSize = range;
  });
}

/** mark_pkt_end: register `regno` of `st` is at (beyond: past) data_end. */
function markPktEnd(st: VerifierState, regno: number, beyond: boolean): void {
  const r = curFrame(st).regs[regno];
  // PTR_TO_PACKET_META is not marked (as in the kernel).
  if (r.type !== PTR_TO_PACKET) return;
  r.memSize = beyond ? BEYOND_PKT_END : AT_PKT_END;
}

/**
 * try_match_pkt_pointers: a comparison of pkt with pkt_end, or of pkt_meta with pkt, proves a
 * range on one side; `cur` falls through, `other` jumps. False when the operands are not such.
 */
export function tryMatchPktPointers(
  insn: Insn,
  dst: RegState,
  src: RegState,
  cur: VerifierState,
  other: VerifierState,
): boolean {
  if (BPF_SRC(insn.code) !== BPF_X || BPF_CLASS(insn.code) === BPF_JMP32) return false;
  const op = BPF_OP(insn.code);
  // dst is the packet pointer being checked (pkt' op pkt_end, pkt_meta' op pkt) ...
  const dstLeft =
    (dst.type === PTR_TO_PACKET && src.type === PTR_TO_PACKET_END) ||
    (dst.type === PTR_TO_PACKET_META && isInitPktPointer(src, PTR_TO_PACKET));
  // ... or src is (pkt_end op pkt', pkt op pkt_meta').
  const srcRight =
    (dst.type === PTR_TO_PACKET_END && src.type === PTR_TO_PACKET) ||
    (isInitPktPointer(dst, PTR_TO_PACKET) && src.type === PTR_TO_PACKET_META);
  if (!dstLeft && !srcRight) return false;
  const d = { ...dst };
  const s = { ...src };
  switch (op) {
    case BPF_JGT:
      if (dstLeft) {
        findGoodPktPointers(cur, d, d.type, false);
        markPktEnd(other, insn.dst, true);
      } else {
        findGoodPktPointers(other, s, s.type, true);
        markPktEnd(cur, insn.src, false);
      }
      return true;
    case BPF_JLT:
      if (dstLeft) {
        findGoodPktPointers(other, d, d.type, true);
        markPktEnd(cur, insn.dst, false);
      } else {
        findGoodPktPointers(cur, s, s.type, false);
        markPktEnd(other, insn.src, true);
      }
      return true;
    case BPF_JGE:
      if (dstLeft) {
        findGoodPktPointers(cur, d, d.type, true);
        markPktEnd(other, insn.dst, false);
      } else {
        findGoodPktPointers(other, s, s.type, false);
        markPktEnd(cur, insn.src, true);
      }
      return true;
    case BPF_JLE:
      if (dstLeft) {
        findGoodPktPointers(other, d, d.type, false);
        markPktEnd(cur, insn.dst, true);
      } else {
        findGoodPktPointers(cur, s, s.type, true);
        markPktEnd(other, insn.src, false);
      }
      return true;
    default:
      return false;
  }
}

/**
 * is_pkt_ptr_branch_taken: a pointer marked at or beyond data_end decides its comparison with
 * data_end (1 taken, 0 not, -1 unknown).
 */
export function isPktPtrBranchTaken(dst: RegState, src: RegState, op: number): number {
  let pkt: RegState;
  if (src.type === PTR_TO_PACKET_END) pkt = dst;
  else if (dst.type === PTR_TO_PACKET_END) {
    pkt = src;
    op = flipOpcode(op);
  } else return -1;
  if (pkt.memSize >= 0) return -1;
  switch (op) {
    case BPF_JLE:
    case BPF_JGT:
      // One byte beyond data_end: pkt > pkt_end holds, pkt <= pkt_end does not.
      if (pkt.memSize === BEYOND_PKT_END) return op === BPF_JGT ? 1 : 0;
      break;
    case BPF_JLT:
    case BPF_JGE:
      if (pkt.memSize === BEYOND_PKT_END || pkt.memSize === AT_PKT_END) return op === BPF_JGE ? 1 : 0;
      break;
  }
  return -1;
}

/** flip_opcode: the comparison with its operands swapped. */
function flipOpcode(op: number): number {
  switch (op) {
    case BPF_JGT:
      return BPF_JLT;
    case BPF_JLT:
      return BPF_JGT;
    case BPF_JGE:
      return BPF_JLE;
    case BPF_JLE:
      return BPF_JGE;
    default:
      return op;
  }
}

/**
 * clear_all_pkt_pointers: after a helper that may move packet data, no packet pointer nor skb or
 * xdp dynptr slice of any frame stays usable.
 */
export function clearAllPktPointers(v: Verifier): void {
  forEachReg(v.cur, (r) => {
    if (isPktPointerAny(r) || (baseType(r.type) === PTR_TO_MEM && r.type & (DYNPTR_TYPE_SKB | DYNPTR_TYPE_XDP)))
      markRegInvalid(v, r);
  });
}

/**
 * bpf_helper_changes_pkt_data (net/core/filter.c): helpers after which packet pointers are
 * invalid, by id: skb_store_bytes, l3/l4_csum_replace, clone_redirect, skb_vlan_push/pop,
 * skb_change_proto, skb_change_tail, skb_pull_data, skb_change_head, xdp_adjust_head,
 * skb_adjust_room, xdp_adjust_meta, msg_pull_data, xdp_adjust_tail, lwt_push_encap,
 * lwt_seg6_store_bytes/adjust_srh/action, msg_push_data, msg_pop_data, store_hdr_opt.
 */
const CHANGES_PKT_DATA: ReadonlySet<number> = new Set([
  9, 10, 11, 13, 18, 19, 31, 38, 39, 43, 44, 50, 54, 63, 65, 73, 74, 75, 76, 90, 91, 143,
]);

export const helperChangesPktData = (funcId: number): boolean => CHANGES_PKT_DATA.has(funcId);
