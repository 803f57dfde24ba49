/**
 * The bpf_conformance assembly syntax (the `-- asm` sections of the conformance vectors):
 * `mov32 %r0, 1`, `ldxdw %r0, [%r1+8]`, `lock fetch add [%r10-8], %r1`, `jeq %r1, 5, label`,
 * `call local f`, `lddw %r0, 0x123`. Extensions for what the vectors never spell (pseudo
 * ld_imm64 sources, kfunc BTF fd index, arena casts) keep the disassembly lossless.
 */
import type { AluOp, AtomicOp, DecodedInsn, JmpOp, MemSize, Operand } from "./decode.js";
import { ldImm64Decoded } from "./decode.js";
import {
  type AsmSyntax,
  asmError,
  type FormatCtx,
  hex,
  isLabelName,
  type ParsedInsn,
  PSEUDO_NAMES,
  parseImm32,
  parseImm64,
  parseInteger,
  parseOff16,
  parseRegister,
  signed,
} from "./syntax.js";

const ALU: readonly AluOp[] = [
  "add",
  "sub",
  "mul",
  "div",
  "sdiv",
  "or",
  "and",
  "lsh",
  "rsh",
  "mod",
  "smod",
  "xor",
  "mov",
  "arsh",
];
const JMP: readonly JmpOp[] = ["jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "jlt", "jle", "jslt", "jsle"];
const ATOMIC: readonly AtomicOp[] = ["add", "or", "and", "xor", "xchg", "cmpxchg"];
const SIZE_SUFFIX: Record<MemSize, string> = { 1: "b", 2: "h", 4: "w", 8: "dw" };
const SUFFIX_SIZE: Record<string, MemSize> = { b: 1, h: 2, w: 4, dw: 8 };

const reg = (t: string): number => parseRegister(t.trim(), ["%r"]);
const r = (n: number): string => `%r${n}`;

function operand(t: string): Operand {
  t = t.trim();
  return t.startsWith("%") ? { reg: reg(t) } : { imm: parseImm32(t) };
}

/** `[%rN+off]`, `[%rN-off]` or `[%rN]`. */
function memOperand(t: string): { reg: number; off: number } {
  const m = /^\[\s*(%?\w+)\s*(?:([+-])\s*(\w+))?\s*\]$/.exec(t.trim());
  if (!m) return asmError(`invalid memory operand '${t.trim()}'`);
  return { reg: reg(m[1]!), off: m[2] ? parseOff16(`${m[2]}${m[3]}`) : 0 };
}

function mem(regNo: number, off: number): string {
  return `[${r(regNo)}${off < 0 ? off : `+${off}`}]`;
}

/** A jump target: `+N`/`-N`/`N` is a distance, anything else a label. */
function target(t: string, field: "off" | "imm"): { value: number; label?: string } {
  t = t.trim();
  if (parseInteger(t) !== undefined) return { value: field === "off" ? parseOff16(t) : parseImm32(t) };
  if (!isLabelName(t)) return asmError(`invalid jump target '${t}'`);
  return { value: 0, label: t };
}

function want(ops: string[], n: number, mnemonic: string): void {
  if (ops.length !== n) asmError(`'${mnemonic}' takes ${n} operand${n === 1 ? "" : "s"}, got ${ops.length}`);
}

function splitOperands(rest: string): string[] {
  const t = rest.trim();
  return t === "" ? [] : t.split(",").map((s) => s.trim());
}

function parse(stmt: string): ParsedInsn {
  const sp = stmt.search(/\s/);
  const mnemonic = (sp < 0 ? stmt : stmt.slice(0, sp)).toLowerCase();
  const rest = sp < 0 ? "" : stmt.slice(sp + 1);
  const ops = splitOperands(rest);
  const one = (insn: DecodedInsn): ParsedInsn => ({ insn });

  if (mnemonic === "exit") {
    want(ops, 0, mnemonic);
    return one({ kind: "exit" });
  }
  if (mnemonic === "lock") return parseLock(rest);
  if (mnemonic === "call") return parseCall(rest);
  if (mnemonic === "callx") {
    want(ops, 1, mnemonic);
    return one({ kind: "callx", dst: reg(ops[0]!) });
  }
  if (mnemonic === "may_goto") {
    want(ops, 1, mnemonic);
    const t = target(ops[0]!, "off");
    return t.label
      ? { insn: { kind: "may_goto", off: 0 }, target: { label: t.label, field: "off" } }
      : one({ kind: "may_goto", off: t.value });
  }
  if (mnemonic === "ja" || mnemonic === "ja32" || mnemonic === "gotol") {
    want(ops, 1, mnemonic);
    const field = mnemonic === "ja" ? "off" : "imm";
    const t = target(ops[0]!, field);
    const insn: DecodedInsn = field === "off" ? { kind: "ja", off: t.value } : { kind: "gotol", imm: t.value };
    return t.label ? { insn, target: { label: t.label, field } } : one(insn);
  }
  if (mnemonic === "lddw") {
    if (ops.length < 2) want(ops, 2, mnemonic);
    return parseLddw(reg(ops[0]!), ops.slice(1).join(","));
  }
  if (mnemonic === "addr_space_cast") {
    want(ops, 4, mnemonic);
    const [d, s, da, sa] = ops as [string, string, string, string];
    return one({ kind: "addr_space_cast", dst: reg(d), src: reg(s), dstAs: parseImm32(da), srcAs: parseImm32(sa) });
  }

  let m = /^(le|be|bswap|swap)(16|32|64)$/.exec(mnemonic);
  if (m) {
    want(ops, 1, mnemonic);
    const to = m[1] === "le" ? "le" : m[1] === "be" ? "be" : "bswap";
    return one({ kind: "end", to, bits: Number(m[2]) as 16 | 32 | 64, dst: reg(ops[0]!) });
  }
  m = /^movsx(8|16|32)(32|64)$/.exec(mnemonic);
  if (m) {
    want(ops, 2, mnemonic);
    const bits = Number(m[1]) as 8 | 16 | 32;
    const alu64 = m[2] === "64";
    if (bits === 32 && !alu64) asmError("movsx3232 does not exist: a 32-bit move of 32 bits is mov32");
    return one({ kind: "movsx", alu64, bits, dst: reg(ops[0]!), src: reg(ops[1]!) });
  }
  m = /^ldx(s?)(b|h|w|dw)$/.exec(mnemonic);
  if (m) {
    want(ops, 2, mnemonic);
    if (m[1] && m[2] === "dw") asmError("ldxsdw does not exist: a 64-bit load has nothing to sign-extend");
    const a = memOperand(ops[1]!);
    return one({
      kind: "ldx",
      size: SUFFIX_SIZE[m[2]!]!,
      signed: m[1] === "s",
      dst: reg(ops[0]!),
      src: a.reg,
      off: a.off,
    });
  }
  m = /^st(x?)(b|h|w|dw)$/.exec(mnemonic);
  if (m) {
    want(ops, 2, mnemonic);
    const a = memOperand(ops[0]!);
    const size = SUFFIX_SIZE[m[2]!]!;
    if (m[1]) return one({ kind: "stx", size, dst: a.reg, src: reg(ops[1]!), off: a.off });
    return one({ kind: "st", size, dst: a.reg, off: a.off, imm: parseImm32(ops[1]!) });
  }
  m = /^([a-z]+?)(32|64)?$/.exec(mnemonic);
  const base = m?.[1] ?? "";
  const alu64 = m?.[2] !== "32";
  if (base === "neg") {
    want(ops, 1, mnemonic);
    return one({ kind: "alu", alu64, op: "neg", dst: reg(ops[0]!), src: { imm: 0 } });
  }
  if ((ALU as readonly string[]).includes(base)) {
    want(ops, 2, mnemonic);
    return one({ kind: "alu", alu64, op: base as AluOp, dst: reg(ops[0]!), src: operand(ops[1]!) });
  }
  if ((JMP as readonly string[]).includes(base) && m?.[2] !== "64") {
    want(ops, 3, mnemonic);
    const t = target(ops[2]!, "off");
    const insn: DecodedInsn = {
      kind: "jmp",
      jmp32: !alu64,
      op: base as JmpOp,
      dst: reg(ops[0]!),
      src: operand(ops[1]!),
      off: t.value,
    };
    return t.label ? { insn, target: { label: t.label, field: "off" } } : one(insn);
  }
  return asmError(`unknown mnemonic '${mnemonic}'`);
}

/** `lock [fetch] op[32] [%rD+off], %rS` */
function parseLock(rest: string): ParsedInsn {
  const m = /^\s*(fetch\s+)?([a-z]+?)(32)?\s+(\[[^\]]*\])\s*,\s*(\S+)\s*$/i.exec(rest);
  if (!m) return asmError(`invalid atomic instruction 'lock ${rest.trim()}'`);
  const op = m[2]!.toLowerCase() as AtomicOp;
  if (!ATOMIC.includes(op)) asmError(`unknown atomic operation '${m[2]}'`);
  const a = memOperand(m[4]!);
  const fetch = !!m[1] || op === "xchg" || op === "cmpxchg";
  return { insn: { kind: "atomic", size: m[3] ? 4 : 8, op, fetch, dst: a.reg, src: reg(m[5]!), off: a.off } };
}

