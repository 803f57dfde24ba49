import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { assemble } from "../../src/isa/asm.js";
import { decodeInsn, decodeProgram } from "../../src/isa/decode.js";
import { disassemble } from "../../src/isa/disasm.js";
import type { Insn } from "../../src/isa/insn.js";
import { bpfOpcodeInInsntable, validateInsnEncoding } from "../../src/isa/validate.js";
import { BpfError, EINVAL } from "../../src/uapi/errno.js";

const s = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });
const MOV_R0_0 = s(0xb7);
const EXIT = s(0x95);

/** Assert `fn` throws BpfError(EINVAL) whose message is exactly `message`. */
function rejects(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof BpfError, `a BpfError, got ${e}`);
    assert.equal(e.errno, EINVAL);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test("decode rejects legacy packet access (LD_ABS and LD_IND) naming the instruction", () => {
  rejects(
    () => decodeInsn([MOV_R0_0, s(0x20, 0, 0, 0, 4), EXIT], 1),
    "insn #1: legacy packet access (LD_ABS/LD_IND) is not supported",
  );
  rejects(() => decodeInsn([s(0x48, 0, 1)], 0), "insn #0: legacy packet access (LD_ABS/LD_IND) is not supported");
  rejects(
    () => decodeProgram([MOV_R0_0, MOV_R0_0, s(0x30), EXIT]),
    "insn #2: legacy packet access (LD_ABS/LD_IND) is not supported",
  );
  rejects(
    () => assemble("r0 = *(u32 *)skb[4]", { syntax: "llvm" }),
    /^line 1: .*legacy packet access \(LD_ABS\/LD_IND\) is not supported$/,
  );
  const e = (() => {
    try {
      decodeInsn([MOV_R0_0, s(0x20)], 1);
    } catch (err) {
      return err as BpfError;
    }
  })();
  assert.equal(e?.context.insn, 1);
});

test("decode rejects registers above r10 in any register field it uses", () => {
  rejects(() => decodeInsn([s(0xbf, 11, 1)], 0), "insn #0: R11 is invalid");
  rejects(() => decodeInsn([s(0xbf, 1, 12)], 0), "insn #0: R12 is invalid");
  rejects(() => decodeInsn([s(0x79, 0, 15, 0)], 0), "insn #0: R15 is invalid");
  rejects(() => decodeInsn([s(0x15, 11, 0, 0, 1)], 0), "insn #0: R11 is invalid");
  rejects(() => decodeInsn([s(0x8d, 13)], 0), "insn #0: R13 is invalid");
  rejects(() => decodeInsn([s(0x18, 11), s(0)], 0), "insn #0: R11 is invalid");
});

