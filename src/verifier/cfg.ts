/**
 * Subprograms and control flow (check_subprogs, check_cfg in kernel/bpf/verifier.c): where
 * subprograms start, that jumps stay inside theirs and none falls off its end, that every
 * instruction is reachable, that unprivileged programs have no back-edges; and the prune points
 * (jump targets, conditional jumps, call sites) where do_check stores states.
 */
import { type Insn, isLdImm64 } from "../isa/insn.js";
import { BPF_CALL, BPF_CLASS, BPF_EXIT, BPF_JA, BPF_JMP, BPF_JMP32, BPF_OP } from "../isa/opcodes.js";
import { BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, BPF_PSEUDO_KFUNC_CALL } from "../uapi/bpf.js";
import { BpfError, EINVAL, EPERM } from "../uapi/errno.js";

export interface Cfg {
  /** Sorted first instructions of the subprograms; [0] is the main program. */
  subprogStarts: number[];
  /** Per instruction: index of its subprogram. */
  subprogOf: Int32Array;
  /** Per instruction: a state is checked (and stored) here. */
  prunePoint: Uint8Array;
  /** Successors and predecessors, for the register dataflow. */
  succ: number[][];
  pred: number[][];
}

export type Verbose = (msg: string) => void;

const fail = (verbose: Verbose, errno: number, msg: string, insn: number): BpfError => {
  verbose(`${msg}\n`);
  return new BpfError(errno, msg, { insn });
};

export const isJmpClass = (code: number): boolean => BPF_CLASS(code) === BPF_JMP || BPF_CLASS(code) === BPF_JMP32;
export const isPseudoCall = (i: Insn): boolean =>
  BPF_CLASS(i.code) === BPF_JMP && BPF_OP(i.code) === BPF_CALL && i.src === BPF_PSEUDO_CALL;
export const isPseudoFunc = (i: Insn): boolean => isLdImm64(i) && i.src === BPF_PSEUDO_FUNC;

/** Target of an unconditional jump: JMP32|JA carries a 32-bit offset in imm (gotol). */
export function jumpTarget(t: number, i: Insn): number {
  if (BPF_CLASS(i.code) === BPF_JMP32 && BPF_OP(i.code) === BPF_JA) return t + i.imm + 1;
  return t + i.off + 1;
}

/** bpf_opcode_in_insntable: the opcodes of the instruction set (everything else is refused). */
const VALID_OPCODES: ReadonlySet<number> = (() => {
  const ops = new Set<number>();
  const aluOps = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0];
  for (const cls of [0x04, 0x07]) {
    for (const op of aluOps) ops.add(cls | op).add(cls | op | 0x08);
    ops.add(cls | 0x80); // neg
  }
  ops.add(0xd4).add(0xdc).add(0xd7); // to_le, to_be, bswap
  const jmpOps = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0];
  for (const cls of [0x05, 0x06]) {
    for (const op of jmpOps) ops.add(cls | op).add(cls | op | 0x08);
    ops.add(cls); // ja / gotol
    if (cls === 0x05) ops.add(0xe5); // may_goto (BPF_JCOND)
  }
  ops.add(0x85).add(0x95); // call, exit
  for (const c of [0x18, 0x20, 0x28, 0x30, 0x40, 0x48, 0x50]) ops.add(c); // ld_imm64, ld_abs, ld_ind
  for (const c of [0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91]) ops.add(c); // ldx, ldxs
  for (const c of [0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xdb]) ops.add(c); // st, stx, atomics
  return ops;
})();

