/** The verifier's public API: bpf_check over a VerifierEnv the kernel fills. */
export { conformanceEnv, conformanceOps } from "./conformance_ops.js";
export { insnIsCondJump, optHardWireDeadCodeBranches, sanitizeDeadCode } from "./dead_code.js";
export type {
  CtxAccessResult,
  FuncInfo,
  KfuncInfo,
  LdImm64Aux,
  StructOpsInfo,
  StructOpsTable,
  VerifierEnv,
  VerifierMap,
  VerifierOps,
  VerifierResult,
  VerifierStats,
} from "./env.js";
export * from "./helper_protos.js";
export {
  CONST_PTR_TO_MAP,
  MEM_RDONLY,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_CTX,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_STACK,
  PTR_TRUSTED,
  SCALAR_VALUE,
} from "./reg_state.js";
export { parseVerifierVector, resolveLdImm64, type VerifierVector, vectorEnv } from "./vector.js";
export { bpfCheck, bpfCheckOrThrow } from "./verifier.js";
