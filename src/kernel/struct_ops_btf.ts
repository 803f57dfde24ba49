/**
 * The BTF queries struct_ops uses, in the shapes bpf_struct_ops.c calls them (over src/btf/resolve).
 */
import type { Btf } from "../btf/btf.js";
import {
  type BtfFuncModel,
  btfDistillFuncProto,
  btfFuncPtrProto,
  btfResolveSize,
  btfTypeResolvePtr,
  btfTypeSkipModifiers,
} from "../btf/resolve.js";
import type { BtfFuncProto, BtfType } from "../btf/types.js";
import { BTF_KIND_FWD, BTF_KIND_STRUCT } from "../uapi/btf.js";

export type { BtfFuncModel };

/** btf_type_skip_modifiers(). */
export function skipModifiers(btf: Btf, id: number): BtfType {
  return btfTypeSkipModifiers(btf, id).type;
}

/** btf_type_resolve_ptr(): the pointee (modifiers skipped) if `id` is a pointer, else undefined. */
export function resolvePtr(btf: Btf, id: number): BtfType | undefined {
  return btfTypeResolvePtr(btf, id)?.type;
}

/** btf_type_resolve_func_ptr(). */
export function resolveFuncPtr(btf: Btf, id: number): BtfFuncProto | undefined {
  return btfFuncPtrProto(btf, id)?.type;
}

/** btf_resolve_size(). */
export function resolveSize(btf: Btf, id: number): number {
  return btfResolveSize(btf, id);
}

/** btf_distill_func_proto() for a struct_ops member. */
export function distillFuncModel(btf: Btf, proto: BtfFuncProto, name: string): BtfFuncModel {
  return btfDistillFuncProto(btf, proto.id, name);
}

/** is_module_member(): a pointer to `struct module` (or its forward declaration). */
export function isModuleMember(btf: Btf, id: number): boolean {
  const t = resolvePtr(btf, id);
  return !!t && (t.kind === BTF_KIND_STRUCT || t.kind === BTF_KIND_FWD) && t.name === "module";
}