/** check_subprogs + check_cfg. Throws BpfError with the kernel's message. */
export function checkCfg(
  insns: readonly Insn[],
  privileged: boolean,
  verbose: Verbose,
  logSubprogs = false,
  callsCallback?: (i: Insn) => boolean,
): Cfg {
  const n = insns.length;
  if (n === 0) throw fail(verbose, EINVAL, "empty program", 0);
  // check_subprogs prints the subprograms (level 2) before check_cfg finds anything wrong.
  const printSubprogs = (starts: readonly number[]) => {
    if (!logSubprogs) return;
    for (const [i, start] of starts.entries()) verbose(`func#${i} @${start}\n`);
  };
  // Second slots of ld_imm64 are not instructions.
  const isSecond = new Uint8Array(n);
  for (let t = 0; t < n; t++) {
    if (!VALID_OPCODES.has(insns[t].code)) {
      const seen = new Set([0]);
      insns.forEach((i, k) => {
        const target = k + i.imm + 1;
        if (isPseudoCall(i) && target >= 0 && target < n) seen.add(target);
      });
      printSubprogs([...seen].sort((a, b) => a - b));
      throw fail(verbose, EINVAL, `unknown opcode ${insns[t].code.toString(16).padStart(2, "0")}`, t);
    }
    if (isLdImm64(insns[t])) {
      if (t + 1 >= n) throw fail(verbose, EINVAL, "invalid bpf_ld_imm64 insn", t);
      isSecond[t + 1] = 1;
      t++;
    }
  }
  // add_subprog_and_kfunc
  const starts = new Set<number>([0]);
  for (let t = 0; t < n; t++) {
    const i = insns[t];
    const call = isPseudoCall(i);
    const kfunc = BPF_CLASS(i.code) === BPF_JMP && BPF_OP(i.code) === BPF_CALL && i.src === BPF_PSEUDO_KFUNC_CALL;
    if (!call && !kfunc && !(isPseudoFunc(i) && !isSecond[t])) continue;
    if (!privileged) {
      const msg = "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN";
      throw fail(verbose, EPERM, msg, t);
    }
    if (kfunc) continue;
    const target = t + i.imm + 1;
    if (target < 0 || target >= n) throw fail(verbose, EINVAL, "call to invalid destination", t);
    starts.add(target);
  }
  const subprogStarts = [...starts].sort((a, b) => a - b);
  printSubprogs(subprogStarts);
  const subprogOf = new Int32Array(n);
  for (let s = 0; s < subprogStarts.length; s++) {
    const end = s + 1 < subprogStarts.length ? subprogStarts[s + 1] : n;
    for (let t = subprogStarts[s]; t < end; t++) subprogOf[t] = s;
  }
  // check_subprogs: jumps stay inside their subprogram; each ends in exit or jmp.
  for (let s = 0; s < subprogStarts.length; s++) {
    const start = subprogStarts[s];
    const end = s + 1 < subprogStarts.length ? subprogStarts[s + 1] : n;
    for (let t = start; t < end; t++) {
      const i = insns[t];
      if (isSecond[t] || !isJmpClass(i.code)) continue;
      const op = BPF_OP(i.code);
      if (op === BPF_CALL || op === BPF_EXIT) continue;
      const target = jumpTarget(t, i);
      if (target < start || target >= end)
        throw fail(verbose, EINVAL, `jump out of range from insn ${t} to ${target}`, t);
    }
    const last = insns[end - 1];
    const lastIsJmp =
      !isSecond[end - 1] &&
      isJmpClass(last.code) &&
      (BPF_OP(last.code) === BPF_EXIT ||
        (BPF_OP(last.code) === BPF_JA && BPF_CLASS(last.code) === BPF_JMP) ||
        (BPF_OP(last.code) === BPF_JA && BPF_CLASS(last.code) === BPF_JMP32));
    if (!lastIsJmp) throw fail(verbose, EINVAL, "last insn is not an exit or jmp", end - 1);
  }
  // Edges.
  const succ: number[][] = new Array(n);
  const prunePoint = new Uint8Array(n);
  for (let t = 0; t < n; t++) {
    const i = insns[t];
    if (isSecond[t]) {
      // Only a (bad) jump gets here; the walk goes on as the kernel's does, and the final pass
      // reports it ("jump into the middle of ldimm64").
      succ[t] = [t + 1];
      continue;
    }
    if (isLdImm64(i)) {
      // A callback's address (bpf_loop) makes its subprogram reachable.
      succ[t] = isPseudoFunc(i) ? [t + 2, t + i.imm + 1] : [t + 2];
      continue;
    }
    if (!isJmpClass(i.code)) {
      succ[t] = [t + 1];
      continue;
    }
    const op = BPF_OP(i.code);
    if (op === BPF_EXIT) succ[t] = [];
    else if (op === BPF_CALL) {
      succ[t] = [t + 1];
      // visit_func_call_insn: the return point of every call; the call itself when it enters a
      // subprogram or a callback (whose iterations are compared there).
      if (t + 1 < n) prunePoint[t + 1] = 1;
      if (isPseudoCall(i)) {
        prunePoint[t] = 1;
        succ[t].push(t + i.imm + 1);
      } else if (callsCallback?.(i)) prunePoint[t] = 1;
    } else if (op === BPF_JA) {
      const target = jumpTarget(t, i);
      succ[t] = [target];
      if (target < n) prunePoint[target] = 1;
    } else {
      succ[t] = [t + 1, t + i.off + 1];
      // push_insn marks both the jump and its branch target (not the fall-through).
      prunePoint[t] = 1;
      if (t + i.off + 1 < n) prunePoint[t + i.off + 1] = 1;
    }
  }
  // check_cfg: depth-first walk from every subprogram start reachable by calls, from insn 0.
  const DISCOVERED = 1;
  const EXPLORED = 2;
  const state = new Uint8Array(n);
  const stack: number[] = [0];
  const next = new Int32Array(n);
  state[0] = DISCOVERED;
  while (stack.length > 0) {
    const t = stack[stack.length - 1];
    const edges = succ[t];
    if (next[t] < edges.length) {
      const w = edges[next[t]++];
      if (w < 0 || w >= n) throw fail(verbose, EINVAL, `jump out of range from insn ${t} to ${w}`, t);
      if (state[w] === 0) {
        state[w] = DISCOVERED;
        stack.push(w);
      } else if (state[w] === DISCOVERED) {
        const isCallEdge = (isPseudoCall(insns[t]) || isPseudoFunc(insns[t])) && w !== t + 1 && w !== t + 2;
        if (!privileged && !isCallEdge) throw fail(verbose, EINVAL, `back-edge from insn ${t} to ${w}`, t);
        // A loop: its head must hold a state so that an unchanged state is caught.
        prunePoint[w] = 1;
      }
    } else {
      state[t] = EXPLORED;
      stack.pop();
    }
  }
  for (let t = 0; t < n; t++) {
    if (state[t] !== EXPLORED) throw fail(verbose, EINVAL, `unreachable insn ${t}`, t);
    if (isLdImm64(insns[t])) {
      if (state[t + 1] !== 0) throw fail(verbose, EINVAL, `jump into the middle of ldimm64 insn ${t}`, t);
      t++;
    }
  }
  // Subprogram entries hold states too (callbacks re-enter them once per iteration).
  for (const st of subprogStarts) prunePoint[st] = 1;
  const pred: number[][] = Array.from({ length: n }, () => []);
  for (let t = 0; t < n; t++) for (const s of succ[t]) if (s < n) pred[s].push(t);
  return { subprogStarts, subprogOf, prunePoint, succ, pred };
}