/** `call N` / `call helper N` (helper), `call local L|+N`, `call runtime N[, off]` (kfunc), `call %rN` (callx). */
function parseCall(rest: string): ParsedInsn {
  const words = rest.trim().split(/\s+/);
  const mode = words.length > 1 ? words[0]!.toLowerCase() : "helper";
  const arg = (words.length > 1 ? words.slice(1) : words).join(" ");
  if (arg === "") return asmError("'call' needs a target");
  if (mode === "helper") {
    if (arg.startsWith("%")) return { insn: { kind: "callx", dst: reg(arg) } };
    return { insn: { kind: "call", callee: "helper", imm: parseImm32(arg), off: 0 } };
  }
  if (mode === "local") {
    const t = target(arg, "imm");
    const insn: DecodedInsn = { kind: "call", callee: "local", imm: t.value, off: 0 };
    return t.label ? { insn, target: { label: t.label, field: "imm" } } : { insn };
  }
  if (mode === "runtime" || mode === "kfunc") {
    const ops = splitOperands(arg);
    if (ops.length < 1 || ops.length > 2) asmError(`invalid kfunc call 'call ${rest.trim()}'`);
    return { insn: { kind: "call", callee: "kfunc", imm: parseImm32(ops[0]!), off: ops[1] ? parseOff16(ops[1]) : 0 } };
  }
  return asmError(`invalid call mode '${mode}'`);
}

