import {
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_B,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_FETCH,
  BPF_H,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JMP,
  BPF_JMP32,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_LDX,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  bpfSizeBytes,
} from "../isa/opcodes.js";

/**
 * The semantics of every non-call instruction, once, as JavaScript source templates.
 *
 * Both tiers are built from these: the interpreter instantiates them per opcode with register
 * operands read from typed arrays (`R[d]`), the compiling tier per instruction with registers
 * as local variables (`r3l`, `r3h`). Registers are pairs of int32 halves; a 32-bit result
 * zero-extends by setting the high half to 0.
 *
 * Generated code may use: temporaries t0..t2, the memory views U8 / DV / SH (shadow),
 * the functions of alu64.ts, and fault(at, lo, hi, off, size, kind).
 */

export interface Operands {
  /** dst register halves (assignable). */
  dl: string;
  dh: string;
  /** src register halves (assignable). */
  sl: string;
  sh: string;
  /** imm as an int32 expression, and its sign extension to the high half. */
  imm: string;
  immHi: string;
  /** off as an expression. */
  off: string;
  /** The `imm` given to emitInsn is the instruction's own (compiling tier), not a placeholder. */
  immKnown?: boolean;
  /** Instruction index expression (for faults). */
  at: string;
  /** r0 halves (cmpxchg compares with and loads into r0). */
  r0l: string;
  r0h: string;
  /** A statement transferring control to the jump target taken from `off` or (gotol) `imm`. */
  jump(field: "off" | "imm"): string;
}

/** BPF_LOAD_ACQ / BPF_STORE_REL in the imm of BPF_STX|BPF_ATOMIC. */
export const BPF_LOAD_ACQ = 0x100;
export const BPF_STORE_REL = 0x110;

const ACC_READ = 0;
const ACC_WRITE = 1;
const ACC_ATOMIC = 2;

/**
 * Source for one instruction of class ALU/ALU64/JMP/JMP32 (not call/exit)/LDX/ST/STX.
 * `off` and `imm` select variants (signed division, movsx, byte-swap width, atomic op, gotol);
 * values used as operands come from `o`. Returns null for an encoding that is not valid.
 */
export function emitInsn(code: number, off: number, imm: number, o: Operands): string | null {
  switch (code & 7) {
    case BPF_ALU64:
      return alu64(code, off, imm, o);
    case BPF_ALU:
      return alu32(code, off, imm, o);
    case BPF_JMP:
    case BPF_JMP32:
      return jmp(code, o);
    case BPF_LDX:
      return ldx(code, o);
    case BPF_ST:
      return (code & 0xe0) === BPF_MEM ? store(code & 0x18, o.dl, o.dh, o.off, o.imm, o.immHi, o) : null;
    case BPF_STX:
      if ((code & 0xe0) === BPF_MEM) return store(code & 0x18, o.dl, o.dh, o.off, o.sl, o.sh, o);
      if ((code & 0xe0) === BPF_ATOMIC) return atomic(code & 0x18, imm, o);
      return null;
    default:
      return null;
  }
}

