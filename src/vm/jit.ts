import { isLdImm64 } from "../isa/insn.js";
import { BPF_PSEUDO_CALL, bpf_func_id } from "../uapi/bpf.js";
import { emitInsn, type Operands } from "./codegen.js";
import { CALL, CALLX, EXIT, type Executor, type VmProgram } from "./program.js";
import { RT_PARAMS, type Runtime, rtArgs } from "./runtime.js";

/**
 * The compiling tier: a program becomes one JavaScript function (`new Function`) whose
 * registers are local variables (two int32 halves each), with one `case` per basic block in a
 * `for (;;) switch (pc)` loop. Straight-line code runs without dispatch; a taken jump sets pc
 * and re-enters the switch. Instruction semantics come from the same templates as the
 * interpreter (codegen.ts); the instruction budget is charged once per block.
 */

const reg = (r: number): [string, string] => [`r${r}l`, `r${r}h`];
const RELOAD = "DV = M.dv; U8 = M.u8; SH = M.shadow;";
const ARGS = "r1l, r1h, r2l, r2h, r3l, r3h, r4l, r4h, r5l, r5h";

function save(at: number, ret: number): string {
  const parts = [`if (fp === 7) X.tooDeep(P, ${at}); t0 = fp * 10;`];
  for (let r = 6; r <= 9; r++) parts.push(`FR[t0 + ${(r - 6) * 2}] = r${r}l; FR[t0 + ${(r - 6) * 2 + 1}] = r${r}h;`);
  parts.push(`FR[t0 + 8] = r10l; FR[t0 + 9] = ${ret}; fp++; r10l = STK[base + fp]; r10h = 0;`);
  return parts.join(" ");
}

function restore(): string {
  const parts = ["fp--; t0 = fp * 10;"];
  for (let r = 6; r <= 9; r++) parts.push(`r${r}l = FR[t0 + ${(r - 6) * 2}]; r${r}h = FR[t0 + ${(r - 6) * 2 + 1}];`);
  parts.push("r10l = FR[t0 + 8]; r10h = 0; pc = FR[t0 + 9]; continue;");
  return parts.join(" ");
}

/** JavaScript source of P's function body (exported for inspection and tests). */
export function jitSource(P: VmProgram): string {
  const n = P.len;
  const leaders = [...P.leaders].sort((a, b) => a - b);
  // Frames are only needed by programs that call (the second slot of an ld_imm64 has code 0).
  const hasCalls = P.insns.some((s) => (s.code === CALL && s.src === BPF_PSEUDO_CALL) || s.code === CALLX);
  const out: string[] = [];
  const ret = "IO[0] = r0l; IO[1] = r0h; IO[12] = n; return;";
  const exit = hasCalls ? `if (fp === 0) { ${ret} } ${restore()}` : ret;
  let li = 0;
  for (let i = 0; i < n; i++) {
    const s = P.insns[i];
    if (li < leaders.length && leaders[li] === i) {
      const end = li + 1 < leaders.length ? leaders[li + 1] : n;
      let k = 0;
      for (let j = i; j < end; j++) {
        k++;
        if (isLdImm64(P.insns[j])) j++;
      }
      out.push(`case ${i}: n += ${k}; if (n > B) X.over(P, ${i}, B);`);
      li++;
    }
    const [dl, dh] = reg(s.dst);
    if (isLdImm64(s)) {
      out.push(`${dl} = ${P.imm[i]}; ${dh} = ${P.imm2[i]};`);
      i++;
      continue;
    }
    if (s.code === CALL) {
      if (s.src === BPF_PSEUDO_CALL) {
        out.push(`${save(i, i + 1)} pc = ${i + s.imm + 1}; continue;`);
      } else {
        out.push(`r0l = X.hcall(FN[${i}], P, ${i}, ${s.imm}, ${ARGS}); r0h = W[1]; ${RELOAD}`);
        // A taken tail call leaves the function as its exit would, with the callee's r0.
        if (s.src === 0 && s.imm === bpf_func_id.BPF_FUNC_tail_call) out.push(`if (X.tc !== 0) { X.tc = 0; ${exit} }`);
      }
      continue;
    }
    if (s.code === CALLX) {
      out.push(
        `t1 = X.funcTarget(P, ${dl}, ${dh}); if (t1 >= 0) { ${save(i, i + 1)} pc = t1; continue; } r0l = X.hcallx(P, ${i}, ${dl}, ${dh}, ${ARGS}); r0h = W[1]; ${RELOAD}`,
      );
      continue;
    }
    if (s.code === EXIT) {
      out.push(exit);
      continue;
    }
    const [sl, sh] = reg(s.src);
    const ops: Operands = {
      dl,
      dh,
      sl,
      sh,
      imm: `${s.imm}`,
      immHi: `${s.imm >> 31}`,
      off: `${s.off}`,
      immKnown: true,
      at: `${i}`,
      r0l: "r0l",
      r0h: "r0h",
      jump: (f) => `pc = ${i + 1 + (f === "off" ? s.off : s.imm)}; continue;`,
    };
    const body = emitInsn(s.code, s.off, s.imm, ops);
    out.push(body ?? `X.bad(P, ${i});`);
  }
  const regs: string[] = [];
  for (let r = 0; r <= 11; r++) {
    const init = r >= 1 && r <= 5 ? [`IO[${r * 2}]`, `IO[${r * 2 + 1}]`] : r === 10 ? ["STK[base]", "0"] : ["0", "0"];
    regs.push(`r${r}l = ${init[0]}, r${r}h = ${init[1]}`);
  }
  return `"use strict";
const fault = P.fault, FN = P.fns;
return function run(entry, B, base) {
  let ${regs.join(", ")};
  let DV = M.dv, U8 = M.u8, SH = M.shadow;
  let pc = entry, n = 0, fp = 0, t0 = 0, t1 = 0, t2 = 0;
  ${hasCalls ? "const FR = new Int32Array(80);" : ""}
  for (;;) {
    switch (pc) {
      ${out.join("\n      ")}
    }
    X.bad(P, pc);
  }
};`;
}

/** Compile P for the runtime `rt`. */
export function compile(rt: Runtime, P: VmProgram): Executor {
  return new Function(...RT_PARAMS, "P", jitSource(P))(...rtArgs(rt), P);
}
