/**
 * A deliberately plain reference evaluator for the property tests: 64-bit registers as
 * BigInt, semantics written straight from RFC 9669, one 512-byte stack. It knows nothing of
 * the VM's halves, templates or tiers. Supports straight-line and jumping programs without
 * bpf-to-bpf calls; `call N` invokes `onCall(N, regs, stack)`.
 */
import type { Insn } from "../../src/isa/insn.js";

const M64 = (1n << 64n) - 1n;
const M32 = 0xffffffffn;
const u64 = (v: bigint) => v & M64;
const s64 = (v: bigint) => BigInt.asIntN(64, v);
const u32 = (v: bigint) => v & M32;
const s32 = (v: bigint) => BigInt.asIntN(32, v);

export const REF_STACK_BASE = 0x1000000n;
const STACK_SIZE = 512;

export interface RefState {
  regs: bigint[];
  stack: Uint8Array;
}

function sx(v: bigint, bits: number): bigint {
  return u64(BigInt.asIntN(bits, v));
}

function swap(v: bigint, bytes: number): bigint {
  let r = 0n;
  for (let i = 0; i < bytes; i++) r = (r << 8n) | ((v >> BigInt(8 * i)) & 0xffn);
  return r;
}

function alu(op: number, a: bigint, b: bigint, off: number, is64: boolean, imm: number, x: boolean): bigint {
  const bits = is64 ? 64 : 32;
  const mask = is64 ? M64 : M32;
  const sgn = is64 ? s64 : s32;
  const A = a & mask;
  const B = b & mask;
  switch (op) {
    case 0x00:
      return (A + B) & mask;
    case 0x10:
      return (A - B) & mask;
    case 0x20:
      return (A * B) & mask;
    case 0x30:
      if (B === 0n) return 0n;
      return off === 1 ? BigInt.asUintN(bits, sgn(A) / sgn(B)) : A / B;
    case 0x90:
      if (B === 0n) return A;
      return off === 1 ? BigInt.asUintN(bits, sgn(A) % sgn(B)) : A % B;
    case 0x40:
      return A | B;
    case 0x50:
      return A & B;
    case 0xa0:
      return A ^ B;
    case 0x60:
      return (A << (B & BigInt(bits - 1))) & mask;
    case 0x70:
      return A >> (B & BigInt(bits - 1));
    case 0xc0:
      return BigInt.asUintN(bits, sgn(A) >> (B & BigInt(bits - 1)));
    case 0x80:
      return BigInt.asUintN(bits, -A);
    case 0xb0:
      if (off === 0) return B;
      return BigInt.asUintN(bits, BigInt.asIntN(off, b));
    case 0xd0: {
      if (is64) return swap(a, imm / 8); // bswap
      if (x) return swap(a, imm / 8); // to big endian
      return imm === 64 ? a : a & ((1n << BigInt(imm)) - 1n);
    }
    default:
      throw new Error(`reference: alu op 0x${op.toString(16)}`);
  }
}

function cond(op: number, a: bigint, b: bigint, is64: boolean): boolean {
  const A = is64 ? u64(a) : u32(a);
  const B = is64 ? u64(b) : u32(b);
  const SA = is64 ? s64(a) : s32(a);
  const SB = is64 ? s64(b) : s32(b);
  switch (op) {
    case 0x10:
      return A === B;
    case 0x50:
      return A !== B;
    case 0x20:
      return A > B;
    case 0x30:
      return A >= B;
    case 0xa0:
      return A < B;
    case 0xb0:
      return A <= B;
    case 0x60:
      return SA > SB;
    case 0x70:
      return SA >= SB;
    case 0xc0:
      return SA < SB;
    case 0xd0:
      return SA <= SB;
    case 0x40:
      return (A & B) !== 0n;
    default:
      throw new Error(`reference: jmp op 0x${op.toString(16)}`);
  }
}

const SIZES: Record<number, number> = { 0: 4, 8: 2, 16: 1, 24: 8 };

