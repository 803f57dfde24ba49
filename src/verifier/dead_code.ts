/**
 * The rewrites bpf_check() makes after do_check from insn_aux_data[].seen (kernel/bpf/verifier.c):
 * sanitize_dead_code turns every instruction no verified path reached into `ja -1`, and
 * opt_hard_wire_dead_code_branches turns a conditional jump whose one side was never reached into
 * an unconditional one. Calls the verifier never walked (libbpf's poisoned call to an unresolved
 * __weak kfunc behind a constant-false bpf_ksym_exists()) thereby never reach helper binding.
 */
import type { Insn } from "../isa/insn.js";
import { BPF_CALL, BPF_CLASS, BPF_EXIT, BPF_JA, BPF_JMP, BPF_JMP32, BPF_K, BPF_OP } from "../isa/opcodes.js";

/** insn_is_cond_jump(): JMP/JMP32 ops other than ja, call and exit (gotol is not conditional). */
export function insnIsCondJump(code: number): boolean {
  const op = BPF_OP(code);
  if (BPF_CLASS(code) === BPF_JMP32) return op !== BPF_JA;
  if (BPF_CLASS(code) !== BPF_JMP) return false;
  return op !== BPF_JA && op !== BPF_EXIT && op !== BPF_CALL;
}

/** BPF_JMP_IMM(BPF_JA, 0, 0, off). */
const ja = (off: number): Insn => ({ code: BPF_JMP | BPF_JA | BPF_K, dst: 0, src: 0, off, imm: 0 });

/**
 * sanitize_dead_code(): every slot not seen becomes `ja -1` (a trap rather than a nop: a stray
 * jump into dead code must not run off the end of the program). Returns how many were replaced.
 */
export function sanitizeDeadCode(insns: Insn[], seen: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < insns.length; i++) {
    if (seen[i]) continue;
    insns[i] = ja(-1);
    n++;
  }
  return n;
}

/**
 * opt_hard_wire_dead_code_branches(): a conditional jump whose fall-through was never seen always
 * jumps (`ja off`); one whose target was never seen never does (`ja 0`).
 */
export function optHardWireDeadCodeBranches(insns: Insn[], seen: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i];
    if (!insnIsCondJump(insn.code)) continue;
    let off: number;
    if (!seen[i + 1]) off = insn.off;
    else if (!seen[i + 1 + insn.off]) off = 0;
    else continue;
    insns[i] = ja(off);
    n++;
  }
  return n;
}