test("decode rejects reserved fields where the kernel's verifier does, with its message", () => {
  const cases: [Insn[], string][] = [
    [[s(0x07, 1, 2, 0, 1)], "BPF_ALU uses reserved fields"], // K with src
    [[s(0x0f, 1, 2, 0, 1)], "BPF_ALU uses reserved fields"], // X with imm
    [[s(0x0f, 1, 2, 1)], "BPF_ALU uses reserved fields"], // off 1 only for div/mod
    [[s(0x7f, 0, 0, -1, -1)], "BPF_ALU uses reserved fields"], // the selftests' "junk insn5"
    [[s(0x87, 1, 0, 0, 1)], "BPF_NEG uses reserved fields"],
    [[s(0x8f, 1, 2)], "BPF_NEG uses reserved fields"],
    [[s(0xd4, 1, 0, 0, 8)], "BPF_END uses reserved fields"],
    [[s(0xdf, 1, 0, 0, 16)], "BPF_END uses reserved fields"], // ALU64 END is only TO_LE (bswap)
    [[s(0xbc, 1, 2, 32)], "BPF_MOV uses reserved fields"], // movsx32 of 32 bits
    [[s(0xbf, 1, 2, 0, 1)], "BPF_MOV uses reserved fields"],
    [[s(0xb7, 1, 2)], "BPF_MOV uses reserved fields"],
    [[s(0xbf, 1, 2, 1, 2)], "addr_space_cast insn can only convert between address space 1 and 0"],
    [[s(0xe4, 1)], "invalid BPF_ALU opcode e0"],
    [[s(0x15, 1, 2, 0, 1)], "BPF_JMP/JMP32 uses reserved fields"],
    [[s(0x1d, 1, 2, 0, 1)], "BPF_JMP/JMP32 uses reserved fields"],
    [[s(0xf5, 1)], "invalid BPF_JMP/JMP32 opcode f0"],
    [[s(0x05, 0, 0, 1, 1)], "BPF_JA uses reserved fields"],
    [[s(0x06, 0, 0, 1, 1)], "BPF_JA uses reserved fields"],
    [[s(0x05, 1)], "BPF_JA uses reserved fields"],
    [[s(0x85, 0, 0, 1, 1)], "BPF_CALL uses reserved fields"], // helper call with off
    [[s(0x85, 0, 3, 0, 1)], "BPF_CALL uses reserved fields"],
    [[s(0x85, 1, 0, 0, 1)], "BPF_CALL uses reserved fields"],
    [[s(0x86, 0, 0, 0, 1)], "BPF_CALL uses reserved fields"], // JMP32 call
    [[s(0x8d, 1, 0, 0, 1)], "BPF_CALL uses reserved fields"],
    [[s(0x95, 1)], "BPF_EXIT uses reserved fields"],
    [[s(0x96)], "BPF_EXIT uses reserved fields"],
    [[s(0x95, 0, 0, 1)], "BPF_EXIT uses reserved fields"], // RFC 9669 reserves off; see validate below
    [[s(0xe5, 1, 0, 1)], "invalid may_goto imm"],
    [[s(0x61, 0, 1, 0, 1)], "BPF_LDX uses reserved fields"],
    [[s(0x99, 0, 1)], "BPF_LDX uses reserved fields"], // MEMSX DW
    [[s(0x62, 1, 2, 0, 1)], "BPF_ST uses reserved fields"],
    [[s(0x63, 1, 2, 0, 1)], "BPF_STX uses reserved fields"],
    [[s(0xdb, 1, 2, 0, 0x02)], "BPF_ATOMIC uses invalid atomic opcode 02"],
    [[s(0xdb, 1, 2, 0, 0xe0)], "BPF_ATOMIC uses invalid atomic opcode e0"], // xchg without FETCH
    [[s(0xd3, 1, 2, 0, 0x00)], "invalid atomic operand size"],
    [[s(0x18, 1)], "invalid bpf_ld_imm64 insn"], // missing second slot
    [[s(0x18, 1), s(0x95)], "invalid bpf_ld_imm64 insn"],
    [[s(0x18, 1), s(0, 1)], "invalid bpf_ld_imm64 insn"],
    [[s(0x18, 1, 7), s(0)], "unrecognized bpf_ld_imm64 insn"],
    [[s(0x18, 1, 0, 1), s(0)], "BPF_LD_IMM64 uses reserved fields"],
    [[s(0x00, 1)], "invalid BPF_LD_IMM insn"],
    [[s(0x60)], "invalid BPF_LD mode"],
  ];
  for (const [slots, msg] of cases) rejects(() => decodeInsn(slots, 0), `insn #0: ${msg}`);
});

