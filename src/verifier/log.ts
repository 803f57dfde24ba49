/**
 * The verifier log (kernel/bpf/log.c, kernel/bpf/disasm.c): instructions printed the way
 * print_bpf_insn prints them (`0: (b7) r0 = 0`, `(79) r0 = *(u64 *)(r1 +8)`), register states
 * the way print_verifier_state does (`R0=0 R1=ctx() R10=fp0`).
 */
import { type Insn, isLdImm64 } from "../isa/insn.js";
import {
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CLASS,
  BPF_CMPXCHG,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_IND,
  BPF_JA,
  BPF_JMP32,
  BPF_LD,
  BPF_LDX,
  BPF_MEMSX,
  BPF_MODE,
  BPF_MOV,
  BPF_NEG,
  BPF_OP,
  BPF_SIZE,
  BPF_SRC,
  BPF_ST,
  BPF_STX,
  BPF_TO_BE,
  BPF_X,
  BPF_XCHG,
  bpfSizeBytes,
} from "../isa/opcodes.js";
import { BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL } from "../uapi/bpf.js";
import { funcIdName } from "./helper_protos.js";
import {
  BPF_ADD_CONST,
  baseType,
  CONST_PTR_TO_DYNPTR,
  CONST_PTR_TO_MAP,
  DYNPTR_TYPE_FLAG_MASK,
  DYNPTR_TYPE_LOCAL,
  DYNPTR_TYPE_RINGBUF,
  DYNPTR_TYPE_SKB,
  DYNPTR_TYPE_XDP,
  NON_OWN_REF,
  PTR_TO_BTF_ID,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_PACKET,
  PTR_TO_PACKET_META,
  PTR_TO_STACK,
  type RegState,
  regTypeStr,
  S32_MAX,
  S32_MIN,
  S64_MAX,
  S64_MIN,
  SCALAR_VALUE,
  scalarIdBase,
} from "./reg_state.js";
import { tnumIsConst, tnumIsUnknown, tnumStr, U32_MAX, U64_MAX } from "./tnum.js";