function alu64(code: number, off: number, imm: number, o: Operands): string | null {
  const x = (code & BPF_X) !== 0;
  const sl = x ? o.sl : o.imm;
  const sh = x ? o.sh : o.immHi;
  const { dl, dh } = o;
  const wide = (fn: string, a: string) => `t0 = ${fn}(${dl}, ${dh}, ${a}); ${dh} = W[1]; ${dl} = t0;`;
  switch (code & 0xf0) {
    // Carry and borrow from unsigned 32-bit compares: integer operations only, no doubles.
    case BPF_ADD:
      return `t0 = (${dl} + ${sl}) | 0; ${dh} = (${dh} + ${sh} + ((t0 >>> 0) < (${dl} >>> 0) ? 1 : 0)) | 0; ${dl} = t0;`;
    case BPF_SUB:
      return `t0 = (${dl} - ${sl}) | 0; ${dh} = (${dh} - ${sh} - ((${dl} >>> 0) < (${sl} >>> 0) ? 1 : 0)) | 0; ${dl} = t0;`;
    case BPF_MUL:
      // Both operands below 2^32 with a product below 2^53: one exact double multiply.
      return `t0 = (${dl} >>> 0) * (${sl} >>> 0); if ((${dh} | ${sh}) === 0 && t0 <= 9007199254740991) { ${dh} = (t0 / 4294967296) | 0; ${dl} = t0 | 0; } else { ${wide("mul64", `${sl}, ${sh}`)} }`;
    case BPF_DIV:
      if (off !== 0 && off !== 1) return null;
      if (off === 0) {
        // Both operands below 2^32: a 32-bit unsigned division, inline.
        // A dividend below 2^53 by a divisor below 2^32: floor of the double quotient is exact
        // (its rounding error is below 1/divisor, the least distance to the next integer).
        return `if ((${sl} | ${sh}) === 0) { ${dl} = 0; ${dh} = 0; } else if ((${dh} | ${sh}) === 0) { ${dl} = ((${dl} >>> 0) / (${sl} >>> 0)) | 0; } else if (${sh} === 0 && ${dh} >= 0 && ${dh} < 0x200000) { t0 = Math.floor((${dh} * 4294967296 + (${dl} >>> 0)) / (${sl} >>> 0)); ${dh} = (t0 / 4294967296) | 0; ${dl} = t0 | 0; } else { ${wide("udiv64", `${sl}, ${sh}`)} }`;
      }
      return `if ((${sl} | ${sh}) === 0) { ${dl} = 0; ${dh} = 0; } else { ${wide("sdiv64", `${sl}, ${sh}`)} }`;
    case BPF_MOD:
      if (off !== 0 && off !== 1) return null;
      return `if ((${sl} | ${sh}) !== 0) { ${wide(off ? "smod64" : "umod64", `${sl}, ${sh}`)} }`;
    case BPF_OR:
      return `${dl} = ${dl} | ${sl}; ${dh} = ${dh} | ${sh};`;
    case BPF_AND:
      return `${dl} = ${dl} & ${sl}; ${dh} = ${dh} & ${sh};`;
    case BPF_XOR:
      return `${dl} = ${dl} ^ ${sl}; ${dh} = ${dh} ^ ${sh};`;
    case BPF_LSH:
      return !x && o.immKnown ? shiftK(0, imm & 63, dl, dh) : shiftV(0, sl, dl, dh);
    case BPF_RSH:
      return !x && o.immKnown ? shiftK(1, imm & 63, dl, dh) : shiftV(1, sl, dl, dh);
    case BPF_ARSH:
      return !x && o.immKnown ? shiftK(2, imm & 63, dl, dh) : shiftV(2, sl, dl, dh);
    case BPF_NEG:
      return x ? null : `${dh} = (${dl} === 0 ? -${dh} : ~${dh}) | 0; ${dl} = -${dl} | 0;`;
    case BPF_MOV:
      if (!x) return off === 0 ? `${dl} = ${sl}; ${dh} = ${sh};` : null;
      switch (off) {
        case 0:
          return `${dl} = ${sl}; ${dh} = ${sh};`;
        case 8:
          return `${dl} = (${sl} << 24) >> 24; ${dh} = ${dl} >> 31;`;
        case 16:
          return `${dl} = (${sl} << 16) >> 16; ${dh} = ${dl} >> 31;`;
        case 32:
          return `${dl} = ${sl}; ${dh} = ${dl} >> 31;`;
        default:
          return null;
      }
    case BPF_END:
      // ALU64|END is the unconditional byte swap (bswap16/32/64).
      if (x) return null;
      return byteSwap(imm, dl, dh);
    default:
      return null;
  }
}

/** A 64-bit shift by a constant (0 lsh, 1 rsh, 2 arsh), inline: the hot case in compiled code. */
function shiftK(kind: number, n: number, dl: string, dh: string): string {
  if (n === 0) return "";
  if (kind === 0) {
    return n < 32
      ? `${dh} = (${dh} << ${n}) | (${dl} >>> ${32 - n}); ${dl} = ${dl} << ${n};`
      : `${dh} = ${dl} << ${n - 32}; ${dl} = 0;`;
  }
  if (kind === 1) {
    return n < 32
      ? `${dl} = (${dl} >>> ${n}) | (${dh} << ${32 - n}); ${dh} = ${dh} >>> ${n};`
      : `${dl} = (${dh} >>> ${n - 32}) | 0; ${dh} = 0;`;
  }
  return n < 32
    ? `${dl} = (${dl} >>> ${n}) | (${dh} << ${32 - n}); ${dh} = ${dh} >> ${n};`
    : `${dl} = ${dh} >> ${n - 32}; ${dh} = ${dh} >> 31;`;
}

