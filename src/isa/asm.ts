/**
 * The assembler: text in one of the two syntaxes -> instruction slots. Labels (`name:` on a
 * line of their own or before an instruction) resolve to pc-relative distances, as the kernel
 * counts them: target - (index + 1), in slots.
 */
import { BpfError, EINVAL, isBpfError } from "../uapi/errno.js";
import { conformanceSyntax } from "./asm_conformance.js";
import { llvmSyntax } from "./asm_llvm.js";
import { type DecodedInsn, encodeInsn, insnSlots } from "./decode.js";
import type { Insn } from "./insn.js";
import type { AsmSyntax, ParsedInsn, SyntaxName } from "./syntax.js";

export type { SyntaxName } from "./syntax.js";

export const SYNTAXES: Record<SyntaxName, AsmSyntax> = {
  conformance: conformanceSyntax,
  llvm: llvmSyntax,
};

export interface AssembleOptions {
  syntax?: SyntaxName;
}

const LABEL = /^([A-Za-z_.$][\w.$]*):(?!\S)\s*/;

interface Stmt extends ParsedInsn {
  idx: number;
  line: number;
  text: string;
}

function lineError(line: number, text: string, msg: string): BpfError {
  return new BpfError(EINVAL, `line ${line}: '${text}': ${msg}`, { line });
}

/** Assemble `text`; every error is a BpfError(EINVAL) naming the line number and its text. */
export function assemble(text: string, opts: AssembleOptions = {}): Insn[] {
  return assembleDecoded(text, opts).insns;
}

/** Assemble, also returning the semantic instructions and the label table (slot indices). */
export function assembleDecoded(
  text: string,
  opts: AssembleOptions = {},
): { insns: Insn[]; prog: { idx: number; insn: DecodedInsn }[]; labels: Map<string, number> } {
  const syntax = SYNTAXES[opts.syntax ?? "conformance"];
  if (syntax === undefined) throw new BpfError(EINVAL, `unknown assembly syntax '${opts.syntax}'`);
  const labels = new Map<string, number>();
  const stmts: Stmt[] = [];
  let slot = 0;
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = n + 1;
    let s = syntax.stripComment(raw).trim();
    for (let m = LABEL.exec(s); m; m = LABEL.exec(s)) {
      const name = m[1]!;
      if (labels.has(name)) throw lineError(line, raw.trim(), `duplicate label '${name}'`);
      labels.set(name, slot);
      s = s.slice(m[0].length);
    }
    if (s === "") return;
    let parsed: ParsedInsn;
    try {
      parsed = syntax.parse(s);
    } catch (e) {
      if (isBpfError(e)) throw lineError(line, raw.trim(), e.message);
      throw e;
    }
    stmts.push({ ...parsed, idx: slot, line, text: raw.trim() });
    slot += insnSlots(parsed.insn);
  });

  const prog = stmts.map((s) => ({ idx: s.idx, insn: s.insn }));
  const insns: Insn[] = [];
  for (const s of stmts) {
    let insn = s.insn;
    if (s.target) {
      const at = labels.get(s.target.label) ?? syntax.implicitLabel?.(s.target.label, prog);
      if (at === undefined) throw lineError(s.line, s.text, `undefined label '${s.target.label}'`);
      const dist = at - s.idx - 1;
      if (s.target.field === "off" && (dist < -32768 || dist > 32767)) {
        throw lineError(s.line, s.text, `jump distance ${dist} to '${s.target.label}' does not fit in 16 bits`);
      }
      insn = withDistance(insn, dist);
    }
    insns.push(...encodeInsn(insn));
  }
  return { insns, prog, labels };
}

function withDistance(insn: DecodedInsn, dist: number): DecodedInsn {
  switch (insn.kind) {
    case "jmp":
    case "ja":
    case "may_goto":
      return { ...insn, off: dist };
    case "gotol":
      return { ...insn, imm: dist };
    case "call":
      return { ...insn, imm: dist };
    case "ld_imm64":
      return { ...insn, imm: dist, value: (BigInt(insn.imm2 >>> 0) << 32n) | BigInt(dist >>> 0) };
    default:
      return insn;
  }
}
