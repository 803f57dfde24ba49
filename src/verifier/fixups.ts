/**
 * kernel/bpf/verifier.c do_misc_fixups(), the may_goto part, and the instruction patching it
 * and LD_ABS's rewrite (src/kernel/ld_abs.ts) rest on (bpf_patch_insn_data: core.c bpf_patch_insn_single with bpf_adj_branches and
 * bpf_adj_linfo, verifier.c adjust_insn_aux_data and adjust_subprog_starts; adjust_jmp_off).
 *
 * Every may_goto becomes a load, test, decrement and store of a hidden 8-byte slot below its
 * function's stack (stack_extra), and each function that has one stores BPF_MAX_LOOPS into that
 * slot on entry: each call of a function starts with its own budget, a loop that spends it falls
 * through at the may_goto's target, and the VM's tiers run the rewritten program like any other.
 *
 * 6.18 has two forms, chosen by bpf_jit_supports_timed_may_goto() (x86-64 and arm64 JITs say
 * yes): the timed one keeps a count of BPF_MAX_TIMED_LOOPS (0xffff) and a start time in two
 * slots and, each time the count runs out, calls arch_bpf_timed_may_goto, which refills it until
 * a quarter second has passed since the first refill (bpf_check_timed_may_goto). Its budget is
 * wall-clock time, so the same program on the same input would stop after a different number of
 * passes from run to run and machine to machine; the simulated kernel answers no, as every
 * architecture without that JIT support does, and takes the counted form (BPF_MAX_LOOPS passes a
 * call). `timed` builds the x86-64 form for comparing the rewrite with a host kernel's; no
 * kernel here runs it (it calls a function the VM does not have).
 */
import type { Insn } from "../isa/insn.js";
import { isLdImm64 } from "../isa/insn.js";
import {
  BPF_ALU64,
  BPF_CALL,
  BPF_CLASS,
  BPF_DW,
  BPF_EXIT,
  BPF_JA,
  BPF_JEQ,
  BPF_JMP,
  BPF_JMP32,
  BPF_JNE,
  BPF_K,
  BPF_LDX,
  BPF_MEM,
  BPF_MOV,
  BPF_OP,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  MAX_BPF_REG,
} from "../isa/opcodes.js";
import { isMayGoto } from "./iter.js";

/** BPF_MAX_LOOPS: the counted may_goto's budget of one function call (8M). */
export const BPF_MAX_LOOPS = 8 * 1024 * 1024;
/** BPF_MAX_TIMED_LOOPS: the timed form's count between two looks at the clock. */
export const BPF_MAX_TIMED_LOOPS = 0xffff;
/** BPF_REG_AX: the kernel's hidden scratch register (r11), which only rewrites use. */
export const BPF_REG_AX = MAX_BPF_REG;
/**
 * The call's imm in the timed form: the kernel puts arch_bpf_timed_may_goto - __bpf_call_base
 * there, an address that differs per build; bpftool names it from kallsyms.
 */
export const ARCH_BPF_TIMED_MAY_GOTO_IMM = -1;

const BPF_PSEUDO_CALL = 1;
const BPF_PSEUDO_FUNC = 4;
const R10 = 10;

/** A verified program as do_misc_fixups sees it; every field follows the patches. */
export interface FixupProg {
  insns: Insn[];
  /** First instruction of each function (subprog_info[].start). */
  subprogStarts: number[];
  /** Stack depth of each function (subprog_info[].stack_depth); the extra slots are added. */
  stackDepth: number[];
  /** bpf_line_info records (16 bytes, insn_off first). */
  lineInfo?: Uint8Array | null;
  /** bpf_func_info records (8 bytes, insn_off first): one per function, at its start. */
  funcInfo?: Uint8Array | null;
  /** insn_aux_data[].seen: a patch's instructions take the patched one's. */
  seen?: Uint8Array;
  /** Per-instruction facts a patch's instructions do not inherit (0 for them). */
  memProven?: Uint8Array;
}

