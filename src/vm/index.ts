/** The eBPF virtual machine: sandboxed memory, two execution tiers, helper/kfunc calls. */
export { BPF_LOAD_ACQ, BPF_STORE_REL } from "./codegen.js";
export {
  CONFORMANCE_HELPERS,
  type ConformanceVector,
  parseConformance,
  runConformanceDir,
  runVector,
  TIERS,
} from "./conformance.js";
export { type AccessKind, u64Of, VmBudgetExceeded, VmFault } from "./fault.js";
export { type CallbackHost, HelperCall } from "./helper.js";
export { jitSource } from "./jit.js";
export {
  type AllocOpts,
  GUARD,
  type Region,
  type RegionKind,
  type RegionPerm,
  SHADOW_R,
  SHADOW_W,
  VM_BASE,
  VmMemory,
  type VmMemoryOpts,
} from "./memory.js";
export { type FnTable, type HelperFn, type LoadOpts, type Tier, type TierChoice, VmProgram } from "./program.js";
export { type RunArgs, type RunOpts, type RunResult, Vm, type VmOpts } from "./vm.js";