/** A 64-bit shift by a count known at run time, inline (JavaScript shifts count modulo 32). */
function shiftV(kind: number, count: string, dl: string, dh: string): string {
  const low =
    kind === 0
      ? `${dh} = (${dh} << t1) | (${dl} >>> (32 - t1)); ${dl} = ${dl} << t1;`
      : `${dl} = (${dl} >>> t1) | (${dh} << (32 - t1)); ${dh} = ${dh} ${kind === 1 ? ">>>" : ">>"} t1;`;
  const high =
    kind === 0
      ? `${dh} = ${dl} << t1; ${dl} = 0;`
      : kind === 1
        ? `${dl} = ${dh} >>> t1; ${dh} = 0;`
        : `${dl} = ${dh} >> t1; ${dh} = ${dh} >> 31;`;
  return `t1 = ${count} & 63; if (t1 >= 32) { ${high} } else if (t1 !== 0) { ${low} }`;
}

function byteSwap(imm: number, dl: string, dh: string): string | null {
  switch (imm) {
    case 16:
      return `${dl} = bswap16(${dl}); ${dh} = 0;`;
    case 32:
      return `${dl} = bswap32(${dl}); ${dh} = 0;`;
    case 64:
      return `t0 = bswap32(${dl}); ${dl} = bswap32(${dh}); ${dh} = t0;`;
    default:
      return null;
  }
}

function alu32(code: number, off: number, imm: number, o: Operands): string | null {
  const x = (code & BPF_X) !== 0;
  const s = x ? o.sl : o.imm;
  const { dl, dh } = o;
  const z = `${dh} = 0;`;
  switch (code & 0xf0) {
    case BPF_ADD:
      return `${dl} = (${dl} + ${s}) | 0; ${z}`;
    case BPF_SUB:
      return `${dl} = (${dl} - ${s}) | 0; ${z}`;
    case BPF_MUL:
      return `${dl} = Math.imul(${dl}, ${s}); ${z}`;
    case BPF_DIV:
      if (off === 0) return `${dl} = ${s} === 0 ? 0 : (((${dl} >>> 0) / (${s} >>> 0)) >>> 0) | 0; ${z}`;
      // (a / b) | 0 truncates toward zero; INT_MIN / -1 wraps to INT_MIN as in the kernel.
      if (off === 1) return `${dl} = ${s} === 0 ? 0 : (${dl} / ${s}) | 0; ${z}`;
      return null;
    case BPF_MOD:
      // Modulo by zero leaves dst unchanged, truncated to 32 bits.
      if (off === 0) return `if (${s} !== 0) ${dl} = ((${dl} >>> 0) % (${s} >>> 0)) | 0; ${z}`;
      if (off === 1) return `if (${s} !== 0) ${dl} = (${dl} % ${s}) | 0; ${z}`;
      return null;
    case BPF_OR:
      return `${dl} = ${dl} | ${s}; ${z}`;
    case BPF_AND:
      return `${dl} = ${dl} & ${s}; ${z}`;
    case BPF_XOR:
      return `${dl} = ${dl} ^ ${s}; ${z}`;
    case BPF_LSH:
      return `${dl} = ${dl} << (${s} & 31); ${z}`;
    case BPF_RSH:
      return `${dl} = (${dl} >>> (${s} & 31)) | 0; ${z}`;
    case BPF_ARSH:
      return `${dl} = ${dl} >> (${s} & 31); ${z}`;
    case BPF_NEG:
      return x ? null : `${dl} = -${dl} | 0; ${z}`;
    case BPF_MOV:
      if (!x) return off === 0 ? `${dl} = ${s}; ${z}` : null;
      if (off === 0) return `${dl} = ${s}; ${z}`;
      if (off === 8) return `${dl} = (${s} << 24) >> 24; ${z}`;
      if (off === 16) return `${dl} = (${s} << 16) >> 16; ${z}`;
      return null;
    case BPF_END:
      if (x) return byteSwap(imm, dl, dh); // to big endian: a swap on this little-endian machine
      // To little endian: no swap, but le16/le32 truncate; le64 keeps all 64 bits.
      if (imm === 16) return `${dl} = ${dl} & 0xffff; ${z}`;
      if (imm === 32) return z;
      if (imm === 64) return "";
      return null;
    default:
      return null;
  }
}