const ldx = (dst: number, src: number, off: number): Insn => ({
  code: BPF_LDX | BPF_MEM | BPF_DW,
  dst,
  src,
  off,
  imm: 0,
});
const stx = (dst: number, src: number, off: number): Insn => ({
  code: BPF_STX | BPF_MEM | BPF_DW,
  dst,
  src,
  off,
  imm: 0,
});
const st = (dst: number, off: number, imm: number): Insn => ({
  code: BPF_ST | BPF_MEM | BPF_DW,
  dst,
  src: 0,
  off,
  imm,
});
const jmpImm = (op: number, dst: number, imm: number, off: number): Insn => ({
  code: BPF_JMP | op | BPF_K,
  dst,
  src: 0,
  off,
  imm,
});
const alu64Imm = (op: number, dst: number, imm: number): Insn => ({
  code: BPF_ALU64 | op | BPF_K,
  dst,
  src: 0,
  off: 0,
  imm,
});

function isJmpClass(code: number): boolean {
  const c = BPF_CLASS(code);
  return c === BPF_JMP || c === BPF_JMP32;
}

/**
 * bpf_adj_delta_to_imm / bpf_adj_delta_to_off: a jump, call or function reference at `curr`
 * (index in the patched program) crossing the patch [pos, pos + len) moves with it; one into the
 * patched instruction keeps pointing at the patch's first instruction.
 */
function adjDelta(v: number, pos: number, endOld: number, endNew: number, curr: number): number {
  const delta = endNew - endOld;
  if (curr < pos && curr + v + 1 >= endOld) return v + delta;
  if (curr >= endNew && curr + v + 1 < endNew) return v - delta;
  return v;
}

/** bpf_patch_insn_data(): replace the instruction at `off` by `patch`. */
export function patchInsnData(p: FixupProg, off: number, patch: Insn[]): void {
  const len = patch.length;
  const delta = len - 1;
  const endOld = off + 1;
  const endNew = off + len;
  p.insns.splice(off, 1, ...patch.map((i) => ({ ...i })));
  if (delta === 0) return;
  // bpf_adj_branches: every instruction outside the patch.
  for (let i = 0; i < p.insns.length; i++) {
    if (i === off) {
      i = endNew - 1;
      continue;
    }
    const insn = p.insns[i]!;
    if (isLdImm64(insn)) {
      if (insn.src === BPF_PSEUDO_FUNC) insn.imm = adjDelta(insn.imm, off, endOld, endNew, i);
      i++;
      continue;
    }
    if (!isJmpClass(insn.code) || BPF_OP(insn.code) === BPF_EXIT) continue;
    if (BPF_OP(insn.code) === BPF_CALL) {
      if (insn.src === BPF_PSEUDO_CALL) insn.imm = adjDelta(insn.imm, off, endOld, endNew, i);
    } else if (insn.code === (BPF_JMP32 | BPF_JA)) {
      insn.imm = adjDelta(insn.imm, off, endOld, endNew, i);
    } else {
      insn.off = adjDelta(insn.off, off, endOld, endNew, i);
    }
  }
  // bpf_adj_linfo: records after the patched instruction move; one on it stays on the patch.
  if (p.lineInfo) {
    const dv = new DataView(p.lineInfo.buffer, p.lineInfo.byteOffset, p.lineInfo.byteLength);
    for (let o = 0; o + 16 <= p.lineInfo.byteLength; o += 16) {
      const at = dv.getUint32(o, true);
      if (at > off) dv.setUint32(o, at + delta, true);
    }
  }
  // adjust_btf_func, one patch at a time: a function starting after the patch moves with it.
  if (p.funcInfo) {
    const dv = new DataView(p.funcInfo.buffer, p.funcInfo.byteOffset, p.funcInfo.byteLength);
    for (let o = 0; o + 8 <= p.funcInfo.byteLength; o += 8) {
      const at = dv.getUint32(o, true);
      if (at > off) dv.setUint32(o, at + delta, true);
    }
  }
  // adjust_insn_aux_data: the patch's instructions are seen if the patched one was.
  if (p.seen) {
    const out = new Uint8Array(p.seen.length + delta);
    out.set(p.seen.subarray(0, off), 0);
    out.fill(p.seen[off] ?? 1, off, endNew);
    out.set(p.seen.subarray(endOld), endNew);
    p.seen = out;
  }
  if (p.memProven) {
    const out = new Uint8Array(p.memProven.length + delta);
    out.set(p.memProven.subarray(0, off), 0);
    out.set(p.memProven.subarray(endOld), endNew);
    p.memProven = out;
  }
  // adjust_subprog_starts
  p.subprogStarts = p.subprogStarts.map((s) => (s <= off ? s : s + delta));
}