test("validateInsnEncoding makes the kernel's checks, in the kernel's order", () => {
  const ok: Insn[] = [MOV_R0_0, s(0x18, 1, 2, 0, 3), s(0, 0, 0, 0, 8), s(0x67, 1, 0, 0, 63), EXIT];
  validateInsnEncoding(ok);
  // The kernel ignores an exit's off, so its checks accept what decodeInsn (RFC 9669) rejects.
  validateInsnEncoding([MOV_R0_0, s(0x95, 0, 0, 5)]);
  rejects(() => validateInsnEncoding([MOV_R0_0, s(0x95, 1, 0, 5)]), "insn #1: BPF_EXIT uses reserved fields");
  // bpf_opcode_in_insntable() runs first, so opcodes unknown to the kernel say so.
  rejects(() => validateInsnEncoding([s(0x00), EXIT]), "insn #0: unknown opcode 00");
  rejects(() => validateInsnEncoding([s(0xff), EXIT]), "insn #0: unknown opcode ff");
  rejects(() => validateInsnEncoding([MOV_R0_0, s(0x8d, 1), EXIT]), "insn #1: unknown opcode 8d"); // callx
  rejects(() => validateInsnEncoding([s(0x86), EXIT]), "insn #0: unknown opcode 86");
  // resolve_pseudo_ldimm64(): LDX before anything else; ld_imm64 shape and pseudo sources.
  rejects(() => validateInsnEncoding([s(0x61, 0, 1, 0, 1), EXIT]), "insn #0: BPF_LDX uses reserved fields");
  rejects(() => validateInsnEncoding([MOV_R0_0, s(0x18, 1)]), "insn #1: invalid bpf_ld_imm64 insn");
  rejects(
    () => validateInsnEncoding([s(0x18, 1, 1, 0, 3), s(0, 0, 0, 0, 8), EXIT]),
    "insn #0: unrecognized bpf_ld_imm64 insn",
  );
  rejects(
    () => validateInsnEncoding([s(0x18, 1, 5, 0, 3), s(0, 0, 0, 0, 8), EXIT]),
    "insn #0: unrecognized bpf_ld_imm64 insn",
  );
  rejects(() => validateInsnEncoding([s(0x18, 1, 9), s(0), EXIT]), "insn #0: unrecognized bpf_ld_imm64 insn");
  // do_check()'s reserved fields and check_alu_op()'s constant checks.
  rejects(() => validateInsnEncoding([s(0x7f, 0, 0, -1, -1), EXIT]), "insn #0: BPF_ALU uses reserved fields");
  rejects(() => validateInsnEncoding([s(0x37, 1, 0, 0, 0), EXIT]), "insn #0: div by zero");
  rejects(() => validateInsnEncoding([s(0x94, 1, 0, 1, 0), EXIT]), "insn #0: div by zero");
  rejects(() => validateInsnEncoding([s(0x67, 1, 0, 0, 64), EXIT]), "insn #0: invalid shift 64");
  rejects(() => validateInsnEncoding([s(0x64, 1, 0, 0, 32), EXIT]), "insn #0: invalid shift 32");
  rejects(() => validateInsnEncoding([s(0xc7, 1, 0, 0, -1), EXIT]), "insn #0: invalid shift -1");
  rejects(
    () => validateInsnEncoding([s(0x20, 0, 0, 0, 4), EXIT]),
    "insn #0: legacy packet access (LD_ABS/LD_IND) is not supported",
  );
  assert.equal(bpfOpcodeInInsntable(0x20), true);
  assert.equal(bpfOpcodeInInsntable(0x8d), false);
  assert.equal(bpfOpcodeInInsntable(0xd7), true);
  assert.equal(bpfOpcodeInInsntable(0xdf), false);
});

// The conformance vectors sit beside the repository (tests run from its root).
const DIR = "../shared/conformance";
const skip = existsSync(DIR) ? false : `no conformance vectors in ${DIR}`;
test("of the conformance vectors, the kernel's encoding checks reject exactly callx and out-of-range constant shifts", {
  skip,
}, () => {
  const rejected = new Map<string, string>();
  for (const f of readdirSync(DIR).filter((x) => x.endsWith(".data"))) {
    const asm = /^-- asm\n([\s\S]*?)(?=^-- |(?![\s\S]))/m.exec(readFileSync(`${DIR}/${f}`, "utf8"))![1]!;
    try {
      validateInsnEncoding(assemble(asm));
    } catch (e) {
      rejected.set(f, (e as Error).message);
    }
  }
  for (const [f, msg] of rejected)
    assert.match(msg, f === "callx.data" ? /unknown opcode 8d$/ : /invalid shift -?\d+$/, f);
  assert.ok(rejected.has("callx.data"));
  assert.ok(rejected.has("lsh64-imm-high.data"));
  assert.ok(rejected.size <= 12, [...rejected.keys()].join(" "));
});

