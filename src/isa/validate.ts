/**
 * The kernel's encoding checks, in the order the kernel makes them: first the whole-program
 * pass of resolve_pseudo_ldimm64() (LDX reserved fields, ld_imm64 shape and pseudo sources,
 * bpf_opcode_in_insntable()), then the per-instruction reserved-field checks of do_check()'s
 * check_alu_op()/check_cond_jmp_op()/check_atomic() and friends. Semantic checks that need
 * register state belong to the verifier; this is only about how instructions are spelled.
 */
import { BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_IDX } from "../uapi/bpf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import { BPF_JCOND, decodeInsn, insnSlots } from "./decode.js";
import { type Insn, LD_IMM64_CODE } from "./insn.js";
import {
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_B,
  BPF_CALL,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_H,
  BPF_IND,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MODE,
  BPF_NEG,
  BPF_ST,
  BPF_STX,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_W,
  BPF_X,
} from "./opcodes.js";

/** kernel/bpf/core.c public_insntable: the opcodes the kernel knows at all. */
const INSNTABLE: ReadonlySet<number> = (() => {
  const t = new Set<number>();
  const aluOps = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0];
  for (const cls of [BPF_ALU, BPF_ALU64]) {
    for (const op of aluOps) for (const src of [BPF_K, BPF_X]) t.add(cls | op | src);
    t.add(cls | BPF_NEG);
  }
  t.add(BPF_ALU | BPF_END | BPF_TO_BE);
  t.add(BPF_ALU | BPF_END | BPF_TO_LE);
  t.add(BPF_ALU64 | BPF_END | BPF_TO_LE);
  const jmpOps = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0];
  for (const cls of [BPF_JMP, BPF_JMP32]) {
    for (const op of jmpOps) for (const src of [BPF_K, BPF_X]) t.add(cls | op | src);
    t.add(cls | BPF_JA);
  }
  t.add(BPF_JMP | BPF_CALL);
  t.add(BPF_JMP | BPF_EXIT);
  t.add(BPF_JMP | BPF_JCOND);
  for (const size of [BPF_B, BPF_H, BPF_W, BPF_DW]) {
    t.add(BPF_STX | BPF_MEM | size);
    t.add(BPF_ST | BPF_MEM | size);
    t.add(BPF_LDX | BPF_MEM | size);
  }
  for (const size of [BPF_B, BPF_H, BPF_W]) {
    t.add(BPF_LDX | BPF_MEMSX | size);
    // UAPI exposed, but rewritten: classic BPF packet access.
    t.add(BPF_LD | BPF_ABS | size);
    t.add(BPF_LD | BPF_IND | size);
  }
  t.add(BPF_STX | BPF_ATOMIC | BPF_W);
  t.add(BPF_STX | BPF_ATOMIC | BPF_DW);
  t.add(LD_IMM64_CODE);
  return t;
})();

/** bpf_opcode_in_insntable(): is `code` an opcode the kernel knows? */
export function bpfOpcodeInInsntable(code: number): boolean {
  return INSNTABLE.has(code);
}

function fail(i: number, msg: string): never {
  throw new BpfError(EINVAL, `insn #${i}: ${msg}`, { insn: i });
}

/**
 * Check every instruction's encoding as the kernel does before verification proper; throws
 * the first problem as BpfError(EINVAL) "insn #N: <the kernel's message>".
 */
export function validateInsnEncoding(insns: readonly Insn[]): void {
  // Pass 1: resolve_pseudo_ldimm64().
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i]!;
    const mode = BPF_MODE(insn.code);
    if ((insn.code & 0x07) === BPF_LDX && ((mode !== BPF_MEM && mode !== BPF_MEMSX) || insn.imm !== 0)) {
      fail(i, "BPF_LDX uses reserved fields");
    }
    if (insn.code === LD_IMM64_CODE) {
      const next = insns[i + 1];
      if (next === undefined || next.code !== 0 || next.dst !== 0 || next.src !== 0 || next.off !== 0) {
        fail(i, "invalid bpf_ld_imm64 insn");
      }
      const src = insn.src;
      // MAP_FD and MAP_IDX name a whole map: the second slot carries no offset.
      const mapOnly = src === BPF_PSEUDO_MAP_FD || src === BPF_PSEUDO_MAP_IDX;
      if (src > 6 || (mapOnly && next.imm !== 0)) fail(i, "unrecognized bpf_ld_imm64 insn");
      i++;
      continue;
    }
    if (!bpfOpcodeInInsntable(insn.code)) fail(i, `unknown opcode ${insn.code.toString(16).padStart(2, "0")}`);
  }
  // Pass 2: do_check()'s per-class reserved-field checks (decodeInsn makes them) plus the
  // immediate checks check_alu_op() makes on constant divisors and shift amounts.
  for (let i = 0; i < insns.length; ) {
    // The kernel does not look at an exit's off (decodeInsn, following RFC 9669, does).
    if (insns[i]!.code === (BPF_JMP | BPF_EXIT) && insns[i]!.off !== 0) {
      const { dst, src, imm } = insns[i]!;
      if (dst !== 0 || src !== 0 || imm !== 0) fail(i, "BPF_EXIT uses reserved fields");
      i++;
      continue;
    }
    const d = decodeInsn(insns, i);
    if (d.kind === "alu" && "imm" in d.src) {
      const { op, alu64 } = d;
      const imm = d.src.imm;
      if ((op === "div" || op === "sdiv" || op === "mod" || op === "smod") && imm === 0) fail(i, "div by zero");
      if ((op === "lsh" || op === "rsh" || op === "arsh") && (imm < 0 || imm >= (alu64 ? 64 : 32))) {
        fail(i, `invalid shift ${imm}`);
      }
    }
    i += insnSlots(d);
  }
}
