import { LD_IMM64_CODE } from "../isa/insn.js";
import { BPF_ALU, BPF_ALU64, BPF_ATOMIC, BPF_DIV, BPF_END, BPF_MOD, BPF_MOV, BPF_STX, BPF_X } from "../isa/opcodes.js";
import { BPF_PSEUDO_CALL } from "../uapi/bpf.js";
import { BPF_LOAD_ACQ, BPF_STORE_REL, emitInsn, type Operands } from "./codegen.js";
import { CALL, CALLX, EXIT, type Executor, type VmProgram } from "./program.js";
import { RT_PARAMS, type Runtime, rtArgs } from "./runtime.js";

/**
 * The interpreter tier: one `switch` over the opcode byte, its cases generated from the
 * shared templates of codegen.ts with registers in an Int32Array (R[2k], R[2k+1] = lo, hi of
 * rk). Generated once per process; per program it only needs the decoded columns.
 */

/** Which field selects the semantics of an opcode, and its valid values. */
function variants(code: number): { field: "off" | "imm"; values: number[] } | null {
  const cls = code & 7;
  const op = code & 0xf0;
  if (cls === BPF_ALU || cls === BPF_ALU64) {
    if (op === BPF_DIV || op === BPF_MOD) return { field: "off", values: [0, 1] };
    if (op === BPF_MOV) return { field: "off", values: code & BPF_X ? [0, 8, 16, 32] : [0] };
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
  jump: (field) => `pc += ${field};`,
};

const SAVE =
  "if (fp === 7) X.tooDeep(P, i); t0 = fp * 10; FR.set(R.subarray(12, 22), t0); FR[t0 + 9] = pc; fp++; R[20] = STK[base + fp]; R[21] = 0;";

function source(): string {
  const cases: string[] = [];
  for (let code = 0; code < 256; code++) {
    let body: string | null;
    if (code === LD_IMM64_CODE) {
      body = "R[d] = imm; R[d + 1] = IMM2[i]; pc++;";
    } else if (code === CALL) {
      body = `if (SRC[i] === ${BPF_PSEUDO_CALL}) { ${SAVE} pc = i + imm + 1; } else { R[0] = X.hcall(FNS[i], P, i, IMM[i], R[2], R[3], R[4], R[5], R[6], R[7], R[8], R[9], R[10], R[11]); R[1] = W[1]; DV = M.dv; U8 = M.u8; SH = M.shadow; }`;
    } else if (code === CALLX) {
      body = `t1 = X.funcTarget(P, R[d], R[d + 1]); if (t1 >= 0) { ${SAVE} pc = t1; } else { R[0] = X.hcallx(P, i, R[d], R[d + 1], R[2], R[3], R[4], R[5], R[6], R[7], R[8], R[9], R[10], R[11]); R[1] = W[1]; DV = M.dv; U8 = M.u8; SH = M.shadow; }`;
    } else if (code === EXIT) {
      body =
        "if (fp === 0) { IO[0] = R[0]; IO[1] = R[1]; IO[12] = n; return; } fp--; t0 = fp * 10; R.set(FR.subarray(t0, t0 + 9), 12); R[21] = 0; pc = FR[t0 + 9];";
    } else {
      const v = variants(code);
      if (v === null) {
        body = emitInsn(code, 0, 0, OPS);
      } else {
        const arms = v.values
          .map((val) => {
            const b = emitInsn(code, v.field === "off" ? val : 0, v.field === "imm" ? val : 0, OPS);
            return b === null ? "" : `case ${val}: { ${b} break; }`;
          })
          .join(" ");
        body = `switch (${v.field}) { ${arms} default: X.bad(P, i); }`;
      }
    }
    if (body !== null) cases.push(`case ${code}: { ${body} break; }`);
  }
  return `
const RS = [], FS = [];
return function interp(P, entry, B, base) {
  const CODE = P.code, DST = P.dst, SRC = P.src, OFF = P.off, IMM = P.imm, IMM2 = P.imm2, FNS = P.fns;
  const fault = P.fault;
  // Register files are reused per frame base (one per nesting level), not allocated per run.
  let R = RS[base], FR = FS[base];
  if (R === undefined) { R = RS[base] = new Int32Array(22); FR = FS[base] = new Int32Array(80); } else R.fill(0);
  for (let k = 2; k < 12; k++) R[k] = IO[k];
  R[20] = STK[base];
  let DV = M.dv, U8 = M.u8, SH = M.shadow;
  let pc = entry, n = 0, fp = 0, t0 = 0, t1 = 0, t2 = 0;
  for (;;) {
    const i = pc++;
    if (++n > B) X.over(P, i, B);
    const d = DST[i] << 1, s = SRC[i] << 1, off = OFF[i], imm = IMM[i];
    switch (CODE[i]) {
      ${cases.join("\n      ")}
      default: X.bad(P, i);
    }
  }
};`;
}

let cached: string | undefined;

/** An interpreter bound to one VM runtime. */
export function makeInterpreter(rt: Runtime): (P: VmProgram, entry: number, budget: number, base: number) => void {
  cached ??= source();
  return new Function(...RT_PARAMS, cached)(...rtArgs(rt));
}

export function interpExecutor(interp: ReturnType<typeof makeInterpreter>, P: VmProgram): Executor {
  return (entry, budget, base) => interp(P, entry, budget, base);
}
