import { LD_IMM64_CODE } from "../isa/insn.js";
import {
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_DIV,
  BPF_END,
  BPF_JA,
  BPF_JEQ,
  BPF_JMP,
  BPF_JMP32,
  BPF_JNE,
  BPF_K,
  BPF_LDX,
  BPF_LSH,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_OR,
  BPF_RSH,
  BPF_STX,
  BPF_SUB,
  BPF_X,
  BPF_XOR,
} from "../isa/opcodes.js";
import { BPF_PSEUDO_CALL } from "../uapi/bpf.js";
import { BPF_LOAD_ACQ, BPF_STORE_REL, emitInsn, type Operands } from "./codegen.js";
import { CALL, CALLX, EXIT, type Executor, type VmProgram } from "./program.js";
import { RT_PARAMS, type Runtime, rtArgs } from "./runtime.js";

/**
 * The interpreter tier: one dense `switch` over a pre-decoded operation number, its cases
 * generated from the shared templates of codegen.ts with registers in an Int32Array
 * (R[2k], R[2k+1] = lo, hi of rk).
 *
 * At load each slot becomes one int32 word: op | dst << 8 | src << 12 | off << 16, where `op`
 * numbers an (opcode, variant) pair: the variants selected by off or imm (signed division,
 * movsx, byte-swap width, atomic operation) get cases of their own, so no case decodes more
 * than the fields it uses and none switches again. imm stays in its own column.
 *
 * Instructions executed are counted from positions, not per instruction: at any point
 * executed = nb + pc, where nb is corrected at every transfer of control (a taken jump to pc
 * + off adds -off) and at each ld_imm64 (two slots, one instruction). The budget is checked
 * there too, on taken jumps, calls and exit: straight-line code cannot run away.
 */

/** ALU64 lsh/rsh/arsh by a constant. */
function shiftK(code: number): boolean {
  const op = code & 0xf0;
  return (code & 0x0f) === (BPF_ALU64 | BPF_K) && (op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH);
}

/** Which field selects the semantics of an opcode, and its valid values. */
function variants(code: number): { field: "off" | "imm"; values: number[] } | null {
  const cls = code & 7;
  const op = code & 0xf0;
  if (cls === BPF_ALU || cls === BPF_ALU64) {
    if (op === BPF_DIV || op === BPF_MOD) return { field: "off", values: [0, 1] };
    // mov by a constant has only off 0 (loading rejects others): no variants.
    if (op === BPF_MOV) return code & BPF_X ? { field: "off", values: [0, 8, 16, 32] } : null;
    if (op === BPF_END) return { field: "imm", values: [16, 32, 64] };
  }
  if (cls === BPF_STX && (code & 0xe0) === BPF_ATOMIC) {
    return {
      field: "imm",
      values: [0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1, BPF_LOAD_ACQ, BPF_STORE_REL],
    };
  }
  return null;
}

const OPS: Operands = {
  dl: "R[d]",
  dh: "R[d + 1]",
  sl: "R[s]",
  sh: "R[s + 1]",
  imm: "imm",
  immHi: "(imm >> 31)",
  off: "off",
  at: "i",
  r0l: "R[0]",
  r0h: "R[1]",
  // pc is already i + 1; the target is pc + field, so executed = nb + pc stays right with nb -= field.
  jump: (field) => `nb -= ${field}; pc += ${field}; ${BUDGET}`,
};

// nb + pc stays an int32 below L (at most 2^30); past it the count moves into acc (a double:
// budgets may exceed 2^31) and L is recomputed, so the common check is one integer compare.
const BUDGET =
  "if (nb + pc > L) { acc += nb; nb = 0; if (acc + pc > B) X.over(P, pc, B); L = Math.min(B - acc, 0x40000000) | 0; }";
const RELOAD = "DV = M.dv; U8 = M.u8; SH = M.shadow;";
const SAVE =
  "if (fp === 7) X.tooDeep(P, i); t0 = fp * 10; for (t2 = 0; t2 < 9; t2++) FR[t0 + t2] = R[12 + t2]; FR[t0 + 9] = pc; fp++; R[20] = STK[base + fp]; R[21] = 0;";