/** `lddw %rD, VALUE` or `lddw %rD, map_fd(IMM[, IMM2])` for the pseudo sources. */
export function parseLddw(dst: number, value: string): ParsedInsn {
  const m = /^\s*([a-z_]+)\s*\(\s*([^,)]+?)\s*(?:,\s*([^)]+?)\s*)?\)\s*$/.exec(value);
  if (m) {
    const pseudo = PSEUDO_NAMES.indexOf(m[1]!);
    if (pseudo <= 0) asmError(`unknown ld_imm64 source '${m[1]}'`);
    const imm2 = m[3] ? parseImm32(m[3]) : 0;
    if (pseudo === 4 && parseInteger(m[2]!) === undefined) {
      if (!isLabelName(m[2]!)) asmError(`invalid function reference '${m[2]}'`);
      return {
        insn: { kind: "ld_imm64", dst, pseudo, imm: 0, imm2, value: 0n },
        target: { label: m[2]!, field: "imm" },
      };
    }
    const imm = parseImm32(m[2]!);
    const value64 = (BigInt(imm2 >>> 0) << 32n) | BigInt(imm >>> 0);
    return { insn: { kind: "ld_imm64", dst, pseudo, imm, imm2, value: value64 } };
  }
  return { insn: ldImm64Decoded(dst, parseImm64(value)) };
}

