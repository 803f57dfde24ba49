import { BpfError, EINVAL } from "../uapi/errno.js";
import { BPF_DW, BPF_IMM, BPF_INSN_SIZE, BPF_LD } from "./opcodes.js";

/**
 * One 8-byte instruction slot, as `struct bpf_insn`. A 64-bit immediate load (ld_imm64)
 * occupies two slots, exactly as in the kernel: the second slot has code 0 and carries the
 * upper 32 bits of the constant in its imm. Programs are arrays of slots, so instruction
 * indices, jump offsets and relocation offsets mean what they mean in the kernel.
 */
export interface Insn {
  code: number; // u8
  dst: number; // u4
  src: number; // u4
  off: number; // s16
  imm: number; // s32
}

export const LD_IMM64_CODE = BPF_LD | BPF_IMM | BPF_DW;

export function isLdImm64(insn: Insn): boolean {
  return insn.code === LD_IMM64_CODE;
}

/** Decode `bytes` (a multiple of 8) into slots; little-endian unless told otherwise. */
export function decodeInsns(bytes: Uint8Array, littleEndian = true): Insn[] {
  if (bytes.length % BPF_INSN_SIZE !== 0) {
    throw new BpfError(EINVAL, `program size ${bytes.length} is not a multiple of ${BPF_INSN_SIZE}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Insn[] = new Array(bytes.length / BPF_INSN_SIZE);
  for (let i = 0; i < out.length; i++) {
    const o = i * BPF_INSN_SIZE;
    const regs = dv.getUint8(o + 1);
    out[i] = {
      code: dv.getUint8(o),
      dst: littleEndian ? regs & 0x0f : regs >> 4,
      src: littleEndian ? regs >> 4 : regs & 0x0f,
      off: dv.getInt16(o + 2, littleEndian),
      imm: dv.getInt32(o + 4, littleEndian),
    };
  }
  return out;
}

/** Encode slots back into bytes. */
export function encodeInsns(insns: readonly Insn[], littleEndian = true): Uint8Array {
  const bytes = new Uint8Array(insns.length * BPF_INSN_SIZE);
  const dv = new DataView(bytes.buffer);
  insns.forEach((insn, i) => {
    const o = i * BPF_INSN_SIZE;
    dv.setUint8(o, insn.code & 0xff);
    dv.setUint8(
      o + 1,
      littleEndian ? (insn.dst & 0xf) | ((insn.src & 0xf) << 4) : ((insn.dst & 0xf) << 4) | (insn.src & 0xf),
    );
    dv.setInt16(o + 2, insn.off, littleEndian);
    dv.setInt32(o + 4, insn.imm | 0, littleEndian);
  });
  return bytes;
}

export function insn(code: number, dst = 0, src = 0, off = 0, imm = 0): Insn {
  return { code, dst, src, off, imm: imm | 0 };
}

/** The two slots of `ld_imm64 dst, value` with a pseudo source `src`. */
export function ldImm64(dst: number, value: bigint, src = 0): [Insn, Insn] {
  const v = BigInt.asUintN(64, value);
  return [
    { code: LD_IMM64_CODE, dst, src, off: 0, imm: Number(BigInt.asIntN(32, v)) },
    { code: 0, dst: 0, src: 0, off: 0, imm: Number(BigInt.asIntN(32, v >> 32n)) },
  ];
}
