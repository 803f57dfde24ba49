/** llvm-objdump's BPF assembly syntax (work in progress). */
import type { AsmSyntax } from "./syntax.js";
import { asmError } from "./syntax.js";

export const llvmSyntax: AsmSyntax = {
  name: "llvm",
  stripComment: (line) => line,
  parse: (stmt) => asmError(`llvm syntax not supported yet: '${stmt}'`),
  format: () => asmError("llvm syntax not supported yet"),
  labelName: (slot) => `LBB${slot}`,
};
