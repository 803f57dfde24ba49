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
 * SKF_LL_OFF address the network and link-layer headers. Instructions after a replaced one move:
 * jumps, calls and function addresses keep their targets, func_info, line_info and the
 * verifier's per-instruction facts follow.
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
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_JSGE,
  BPF_K,
  BPF_LD,
  BPF_MODE,
  BPF_MOV,
  BPF_OP,
  BPF_SIZE,
  BPF_X,
  BPF_XOR,
} from "../isa/opcodes.js";
import type { BpfProg } from "./bpf.js";
import { skbAt } from "./filter_helpers.js";
import type { Kernel } from "./kernel.js";

/** Helper ids of the three load helpers: kernel-internal, no program can name them. */
export const BPF_SKB_LOAD_HELPER_8 = 0x7fff_0008;
export const BPF_SKB_LOAD_HELPER_16 = 0x7fff_0010;
export const BPF_SKB_LOAD_HELPER_32 = 0x7fff_0020;
const SKF_NET_OFF = -0x100000;
const SKF_LL_OFF = -0x200000;
const EFAULT = 14;
const BPF_PSEUDO_CALL = 1;
const BPF_PSEUDO_FUNC = 4;

const isLdAbs = (i: Insn): boolean =>
  BPF_CLASS(i.code) === BPF_LD && (BPF_MODE(i.code) === BPF_ABS || BPF_MODE(i.code) === BPF_IND);

/** bpf_gen_ld_abs. */
function genLdAbs(orig: Insn): Insn[] {
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

/** A pc-relative target of instruction i (jump, bpf-to-bpf call, ld_imm64 of a function), or -1. */
function relTarget(insns: readonly Insn[], i: number): number {
  const insn = insns[i]!;
  const cls = BPF_CLASS(insn.code);
  if (cls === BPF_JMP || cls === BPF_JMP32) {
    const op = BPF_OP(insn.code);
    if (op === BPF_CALL) return insn.src === BPF_PSEUDO_CALL ? i + insn.imm + 1 : -1;
    if (op === BPF_EXIT) return -1;
    if (op === BPF_JA && cls === BPF_JMP32) return i + insn.imm + 1;
    return i + insn.off + 1;
  }
  if (insn.code === (BPF_LD | 0x18) && insn.src === BPF_PSEUDO_FUNC) return i + insn.imm + 1;
  return -1;
}

interface Facts {
  seen?: Uint8Array;
  memProven?: Uint8Array;
  subprogStarts?: number[];
}

/** do_misc_fixups' LD_ABS/LD_IND part on a verified program. */
export function fixupLdAbs(prog: BpfProg): void {
  const old = prog.insnsi;
  if (!old.some(isLdAbs)) return;
  const at: number[] = [];
  const out: Insn[] = [];
  const origin: number[] = []; // old index of each new slot, -1 for generated ones
  for (let i = 0; i < old.length; i++) {
    at.push(out.length);
    if (isLdAbs(old[i]!)) {
      const seq = genLdAbs(old[i]!);
      out.push(...seq);
      origin.push(...seq.map(() => -1));
    } else {
      out.push({ ...old[i]! });
      origin.push(i);
    }
  }
  at.push(out.length);
  for (let n = 0; n < out.length; n++) {
    const o = origin[n]!;
    if (o < 0) continue;
    const t = relTarget(old, o);
    if (t < 0) continue;
    const rel = at[t]! - n - 1;
    const insn = out[n]!;
    const cls = BPF_CLASS(insn.code);
    if (cls === BPF_LD || BPF_OP(insn.code) === BPF_CALL || (cls === BPF_JMP32 && BPF_OP(insn.code) === BPF_JA))
      insn.imm = rel;
    else insn.off = rel;
  }
  prog.insnsi = out;
  const remap = (buf: Uint8Array | null, recSize: number): void => {
    if (!buf) return;
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    for (let o = 0; o + 4 <= buf.length; o += recSize) dv.setUint32(o, at[dv.getUint32(o, true)] ?? out.length, true);
  };
  remap(prog.aux.func_info, 8);
  remap(prog.aux.line_info, 16);
  const vr = prog.aux.verifier_result as Facts | undefined;
  if (vr) {
    const spread = (a: Uint8Array | undefined, fill: number): Uint8Array | undefined => {
      if (!a) return a;
      const b = new Uint8Array(out.length).fill(fill);
      for (let n = 0; n < out.length; n++) if (origin[n]! >= 0) b[n] = a[origin[n]!]!;
      return b;
    };
    vr.seen = spread(vr.seen, 1);
    vr.memProven = spread(vr.memProven, 0);
    if (vr.subprogStarts) vr.subprogStarts = vr.subprogStarts.map((s) => at[s]!);
  }
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