function cond64(op: number, dl: string, dh: string, sl: string, sh: string): string | null {
  const u = (cmp: string) =>
    `((${dh} >>> 0) ${cmp} (${sh} >>> 0) || (${dh} === ${sh} && (${dl} >>> 0) ${cmp}= (${sl} >>> 0)))`;
  const us = (cmp: string) =>
    `((${dh} >>> 0) ${cmp} (${sh} >>> 0) || (${dh} === ${sh} && (${dl} >>> 0) ${cmp} (${sl} >>> 0)))`;
  const s = (cmp: string) => `(${dh} ${cmp} ${sh} || (${dh} === ${sh} && (${dl} >>> 0) ${cmp} (${sl} >>> 0)))`;
  const se = (cmp: string) => `(${dh} ${cmp} ${sh} || (${dh} === ${sh} && (${dl} >>> 0) ${cmp}= (${sl} >>> 0)))`;
  switch (op) {
    case BPF_JEQ:
      return `(${dl} === ${sl} && ${dh} === ${sh})`;
    case BPF_JNE:
      return `(${dl} !== ${sl} || ${dh} !== ${sh})`;
    case BPF_JGT:
      return us(">");
    case BPF_JGE:
      return u(">");
    case BPF_JLT:
      return us("<");
    case BPF_JLE:
      return u("<");
    case BPF_JSGT:
      return s(">");
    case BPF_JSGE:
      return se(">");
    case BPF_JSLT:
      return s("<");
    case BPF_JSLE:
      return se("<");
    case BPF_JSET:
      return `((${dl} & ${sl}) !== 0 || (${dh} & ${sh}) !== 0)`;
    default:
      return null;
  }
}

function cond32(op: number, d: string, s: string): string | null {
  const u = (cmp: string) => `((${d} >>> 0) ${cmp} (${s} >>> 0))`;
  switch (op) {
    case BPF_JEQ:
      return `(${d} === ${s})`;
    case BPF_JNE:
      return `(${d} !== ${s})`;
    case BPF_JGT:
      return u(">");
    case BPF_JGE:
      return u(">=");
    case BPF_JLT:
      return u("<");
    case BPF_JLE:
      return u("<=");
    case BPF_JSGT:
      return `(${d} > ${s})`;
    case BPF_JSGE:
      return `(${d} >= ${s})`;
    case BPF_JSLT:
      return `(${d} < ${s})`;
    case BPF_JSLE:
      return `(${d} <= ${s})`;
    case BPF_JSET:
      return `((${d} & ${s}) !== 0)`;
    default:
      return null;
  }
}

function jmp(code: number, o: Operands): string | null {
  const op = code & 0xf0;
  const x = (code & BPF_X) !== 0;
  if (op === BPF_JA) {
    if (x) return null;
    return o.jump((code & 7) === BPF_JMP32 ? "imm" : "off");
  }
  // JCOND: may_goto (the only condition), taken once the run's loop budget is spent.
  if (op === 0xe0) return (code & 7) === BPF_JMP && !x ? `if (X.mayGoto()) { ${o.jump("off")} }` : null;
  const c =
    (code & 7) === BPF_JMP
      ? cond64(op, o.dl, o.dh, x ? o.sl : o.imm, x ? o.sh : o.immHi)
      : cond32(op, o.dl, x ? o.sl : o.imm);
  return c === null ? null : `if ${c} { ${o.jump("off")} }`;
}

/** Bounds/permission check of [base + off, +size) leaving the address in t0. */
function check(bl: string, bh: string, off: string, size: number, perm: number, kind: number, o: Operands): string {
  const last = size > 1 ? ` || (SH[t0 + ${size - 1}] & ${perm}) !== ${perm}` : "";
  return `t0 = (${bl} >>> 0) + ${off}; if (${bh} !== 0 || (SH[t0] & ${perm}) !== ${perm}${last}) fault(${o.at}, ${bl}, ${bh}, ${off}, ${size}, ${kind});`;
}

function load(size: number, sx: boolean, dl: string, dh: string): string {
  switch (size) {
    case BPF_B:
      return sx ? `${dl} = (U8[t0] << 24) >> 24; ${dh} = ${dl} >> 31;` : `${dl} = U8[t0]; ${dh} = 0;`;
    case BPF_H:
      return sx ? `${dl} = DV.getInt16(t0, true); ${dh} = ${dl} >> 31;` : `${dl} = DV.getUint16(t0, true); ${dh} = 0;`;
    case BPF_W:
      return `${dl} = DV.getInt32(t0, true); ${dh} = ${sx ? `${dl} >> 31` : "0"};`;
    default:
      return `${dh} = DV.getInt32(t0 + 4, true); ${dl} = DV.getInt32(t0, true);`;
  }
}

function ldx(code: number, o: Operands): string | null {
  const mode = code & 0xe0;
  const size = code & 0x18;
  if (mode !== BPF_MEM && !(mode === BPF_MEMSX && size !== BPF_DW)) return null;
  return `${check(o.sl, o.sh, o.off, bpfSizeBytes(size), 1, ACC_READ, o)} ${load(size, mode === BPF_MEMSX, o.dl, o.dh)}`;
}