const EXIT_BODY =
  "if (fp === 0) { t0 = acc + nb + pc; if (t0 > B) X.over(P, i, B); IO[0] = R[0]; IO[1] = R[1]; IO[12] = t0; return; } fp--; t0 = fp * 10; for (t2 = 0; t2 < 9; t2++) R[12 + t2] = FR[t0 + t2]; R[21] = 0; t1 = FR[t0 + 9]; nb += pc - t1; pc = t1;";
const ARGS = "R[2], R[3], R[4], R[5], R[6], R[7], R[8], R[9], R[10], R[11]";

/** Variant numbers of the decode-time specialisations (beyond any off / imm value). */
const FUSED_JA = 1 << 20;
const SMALL = FUSED_JA + 1;
const ZERO = FUSED_JA + 2;
/** mov + the opcode of the instruction fused after it. */
const MOV_PAIR = FUSED_JA + 256;
/** ALU K opcodes with a small-constant case: add, sub, mul, or, and, xor, mov in both widths. */
const SMALL_IMM = [BPF_ALU64, BPF_ALU].flatMap((cls) =>
  [BPF_ADD, BPF_SUB, BPF_MUL, BPF_OR, BPF_AND, BPF_XOR, BPF_MOV].map((op) => cls | BPF_K | op),
);
const JA = BPF_JMP | BPF_JA;

interface Op {
  code: number;
  /** The variant value (of off or imm), or undefined if the opcode has none. */
  variant: number | undefined;
  body: string;
}

/** Bodies of a 64-bit shift of dst by the count in `off`, for counts 1-31 and 32-63. */
function shiftBodies(kind: number): [string, string] {
  if (kind === BPF_LSH) {
    return [
      "R[d + 1] = (R[d + 1] << off) | (R[d] >>> (32 - off)); R[d] = R[d] << off;",
      "R[d + 1] = R[d] << off; R[d] = 0;",
    ];
  }
  if (kind === BPF_RSH) {
    return [
      "R[d] = (R[d] >>> off) | (R[d + 1] << (32 - off)); R[d + 1] = R[d + 1] >>> off;",
      "R[d] = R[d + 1] >>> off; R[d + 1] = 0;",
    ];
  }
  return [
    "R[d] = (R[d] >>> off) | (R[d + 1] << (32 - off)); R[d + 1] = R[d + 1] >> off;",
    "R[d] = R[d + 1] >> off; R[d + 1] = R[d + 1] >> 31;",
  ];
}

/**
 * Second instructions fused after `mov dst, src` when they operate on the same dst (the
 * three-address idiom dst = a op b): X forms take their source register from the word's off
 * field, K forms a small constant or a shift count (1-31). The second slot keeps its own word.
 */
const MOV_X = BPF_ALU64 | BPF_X | BPF_MOV;
const PAIR_X = [BPF_ADD, BPF_SUB, BPF_MUL, BPF_AND, BPF_OR, BPF_XOR, BPF_DIV].map((op) => BPF_ALU64 | BPF_X | op);
const PAIR_K = [BPF_ADD, BPF_SUB, BPF_MUL, BPF_AND, BPF_OR, BPF_XOR].map((op) => BPF_ALU64 | BPF_K | op);
const PAIR_SHIFT = [BPF_LSH, BPF_RSH].map((op) => BPF_ALU64 | BPF_K | op);

function pairBody(second: number): string | null {
  const mov = "R[d] = R[s]; R[d + 1] = R[s + 1];";
  let b: string | null;
  if (PAIR_X.includes(second)) b = emitInsn(second, 0, 0, { ...OPS, sl: "R[s2]", sh: "R[s2 + 1]" });
  else if (PAIR_K.includes(second)) b = emitInsn(second, 0, 0, { ...OPS, imm: "off", immHi: "(off >> 31)" });
  else if (PAIR_SHIFT.includes(second)) b = shiftBodies(second & 0xf0)[0];
  else return null;
  return b === null ? null : `${mov} ${b} pc++;`;
}

