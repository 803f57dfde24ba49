/** The eBPF instruction set layer: slots, semantic decode/encode, kernel encoding checks, assembler, disassembler. */
export { type AssembleOptions, assemble, assembleDecoded, SYNTAXES } from "./asm.js";
export {
  type AluOp,
  type AtomicOp,
  BPF_ADDR_SPACE_CAST,
  BPF_JCOND,
  BPF_MAY_GOTO,
  type DecodedInsn,
  decodeInsn,
  decodeProgram,
  encodeInsn,
  insnSlots,
  type JmpOp,
  ldImm64Decoded,
  type MemSize,
  type Operand,
} from "./decode.js";
export { branchTarget, type DisassembleOptions, disassemble, formatInsn } from "./disasm.js";
export * from "./insn.js";
export * from "./opcodes.js";
export type { SyntaxName } from "./syntax.js";
export { bpfOpcodeInInsntable, validateInsnEncoding } from "./validate.js";
