/**
 * kernel/bpf/verifier.c convert_ctx_accesses(), the part struct_ops uses: after the program is
 * verified, the type's verifier ops may wrap it. gen_prologue's instructions go before the first
 * one (ending with a copy of it, as the kernel's do); gen_epilogue's run instead of every exit of
 * the main program, with the context pointer saved by an instruction put in front of the program
 * at ctx_stack_off = -(stack depth + 8). The kernel inlines the epilogue at the first exit and
 * turns the other exits into jumps to it; here it is appended after the last subprogram and every
 * exit of the main program jumps there, so no instruction of the program moves but by the
 * prologue's length. Relative jumps and calls keep their targets; func_info, line_info and the
 * verifier's per-instruction facts shift with the instructions.
 */
import type { Insn } from "../isa/insn.js";
import { BPF_CALL, BPF_DW, BPF_EXIT, BPF_JA, BPF_JMP, BPF_MEM, BPF_STX } from "../isa/opcodes.js";
import { MAX_BPF_STACK } from "../uapi/bpf.js";
import { BpfError, E2BIG } from "../uapi/errno.js";
import type { BpfProg } from "./bpf.js";

/** What a struct_ops type's verifier ops generate for a program (bpf_verifier_ops). */
export interface CtxGen {
  /** gen_prologue: instructions to run first; the last one is a copy of the program's first. */
  prologue?: Insn[];
  /** gen_epilogue(ctx_stack_off): instructions that replace the main program's exits. */
  epilogue?: (ctxStackOff: number) => Insn[];
}

const BPF_PSEUDO_KFUNC_CALL = 2;
const R1 = 1;
const R10 = 10;

interface VerifiedFacts {
  seen?: Uint8Array;
  memProven?: Uint8Array;
  stackDepth?: number[];
  subprogStarts?: number[];
}

function shiftRecords(buf: Uint8Array | null, recSize: number, by: number): void {
  if (!buf || by === 0) return;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let o = 0; o + 4 <= buf.length; o += recSize) {
    const off = dv.getUint32(o, true);
    if (off > 0) dv.setUint32(o, off + by, true);
  }
}

function shiftFacts(a: Uint8Array | undefined, front: number, back: number): Uint8Array | undefined {
  if (!a) return a;
  const out = new Uint8Array(front + a.length + back);
  out.fill(1, 0, front);
  out.set(a, front);
  return out;
}

/** Apply `gen` to a verified program: prog.insnsi, kfunc ids and the verifier's facts follow. */
export function convertCtxAccesses(prog: BpfProg, gen: CtxGen): void {
  const vr = prog.aux.verifier_result as VerifiedFacts | undefined;
  const insns = prog.insnsi;
  const front: Insn[] = [];
  let epilogue: Insn[] = [];
  if (gen.epilogue) {
    const depth = (vr?.stackDepth?.[0] ?? 0) + 8;
    if (depth > MAX_BPF_STACK) throw new BpfError(E2BIG, `stack depth ${depth} with the epilogue's ctx slot`);
    epilogue = gen.epilogue(-depth);
    if (epilogue.length) {
      // Save the context for the epilogue: *(u64 *)(r10 - depth) = r1.
      front.push({ code: BPF_STX | BPF_MEM | BPF_DW, dst: R10, src: R1, off: -depth, imm: 0 });
      if (vr?.stackDepth) vr.stackDepth[0] = depth;
    }
  }
  // The prologue ends with a copy of the first instruction, which then starts the program.
  const prologue = gen.prologue?.length ? gen.prologue.slice(0, -1) : [];
  front.unshift(...prologue);
  if (!front.length && !epilogue.length) return;
  const n = front.length;
  const mainEnd = vr?.subprogStarts?.[1] ?? insns.length;
  const out: Insn[] = [...front, ...insns.map((i) => ({ ...i }))];
  const epiAt = out.length;
  if (epilogue.length) {
    for (let i = 0; i < mainEnd; i++) {
      const at = n + i;
      const insn = out[at]!;
      if (insn.code === (BPF_JMP | BPF_EXIT))
        out[at] = { code: BPF_JMP | BPF_JA, dst: 0, src: 0, off: epiAt - at - 1, imm: 0 };
    }
    out.push(...epilogue);
  }
  prog.insnsi = out;
  for (const i of [...front, ...epilogue]) {
    if (i.code === (BPF_JMP | BPF_CALL) && i.src === BPF_PSEUDO_KFUNC_CALL && !prog.aux.kfunc_btf_ids.includes(i.imm))
      prog.aux.kfunc_btf_ids.push(i.imm);
  }
  shiftRecords(prog.aux.func_info, 8, n);
  shiftRecords(prog.aux.line_info, 16, n);
  if (vr) {
    vr.seen = shiftFacts(vr.seen, n, epilogue.length);
    // The generated loads are checked at run time, as the rest of the unproven accesses.
    if (vr.memProven) {
      const p = new Uint8Array(n + vr.memProven.length + epilogue.length);
      p.set(vr.memProven, n);
      vr.memProven = p;
    }
    if (vr.subprogStarts) vr.subprogStarts = vr.subprogStarts.map((s, i) => (i === 0 ? 0 : s + n));
  }
}