const ALU_OPS = ["+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "endian"];
const JMP_OPS = ["jmp", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<="];
const SIZE_NAMES: Record<number, string> = { 1: "u8", 2: "u16", 4: "u32", 8: "u64" };
const SSIZE_NAMES: Record<number, string> = { 1: "s8", 2: "s16", 4: "s32", 8: "s64" };

const sOff = (off: number): string => (off >= 0 ? `+${off}` : `${off}`);

export interface InsnNames {
  /** Name for a kfunc BTF id / a map reference of an ld_imm64. */
  kfuncName?(btfId: number): string | undefined;
  ldImm64?(idx: number, value: bigint): string | undefined;
}

/** print_bpf_insn, without the leading "N: ". `next` is the second slot of an ld_imm64. */
export function printBpfInsn(i: Insn, next?: Insn, names: InsnNames = {}, idx = 0): string {
  const code = `(${i.code.toString(16).padStart(2, "0")})`;
  const cls = BPF_CLASS(i.code);
  if (cls === BPF_ALU || cls === BPF_ALU64) {
    const r = cls === BPF_ALU64 ? "r" : "w";
    const op = BPF_OP(i.code);
    if (op === BPF_END) {
      const bits = i.imm;
      if (cls === BPF_ALU64) return `${code} r${i.dst} = bswap${bits} r${i.dst}`;
      return `${code} r${i.dst} = ${BPF_SRC(i.code) === BPF_TO_BE ? "be" : "le"}${bits} r${i.dst}`;
    }
    if (op === BPF_NEG) return `${code} ${r}${i.dst} = -${r}${i.dst}`;
    let opStr = ALU_OPS[op >> 4] ?? "?";
    if (i.off === 1 && (opStr === "/=" || opStr === "%=")) opStr = `s${opStr}`;
    if (BPF_SRC(i.code) === BPF_X) {
      if (op === BPF_MOV && i.off !== 0) return `${code} ${r}${i.dst} = (s${i.off})${r}${i.src}`;
      return `${code} ${r}${i.dst} ${opStr} ${r}${i.src}`;
    }
    return `${code} ${r}${i.dst} ${opStr} ${i.imm}`;
  }
  if (cls === BPF_STX) {
    const sz = SIZE_NAMES[bpfSizeBytes(BPF_SIZE(i.code))];
    if (BPF_MODE(i.code) === BPF_ATOMIC) {
      const w = sz === "u64" ? "64" : "";
      const mem = `(${sz} *)(r${i.dst} ${sOff(i.off)})`;
      if (i.imm === BPF_CMPXCHG) return `${code} r0 = atomic${w}_cmpxchg(${mem}, r0, r${i.src})`;
      if (i.imm === BPF_XCHG) return `${code} r${i.src} = atomic${w}_xchg(${mem}, r${i.src})`;
      const name = ({ 0: "add", 64: "or", 80: "and", 160: "xor" } as Record<number, string>)[i.imm & ~BPF_FETCH];
      if (i.imm & BPF_FETCH) return `${code} r${i.src} = atomic${w}_fetch_${name}(${mem}, r${i.src})`;
      const sym = ({ add: "+=", or: "|=", and: "&=", xor: "^=" } as Record<string, string>)[name ?? ""] ?? "?=";
      return `${code} lock *${mem.replace(/^\(/, "(")} ${sym} r${i.src}`;
    }
    return `${code} *(${sz} *)(r${i.dst} ${sOff(i.off)}) = r${i.src}`;
  }
  if (cls === BPF_ST) {
    const sz = SIZE_NAMES[bpfSizeBytes(BPF_SIZE(i.code))];
    return `${code} *(${sz} *)(r${i.dst} ${sOff(i.off)}) = ${i.imm}`;
  }
  if (cls === BPF_LDX) {
    const bytes = bpfSizeBytes(BPF_SIZE(i.code));
    const sz = BPF_MODE(i.code) === BPF_MEMSX ? SSIZE_NAMES[bytes] : SIZE_NAMES[bytes];
    return `${code} r${i.dst} = *(${sz} *)(r${i.src} ${sOff(i.off)})`;
  }
  if (cls === BPF_LD && (BPF_MODE(i.code) === BPF_ABS || BPF_MODE(i.code) === BPF_IND)) {
    const sz = SIZE_NAMES[bpfSizeBytes(BPF_SIZE(i.code))];
    const at = BPF_MODE(i.code) === BPF_ABS ? `${i.imm}` : `r${i.src} + ${i.imm}`;
    return `${code} r0 = *(${sz} *)skb[${at}]`;
  }
  if (isLdImm64(i)) {
    const v = (BigInt(i.imm >>> 0) | (BigInt((next?.imm ?? 0) >>> 0) << 32n)) & U64_MAX;
    const named = names.ldImm64?.(idx, v);
    return `${code} r${i.dst} = ${named ?? `0x${v.toString(16)}`}`;
  }
  if (cls === BPF_JMP32 || BPF_CLASS(i.code) === 0x05) {
    const op = BPF_OP(i.code);
    if (op === BPF_CALL) {
      if (i.src === BPF_PSEUDO_CALL) return `${code} call pc${sOff(i.imm)}`;
      if (i.src === BPF_PSEUDO_KFUNC_CALL)
        return `${code} call ${names.kfuncName?.(i.imm) ?? "kernel-function"}#${i.imm}`;
      return `${code} call ${funcIdName(i.imm)}#${i.imm}`;
    }
    if (op === BPF_EXIT) return `${code} exit`;
    if (op === BPF_JA) return cls === BPF_JMP32 ? `${code} gotol pc${sOff(i.imm)}` : `${code} goto pc${sOff(i.off)}`;
    const r = cls === BPF_JMP32 ? "w" : "r";
    const opStr = JMP_OPS[op >> 4] ?? "?";
    if (BPF_SRC(i.code) === BPF_X) return `${code} if ${r}${i.dst} ${opStr} ${r}${i.src} goto pc${sOff(i.off)}`;
    return `${code} if ${r}${i.dst} ${opStr} 0x${(i.imm >>> 0).toString(16)} goto pc${sOff(i.off)}`;
  }
  return `${code} unknown`;
}

/** verbose_snum / verbose_unum: numbers within s16 / u16 in decimal, others as (unsigned) hex. */
function snum(v: bigint): string {
  return v >= -32768n && v <= 32767n ? `${v}` : `0x${BigInt.asUintN(64, v).toString(16)}`;
}
function unum(v: bigint): string {
  return v <= 65535n ? `${v}` : `0x${v.toString(16)}`;
}

/**
 * print_scalar_ranges: each bound that is not the type's default, a later bound of the same
 * kind (min or max) with the same value folded into it ("smax=umax=0xffffffff").
 */
function scalarStr(r: RegState): string {
  if (tnumIsConst(r.varOff)) return snum(BigInt.asIntN(64, r.varOff.value));
  const m: { name: string; val: bigint; omit: boolean }[] = [
    { name: "smin", val: r.smin, omit: r.smin === S64_MIN },
    { name: "smax", val: r.smax, omit: r.smax === S64_MAX },
    { name: "umin", val: r.umin, omit: r.umin === 0n },
    { name: "umax", val: r.umax, omit: r.umax === U64_MAX },
    { name: "smin32", val: r.s32min, omit: r.s32min === S32_MIN },
    { name: "smax32", val: r.s32max, omit: r.s32max === S32_MAX },
    { name: "umin32", val: r.u32min, omit: r.u32min === 0n },
    { name: "umax32", val: r.u32max, omit: r.u32max === U32_MAX },
  ];
  // A copy moved by a constant prints its delta after the id ("id=1+4").
  const delta = r.id >= BPF_ADD_CONST ? (r.off < 0 ? `${r.off}` : `+${r.off}`) : "";
  const parts: string[] = r.id ? [`id=${scalarIdBase(r.id)}${delta}`] : [];
  for (let i = 0; i < m.length; i++) {
    const a = m[i];
    if (a.omit) continue;
    // Compare as the kernel does, on the 64-bit pattern; never fold a negative into a positive.
    const bits = (x: { name: string; val: bigint }) => BigInt.asUintN(64, x.val);
    const neg = (x: { name: string; val: bigint }) => x.name[0] === "s" && x.val < 0n;
    let text = `${a.name}=`;
    for (let j = i + 2; j < m.length; j += 2) {
      const b = m[j];
      if (b.omit || bits(b) !== bits(a) || neg(b) !== neg(a)) continue;
      b.omit = true;
      text += `${b.name}=`;
    }
    parts.push(text + (a.name[0] === "s" ? snum(a.val) : unum(a.val)));
  }
  if (!tnumIsUnknown(r.varOff)) parts.push(`var_off=${tnumStr(r.varOff)}`);
  return `scalar(${parts.join(",")})`;
}

export interface StateNames {
  mapName?(map: number): string | undefined;
  mapSizes?(map: number): [number, number] | undefined;
  btfName?(btfId: number): string;
}

/** dynptr_type_str of a CONST_PTR_TO_DYNPTR's type flag. */
const DYNPTR_NAMES = new Map([
  [DYNPTR_TYPE_LOCAL, "local"],
  [DYNPTR_TYPE_RINGBUF, "ringbuf"],
  [DYNPTR_TYPE_SKB, "skb"],
  [DYNPTR_TYPE_XDP, "xdp"],
]);

/** One register as print_reg_state shows it. */
export function regStr(r: RegState, names: StateNames = {}): string {
  if (r.type === SCALAR_VALUE) return scalarStr(r);
  const bt = baseType(r.type);
  if (bt === PTR_TO_STACK && tnumIsConst(r.varOff)) return `fp${r.off + Number(BigInt.asIntN(64, r.varOff.value))}`;
  let s = regTypeStr(r.type);
  if (bt === PTR_TO_BTF_ID) s += names.btfName?.(r.btfId) ?? `${r.btfId}`;
  const f: string[] = [];
  if (r.id) f.push(`id=${r.id}`);
  if (r.refObjId) f.push(`ref_obj_id=${r.refObjId}`);
  if (bt === PTR_TO_BTF_ID && r.type & NON_OWN_REF) f.push("non_own_ref");
  if (bt === CONST_PTR_TO_MAP || bt === PTR_TO_MAP_VALUE || bt === PTR_TO_MAP_KEY) {
    const name = names.mapName?.(r.map);
    if (name) f.push(`map=${name}`);
    const sizes = names.mapSizes?.(r.map);
    if (sizes) f.push(`ks=${sizes[0]}`, `vs=${sizes[1]}`);
  }
  if (r.off) f.push(`off=${r.off}`);
  if (bt === PTR_TO_MEM) f.push(`sz=${r.memSize}`);
  if (bt === PTR_TO_PACKET || bt === PTR_TO_PACKET_META) f.push(`r=${r.memSize}`);
  if (bt === CONST_PTR_TO_DYNPTR) f.push(`type=${DYNPTR_NAMES.get(r.type & DYNPTR_TYPE_FLAG_MASK) ?? "<invalid>"}`);
  if (!tnumIsConst(r.varOff)) {
    const v = scalarStr(r);
    f.push(v.slice("scalar(".length, -1));
  }
  return `${s}(${f.join(",")})`;
}

/**
 * Spaces before the "; state" comment (vlog_alignment): `pos` counts the printed instruction and
 * its newline, which the comment replaces, so the ';' lands in column 38 for short lines.
 */
export function vlogAlignment(pos: number): number {
  const want = Math.max(pos + 4, 40);
  return Math.ceil(want / 8) * 8 - pos - 1;
}
