/**
 * The type queries the kernel runs over BTF (kernel/bpf/btf.c, include/linux/btf.h), with the
 * kernel's semantics and messages: skipping modifiers, resolving sizes, member offsets, func-ptr
 * members and btf_distill_func_proto.
 */
import {
  BTF_INT_SIGNED,
  BTF_KIND_ARRAY,
  BTF_KIND_CONST,
  BTF_KIND_DATASEC,
  BTF_KIND_DECL_TAG,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FLOAT,
  BTF_KIND_FUNC,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_FWD,
  BTF_KIND_INT,
  BTF_KIND_NAMES,
  BTF_KIND_PTR,
  BTF_KIND_RESTRICT,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPE_TAG,
  BTF_KIND_TYPEDEF,
  BTF_KIND_UNION,
  BTF_KIND_UNKN,
  BTF_KIND_VAR,
  BTF_KIND_VOLATILE,
} from "../uapi/btf.js";
import { BpfError, EINVAL } from "../uapi/errno.js";
import type { BtfComposite, BtfFuncProto, BtfMember, BtfType } from "./types.js";

/** Anything that hands out types by id: a parsed Btf or a BtfBuilder. */
export interface BtfTypes {
  typeById(id: number): BtfType;
}

/** kernel MAX_RESOLVE_DEPTH: how far chains of modifiers/arrays are followed. */
export const MAX_RESOLVE_DEPTH = 32;
/** MAX_BPF_FUNC_ARGS: most arguments a traced/struct_ops function may take. */
export const MAX_BPF_FUNC_ARGS = 12;
/** MAX_BPF_FUNC_REG_ARGS: arguments passed in registers (the NULL-proto fallback). */
export const MAX_BPF_FUNC_REG_ARGS = 5;
export const BTF_FMODEL_STRUCT_ARG = 1 << 0;
export const BTF_FMODEL_SIGNED_ARG = 1 << 1;
const PTR_SIZE = 8;
const U32_MAX = 0xffffffff;

/** struct btf_func_model. */
export interface BtfFuncModel {
  nr_args: number;
  arg_size: number[];
  arg_flags: number[];
  ret_size: number;
  ret_flags: number;
}

/** btf_type_by_id: the type, or undefined for an id past the end (the kernel's NULL). */
export function btfTypeById(btf: BtfTypes & { nrTypes: number }, id: number): BtfType | undefined {
  return Number.isInteger(id) && id >= 0 && id <= btf.nrTypes ? btf.typeById(id) : undefined;
}

/** btf_name_by_offset: the string at a name offset ("" for 0). */
export function btfNameByOffset(btf: { str(off: number): string }, off: number): string {
  return btf.str(off);
}

/** btf_find_by_name_kind: id of the first type with this name and kind, or -1 (-ENOENT). */
export function btfFindByNameKind(
  btf: { findByNameKind(name: string, kind: number): number },
  name: string,
  kind: number,
): number {
  return btf.findByNameKind(name, kind);
}

export const btfTypeIsVoid = (t: BtfType): boolean => t.kind === BTF_KIND_UNKN;
export const btfTypeIsInt = (t: BtfType): boolean => t.kind === BTF_KIND_INT;
export const btfTypeIsPtr = (t: BtfType): boolean => t.kind === BTF_KIND_PTR;
export const btfTypeIsArray = (t: BtfType): boolean => t.kind === BTF_KIND_ARRAY;
/** btf_type_is_struct: STRUCT or UNION. */
export const btfTypeIsStruct = (t: BtfType): boolean => t.kind === BTF_KIND_STRUCT || t.kind === BTF_KIND_UNION;
/** __btf_type_is_struct: STRUCT only. */
export const btfTypeIsStructOnly = (t: BtfType): boolean => t.kind === BTF_KIND_STRUCT;
export const btfTypeIsUnion = (t: BtfType): boolean => t.kind === BTF_KIND_UNION;
export const btfTypeIsEnum = (t: BtfType): boolean => t.kind === BTF_KIND_ENUM;
export const btfIsAnyEnum = (t: BtfType): boolean => t.kind === BTF_KIND_ENUM || t.kind === BTF_KIND_ENUM64;
export const btfTypeIsFwd = (t: BtfType): boolean => t.kind === BTF_KIND_FWD;
export const btfTypeIsTypedef = (t: BtfType): boolean => t.kind === BTF_KIND_TYPEDEF;
export const btfTypeIsFunc = (t: BtfType): boolean => t.kind === BTF_KIND_FUNC;
export const btfTypeIsFuncProto = (t: BtfType): boolean => t.kind === BTF_KIND_FUNC_PROTO;
export const btfTypeIsVar = (t: BtfType): boolean => t.kind === BTF_KIND_VAR;
export const btfTypeIsDatasec = (t: BtfType): boolean => t.kind === BTF_KIND_DATASEC;
export const btfTypeIsFloat = (t: BtfType): boolean => t.kind === BTF_KIND_FLOAT;
export const btfTypeIsDeclTag = (t: BtfType): boolean => t.kind === BTF_KIND_DECL_TAG;
export const btfTypeIsTypeTag = (t: BtfType): boolean => t.kind === BTF_KIND_TYPE_TAG;
/** btf_type_is_scalar: int or any enum. */
export const btfTypeIsScalar = (t: BtfType): boolean => btfTypeIsInt(t) || btfIsAnyEnum(t);
export const btfTypeIsSignedInt = (t: BtfType): boolean =>
  t.kind === BTF_KIND_INT && (t.encoding & BTF_INT_SIGNED) !== 0;

