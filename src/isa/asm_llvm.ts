/**
 * llvm-objdump's BPF syntax (LLVM 19, `--mcpu=v4`: 32-bit operations on w registers, hex
 * immediates): `r0 = *(u64 *)(r1 + 0x8)`, `w0 += w1`, `if r1 > 0x5 goto +0x3`, `r1 = 0x1234 ll`,
 * `lock *(u64 *)(r1 + 0x0) += r2`, `r0 = atomic_fetch_add((u64 *)(r1 + 0x0), r0)`.
 *
 * llvm-objdump prints a local call, a kfunc call and a helper call all as `call IMM`, and a
 * pseudo ld_imm64 as `ld_pseudo`, losing the source field. By default we print lossless
 * spellings for those (`call pc+0x3`, `call kfunc 0x10`, `r1 = map_fd(0x5) ll`); the `objdump`
 * flavour prints exactly what llvm-objdump prints. The parser accepts both, plus decimal.
 */

import type { AluOp, AtomicOp, DecodedInsn, JmpOp, MemSize } from "./decode.js";
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
} from "./syntax.js";

const ALU_SYM: Record<Exclude<AluOp, "neg" | "mov">, string> = {
  add: "+=",
  sub: "-=",
  mul: "*=",
  div: "/=",
  sdiv: "s/=",
  or: "|=",
  and: "&=",
  lsh: "<<=",
  rsh: ">>=",
  mod: "%=",
  smod: "s%=",
  xor: "^=",
  arsh: "s>>=",
};
const SYM_ALU = new Map(Object.entries(ALU_SYM).map(([k, v]) => [v, k as AluOp]));
const JMP_SYM: Record<JmpOp, string> = {
  jeq: "==",
  jgt: ">",
  jge: ">=",
  jset: "&",
  jne: "!=",
  jsgt: "s>",
  jsge: "s>=",
  jlt: "<",
  jle: "<=",
  jslt: "s<",
  jsle: "s<=",
};
const SYM_JMP = new Map(Object.entries(JMP_SYM).map(([k, v]) => [v, k as JmpOp]));
const ATOMIC_SYM: Record<"add" | "or" | "and" | "xor", string> = { add: "+=", or: "|=", and: "&=", xor: "^=" };
const SYM_ATOMIC = new Map(Object.entries(ATOMIC_SYM).map(([k, v]) => [v, k as AtomicOp]));

const REG = String.raw`([rw]\d+)`;
const NUMBER = String.raw`([+-]?\s*(?:0x[0-9a-fA-F]+|\d+))`;
const OPERAND = String.raw`([rw]\d+|[+-]?\s*(?:0x[0-9a-fA-F]+|\d+))`;
const MEM = String.raw`\(\s*${REG}\s*([+-])\s*(0x[0-9a-fA-F]+|\d+)\s*\)`;
const TARGET = String.raw`(\S+)(?:\s*<[^>]*>)?`;

