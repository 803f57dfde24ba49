/**
 * LD_ABS / LD_IND at run time, as the kernel does it: after verification do_misc_fixups replaces
 * each one with bpf_gen_ld_abs's sequence (net/core/filter.c),
 *
 *   r2 = imm            (LD_IND: r2 = src; r2 += imm)
 *   r1 = r6
 *   call bpf_skb_load_helper_{8,16,32}_no_cache
 *   if r0 s>= 0 goto +2
 *   w0 ^= w0
 *   exit
 *
 * so a load outside the packet ends the function with 0. The helpers read the skb test_run_pkt.ts
 * laid out for the context in r1, in network byte order; negative offsets from SKF_NET_OFF and
 * SKF_LL_OFF address the network and link-layer headers. do_misc_fixups (syscall_prog.ts) patches
 * them in with bpf_patch_insn_data (src/verifier/fixups.ts), after context conversion, as it
 * patches may_goto.
 */
import type { Insn } from "../isa/insn.js";
import {
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_B,
  BPF_CALL,
  BPF_CLASS,
  BPF_EXIT,
  BPF_H,
  BPF_IND,
  BPF_JMP,
  BPF_JSGE,
  BPF_K,
  BPF_LD,
  BPF_MODE,
  BPF_MOV,
  BPF_SIZE,
  BPF_X,
  BPF_XOR,
} from "../isa/opcodes.js";
import { skbAt } from "./filter_helpers.js";
import type { Kernel } from "./kernel.js";

/** Helper ids of the three load helpers: kernel-internal, no program can name them. */
export const BPF_SKB_LOAD_HELPER_8 = 0x7fff_0008;
export const BPF_SKB_LOAD_HELPER_16 = 0x7fff_0010;
export const BPF_SKB_LOAD_HELPER_32 = 0x7fff_0020;
const SKF_NET_OFF = -0x100000;
const SKF_LL_OFF = -0x200000;
const EFAULT = 14;

export const isLdAbs = (i: Insn): boolean =>
  BPF_CLASS(i.code) === BPF_LD && (BPF_MODE(i.code) === BPF_ABS || BPF_MODE(i.code) === BPF_IND);

/** bpf_gen_ld_abs. */
export function genLdAbs(orig: Insn): Insn[] {
  const out: Insn[] = [];
  const ins = (code: number, dst: number, src: number, off: number, imm: number) =>
    out.push({ code, dst, src, off, imm });
  if (BPF_MODE(orig.code) === BPF_ABS) ins(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, orig.imm);
  else {
    ins(BPF_ALU64 | BPF_MOV | BPF_X, 2, orig.src, 0, 0);
    if (orig.imm) ins(BPF_ALU64 | 0x00 /* BPF_ADD */ | BPF_K, 2, 0, 0, orig.imm);
  }
  ins(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0);
  const size = BPF_SIZE(orig.code);
  const helper =
    size === BPF_B ? BPF_SKB_LOAD_HELPER_8 : size === BPF_H ? BPF_SKB_LOAD_HELPER_16 : BPF_SKB_LOAD_HELPER_32;
  ins(BPF_JMP | BPF_CALL, 0, 0, 0, helper);
  ins(BPF_JMP | BPF_JSGE | BPF_K, 0, 0, 2, 0);
  ins(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0, 0);
  ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  return out;
}

/** bpf_skb_load_helper_{8,16,32}_no_cache: the bytes in network order, or -EFAULT. */
function loadHelper(k: Kernel, ctx: number, offset: number, size: number): bigint {
  const skb = skbAt(ctx);
  if (!skb) return BigInt(-EFAULT);
  let from: number;
  if (offset >= 0) from = skb.data + offset;
  else if (offset >= SKF_NET_OFF) from = skb.net + (offset - SKF_NET_OFF);
  else if (offset >= SKF_LL_OFF) from = skb.mac + (offset - SKF_LL_OFF);
  else return BigInt(-EFAULT);
  if (from < skb.mac || from + size > skb.end) return BigInt(-EFAULT);
  const b = k.mem.bytes(from, size);
  let v = 0;
  for (let i = 0; i < size; i++) v = v * 256 + b[i]!;
  return BigInt(v);
}

export function registerLdAbsHelpers(k: Kernel): void {
  k.registerHelper(BPF_SKB_LOAD_HELPER_8, (c) => loadHelper(k, c.argNum(1), c.argNum(2) | 0, 1));
  k.registerHelper(BPF_SKB_LOAD_HELPER_16, (c) => loadHelper(k, c.argNum(1), c.argNum(2) | 0, 2));
  k.registerHelper(BPF_SKB_LOAD_HELPER_32, (c) => loadHelper(k, c.argNum(1), c.argNum(2) | 0, 4));
}