/** btf_type_int_is_regular: a whole, naturally sized integer (1, 2, 4, 8 or 16 bytes, no bit offset). */
export function btfTypeIntIsRegular(t: BtfType): boolean {
  if (t.kind !== BTF_KIND_INT) return false;
  return t.offset === 0 && t.bits === t.size * 8 && [1, 2, 4, 8, 16].includes(t.size);
}

/** btf_type_is_small_int: an integer of at most 8 bytes (what fits a register). */
export function btfTypeIsSmallInt(t: BtfType): boolean {
  return t.kind === BTF_KIND_INT && t.size <= 8;
}

/** btf_type_is_modifier: typedef, volatile, const, restrict, type_tag (things that only rename/qualify). */
export function btfTypeIsModifier(t: BtfType): boolean {
  switch (t.kind) {
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_TYPE_TAG:
      return true;
    default:
      return false;
  }
}

/** btf_type_has_size: the kinds whose btf_type.size is their byte size. */
export function btfTypeHasSize(t: BtfType): t is BtfType & { size: number } {
  switch (t.kind) {
    case BTF_KIND_INT:
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_FLOAT:
    case BTF_KIND_DATASEC:
      return true;
    default:
      return false;
  }
}

export function btfTypeStr(t: BtfType): string {
  return BTF_KIND_NAMES[t.kind] ?? "UNKNOWN";
}

export function btfTypeVlen(t: BtfType): number {
  return t.vlen;
}

export function btfTypeKflag(t: BtfType): boolean {
  return t.kindFlag;
}

/** btf_member_bit_offset (the kind_flag form is decoded already). */
export function btfMemberBitOffset(_struct: BtfComposite, m: BtfMember): number {
  return m.bitOffset;
}

/** btf_member_bitfield_size: 0 for a non-bitfield member. */
export function btfMemberBitfieldSize(_struct: BtfComposite, m: BtfMember): number {
  return m.bitfieldSize;
}

/** __btf_member_bit_offset / 8 for a byte-aligned member. */
export function btfMemberByteOffset(struct: BtfComposite, m: BtfMember): number {
  return Math.floor(btfMemberBitOffset(struct, m) / 8);
}

/** btf_type_skip_modifiers: follow modifiers from `id`; returns the final type and its id. */
export function btfTypeSkipModifiers(btf: BtfTypes, id: number): { type: BtfType; id: number } {
  let t = btf.typeById(id);
  for (let depth = 0; btfTypeIsModifier(t); depth++) {
    if (depth >= MAX_RESOLVE_DEPTH)
      throw new BpfError(EINVAL, `type [${id}]: modifier chain too deep (loop?)`, { typeId: id });
    id = (t as { type: number }).type;
    t = btf.typeById(id);
  }
  return { type: t, id };
}

/** btf_type_resolve_ptr: skip modifiers; if a PTR, the pointee with its modifiers skipped, else null. */
export function btfTypeResolvePtr(btf: BtfTypes, id: number): { type: BtfType; id: number } | null {
  const { type: t } = btfTypeSkipModifiers(btf, id);
  if (t.kind !== BTF_KIND_PTR) return null;
  return btfTypeSkipModifiers(btf, t.type);
}

/** btf_type_resolve_func_ptr: the FUNC_PROTO behind a (possibly typedef'd/const) function pointer, or null. */
export function btfFuncPtrProto(btf: BtfTypes, memberTypeId: number): { type: BtfFuncProto; id: number } | null {
  const r = btfTypeResolvePtr(btf, memberTypeId);
  if (!r || r.type.kind !== BTF_KIND_FUNC_PROTO) return null;
  return { type: r.type, id: r.id };
}

/** Number of members of a struct that are function pointers (struct_ops' func_models count). */
export function btfCountFuncPtrMembers(btf: BtfTypes, structId: number): number {
  const t = btf.typeById(structId);
  if (!btfTypeIsStruct(t)) return 0;
  let n = 0;
  for (const m of (t as BtfComposite).members) if (btfFuncPtrProto(btf, m.type)) n++;
  return n;
}