/** Every valid (opcode, variant) pair and its case body, numbered from 1 (0 is "invalid"). */
function buildOps(): Op[] {
  const ops: Op[] = [{ code: -1, variant: undefined, body: "X.bad(P, i);" }];
  for (let code = 0; code < 256; code++) {
    let body: string | null;
    if (code === LD_IMM64_CODE) {
      body = "R[d] = imm; R[d + 1] = IMM2[i]; pc++; nb--;";
    } else if (code === CALL) {
      // A taken tail call leaves the function as its exit would, with the callee's r0.
      body = `if (SRC_CALL[i] === 1) { ${SAVE} nb -= imm; pc += imm; ${BUDGET} } else { R[0] = X.hcall(FNS[i], P, i, imm, ${ARGS}); R[1] = W[1]; ${RELOAD} if (X.tc !== 0) { X.tc = 0; ${EXIT_BODY} } }`;
    } else if (code === CALLX) {
      body = `t1 = X.funcTarget(P, R[d], R[d + 1]) | 0; if (t1 >= 0) { ${SAVE} nb += pc - t1; pc = t1; ${BUDGET} } else { R[0] = X.hcallx(P, i, R[d], R[d + 1], ${ARGS}); R[1] = W[1]; ${RELOAD} }`;
    } else if (code === EXIT) {
      body = EXIT_BODY;
    } else if (shiftK(code)) {
      // A 64-bit shift by a constant: a case per count class (0, 1-31, 32-63), so none tests
      // the count, which the word carries in place of off (unused by ALU instructions).
      // JavaScript masks shift counts to 5 bits, which is what each class needs.
      const [lo, hi] = shiftBodies(code & 0xf0);
      ops.push({ code, variant: 0, body: "" }, { code, variant: 1, body: lo }, { code, variant: 2, body: hi });
      continue;
    } else {
      const v = variants(code);
      if (v !== null) {
        for (const val of v.values) {
          const b = emitInsn(code, v.field === "off" ? val : 0, v.field === "imm" ? val : 0, OPS);
          if (b !== null) ops.push({ code, variant: val, body: b });
        }
        continue;
      }
      body = emitInsn(code, 0, 0, OPS);
    }
    if (body !== null) ops.push({ code, variant: undefined, body });
  }
  // An ALU instruction followed by `ja` (a loop latch: i++; goto top) runs as one case. Only
  // this slot's word changes: a jump straight to the `ja` still finds it intact. The fused
  // word carries the ja's off (ALU instructions have none), and pc moves past both slots.
  for (const o of [...ops]) {
    const cls = o.code & 7;
    if ((cls === BPF_ALU64 || cls === BPF_ALU) && o.variant === undefined && !cold(o)) {
      ops.push({ code: o.code, variant: FUSED_JA, body: `${o.body} pc += off + 1; nb -= off; ${BUDGET}` });
    }
  }
  // Small constants ride in the word's off field (unused by ALU instructions), saving the
  // load from the imm column in the commonest ALU cases.
  const small: Operands = { ...OPS, imm: "off", immHi: "(off >> 31)" };
  for (const code of SMALL_IMM) {
    const b = emitInsn(code, 0, 0, small);
    if (b !== null) ops.push({ code, variant: SMALL, body: b });
  }
  for (const second of [...PAIR_X, ...PAIR_K, ...PAIR_SHIFT]) {
    const b = pairBody(second);
    if (b !== null) ops.push({ code: MOV_X, variant: MOV_PAIR + second, body: b });
  }
  // Comparison with zero (if (x) / if (!x)), without the imm column.
  for (const code of [BPF_JMP | BPF_JEQ, BPF_JMP | BPF_JNE]) {
    const test = `(R[d] | R[d + 1]) ${code === (BPF_JMP | BPF_JEQ) ? "===" : "!=="} 0`;
    ops.push({ code, variant: ZERO, body: `if (${test}) { ${OPS.jump("off")} }` });
  }
  for (const code of [BPF_JMP32 | BPF_JEQ, BPF_JMP32 | BPF_JNE]) {
    const test = `R[d] ${code === (BPF_JMP32 | BPF_JEQ) ? "===" : "!=="} 0`;
    ops.push({ code, variant: ZERO, body: `if (${test}) { ${OPS.jump("off")} }` });
  }
  if (ops.length > 256) throw new Error("interp: more than 256 operations");
  return ops;
}