export function formatPseudo(d: Extract<DecodedInsn, { kind: "ld_imm64" }>, ctx: FormatCtx): string {
  let first = `${d.imm}`;
  if (d.pseudo === 4) {
    const label = ctx.labelAt?.(ctx.idx + 1 + d.imm);
    first = label ?? signed(d.imm);
  }
  return `${PSEUDO_NAMES[d.pseudo]}(${first}${d.imm2 !== 0 ? `, ${d.imm2}` : ""})`;
}

function jumpTarget(ctx: FormatCtx, dist: number): string {
  return ctx.labelAt?.(ctx.idx + 1 + dist) ?? signed(dist);
}

function format(d: DecodedInsn, ctx: FormatCtx): string {
  switch (d.kind) {
    case "alu": {
      const mn = `${d.op}${d.alu64 ? "" : "32"}`;
      if (d.op === "neg") return `${mn} ${r(d.dst)}`;
      return `${mn} ${r(d.dst)}, ${"reg" in d.src ? r(d.src.reg) : d.src.imm}`;
    }
    case "movsx":
      return `movsx${d.bits}${d.alu64 ? 64 : 32} ${r(d.dst)}, ${r(d.src)}`;
    case "addr_space_cast":
      return `addr_space_cast ${r(d.dst)}, ${r(d.src)}, ${d.dstAs}, ${d.srcAs}`;
    case "end":
      return `${d.to}${d.bits} ${r(d.dst)}`;
    case "jmp": {
      const src = "reg" in d.src ? r(d.src.reg) : d.src.imm;
      return `${d.op}${d.jmp32 ? "32" : ""} ${r(d.dst)}, ${src}, ${jumpTarget(ctx, d.off)}`;
    }
    case "ja":
      return `ja ${jumpTarget(ctx, d.off)}`;
    case "gotol":
      return `ja32 ${jumpTarget(ctx, d.imm)}`;
    case "may_goto":
      return `may_goto ${jumpTarget(ctx, d.off)}`;
    case "call":
      if (d.callee === "helper") return `call ${d.imm}`;
      if (d.callee === "local") return `call local ${jumpTarget(ctx, d.imm)}`;
      return `call runtime ${d.imm}${d.off !== 0 ? `, ${d.off}` : ""}`;
    case "callx":
      return `callx ${r(d.dst)}`;
    case "exit":
      return "exit";
    case "ld_imm64":
      return `lddw ${r(d.dst)}, ${d.pseudo === 0 ? hex(d.value) : formatPseudo(d, ctx)}`;
    case "ldx":
      return `ldx${d.signed ? "s" : ""}${SIZE_SUFFIX[d.size]} ${r(d.dst)}, ${mem(d.src, d.off)}`;
    case "st":
      return `st${SIZE_SUFFIX[d.size]} ${mem(d.dst, d.off)}, ${d.imm}`;
    case "stx":
      return `stx${SIZE_SUFFIX[d.size]} ${mem(d.dst, d.off)}, ${r(d.src)}`;
    case "atomic": {
      const fetch = d.fetch && d.op !== "xchg" && d.op !== "cmpxchg" ? "fetch " : "";
      return `lock ${fetch}${d.op}${d.size === 4 ? "32" : ""} ${mem(d.dst, d.off)}, ${r(d.src)}`;
    }
  }
}

export const conformanceSyntax: AsmSyntax = {
  name: "conformance",
  stripComment: (line) => {
    const h = line.indexOf("#");
    return h < 0 ? line : line.slice(0, h);
  },
  parse,
  format,
  labelName: (slot) => `L${slot}`,
  // The conformance vectors jump to `exit` without defining it: it names the first exit.
  implicitLabel: (name, prog) => (name === "exit" ? prog.find((p) => p.insn.kind === "exit")?.idx : undefined),
};