/** The member named `name` of a struct/union (not looking into anonymous members), or undefined. */
export function btfMemberByName(btf: BtfTypes, structId: number, name: string): BtfMember | undefined {
  const t = btf.typeById(structId);
  if (!btfTypeIsStruct(t)) return undefined;
  return (t as BtfComposite).members.find((m) => m.name === name);
}

export interface BtfResolvedSize {
  /** Total size in bytes (element size times all array dimensions). */
  size: number;
  /** The innermost non-array, non-modifier type and its id. */
  elemType: BtfType;
  elemId: number;
  /** Product of all array dimensions (1 if not an array). */
  totalNelems: number;
}

/**
 * __btf_resolve_size / btf_resolve_size: int, enum, struct, union, float sizes; pointers are 8;
 * modifiers and typedefs followed; arrays multiplied out. void, func, func_proto, fwd, var and
 * datasec have no size (EINVAL).
 */
export function btfResolveSizeFull(btf: BtfTypes, id: number): BtfResolvedSize {
  let t = btf.typeById(id);
  let nelems = 1;
  for (let i = 0; i < MAX_RESOLVE_DEPTH; i++) {
    switch (t.kind) {
      case BTF_KIND_INT:
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION:
      case BTF_KIND_ENUM:
      case BTF_KIND_FLOAT:
      case BTF_KIND_ENUM64:
        return finish(t.size);
      case BTF_KIND_PTR:
        return finish(PTR_SIZE);
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG:
        id = t.type;
        t = btf.typeById(id);
        break;
      case BTF_KIND_ARRAY:
        if (nelems && t.nelems > Math.floor(U32_MAX / nelems))
          throw new BpfError(EINVAL, `type [${t.id}]: array size overflows u32`, { typeId: t.id });
        nelems *= t.nelems;
        id = t.type;
        t = btf.typeById(id);
        break;
      default:
        throw new BpfError(EINVAL, `type [${id}] ${btfTypeStr(t)} has no size`, { typeId: id });
    }
  }
  throw new BpfError(EINVAL, `type [${id}]: resolve depth exceeds ${MAX_RESOLVE_DEPTH}`, { typeId: id });

  function finish(size: number): BtfResolvedSize {
    if (nelems && size > Math.floor(U32_MAX / nelems))
      throw new BpfError(EINVAL, `type [${id}]: size overflows u32`, { typeId: id });
    return { size: nelems * size, elemType: t, elemId: id, totalNelems: nelems };
  }
}

/** btf_resolve_size: the size in bytes of type `id`, or an EINVAL BpfError if it has none. */
export function btfResolveSize(btf: BtfTypes, id: number): number {
  return btfResolveSizeFull(btf, id).size;
}

/**
 * btf_type_id_size(): the type behind `id` (through modifiers, typedefs and VARs) and its byte
 * size, or null for a type without one (void, func, fwd, a bad id).
 */
export function btfTypeIdSize(btf: BtfTypes & { nrTypes: number }, id: number): { type: BtfType; size: number } | null {
  for (let hops = 0; hops < MAX_RESOLVE_DEPTH; hops++) {
    if (id <= 0 || id > btf.nrTypes) return null;
    const t = btf.typeById(id);
    if (btfTypeHasSize(t)) return { type: t, size: t.size };
    if (t.kind === BTF_KIND_PTR) return { type: t, size: PTR_SIZE };
    if (t.kind === BTF_KIND_ARRAY) {
      try {
        return { type: t, size: btfResolveSize(btf, id) };
      } catch (e) {
        if (e instanceof BpfError) return null;
        throw e;
      }
    }
    if (!btfTypeIsModifier(t) && t.kind !== BTF_KIND_VAR) return null;
    id = (t as { type: number }).type;
  }
  return null;
}

/** __get_type_size: size of a return/argument type after modifiers; -EINVAL-style -1 when unsupported. */
function getTypeSize(btf: BtfTypes, id: number): { size: number; type: BtfType } {
  if (id === 0) return { size: 0, type: btf.typeById(0) };
  let t = btf.typeById(id);
  for (let depth = 0; btfTypeIsModifier(t) && depth <= MAX_RESOLVE_DEPTH; depth++)
    t = btf.typeById((t as { type: number }).type);
  if (btfTypeIsModifier(t)) return { size: -EINVAL, type: t };
  if (t.kind === BTF_KIND_PTR) return { size: PTR_SIZE, type: t };
  if (t.kind === BTF_KIND_INT || btfIsAnyEnum(t) || t.kind === BTF_KIND_STRUCT)
    return { size: (t as { size: number }).size, type: t };
  return { size: -EINVAL, type: t };
}

