/**
 * Typed kernel memory (kernel/bpf/btf.c): btf_ctx_access, the context of tracing-style programs
 * (struct_ops included) as a u64 array of the attached function's arguments; and
 * btf_struct_access/btf_struct_walk, reads of kernel structs resolved against their members.
 */
import type { Btf } from "../btf/btf.js";
import type { BtfFuncProto, BtfType } from "../btf/types.js";
import {
  BTF_KIND_ARRAY,
  BTF_KIND_CONST,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_PTR,
  BTF_KIND_RESTRICT,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPE_TAG,
  BTF_KIND_TYPEDEF,
  BTF_KIND_UNION,
  BTF_KIND_VOLATILE,
} from "../uapi/btf.js";

const MODIFIERS = new Set([BTF_KIND_TYPEDEF, BTF_KIND_CONST, BTF_KIND_VOLATILE, BTF_KIND_RESTRICT, BTF_KIND_TYPE_TAG]);

/** Follow typedefs and qualifiers; returns [id, type]. */
export function btfSkipModifiers(btf: Btf, id: number): [number, BtfType] {
  let t = btf.typeById(id);
  for (let n = 0; MODIFIERS.has(t.kind) && n < 32; n++) {
    id = (t as { type: number }).type;
    t = btf.typeById(id);
  }
  return [id, t];
}

export function btfTypeSize(btf: Btf, id: number): number {
  const [, t] = btfSkipModifiers(btf, id);
  switch (t.kind) {
    case BTF_KIND_PTR:
      return 8;
    case BTF_KIND_ARRAY:
      return t.nelems * btfTypeSize(btf, t.type);
    case BTF_KIND_INT:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
      return t.size;
    default:
      return "size" in t && typeof t.size === "number" ? t.size : 0;
  }
}

export function btfName(btf: Btf, id: number): string {
  const [, t] = btfSkipModifiers(btf, id);
  return t.name || "(anon)";
}

/** Resolve a member's type to the FUNC_PROTO of a function pointer, if it is one. */
export function btfFuncPtrProto(btf: Btf, id: number): BtfFuncProto | undefined {
  const [, t] = btfSkipModifiers(btf, id);
  if (t.kind !== BTF_KIND_PTR) return undefined;
  const [, p] = btfSkipModifiers(btf, t.type);
  return p.kind === BTF_KIND_FUNC_PROTO ? p : undefined;
}

/** The struct a pointer type points to (through modifiers), or 0. */
export function btfPtrToStruct(btf: Btf, id: number): number {
  const [, t] = btfSkipModifiers(btf, id);
  if (t.kind !== BTF_KIND_PTR) return 0;
  const [sid, s] = btfSkipModifiers(btf, t.type);
  return s.kind === BTF_KIND_STRUCT ? sid : 0;
}

export type AccessResult =
  | {
      ok: true;
      ptrBtfId: number;
      /** A pointer member read whole: the struct holding it, its name, and an `__rcu` type tag. */
      owner?: string;
      field?: string;
      rcuTag?: boolean;
    }
  | { ok: false; msg: string };

/**
 * Pointer members whose trust a walk keeps (BTF_TYPE_SAFE_TRUSTED, _TRUSTED_OR_NULL, _RCU,
 * _RCU_OR_NULL in kernel/bpf/verifier.c), by struct name.
 */
export const BTF_TYPE_SAFE_TRUSTED: Readonly<Record<string, readonly string[]>> = {
  bpf_iter_meta: ["seq"],
  bpf_iter__task: ["task"],
  linux_binprm: ["file"],
  file: ["f_inode"],
};
export const BTF_TYPE_SAFE_TRUSTED_OR_NULL: Readonly<Record<string, readonly string[]>> = {
  socket: ["sk"],
  dentry: ["d_inode"],
  vm_area_struct: ["vm_mm", "vm_file"],
};
export const BTF_TYPE_SAFE_RCU: Readonly<Record<string, readonly string[]>> = {
  task_struct: ["cpus_ptr", "cgroups", "real_parent", "group_leader"],
  cgroup: ["kn"],
  css_set: ["dfl_cgrp"],
  cgroup_subsys_state: ["cgroup"],
};
export const BTF_TYPE_SAFE_RCU_OR_NULL: Readonly<Record<string, readonly string[]>> = {
  mm_struct: ["exe_file"],
  sk_buff: ["sk"],
  request_sock: ["sk"],
};

/** Is `field` of struct `owner` in one of the lists above? */
export const safeField = (list: Readonly<Record<string, readonly string[]>>, owner = "", field = ""): boolean =>
  Object.hasOwn(list, owner) && list[owner].includes(field);

/** Does the pointer type `id` carry an `__rcu` type tag (PTR -> TYPE_TAG "rcu" -> ...)? */
function hasRcuTag(btf: Btf, id: number): boolean {
  let t = btf.typeById(id);
  for (let n = 0; n < 32; n++) {
    if (t.kind === BTF_KIND_TYPE_TAG && t.name === "rcu") return true;
    if (!MODIFIERS.has(t.kind) && t.kind !== BTF_KIND_PTR) return false;
    t = btf.typeById((t as { type: number }).type);
  }
  return false;
}

