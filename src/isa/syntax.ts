/**
 * The ops table an assembly syntax implements: parse one statement into a semantic instruction
 * (with an unresolved label if it has one), and format one instruction back. asm.ts and
 * disasm.ts drive whichever syntax is asked for; a new syntax is a new table, not new branches.
 */
import { BpfError, EINVAL } from "../uapi/errno.js";
import type { DecodedInsn } from "./decode.js";

export type SyntaxName = "conformance" | "llvm";

/** Names both syntaxes give the pseudo ld_imm64 sources 1..6 (BPF_PSEUDO_MAP_FD ... BPF_PSEUDO_MAP_IDX_VALUE). */
export const PSEUDO_NAMES = ["", "map_fd", "map_value", "btf_id", "func", "map_idx", "map_idx_value"];

/** A parsed statement; `target` names a label whose pc-relative distance goes into `field`. */
export interface ParsedInsn {
  insn: DecodedInsn;
  target?: { label: string; field: "off" | "imm" };
}

export interface FormatCtx {
  /** Slot index of the instruction being formatted. */
  idx: number;
  /** Name of the label at a slot index, when labels are wanted. */
  labelAt?: (slot: number) => string | undefined;
  /** llvm syntax: print exactly what llvm-objdump prints, even where that loses the source field. */
  objdump?: boolean;
}

export interface AsmSyntax {
  readonly name: SyntaxName;
  /** Strip a trailing comment from a source line. */
  stripComment(line: string): string;
  /** Parse one statement (no label, no comment, trimmed, non-empty). Throws BpfError(EINVAL). */
  parse(stmt: string): ParsedInsn;
  format(insn: DecodedInsn, ctx: FormatCtx): string;
  /** Name given to the label of a jump target when the disassembler makes labels up. */
  labelName(slot: number): string;
  /** Slot a label not defined in the source stands for, if the syntax has such labels. */
  implicitLabel?(name: string, prog: readonly { idx: number; insn: DecodedInsn }[]): number | undefined;
}

export function asmError(msg: string): never {
  throw new BpfError(EINVAL, msg);
}

const NUM = /^([+-]?)(0x[0-9a-f]+|[0-9]+)$/i;

/** Parse a decimal or 0x-hex integer with optional sign. */
export function parseInteger(text: string): bigint | undefined {
  const m = NUM.exec(text.trim());
  if (!m) return undefined;
  const v = BigInt(m[2]!);
  return m[1] === "-" ? -v : v;
}

/** A 32-bit immediate: signed, or unsigned up to 0xffffffff (stored as its s32 bit pattern). */
export function parseImm32(text: string): number {
  const v = parseInteger(text);
  if (v === undefined) asmError(`invalid immediate '${text}'`);
  if (v < -(1n << 31n) || v > 0xffffffffn) asmError(`immediate ${text} out of range for 32 bits`);
  return Number(BigInt.asIntN(32, v));
}

/** A 16-bit offset, always signed: `+40000` is an error, not -25536. */
export function parseOff16(text: string): number {
  const v = parseInteger(text);
  if (v === undefined) asmError(`invalid offset '${text}'`);
  if (v < -(1n << 15n) || v >= 1n << 15n) asmError(`offset ${text} out of range for 16 bits`);
  return Number(BigInt.asIntN(16, v));
}

/** A 64-bit immediate: signed, or unsigned up to 2^64-1. */
export function parseImm64(text: string): bigint {
  const v = parseInteger(text);
  if (v === undefined) asmError(`invalid immediate '${text}'`);
  if (v < -(1n << 63n) || v > (1n << 64n) - 1n) asmError(`immediate ${text} out of range for 64 bits`);
  return BigInt.asUintN(64, v);
}

/** Register number from `rN` / `wN` / `%rN` style names (prefix given), 0..10. */
export function parseRegister(text: string, prefixes: readonly string[]): number {
  for (const p of prefixes) {
    if (text.startsWith(p)) {
      const n = text.slice(p.length);
      if (/^(10|[0-9])$/.test(n)) return Number(n);
      if (/^[0-9]+$/.test(n)) asmError(`invalid register '${text}': BPF has registers r0..r10`);
    }
  }
  return asmError(`invalid register '${text}'`);
}

export function isLabelName(text: string): boolean {
  return /^[A-Za-z_.$][\w.$]*$/.test(text);
}

/** `+N` / `-N` (signed decimal or hex) as a jump distance. */
export function signed(n: number): string {
  return n < 0 ? `${n}` : `+${n}`;
}

export function hex(v: number | bigint): string {
  return v < 0 ? `-0x${(-BigInt(v)).toString(16)}` : `0x${v.toString(16)}`;
}