const re = (s: string): RegExp => new RegExp(`^${s}$`);
const RX = {
  jmp: re(String.raw`if\s+${REG}\s+(s?[<>]=?|==|!=|&)\s+${OPERAND}\s+goto\s+${TARGET}`),
  goto: re(String.raw`(goto|gotol|may_goto)\s+${TARGET}`),
  call: re(String.raw`call\s+(?:(kfunc)\s+)?(.+?)(?:\s*<[^>]*>)?`),
  callx: re(String.raw`callx\s+${REG}`),
  lock: re(String.raw`lock\s+\*\(\s*u(32|64)\s*\*\)\s*${MEM}\s*([+|&^]=)\s*${REG}`),
  store: re(String.raw`\*\(\s*u(8|16|32|64)\s*\*\)\s*${MEM}\s*=\s*${OPERAND}`),
  load: re(String.raw`${REG}\s*=\s*\*\(\s*([us])(8|16|32|64)\s*\*\)\s*${MEM}`),
  skb: re(String.raw`${REG}\s*=\s*\*\(\s*u(8|16|32)\s*\*\)\s*skb\[.*\]`),
  fetch: re(String.raw`${REG}\s*=\s*atomic_fetch_(add|or|and|xor)\(\s*\(\s*u(32|64)\s*\*\)\s*${MEM}\s*,\s*${REG}\s*\)`),
  xchg: re(String.raw`${REG}\s*=\s*(xchg_64|xchg32_32)\(\s*${REG}\s*([+-])\s*(0x[0-9a-fA-F]+|\d+)\s*,\s*${REG}\s*\)`),
  cmpxchg: re(
    String.raw`${REG}\s*=\s*(cmpxchg_64|cmpxchg32_32)\(\s*${REG}\s*([+-])\s*(0x[0-9a-fA-F]+|\d+)\s*,\s*${REG}\s*,\s*${REG}\s*\)`,
  ),
  ldimm64: re(String.raw`${REG}\s*=\s*(.+?)\s+ll`),
  ldPseudo: re(String.raw`ld_pseudo\s+${REG}\s*,\s*${NUMBER}\s*,\s*${NUMBER}`),
  movsx: re(String.raw`${REG}\s*=\s*\(s(8|16|32)\)\s*${REG}`),
  end: re(String.raw`${REG}\s*=\s*(be|le|bswap)(16|32|64)\s+${REG}`),
  neg: re(String.raw`${REG}\s*=\s*-\s*${REG}`),
  cast: re(String.raw`${REG}\s*=\s*addr_space_cast\(\s*${REG}\s*,\s*${NUMBER}\s*,\s*${NUMBER}\s*\)`),
  alu: re(String.raw`${REG}\s*(=|s?[-+*/%|&^]=|<<=|s?>>=)\s*${OPERAND}`),
};

/** A register in a given width: `r` for 64-bit operations, `w` for 32-bit ones. */
function reg(t: string, width?: "r" | "w"): number {
  if (width && !t.startsWith(width)) {
    asmError(`register '${t}' in a ${width === "r" ? "64" : "32"}-bit operation: use ${width}${t.slice(1)}`);
  }
  return parseRegister(t, ["r", "w"]);
}

function memOff(sign: string, n: string): number {
  return parseOff16(`${sign}${n}`);
}

function isReg(t: string): boolean {
  return /^[rw]\d+$/.test(t);
}

function target(t: string, field: "off" | "imm"): { value: number; label?: string } {
  const n = t.replace(/^pc(?=[+-])/, "");
  if (parseInteger(n) !== undefined) return { value: field === "off" ? parseOff16(n) : parseImm32(n) };
  if (!isLabelName(t)) return asmError(`invalid jump target '${t}'`);
  return { value: 0, label: t };
}

function withTarget(insn: DecodedInsn, t: { label?: string }, field: "off" | "imm"): ParsedInsn {
  return t.label ? { insn, target: { label: t.label, field } } : { insn };
}

