/**
 * The disassembler: instruction slots -> one line of text per instruction (an ld_imm64 is one
 * line for its two slots), in either syntax. With `labels`, jump and call targets get names and
 * the instruction at a target is prefixed `name: `, which both assemblers read back.
 */
import { SYNTAXES } from "./asm.js";
import { type DecodedInsn, decodeInsn, decodeProgram } from "./decode.js";
import type { Insn } from "./insn.js";
import type { SyntaxName } from "./syntax.js";

export interface DisassembleOptions {
  syntax?: SyntaxName;
  labels?: boolean;
  /** llvm syntax only: print exactly llvm-objdump's text (which cannot tell local, kfunc and helper calls apart). */
  objdump?: boolean;
}

/** Slot a jump, local call or function reference at slot `idx` points to, if it has one. */
export function branchTarget(insn: DecodedInsn, idx: number): number | undefined {
  switch (insn.kind) {
    case "jmp":
    case "ja":
    case "may_goto":
      return idx + 1 + insn.off;
    case "gotol":
      return idx + 1 + insn.imm;
    case "call":
      return insn.callee === "local" ? idx + 1 + insn.imm : undefined;
    case "ld_imm64":
      return insn.pseudo === 4 ? idx + 1 + insn.imm : undefined;
    default:
      return undefined;
  }
}

export function disassemble(insns: readonly Insn[], opts: DisassembleOptions = {}): string[] {
  const syntax = SYNTAXES[opts.syntax ?? "conformance"];
  const prog = decodeProgram(insns);
  let labelAt: ((slot: number) => string | undefined) | undefined;
  if (opts.labels) {
    const starts = new Set(prog.map((p) => p.idx));
    const targets = new Set<number>();
    for (const p of prog) {
      const t = branchTarget(p.insn, p.idx);
      // Only targets that start an instruction can carry a label the assembler can read back.
      if (t !== undefined && starts.has(t)) targets.add(t);
    }
    labelAt = (slot) => (targets.has(slot) ? syntax.labelName(slot) : undefined);
  }
  return prog.map(({ idx, insn }) => {
    const text = syntax.format(insn, { idx, labelAt, objdump: opts.objdump });
    const label = labelAt?.(idx);
    return label ? `${label}: ${text}` : text;
  });
}

/** The text of the one instruction starting at slot `i`. */
export function formatInsn(insns: readonly Insn[], i: number, syntax: SyntaxName = "conformance"): string {
  return SYNTAXES[syntax].format(decodeInsn(insns, i), { idx: i });
}