/** __get_type_fmodel_flags. */
function fmodelFlags(t: BtfType): number {
  let flags = 0;
  if (t.kind === BTF_KIND_STRUCT) flags |= BTF_FMODEL_STRUCT_ARG;
  if (btfTypeIsSignedInt(t)) flags |= BTF_FMODEL_SIGNED_ARG;
  return flags;
}

/**
 * btf_distill_func_proto: the calling-convention model of a FUNC_PROTO (null = the 5 x u64
 * fallback). `tname` names the function in messages, as the kernel's verifier log does.
 */
export function btfDistillFuncProto(btf: BtfTypes, protoId: number | null, tname: string): BtfFuncModel {
  if (protoId === null) {
    return {
      nr_args: MAX_BPF_FUNC_REG_ARGS,
      arg_size: new Array(MAX_BPF_FUNC_REG_ARGS).fill(8),
      arg_flags: new Array(MAX_BPF_FUNC_REG_ARGS).fill(0),
      ret_size: 8,
      ret_flags: 0,
    };
  }
  const func = btf.typeById(protoId);
  const ctx = { typeId: protoId, member: tname };
  if (func.kind !== BTF_KIND_FUNC_PROTO)
    throw new BpfError(EINVAL, `The function ${tname} type [${protoId}] is not a FUNC_PROTO`, ctx);
  const args = func.params;
  const nargs = args.length;
  if (nargs > MAX_BPF_FUNC_ARGS)
    throw new BpfError(EINVAL, `The function ${tname} has ${nargs} arguments. Too many.`, ctx);
  const ret = getTypeSize(btf, func.type);
  if (ret.size < 0 || ret.type.kind === BTF_KIND_STRUCT)
    throw new BpfError(EINVAL, `The function ${tname} return type ${btfTypeStr(ret.type)} is unsupported.`, ctx);
  const m: BtfFuncModel = {
    nr_args: nargs,
    arg_size: [],
    arg_flags: [],
    ret_size: ret.size,
    ret_flags: fmodelFlags(ret.type),
  };
  for (let i = 0; i < nargs; i++) {
    if (i === nargs - 1 && args[i].type === 0)
      throw new BpfError(EINVAL, `The function ${tname} with variable args is unsupported.`, ctx);
    const a = getTypeSize(btf, args[i].type);
    // Structs by value are passed in at most two registers: 16 bytes.
    if (a.size < 0 || a.size > 16)
      throw new BpfError(EINVAL, `The function ${tname} arg${i} type ${btfTypeStr(a.type)} is unsupported.`, ctx);
    if (a.size === 0) throw new BpfError(EINVAL, `The function ${tname} has malformed void argument.`, ctx);
    m.arg_size.push(a.size);
    m.arg_flags.push(fmodelFlags(a.type));
  }
  return m;
}

/**
 * btf__align_of (libbpf): natural alignment of a type, 1 for packed records. Unlike libbpf it
 * may see BTF nobody validated yet (a builder laying out a struct): a record that contains
 * itself is EINVAL, and records shared along many paths are computed once.
 */
export function btfAlignOf(btf: BtfTypes, id: number): number {
  return alignOf(btf, id, new Map());
}

const VISITING = -1;

function alignOf(btf: BtfTypes, id: number, memo: Map<number, number>): number {
  const { id: rid, type: t } = btfTypeSkipModifiers(btf, id);
  const seen = memo.get(rid);
  if (seen === VISITING) throw new BpfError(EINVAL, `type [${rid}] ${btfTypeStr(t)}: Loop detected`, { typeId: rid });
  if (seen !== undefined) return seen;
  let align: number;
  memo.set(rid, VISITING);
  switch (t.kind) {
    case BTF_KIND_INT:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_FLOAT:
      align = Math.min(PTR_SIZE, Math.max(1, t.size));
      break;
    case BTF_KIND_PTR:
      align = PTR_SIZE;
      break;
    case BTF_KIND_ARRAY:
      align = alignOf(btf, t.type, memo);
      break;
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION: {
      align = 1;
      let packed = false;
      for (const m of t.members) {
        const a = alignOf(btf, m.type, memo);
        // A member off its natural alignment means the record is packed.
        if (m.bitfieldSize === 0 && m.bitOffset % (8 * a) !== 0) {
          packed = true;
          break;
        }
        align = Math.max(align, a);
      }
      if (packed || t.size % align !== 0) align = 1;
      break;
    }
    default:
      memo.delete(rid);
      throw new BpfError(EINVAL, `type [${t.id}] ${btfTypeStr(t)} has no alignment`, { typeId: t.id });
  }
  memo.set(rid, align);
  return align;
}

/** Names of the BTF_KIND_* with no size (void, FWD, FUNC...), handy for messages. */
export function btfKindName(kind: number): string {
  return BTF_KIND_NAMES[kind] ?? "UNKNOWN";
}