function parse(stmt: string): ParsedInsn {
  const s = stmt.replace(/\s+/g, " ").trim();
  let m: RegExpExecArray | null;
  if (s === "exit") return { insn: { kind: "exit" } };
  if ((m = RX.jmp.exec(s))) {
    const [, d, sym, src, tgt] = m as unknown as [string, string, string, string, string];
    const op = SYM_JMP.get(sym);
    if (!op) return asmError(`unknown comparison '${sym}'`);
    const w = d.startsWith("w") ? "w" : "r";
    const t = target(tgt, "off");
    const operand = isReg(src) ? { reg: reg(src, w) } : { imm: parseImm32(src.replace(/\s/g, "")) };
    return withTarget({ kind: "jmp", jmp32: w === "w", op, dst: reg(d), src: operand, off: t.value }, t, "off");
  }
  if ((m = RX.goto.exec(s))) {
    if (m[1] !== "gotol") {
      const t = target(m[2]!, "off");
      return withTarget({ kind: m[1] === "goto" ? "ja" : "may_goto", off: t.value }, t, "off");
    }
    const t = target(m[2]!, "imm");
    return withTarget({ kind: "gotol", imm: t.value }, t, "imm");
  }
  if ((m = RX.callx.exec(s))) return { insn: { kind: "callx", dst: reg(m[1]!) } };
  if ((m = RX.call.exec(s))) return parseCall(m[1] !== undefined, m[2]!.trim());
  if ((m = RX.lock.exec(s))) {
    const op = SYM_ATOMIC.get(m[5]!)!;
    const size = m[1] === "32" ? 4 : 8;
    const off = memOff(m[3]!, m[4]!);
    return {
      insn: {
        kind: "atomic",
        size,
        op,
        fetch: false,
        dst: reg(m[2]!),
        src: reg(m[6]!, size === 8 ? "r" : undefined),
        off,
      },
    };
  }
  if ((m = RX.store.exec(s))) {
    const size = (Number(m[1]) / 8) as MemSize;
    const off = memOff(m[3]!, m[4]!);
    const v = m[5]!;
    if (isReg(v))
      return { insn: { kind: "stx", size, dst: reg(m[2]!), src: reg(v, size === 8 ? "r" : undefined), off } };
    return { insn: { kind: "st", size, dst: reg(m[2]!), off, imm: parseImm32(v) } };
  }
  if (RX.skb.test(s)) return asmError("legacy packet access (LD_ABS/LD_IND) is not supported");
  if ((m = RX.load.exec(s))) {
    const signed = m[2] === "s";
    const size = (Number(m[3]) / 8) as MemSize;
    if (signed && size === 8) asmError("there is no sign-extending 64-bit load");
    const dst = reg(m[1]!, signed || size === 8 ? "r" : undefined);
    return { insn: { kind: "ldx", size, signed, dst, src: reg(m[4]!), off: memOff(m[5]!, m[6]!) } };
  }
  if ((m = RX.fetch.exec(s))) {
    const size = m[3] === "32" ? 4 : 8;
    const w = size === 4 ? "w" : "r";
    if (reg(m[1]!, w) !== reg(m[7]!, w)) asmError("atomic_fetch_* returns into its source register");
    const insn: DecodedInsn = {
      kind: "atomic",
      size,
      op: m[2] as AtomicOp,
      fetch: true,
      dst: reg(m[4]!),
      src: reg(m[7]!),
      off: memOff(m[5]!, m[6]!),
    };
    return { insn };
  }
  if ((m = RX.xchg.exec(s))) {
    const size = m[2] === "xchg_64" ? 8 : 4;
    const w = size === 4 ? "w" : "r";
    if (reg(m[1]!, w) !== reg(m[6]!, w)) asmError("xchg returns into its source register");
    return {
      insn: {
        kind: "atomic",
        size,
        op: "xchg",
        fetch: true,
        dst: reg(m[3]!),
        src: reg(m[6]!),
        off: memOff(m[4]!, m[5]!),
      },
    };
  }
  if ((m = RX.cmpxchg.exec(s))) {
    const size = m[2] === "cmpxchg_64" ? 8 : 4;
    const w = size === 4 ? "w" : "r";
    if (reg(m[1]!, w) !== 0 || reg(m[6]!, w) !== 0) asmError("cmpxchg compares with and returns into r0");
    const off = memOff(m[4]!, m[5]!);
    return { insn: { kind: "atomic", size, op: "cmpxchg", fetch: true, dst: reg(m[3]!), src: reg(m[7]!, w), off } };
  }
  if ((m = RX.ldimm64.exec(s))) return parseLdImm64(reg(m[1]!, "r"), m[2]!);
  if ((m = RX.ldPseudo.exec(s))) {
    const pseudo = parseImm32(m[2]!);
    if (pseudo < 1 || pseudo > 6) asmError(`unknown ld_imm64 source ${m[2]}`);
    const imm = parseImm32(m[3]!);
    return { insn: { kind: "ld_imm64", dst: reg(m[1]!), pseudo, imm, imm2: 0, value: BigInt(imm >>> 0) } };
  }
  if ((m = RX.movsx.exec(s))) {
    const w = m[1]!.startsWith("w") ? "w" : "r";
    const bits = Number(m[2]) as 8 | 16 | 32;
    if (bits === 32 && w === "w") asmError("w = (s32)w does not exist: use w = w");
    return { insn: { kind: "movsx", alu64: w === "r", bits, dst: reg(m[1]!), src: reg(m[3]!, w) } };
  }
  if ((m = RX.end.exec(s))) {
    if (reg(m[1]!) !== reg(m[4]!)) asmError("byte swap works in place: source and destination must be the same");
    const to = m[2] as "be" | "le" | "bswap";
    return { insn: { kind: "end", to, bits: Number(m[3]) as 16 | 32 | 64, dst: reg(m[1]!) } };
  }
  if ((m = RX.neg.exec(s))) {
    const w = m[1]!.startsWith("w") ? "w" : "r";
    if (reg(m[1]!) !== reg(m[2]!, w)) asmError("negation works in place: source and destination must be the same");
    return { insn: { kind: "alu", alu64: w === "r", op: "neg", dst: reg(m[1]!), src: { imm: 0 } } };
  }
  if ((m = RX.cast.exec(s))) {
    const insn: DecodedInsn = {
      kind: "addr_space_cast",
      dst: reg(m[1]!, "r"),
      src: reg(m[2]!, "r"),
      dstAs: parseImm32(m[3]!),
      srcAs: parseImm32(m[4]!),
    };
    return { insn };
  }
  if ((m = RX.alu.exec(s))) {
    const w = m[1]!.startsWith("w") ? "w" : "r";
    const op = m[2] === "=" ? "mov" : SYM_ALU.get(m[2]!);
    if (!op) return asmError(`unknown operator '${m[2]}'`);
    const v = m[3]!;
    const src = isReg(v) ? { reg: reg(v, w) } : { imm: parseImm32(v.replace(/\s/g, "")) };
    return { insn: { kind: "alu", alu64: w === "r", op, dst: reg(m[1]!), src } };
  }
  return asmError(`cannot parse '${stmt}'`);
}

