/** The libbpf-like loader: open an object (BpfObject.open), load it into a kernel, attach struct_ops. */

export { bpf_program__attach_trace, bpf_program__set_attach_target, libbpf_find_prog_btf_id } from "./attach_target.js";
export * from "./bpf.js";
export { type BpfCoreRelo, type BpfFuncInfo, type BpfLineInfo, BtfExt } from "./btf_ext.js";
export type { BpfExtern } from "./externs.js";
export {
  BpfMap,
  LIBBPF_MAP_BSS,
  LIBBPF_MAP_DATA,
  LIBBPF_MAP_KCONFIG,
  LIBBPF_MAP_RODATA,
  LIBBPF_MAP_UNSPEC,
} from "./maps.js";
export { BpfObject, type BpfObjectOpenOpts, type LibbpfPrintFn, type LibbpfPrintLevel } from "./object.js";
export { type BpfObjectLoadOpts, sanitizedBtf } from "./object_load.js";
export { BpfProgram } from "./program.js";
export type { RelocDesc, RelocType } from "./relo.js";
export { BPF_CORE_POISON_IMM, bpfCoreApplyRelos, type CoreReloOutcome, type CoreReloRes } from "./relo_core.js";
export { type BpfSecDef, findSecDef, SECTION_DEFS } from "./section_defs.js";
export { BpfStructOps, BpfStructOpsValue, type StructOpsMemberValue } from "./struct_ops.js";
export { BpfStructOpsLink, bpfMapAttachStructOps } from "./struct_ops_attach.js";
