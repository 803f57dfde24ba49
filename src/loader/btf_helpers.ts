/**
 * The few libbpf BTF helpers the open phase needs (libbpf.c/btf.c: skip_mods_and_typedefs,
 * btf__resolve_size, btf__align_of, resolve_func_ptr, btf_member_bit_offset). They follow
 * libbpf's semantics, which differ from the kernel's in small ways (e.g. libbpf resolves
 * the size of a VAR and of a DATASEC), so they live with the loader.
 */
import type { Btf } from "../btf/btf.js";
import { btfTypeHasSize, btfTypeIsModifier } from "../btf/resolve.js";
import type { BtfComposite, BtfType } from "../btf/types.js";
import {
  BTF_KIND_ARRAY,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FLOAT,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_PTR,
  BTF_KIND_STRUCT,
  BTF_KIND_UNION,
  BTF_KIND_VAR,
} from "../uapi/btf.js";
import { BpfError, E2BIG, EINVAL } from "../uapi/errno.js";

const MAX_RESOLVE_DEPTH = 32;

export function isComposite(t: BtfType): t is BtfComposite {
  return t.kind === BTF_KIND_STRUCT || t.kind === BTF_KIND_UNION;
}

/** skip_mods_and_typedefs: follow CONST/VOLATILE/RESTRICT/TYPE_TAG/TYPEDEF; returns the final id and type. */
export function skipModsAndTypedefs(btf: Btf, id: number): { id: number; t: BtfType } {
  let t = btf.typeById(id);
  for (let depth = 0; btfTypeIsModifier(t) && depth < MAX_RESOLVE_DEPTH; depth++) {
    id = (t as { type: number }).type;
    t = btf.typeById(id);
  }
  return { id, t };
}

/** btf__resolve_type: like skipModsAndTypedefs but also through VAR; -EINVAL-style error on loops. */
export function resolveType(btf: Btf, id: number): number {
  for (let depth = 0; depth < MAX_RESOLVE_DEPTH; depth++) {
    const t = btf.typeById(id);
    if (btfTypeIsModifier(t) || t.kind === BTF_KIND_VAR) id = (t as { type: number }).type;
    else return id;
  }
  throw new BpfError(EINVAL, `type [${id}]: modifier chain too deep`, { typeId: id });
}

/** btf__resolve_size. */
export function resolveSize(btf: Btf, id: number): number {
  let nelems = 1;
  for (let depth = 0; depth < MAX_RESOLVE_DEPTH; depth++) {
    const t = btf.typeById(id);
    if (btfTypeHasSize(t)) {
      const size = nelems * t.size;
      if (size > 0xffffffff) throw new BpfError(E2BIG, `type [${id}]: size overflows u32`, { typeId: id });
      return size;
    }
    if (t.kind === BTF_KIND_PTR) return nelems * 8;
    if (t.kind === BTF_KIND_ARRAY) nelems *= t.nelems;
    else if (!btfTypeIsModifier(t) && t.kind !== BTF_KIND_VAR)
      throw new BpfError(EINVAL, `type [${id}]: cannot resolve the size of a ${t.kind} kind`, { typeId: id });
    id = (t as { type: number }).type;
  }
  throw new BpfError(EINVAL, `type [${id}]: type chain too deep`, { typeId: id });
}

/** btf__align_of: natural alignment, 1 for packed structs. */
export function alignOf(btf: Btf, id: number): number {
  const { t } = skipModsAndTypedefs(btf, id);
  switch (t.kind) {
    case BTF_KIND_INT:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_FLOAT:
      return Math.min(8, t.size);
    case BTF_KIND_PTR:
      return 8;
    case BTF_KIND_ARRAY:
      return alignOf(btf, t.type);
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION: {
      let max = 1;
      for (const m of t.members) {
        const a = alignOf(btf, m.type);
        // A member not at a multiple of its alignment means the struct is packed.
        if (m.bitfieldSize === 0 && m.bitOffset % (8 * a) !== 0) return 1;
        max = Math.max(max, a);
      }
      return t.size % max === 0 ? max : 1;
    }
    default:
      throw new BpfError(EINVAL, `type [${id}]: cannot determine alignment`, { typeId: id });
  }
}

/** resolve_func_ptr: the FUNC_PROTO id a (possibly typedef'd) pointer member points to, or 0. */
export function resolveFuncPtr(btf: Btf, id: number): number {
  const ptr = skipModsAndTypedefs(btf, id).t;
  if (ptr.kind !== BTF_KIND_PTR) return 0;
  const proto = skipModsAndTypedefs(btf, ptr.type);
  return proto.t.kind === BTF_KIND_FUNC_PROTO ? proto.id : 0;
}

/**
 * Essential name (bpf_core_essential_name_len): cut at the last `X___Y` flavour separator,
 * where X and Y are not underscores, so `tcp_sock___v1` becomes `tcp_sock`.
 */
export function essentialName(name: string): string {
  for (let i = name.length - 5; i >= 0; i--) {
    if (name[i] !== "_" && name.startsWith("___", i + 1) && name[i + 4] !== "_") return name.slice(0, i + 1);
  }
  return name;
}