test("assembler errors are BpfError(EINVAL) naming the line number and its text", () => {
  const cases: [string, RegExp][] = [
    ["mov %r0, 1\nfrob %r1, 2", /^line 2: 'frob %r1, 2': unknown mnemonic 'frob'$/],
    ["mov %r11, 1", /^line 1: 'mov %r11, 1': invalid register '%r11': BPF has registers r0..r10$/],
    ["mov %rx, 1", /^line 1: .*invalid register '%rx'$/],
    ["mov r1, 1", /^line 1: .*invalid register 'r1'$/],
    ["mov32 %r0, 0x100000000", /^line 1: .*immediate 0x100000000 out of range for 32 bits$/],
    ["mov %r0, -2147483649", /out of range for 32 bits$/],
    ["ldxw %r0, [%r1+40000]", /^line 1: .*offset \+40000 out of range for 16 bits$/],
    ["stxw [%r1], %r2\nstxw %r1, %r2", /^line 2: .*invalid memory operand '%r1'$/],
    ["lddw %r0, 0x10000000000000000", /out of range for 64 bits$/],
    ["ja nowhere\nexit", /^line 1: 'ja nowhere': undefined label 'nowhere'$/],
    ["call local f\nexit", /undefined label 'f'$/],
    ["a:\na:\nexit", /^line 2: 'a:': duplicate label 'a'$/],
    ["add %r1", /'add' takes 2 operands, got 1$/],
    ["exit %r0", /'exit' takes 0 operands, got 1$/],
    ["lock frob [%r1], %r2", /unknown atomic operation 'frob'$/],
    ["call bogus 1", /invalid call mode 'bogus'$/],
    ["jeq %r1, 1, @x", /invalid jump target '@x'$/],
    ["ldxsdw %r0, [%r1]", /ldxsdw does not exist/],
    ["lddw %r1, map_frob(1)", /unknown ld_imm64 source 'map_frob'$/],
  ];
  for (const [text, re] of cases) rejects(() => assemble(text), re);
  // A jump too far for the 16-bit offset.
  const far = `ja end\n${"mov %r0, 0\n".repeat(40000)}end:\nexit`;
  rejects(() => assemble(far), /^line 1: 'ja end': jump distance 40000 to 'end' does not fit in 16 bits$/);
  assert.equal(assemble(`ja32 end\n${"mov %r0, 0\n".repeat(40000)}end:\nexit`)[0]!.imm, 40000);
});

test("llvm-syntax assembler errors", () => {
  const cases: [string, RegExp][] = [
    ["w1 += r2", /^line 1: 'w1 \+= r2': register 'r2' in a 32-bit operation: use w2$/],
    ["r1 += w2", /register 'w2' in a 64-bit operation: use r2$/],
    ["r11 = 1", /invalid register 'r11': BPF has registers r0..r10$/],
    ["r1 = 0x1ffffffffffffffff ll", /out of range for 64 bits$/],
    ["r1 = 0x100000000", /out of range for 32 bits$/],
    ["if r1 ?? 3 goto +1", /cannot parse 'if r1 \?\? 3 goto \+1'$/],
    ["goto nowhere", /undefined label 'nowhere'$/],
    ["r1 = be16 r2", /byte swap works in place/],
    ["r0 = cmpxchg_64(r1 + 0, r3, r2)", /cmpxchg compares with and returns into r0$/],
    ["r0 = *(s64 *)(r1 + 0)", /no sign-extending 64-bit load$/],
  ];
  for (const [text, re] of cases) rejects(() => assemble(text, { syntax: "llvm" }), re);
});

test("disassemble rejects what decode rejects, naming the instruction", () => {
  rejects(
    () => disassemble([MOV_R0_0, s(0x20), EXIT]),
    "insn #1: legacy packet access (LD_ABS/LD_IND) is not supported",
  );
  rejects(() => disassemble([MOV_R0_0, s(0x18, 1)]), "insn #1: invalid bpf_ld_imm64 insn");
});