function put(size: number, vl: string, vh: string): string {
  switch (size) {
    case BPF_B:
      return `U8[t0] = ${vl};`;
    case BPF_H:
      return `DV.setInt16(t0, ${vl}, true);`;
    case BPF_W:
      return `DV.setInt32(t0, ${vl}, true);`;
    default:
      return `DV.setInt32(t0, ${vl}, true); DV.setInt32(t0 + 4, ${vh}, true);`;
  }
}

function store(size: number, bl: string, bh: string, off: string, vl: string, vh: string, o: Operands): string {
  return `${check(bl, bh, off, bpfSizeBytes(size), 2, ACC_WRITE, o)} ${put(size, vl, vh)}`;
}

function atomic(size: number, imm: number, o: Operands): string | null {
  if (imm === BPF_LOAD_ACQ) {
    return `${check(o.sl, o.sh, o.off, bpfSizeBytes(size), 1, ACC_READ, o)} ${load(size, false, o.dl, o.dh)}`;
  }
  if (imm === BPF_STORE_REL) return store(size, o.dl, o.dh, o.off, o.sl, o.sh, o);
  if (size !== BPF_W && size !== BPF_DW) return null;
  const chk = check(o.dl, o.dh, o.off, size === BPF_W ? 4 : 8, 3, ACC_ATOMIC, o);
  const fetch = (imm & BPF_FETCH) !== 0;
  const { sl, sh } = o;
  if (size === BPF_W) {
    const get = "t1 = DV.getInt32(t0, true);";
    const set = (v: string) => `DV.setInt32(t0, ${v}, true);`;
    const back = fetch ? `${sl} = t1; ${sh} = 0;` : "";
    switch (imm) {
      case BPF_ADD:
      case BPF_ADD | BPF_FETCH:
        return `${chk} ${get} ${set(`(t1 + ${sl}) | 0`)} ${back}`;
      case BPF_OR:
      case BPF_OR | BPF_FETCH:
        return `${chk} ${get} ${set(`t1 | ${sl}`)} ${back}`;
      case BPF_AND:
      case BPF_AND | BPF_FETCH:
        return `${chk} ${get} ${set(`t1 & ${sl}`)} ${back}`;
      case BPF_XOR:
      case BPF_XOR | BPF_FETCH:
        return `${chk} ${get} ${set(`t1 ^ ${sl}`)} ${back}`;
      case BPF_XCHG:
        return `${chk} ${get} ${set(sl)} ${back}`;
      case BPF_CMPXCHG:
        // Compares with the low 32 bits of r0; r0 receives the old value, zero-extended.
        return `${chk} ${get} if (t1 === ${o.r0l}) ${set(sl)} ${o.r0l} = t1; ${o.r0h} = 0;`;
      default:
        return null;
    }
  }
  const get = "t1 = DV.getInt32(t0, true); t2 = DV.getInt32(t0 + 4, true);";
  const set = (l: string, h: string) => `DV.setInt32(t0, ${l}, true); DV.setInt32(t0 + 4, ${h}, true);`;
  const back = fetch ? `${sl} = t1; ${sh} = t2;` : "";
  switch (imm) {
    case BPF_ADD:
    case BPF_ADD | BPF_FETCH:
      return `${chk} ${get} { const l = (t1 >>> 0) + (${sl} >>> 0); ${set("l | 0", `(t2 + ${sh} + (l > 4294967295 ? 1 : 0)) | 0`)} } ${back}`;
    case BPF_OR:
    case BPF_OR | BPF_FETCH:
      return `${chk} ${get} ${set(`t1 | ${sl}`, `t2 | ${sh}`)} ${back}`;
    case BPF_AND:
    case BPF_AND | BPF_FETCH:
      return `${chk} ${get} ${set(`t1 & ${sl}`, `t2 & ${sh}`)} ${back}`;
    case BPF_XOR:
    case BPF_XOR | BPF_FETCH:
      return `${chk} ${get} ${set(`t1 ^ ${sl}`, `t2 ^ ${sh}`)} ${back}`;
    case BPF_XCHG:
      return `${chk} ${get} ${set(sl, sh)} ${back}`;
    case BPF_CMPXCHG:
      return `${chk} ${get} if (t1 === ${o.r0l} && t2 === ${o.r0h}) { ${set(sl, sh)} } ${o.r0l} = t1; ${o.r0h} = t2;`;
    default:
      return null;
  }
}

export const ACCESS_KINDS = ["read", "write", "atomic"] as const;