export function refEval(
  insns: readonly Insn[],
  onCall: (id: number, st: RefState) => void = () => {},
  maxSteps = 100_000,
): RefState {
  const regs = new Array<bigint>(11).fill(0n);
  regs[10] = REF_STACK_BASE + BigInt(STACK_SIZE);
  const stack = new Uint8Array(STACK_SIZE);
  const st: RefState = { regs, stack };
  const at = (addr: bigint, size: number): number => {
    const o = Number(addr - REF_STACK_BASE);
    if (o < 0 || o + size > STACK_SIZE) throw new Error(`reference: access outside the stack at ${addr}`);
    return o;
  };
  const load = (addr: bigint, size: number): bigint => {
    const o = at(addr, size);
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(stack[o + i]);
    return v;
  };
  const store = (addr: bigint, size: number, v: bigint): void => {
    const o = at(addr, size);
    for (let i = 0; i < size; i++) stack[o + i] = Number((v >> BigInt(8 * i)) & 0xffn);
  };
  let pc = 0;
  for (let steps = 0; steps < maxSteps; steps++) {
    const s = insns[pc++];
    const cls = s.code & 7;
    const op = s.code & 0xf0;
    const x = (s.code & 0x08) !== 0;
    const imm64 = u64(BigInt(s.imm));
    switch (cls) {
      case 0x07:
      case 0x04: {
        const is64 = cls === 0x07;
        const src = x ? regs[s.src] : imm64;
        const r = alu(op, regs[s.dst], src, s.off, is64, s.imm, x);
        regs[s.dst] = is64 || op === 0xd0 ? u64(r) : u32(r);
        break;
      }
      case 0x05:
      case 0x06: {
        if (op === 0x90) return st;
        if (op === 0x80) {
          onCall(s.imm, st);
          break;
        }
        if (op === 0x00) {
          pc += cls === 0x06 ? s.imm : s.off;
          break;
        }
        if (cond(op, regs[s.dst], x ? regs[s.src] : imm64, cls === 0x05)) pc += s.off;
        break;
      }
      case 0x00:
        regs[s.dst] = u64(BigInt(s.imm >>> 0) | (BigInt(insns[pc].imm >>> 0) << 32n));
        pc++;
        break;
      case 0x01: {
        const size = SIZES[s.code & 0x18];
        const v = load(regs[s.src] + BigInt(s.off), size);
        regs[s.dst] = (s.code & 0xe0) === 0x80 ? sx(v, size * 8) : v;
        break;
      }
      case 0x02:
        store(regs[s.dst] + BigInt(s.off), SIZES[s.code & 0x18], imm64);
        break;
      case 0x03: {
        const size = SIZES[s.code & 0x18];
        const addr = regs[s.dst] + BigInt(s.off);
        if ((s.code & 0xe0) === 0x60) {
          store(addr, size, regs[s.src]);
          break;
        }
        const mask = size === 8 ? M64 : M32;
        const old = load(addr, size);
        const v = regs[s.src] & mask;
        const fetch = (s.imm & 1) !== 0;
        switch (s.imm & ~1) {
          case 0x00:
            store(addr, size, (old + v) & mask);
            break;
          case 0x40:
            store(addr, size, old | v);
            break;
          case 0x50:
            store(addr, size, old & v);
            break;
          case 0xa0:
            store(addr, size, old ^ v);
            break;
          case 0xe0:
            store(addr, size, v);
            break;
          case 0xf0:
            if ((regs[0] & mask) === old) store(addr, size, v);
            regs[0] = old;
            break;
          default:
            throw new Error(`reference: atomic 0x${s.imm.toString(16)}`);
        }
        if (fetch && (s.imm & ~1) !== 0xf0) regs[s.src] = old;
        break;
      }
      default:
        throw new Error(`reference: class ${cls}`);
    }
  }
  throw new Error("reference: step limit");
}