/** MAX_BPF_FUNC_ARGS: the context of a tracing-style program holds this many u64 arguments. */
export const MAX_BPF_FUNC_ARGS = 12;

/**
 * bpf_tracing_btf_ctx_access: bpf_tracing_ctx_access's silent bounds (no negative offset, none
 * past the last argument slot, reads only, aligned to the size), then btf_ctx_access on argument
 * `off / 8` of `proto`. Pointer-to-struct arguments give a typed pointer (ptrBtfId), anything
 * else a scalar (ptrBtfId 0). A refusal's msg is what btf_ctx_access logs ("" for none).
 */
export function btfCtxAccess(
  btf: Btf,
  proto: BtfFuncProto,
  fname: string,
  off: number,
  size: number,
  write: boolean,
): AccessResult {
  if (off < 0 || off >= 8 * MAX_BPF_FUNC_ARGS || write || off % size !== 0) return { ok: false, msg: "" };
  if (off % 8 !== 0) return { ok: false, msg: `func '${fname}' offset ${off} is not multiple of 8` };
  const arg = btfCtxArgIdx(btf, proto, off);
  // arg == nr_args is the return value, which only fexit/LSM-style attach types may read.
  if (arg >= proto.params.length) return { ok: false, msg: `func '${fname}' doesn't have ${arg + 1}-th argument` };
  return { ok: true, ptrBtfId: btfPtrToStruct(btf, proto.params[arg].type) };
}

/**
 * btf_ctx_arg_idx: the argument whose u64 slots hold context offset `off` (an argument passed by
 * value takes its size rounded up to 8), nr_args for the return value's slots, nr_args + 1 past
 * them.
 */
export function btfCtxArgIdx(btf: Btf, proto: BtfFuncProto, off: number): number {
  const slot = (id: number): number => {
    const [, t] = btfSkipModifiers(btf, id);
    if (t.kind === BTF_KIND_PTR) return 8;
    const size = "size" in t && typeof t.size === "number" ? t.size : 0;
    return Math.ceil(size / 8) * 8;
  };
  let end = 0;
  for (let i = 0; i < proto.params.length; i++) {
    end += slot(proto.params[i].type);
    if (off < end) return i;
  }
  end += slot(proto.type);
  return off < end ? proto.params.length : proto.params.length + 1;
}

/** Is struct `id` the struct named `want`, or does it start with one (its first member, recursively)? */
export function btfStructIdsMatch(btf: Btf, id: number, want: string): boolean {
  for (let n = 0; n < 16 && id; n++) {
    const [sid, t] = btfSkipModifiers(btf, id);
    if (t.kind !== BTF_KIND_STRUCT) return false;
    if (t.name === want) return true;
    const first = t.members[0];
    if (first?.bitOffset !== 0) return false;
    id = first.type;
    void sid;
  }
  return false;
}

/**
 * btf_struct_walk for a read of `size` bytes at `off` in struct `id`: a pointer field read whole
 * gives a typed pointer to its struct; every other read gives a scalar.
 */
export function btfStructRead(btf: Btf, id: number, off: number, size: number): AccessResult {
  let [, t] = btfSkipModifiers(btf, id);
  const name = t.name;
  if (t.kind !== BTF_KIND_STRUCT && t.kind !== BTF_KIND_UNION)
    return { ok: false, msg: `type ${name} is not a struct` };
  if (off < 0) return { ok: false, msg: `invalid negative access: off=${off}` };
  if (off + size > t.size) return { ok: false, msg: `access beyond struct ${name} at off ${off} size ${size}` };
  for (let depth = 0; depth < 32; depth++) {
    if (t.kind !== BTF_KIND_STRUCT && t.kind !== BTF_KIND_UNION) break;
    let found = false;
    for (const m of t.members) {
      if (m.bitfieldSize) continue;
      const moff = m.bitOffset / 8;
      const msize = btfTypeSize(btf, m.type);
      if (off < moff || off >= moff + msize) continue;
      let [mid, mt] = btfSkipModifiers(btf, m.type);
      let inner = off - moff;
      while (mt.kind === BTF_KIND_ARRAY) {
        const esz = btfTypeSize(btf, mt.type);
        if (esz === 0) break;
        inner %= esz;
        [mid, mt] = btfSkipModifiers(btf, mt.type);
      }
      if (mt.kind === BTF_KIND_STRUCT || mt.kind === BTF_KIND_UNION) {
        t = mt;
        off = inner;
        found = true;
        break;
      }
      if (mt.kind === BTF_KIND_PTR && inner === 0 && size === 8)
        return {
          ok: true,
          ptrBtfId: btfPtrToStruct(btf, mid),
          owner: t.name,
          field: m.name,
          rcuTag: hasRcuTag(btf, m.type),
        };
      return { ok: true, ptrBtfId: 0 };
    }
    if (!found) return { ok: true, ptrBtfId: 0 };
  }
  return { ok: true, ptrBtfId: 0 };
}