/**
 * adjust_jmp_off(): jumps (not calls) to `tgt` go `delta` further, past the instructions put in
 * front of a function's first one, so a loop back to it does not reset the budget.
 */
function adjustJmpOff(insns: Insn[], tgt: number, delta: number): void {
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i]!;
    if (isLdImm64(insn)) {
      i++;
      continue;
    }
    if (tgt <= i && i < tgt + delta) continue;
    const op = BPF_OP(insn.code);
    if (!isJmpClass(insn.code) || op === BPF_CALL || op === BPF_EXIT) continue;
    if (insn.code === (BPF_JMP32 | BPF_JA)) {
      if (i + 1 + insn.imm === tgt) insn.imm += delta;
    } else if (i + 1 + insn.off === tgt) {
      insn.off += delta;
    }
  }
}

/** The instructions one may_goto becomes, for a function whose stack (before the slots) is `depth`. */
function mayGotoPatch(insn: Insn, depth: number, timed: boolean): Insn[] {
  const AX = BPF_REG_AX;
  if (timed) {
    const cnt = -depth - 16;
    return [
      ldx(AX, R10, cnt),
      jmpImm(BPF_JEQ, AX, 0, insn.off >= 0 ? insn.off + 5 : insn.off - 1),
      alu64Imm(BPF_SUB, AX, 1),
      jmpImm(BPF_JNE, AX, 0, 2),
      alu64Imm(BPF_MOV, AX, cnt),
      { code: BPF_JMP | BPF_CALL, dst: 0, src: 0, off: 0, imm: ARCH_BPF_TIMED_MAY_GOTO_IMM },
      stx(R10, AX, cnt),
    ];
  }
  const slot = -depth - 8;
  return [
    ldx(AX, R10, slot),
    jmpImm(BPF_JEQ, AX, 0, insn.off >= 0 ? insn.off + 2 : insn.off - 1),
    alu64Imm(BPF_SUB, AX, 1),
    stx(R10, AX, slot),
  ];
}

/**
 * do_misc_fixups()'s may_goto rewrite: each may_goto patched in place, the extra slots added to
 * its function's stack depth, then each such function's entry given the stores that set its
 * budget. func_info's offsets follow the functions' starts (adjust_btf_func).
 */
export function fixupMayGoto(p: FixupProg, timed = false): void {
  const nFuncs = p.subprogStarts.length;
  const extra = new Array<number>(nFuncs).fill(0);
  let cur = 0;
  for (let i = 0; i < p.insns.length; i++) {
    while (cur + 1 < nFuncs && p.subprogStarts[cur + 1]! <= i) cur++;
    const insn = p.insns[i]!;
    if (isLdImm64(insn)) {
      i++;
      continue;
    }
    if (!isMayGoto(insn)) continue;
    const patch = mayGotoPatch(insn, p.stackDepth[cur] ?? 0, timed);
    patchInsnData(p, i, patch);
    extra[cur] = timed ? 16 : 8;
    i += patch.length - 1;
  }
  for (let f = 0; f < nFuncs; f++) if (extra[f]) p.stackDepth[f] = (p.stackDepth[f] ?? 0) + extra[f]!;
  for (let f = 0; f < nFuncs; f++) {
    if (!extra[f]) continue;
    const start = p.subprogStarts[f]!;
    const depth = p.stackDepth[f]!;
    const init = timed
      ? [st(R10, -depth, BPF_MAX_TIMED_LOOPS), st(R10, -depth + 8, 0)]
      : [st(R10, -depth, BPF_MAX_LOOPS)];
    patchInsnData(p, start, [...init, p.insns[start]!]);
    adjustJmpOff(p.insns, start, init.length);
  }
  if (p.funcInfo) {
    const dv = new DataView(p.funcInfo.buffer, p.funcInfo.byteOffset, p.funcInfo.byteLength);
    for (let f = 0; f < nFuncs && (f + 1) * 8 <= p.funcInfo.byteLength; f++)
      dv.setUint32(f * 8, p.subprogStarts[f]!, true);
  }
}
