/**
 * Decoded BTF types (include/uapi/linux/btf.h), one interface per kind, discriminated by `kind`.
 * Fields keep every bit of the on-disk record (kindFlag, vlen, raw encodings) so a decoded type
 * re-encodes to the same bytes.
 */
import {
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
  BTF_KIND_PTR,
  BTF_KIND_RESTRICT,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPE_TAG,
  BTF_KIND_TYPEDEF,
  BTF_KIND_UNION,
  type BTF_KIND_UNKN,
  BTF_KIND_VAR,
  BTF_KIND_VOLATILE,
} from "../uapi/btf.js";

/** Fields every kind has. `vlen` and `kindFlag` are the raw info bits. */
export interface BtfTypeCommon {
  id: number;
  name: string;
  nameOff: number;
  vlen: number;
  kindFlag: boolean;
}

/** Type id 0: `void`. */
export interface BtfVoid extends BtfTypeCommon {
  kind: typeof BTF_KIND_UNKN;
}

export interface BtfInt extends BtfTypeCommon {
  kind: typeof BTF_KIND_INT;
  size: number;
  /** BTF_INT_SIGNED / CHAR / BOOL bits. */
  encoding: number;
  /** Bit offset of the value inside the storage (BTF_INT_OFFSET). */
  offset: number;
  /** Number of value bits (BTF_INT_BITS). */
  bits: number;
}

/** Kinds made of just a referenced type: PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG. */
export interface BtfRef extends BtfTypeCommon {
  kind:
    | typeof BTF_KIND_PTR
    | typeof BTF_KIND_TYPEDEF
    | typeof BTF_KIND_VOLATILE
    | typeof BTF_KIND_CONST
    | typeof BTF_KIND_RESTRICT
    | typeof BTF_KIND_TYPE_TAG;
  type: number;
}

export interface BtfArray extends BtfTypeCommon {
  kind: typeof BTF_KIND_ARRAY;
  type: number;
  indexType: number;
  nelems: number;
}

export interface BtfMember {
  name: string;
  nameOff: number;
  type: number;
  /** Bit offset from the start of the struct (decoded from the kind_flag form when set). */
  bitOffset: number;
  /** Bitfield width, 0 if not a bitfield (only encodable when the struct has kindFlag). */
  bitfieldSize: number;
}

export interface BtfComposite extends BtfTypeCommon {
  kind: typeof BTF_KIND_STRUCT | typeof BTF_KIND_UNION;
  size: number;
  members: BtfMember[];
}

export interface BtfEnumValue {
  name: string;
  nameOff: number;
  /** Read as signed 32-bit when the enum is signed (kindFlag), unsigned otherwise. */
  val: number;
}

export interface BtfEnum extends BtfTypeCommon {
  kind: typeof BTF_KIND_ENUM;
  size: number;
  values: BtfEnumValue[];
  signed: boolean;
}

export interface BtfEnum64Value {
  name: string;
  nameOff: number;
  /** Signed or unsigned 64-bit value, following the enum's signedness. */
  val: bigint;
}

export interface BtfEnum64 extends BtfTypeCommon {
  kind: typeof BTF_KIND_ENUM64;
  size: number;
  values: BtfEnum64Value[];
  signed: boolean;
}

export interface BtfFwd extends BtfTypeCommon {
  kind: typeof BTF_KIND_FWD;
  isUnion: boolean;
}

export interface BtfFunc extends BtfTypeCommon {
  kind: typeof BTF_KIND_FUNC;
  /** The FUNC_PROTO id. */
  type: number;
  /** BTF_FUNC_STATIC / GLOBAL / EXTERN (stored in vlen). */
  linkage: number;
}

export interface BtfParam {
  name: string;
  nameOff: number;
  type: number;
}

export interface BtfFuncProto extends BtfTypeCommon {
  kind: typeof BTF_KIND_FUNC_PROTO;
  /** Return type id (0 = void). */
  type: number;
  params: BtfParam[];
}

export interface BtfVar extends BtfTypeCommon {
  kind: typeof BTF_KIND_VAR;
  type: number;
  linkage: number;
}

export interface BtfVarSecinfo {
  type: number;
  offset: number;
  size: number;
}

export interface BtfDatasec extends BtfTypeCommon {
  kind: typeof BTF_KIND_DATASEC;
  size: number;
  vars: BtfVarSecinfo[];
}

export interface BtfFloat extends BtfTypeCommon {
  kind: typeof BTF_KIND_FLOAT;
  size: number;
}

export interface BtfDeclTag extends BtfTypeCommon {
  kind: typeof BTF_KIND_DECL_TAG;
  type: number;
  /** -1 for the type itself, else the member/param index. */
  componentIdx: number;
}

export type BtfType =
  | BtfVoid
  | BtfInt
  | BtfRef
  | BtfArray
  | BtfComposite
  | BtfEnum
  | BtfEnum64
  | BtfFwd
  | BtfFunc
  | BtfFuncProto
  | BtfVar
  | BtfDatasec
  | BtfFloat
  | BtfDeclTag;

/** Size in bytes of the kind-specific data after the 12-byte `struct btf_type`. */
export function btfTypeExtraSize(kind: number, vlen: number): number {
  switch (kind) {
    case BTF_KIND_INT:
      return 4;
    case BTF_KIND_ARRAY:
      return 12;
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
      return 12 * vlen;
    case BTF_KIND_ENUM:
      return 8 * vlen;
    case BTF_KIND_ENUM64:
      return 12 * vlen;
    case BTF_KIND_FUNC_PROTO:
      return 8 * vlen;
    case BTF_KIND_VAR:
      return 4;
    case BTF_KIND_DATASEC:
      return 12 * vlen;
    case BTF_KIND_DECL_TAG:
      return 4;
    case BTF_KIND_PTR:
    case BTF_KIND_FWD:
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_FUNC:
    case BTF_KIND_FLOAT:
    case BTF_KIND_TYPE_TAG:
      return 0;
    default:
      return -1;
  }
}

/** The shared "type" field of kinds whose btf_type word is a type id rather than a size. */
export function btfTypeHasSizeField(kind: number): boolean {
  return (
    kind === BTF_KIND_INT ||
    kind === BTF_KIND_STRUCT ||
    kind === BTF_KIND_UNION ||
    kind === BTF_KIND_ENUM ||
    kind === BTF_KIND_ENUM64 ||
    kind === BTF_KIND_DATASEC ||
    kind === BTF_KIND_FLOAT
  );
}

/** True for kinds that reference another type through the btf_type `type` word. */
export function btfTypeIsRef(t: BtfType): t is BtfRef {
  return (
    t.kind === BTF_KIND_PTR ||
    t.kind === BTF_KIND_TYPEDEF ||
    t.kind === BTF_KIND_VOLATILE ||
    t.kind === BTF_KIND_CONST ||
    t.kind === BTF_KIND_RESTRICT ||
    t.kind === BTF_KIND_TYPE_TAG
  );
}