function parseCall(kfunc: boolean, arg: string): ParsedInsn {
  if (kfunc) {
    const [imm, off] = arg.split(",").map((x) => x.trim());
    return { insn: { kind: "call", callee: "kfunc", imm: parseImm32(imm!), off: off ? parseOff16(off) : 0 } };
  }
  if (arg.startsWith("pc") || parseInteger(arg) === undefined) {
    const t = target(arg, "imm");
    return withTarget({ kind: "call", callee: "local", imm: t.value, off: 0 }, t, "imm");
  }
  return { insn: { kind: "call", callee: "helper", imm: parseImm32(arg), off: 0 } };
}

function parseLdImm64(dst: number, value: string): ParsedInsn {
  const m = /^([a-z_]+)\(\s*([^,)]+?)\s*(?:,\s*([^)]+?)\s*)?\)$/.exec(value);
  if (!m) return { insn: ldImm64Decoded(dst, parseImm64(value.replace(/\s/g, ""))) };
  const pseudo = PSEUDO_NAMES.indexOf(m[1]!);
  if (pseudo <= 0) asmError(`unknown ld_imm64 source '${m[1]}'`);
  const imm2 = m[3] ? parseImm32(m[3]) : 0;
  // `pc+0x2 <L12>`: the distance is authoritative, the <label> a reading aid.
  const first = m[2]!.replace(/\s*<[^>]*>$/, "").replace(/^pc(?=[+-])/, "");
  if (pseudo === 4 && parseInteger(first) === undefined) {
    if (!isLabelName(first)) asmError(`invalid function reference '${first}'`);
    return { insn: { kind: "ld_imm64", dst, pseudo, imm: 0, imm2, value: 0n }, target: { label: first, field: "imm" } };
  }
  const imm = parseImm32(first);
  return { insn: { kind: "ld_imm64", dst, pseudo, imm, imm2, value: (BigInt(imm2 >>> 0) << 32n) | BigInt(imm >>> 0) } };
}

const rw = (alu64: boolean, n: number): string => `${alu64 ? "r" : "w"}${n}`;
const mem = (size: MemSize, signed: boolean, r: number, off: number): string =>
  `*(${signed ? "s" : "u"}${size * 8} *)(r${r} ${off < 0 ? "-" : "+"} ${hex(Math.abs(off))})`;
const dist = (n: number): string => (n < 0 ? `-${hex(-n)}` : `+${hex(n)}`);

function jumpText(ctx: FormatCtx, d: number): string {
  const label = ctx.labelAt?.(ctx.idx + 1 + d);
  return label ? `${dist(d)} <${label}>` : dist(d);
}