/** Only the fields a case uses are decoded, once, at its top. */
function prologue(body: string): string {
  const p: string[] = [];
  if (/\bd\b/.test(body)) p.push("d = (w >> 7) & 30;");
  if (/\bs\b/.test(body)) p.push("s = (w >> 11) & 30;");
  if (/\bs2\b/.test(body)) p.push("s2 = (w >> 15) & 30;");
  if (/\boff\b/.test(body)) p.push("off = w >> 16;");
  if (/\bimm\b/.test(body)) p.push("imm = IMM[i];");
  return p.join(" ");
}

/**
 * Rarely executed operations (atomics, byte swaps, sign-extending loads, signed and 32-bit
 * division) run out of line in a second function: V8 optimizes a function only up to a
 * bytecode size, and the hot loop must stay within it. They touch only registers and memory.
 */
function cold(o: Op): boolean {
  const cls = o.code & 7;
  const op = o.code & 0xf0;
  if (o.code < 0) return true;
  if (cls === BPF_STX && (o.code & 0xe0) === BPF_ATOMIC) return true;
  if (cls === BPF_LDX && (o.code & 0xe0) === BPF_MEMSX) return true;
  if ((cls === BPF_ALU || cls === BPF_ALU64) && op === BPF_END) return true;
  if (cls === BPF_ALU && (op === BPF_DIV || op === BPF_MOD)) return true;
  if (cls === BPF_ALU64 && (op === BPF_DIV || op === BPF_MOD) && o.variant === 1) return true;
  return false;
}

function source(ops: readonly Op[]): string {
  const hot: string[] = [];
  const slow: string[] = [];
  ops.forEach((o, k) => {
    if (!cold(o)) {
      hot.push(`case ${k}: { ${prologue(o.body)} ${o.body} break; }`);
      return;
    }
    if (/\b(pc|nb|fp|acc|L|B|DV|U8|SH)\b/.test(o.body.replace(/\b(DV|U8|SH)\b/g, ""))) {
      throw new Error(`interp: cold operation ${k} uses interpreter state`);
    }
    slow.push(`case ${k}: { ${prologue(o.body)} ${o.body} return; }`);
  });
  return `
function cold(P, R, w, i) {
  const IMM = P.imm, fault = P.fault, DV = M.dv, U8 = M.u8, SH = M.shadow;
  let t0 = 0, t1 = 0, t2 = 0, d = 0, s = 0, s2 = 0, off = 0, imm = 0;
  switch (w & 255) {
    ${slow.join("\n    ")}
  }
  X.bad(P, i);
}
const RS = [], FS = [];
return function interp(P, D, entry, B, base) {
  const OPW = D.ops, SRC_CALL = D.pseudoCall, IMM = P.imm, IMM2 = P.imm2, FNS = P.fns;
  const fault = P.fault;
  // Register files are reused per frame base (one per nesting level), not allocated per run.
  // 32 entries: every index (w >> 7) & 30 can take is in bounds.
  const R = RS[base] ?? (RS[base] = new Int32Array(32)), FR = FS[base] ?? (FS[base] = new Int32Array(80));
  R.fill(0);
  for (let k = 2; k < 12; k++) R[k] = IO[k];
  R[20] = STK[base];
  let DV = M.dv, U8 = M.u8, SH = M.shadow;
  let pc = entry | 0, nb = (0 - entry) | 0, fp = 0, acc = 0, L = Math.min(B, 0x40000000) | 0;
  for (;;) {
    // Temporaries are per instruction, not loop-carried: no value merges across cases.
    let t0 = 0, t1 = 0, t2 = 0, d = 0, s = 0, s2 = 0, off = 0, imm = 0;
    const i = pc++;
    const w = OPW[i];
    switch (w & 255) {
      ${hot.join("\n      ")}
      default: cold(P, R, w, i);
    }
  }
};`;
}

let built: { ops: Op[]; byCode: Map<number, number>; src: string } | undefined;

function tables() {
  if (built === undefined) {
    const ops = buildOps();
    const byCode = new Map<number, number>();
    // Key: code, or code + 256 * (variant + 1) for variant opcodes (variants are small, >= 0).
    ops.forEach((o, k) => {
      if (k > 0) byCode.set(o.variant === undefined ? o.code : o.code + 256 * (o.variant + 1), k);
    });
    built = { ops, byCode, src: source(ops) };
  }
  return built;
}

/** The per-program decoded form the interpreter runs. */
export interface Decoded {
  /** op | dst << 8 | src << 12 | off << 16 per slot. */
  ops: Int32Array;
  /** 1 where a `call` is a bpf-to-bpf call (src BPF_PSEUDO_CALL). */
  pseudoCall: Uint8Array;
}

/** What the word of a mov fused with slot j carries in its off field, if the two can fuse. */
function pairOf(P: VmProgram, j: number, dst: number): number | undefined {
  const c = P.code[j];
  if (P.dst[j] !== dst) return undefined;
  if (PAIR_X.includes(c)) return c === (BPF_ALU64 | BPF_X | BPF_DIV) && P.off[j] !== 0 ? undefined : P.src[j];
  const imm = P.imm[j];
  if (PAIR_K.includes(c)) return imm >= -0x8000 && imm < 0x8000 ? imm : undefined;
  if (PAIR_SHIFT.includes(c)) return (imm & 63) > 0 && (imm & 63) < 32 ? imm & 63 : undefined;
  return undefined;
}

/** Decode P once for the interpreter. The second slot of an ld_imm64 (code 0) decodes as invalid. */
export function decode(P: VmProgram): Decoded {
  const { byCode } = tables();
  const n = P.len;
  const ops = new Int32Array(n);
  const pseudoCall = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const code = P.code[i];
    const imm = P.imm[i];
    const v = variants(code);
    const variant = (k: number) => byCode.get(code + 256 * (k + 1));
    // The op and what the word carries in its off field.
    let op: number | undefined;
    let off = P.off[i];
    const pair = code === MOV_X && P.off[i] === 0 && i + 1 < n ? pairOf(P, i + 1, P.dst[i]) : undefined;
    if (pair !== undefined) {
      op = variant(MOV_PAIR + P.code[i + 1]);
      off = pair;
    } else if (shiftK(code)) {
      op = variant((imm & 63) === 0 ? 0 : (imm & 63) < 32 ? 1 : 2);
      off = imm & 63;
    } else if (v !== null) {
      const val = v.field === "off" ? P.off[i] : imm;
      op = val >= 0 ? variant(val) : undefined;
    } else if (i + 1 < n && P.code[i + 1] === JA && variant(FUSED_JA) !== undefined) {
      op = variant(FUSED_JA);
      off = P.off[i + 1];
    } else if (imm >= -0x8000 && imm < 0x8000 && variant(SMALL) !== undefined) {
      op = variant(SMALL);
      off = imm;
    } else if (imm === 0 && variant(ZERO) !== undefined) {
      op = variant(ZERO);
    } else {
      op = byCode.get(code);
    }
    ops[i] = (op ?? 0) | (P.dst[i] << 8) | (P.src[i] << 12) | (off << 16);
    if (code === CALL && P.src[i] === BPF_PSEUDO_CALL) pseudoCall[i] = 1;
  }
  return { ops, pseudoCall };
}

type Interp = (P: VmProgram, D: Decoded, entry: number, budget: number, base: number) => void;

/** An interpreter bound to one VM runtime. */
export function makeInterpreter(rt: Runtime): Interp {
  return new Function(...RT_PARAMS, tables().src)(...rtArgs(rt));
}

export function interpExecutor(interp: Interp, P: VmProgram): Executor {
  const D = decode(P);
  return (entry, budget, base) => interp(P, D, entry, budget, base);
}