export function formatLlvm(d: DecodedInsn, ctx: FormatCtx): string {
  const objdump = ctx.objdump === true;
  switch (d.kind) {
    case "alu": {
      const dst = rw(d.alu64, d.dst);
      if (d.op === "neg") return `${dst} = -${dst}`;
      const src = "reg" in d.src ? rw(d.alu64, d.src.reg) : hex(d.src.imm);
      return `${dst} ${d.op === "mov" ? "=" : ALU_SYM[d.op]} ${src}`;
    }
    case "movsx":
      return `${rw(d.alu64, d.dst)} = (s${d.bits})${rw(d.alu64, d.src)}`;
    case "addr_space_cast":
      return `r${d.dst} = addr_space_cast(r${d.src}, ${hex(d.dstAs)}, ${hex(d.srcAs)})`;
    case "end":
      return `r${d.dst} = ${d.to}${d.bits} r${d.dst}`;
    case "jmp": {
      const src = "reg" in d.src ? rw(!d.jmp32, d.src.reg) : hex(d.src.imm);
      return `if ${rw(!d.jmp32, d.dst)} ${JMP_SYM[d.op]} ${src} goto ${jumpText(ctx, d.off)}`;
    }
    case "ja":
      return `goto ${jumpText(ctx, d.off)}`;
    case "gotol":
      return `gotol ${jumpText(ctx, d.imm)}`;
    case "may_goto":
      return `may_goto ${jumpText(ctx, d.off)}`;
    case "call":
      if (d.callee === "helper" || objdump) return `call ${hex(d.imm)}`;
      if (d.callee === "local") return `call pc${jumpText(ctx, d.imm)}`;
      return `call kfunc ${hex(d.imm)}${d.off !== 0 ? `, ${hex(d.off)}` : ""}`;
    case "callx":
      return `callx r${d.dst}`;
    case "exit":
      return "exit";
    case "ld_imm64": {
      if (d.pseudo === 0) return `r${d.dst} = ${hex(BigInt.asIntN(64, d.value))} ll`;
      if (objdump) return `ld_pseudo\tr${d.dst}, ${hex(d.pseudo)}, ${hex(d.imm)}`;
      let first = hex(d.imm);
      if (d.pseudo === 4) first = `pc${jumpText(ctx, d.imm)}`;
      return `r${d.dst} = ${PSEUDO_NAMES[d.pseudo]}(${first}${d.imm2 !== 0 ? `, ${hex(d.imm2)}` : ""}) ll`;
    }
    case "ldx":
      return `${rw(d.signed || d.size === 8, d.dst)} = ${mem(d.size, d.signed, d.src, d.off)}`;
    case "st":
      return `${mem(d.size, false, d.dst, d.off)} = ${hex(d.imm)}`;
    case "stx":
      return `${mem(d.size, false, d.dst, d.off)} = ${rw(d.size === 8, d.src)}`;
    case "atomic": {
      const at = `(r${d.dst} ${d.off < 0 ? "-" : "+"} ${hex(Math.abs(d.off))})`;
      const w64 = d.size === 8;
      if (d.op === "xchg")
        return `${rw(w64, d.src)} = ${w64 ? "xchg_64" : "xchg32_32"}(${at.slice(1, -1)}, ${rw(w64, d.src)})`;
      if (d.op === "cmpxchg") {
        return `${rw(w64, 0)} = ${w64 ? "cmpxchg_64" : "cmpxchg32_32"}(${at.slice(1, -1)}, ${rw(w64, 0)}, ${rw(w64, d.src)})`;
      }
      if (!d.fetch) return `lock *(u${d.size * 8} *)${at} ${ATOMIC_SYM[d.op]} ${rw(w64, d.src)}`;
      return `${rw(w64, d.src)} = atomic_fetch_${d.op}((u${d.size * 8} *)${at}, ${rw(w64, d.src)})`;
    }
  }
}

export const llvmSyntax: AsmSyntax = {
  name: "llvm",
  // llvm-objdump lines may carry the slot number ("  12:\t") and `;` comments.
  stripComment: (line) => {
    const c = line.search(/;|#|\/\//);
    return (c < 0 ? line : line.slice(0, c)).replace(/^\s*\d+:\s/, "");
  },
  parse,
  format: formatLlvm,
  labelName: (slot) => `L${slot}`,
};
