/**
 * CO-RE matching (libbpf relo_core.c, first half): the access spec of a relocation
 * ("0:3:1" = root[0].member3.member1, with anonymous members and array indices), target
 * candidates by essential name, and the compatibility rules a candidate must meet (field,
 * type and enum matching).
 */
import type { Btf } from "../btf/btf.js";
import type { BtfType } from "../btf/types.js";
import {
  BTF_INT_SIGNED,
  BTF_KIND_ARRAY,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FLOAT,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_FWD,
  BTF_KIND_INT,
  BTF_KIND_NAMES,
  BTF_KIND_PTR,
  BTF_KIND_STRUCT,
  BTF_KIND_UNION,
  BTF_KIND_UNKN,
} from "../uapi/btf.js";
import { BpfError, E2BIG, EINVAL } from "../uapi/errno.js";
import {
  BPF_CORE_ENUMVAL_EXISTS,
  BPF_CORE_ENUMVAL_VALUE,
  BPF_CORE_FIELD_RSHIFT_U64,
  BPF_CORE_TYPE_EXISTS,
  BPF_CORE_TYPE_ID_LOCAL,
  BPF_CORE_TYPE_ID_TARGET,
  BPF_CORE_TYPE_MATCHES,
  BPF_CORE_TYPE_SIZE,
  type BpfCoreRelo,
} from "./btf_ext.js";
import { essentialName, isComposite, resolveSize, skipModsAndTypedefs } from "./btf_helpers.js";

export const BPF_CORE_SPEC_MAX_LEN = 64;

export const CORE_RELO_KIND_NAMES = [
  "byte_off",
  "byte_sz",
  "field_exists",
  "signed",
  "lshift_u64",
  "rshift_u64",
  "local_type_id",
  "target_type_id",
  "type_exists",
  "type_size",
  "enumval_exists",
  "enumval_value",
  "type_matches",
];

export const isFieldBased = (k: number) => k <= BPF_CORE_FIELD_RSHIFT_U64;
export const isTypeBased = (k: number) =>
  k === BPF_CORE_TYPE_ID_LOCAL ||
  k === BPF_CORE_TYPE_ID_TARGET ||
  k === BPF_CORE_TYPE_EXISTS ||
  k === BPF_CORE_TYPE_SIZE ||
  k === BPF_CORE_TYPE_MATCHES;
export const isEnumvalBased = (k: number) => k === BPF_CORE_ENUMVAL_EXISTS || k === BPF_CORE_ENUMVAL_VALUE;
export const isAnyEnum = (t: BtfType) => t.kind === BTF_KIND_ENUM || t.kind === BTF_KIND_ENUM64;

export interface Accessor {
  typeId: number;
  idx: number;
  /** Member or enumerator name; undefined for array (and root) accesses. */
  name?: string;
}

/** struct bpf_core_spec. */
export interface CoreSpec {
  btf: Btf;
  rootTypeId: number;
  kind: number;
  spec: Accessor[];
  raw: number[];
  bitOffset: number;
}

/** A failure carrying a negative errno internally; EUCLEAN means "poison". */
export class CoreFail extends Error {
  constructor(readonly errno: number) {
    super(`-${errno}`);
  }
}
export const EUCLEAN = 117;

export function fail(errno: number): never {
  throw new CoreFail(errno);
}

export function sizeOr(btf: Btf, id: number): number {
  try {
    return resolveSize(btf, id);
  } catch (e) {
    if (e instanceof BpfError) fail(e.errno);
    throw e;
  }
}

/** is_flex_arr: an array of 0 elements that is the last member of the previous accessor's struct. */
export function isFlexArr(btf: Btf, prev: Accessor | undefined, nelems: number): boolean {
  if (!prev?.name || nelems > 0) return false;
  const t = btf.typeById(prev.typeId);
  return isComposite(t) && prev.idx === t.members.length - 1;
}

/** bpf_core_parse_spec. */
export function parseSpec(btf: Btf, relo: BpfCoreRelo): CoreSpec {
  const specStr = btf.validStrOff(relo.accessStrOff) ? btf.str(relo.accessStrOff) : "";
  if (specStr === "" || specStr.startsWith(":")) fail(EINVAL);
  const spec: CoreSpec = { btf, rootTypeId: relo.typeId, kind: relo.kind, spec: [], raw: [], bitOffset: 0 };
  if (isTypeBased(relo.kind)) {
    if (specStr !== "0") fail(EINVAL);
    return spec;
  }
  for (const part of specStr.split(":")) {
    if (!/^\d+$/.test(part)) fail(EINVAL);
    if (spec.raw.length === BPF_CORE_SPEC_MAX_LEN) fail(E2BIG);
    spec.raw.push(Number(part));
  }
  let { id, t } = skipModsAndTypedefs(btf, relo.typeId);
  let accessIdx = spec.raw[0] as number;
  spec.spec.push({ typeId: id, idx: accessIdx });
  if (isEnumvalBased(relo.kind)) {
    if (!isAnyEnum(t) || spec.raw.length > 1 || accessIdx >= t.values.length) fail(EINVAL);
    (spec.spec[0] as Accessor).name = t.values[accessIdx]?.name;
    return spec;
  }
  if (!isFieldBased(relo.kind)) fail(EINVAL);
  spec.bitOffset = accessIdx * sizeOr(btf, id) * 8;
  for (let i = 1; i < spec.raw.length; i++) {
    ({ id, t } = skipModsAndTypedefs(btf, id));
    accessIdx = spec.raw[i] as number;
    if (isComposite(t)) {
      const m = t.members[accessIdx];
      if (!m) fail(EINVAL);
      spec.bitOffset += m.bitOffset;
      if (m.nameOff) spec.spec.push({ typeId: id, idx: accessIdx, name: m.name });
      id = m.type;
    } else if (t.kind === BTF_KIND_ARRAY) {
      const nelems = t.nelems;
      const elem = skipModsAndTypedefs(btf, t.type);
      id = elem.id;
      if (!isFlexArr(btf, spec.spec[spec.spec.length - 1], nelems) && accessIdx >= nelems) fail(EINVAL);
      spec.spec.push({ typeId: id, idx: accessIdx });
      spec.bitOffset += accessIdx * sizeOr(btf, id) * 8;
    } else {
      fail(EINVAL);
    }
  }
  return spec;
}

export function specToString(s: CoreSpec): string {
  const t = s.btf.typeById(s.rootTypeId);
  const kindName = BTF_KIND_NAMES[t.kind] ?? "?";
  const base = `[${s.rootTypeId}] ${kindName.toLowerCase()} ${t.name}`;
  if (isTypeBased(s.kind)) return base;
  if (isEnumvalBased(s.kind)) {
    const e = s.btf.typeById(s.spec[0]?.typeId ?? 0);
    const val = isAnyEnum(e) ? e.values[s.spec[0]?.idx ?? 0]?.val : undefined;
    return `${base}::${s.spec[0]?.name ?? ""} = ${val}`;
  }
  const names = s.spec
    .slice(1)
    .map((a) => (a.name ? `.${a.name}` : `[${a.idx}]`))
    .join("");
  return `${base}${names} (${s.raw.join(":")} @ offset ${Math.floor(s.bitOffset / 8)}${s.bitOffset % 8 ? `.${s.bitOffset % 8}` : ""})`;
}

/** bpf_core_names_match on essential names. */
export function namesMatch(a: string, b: string): boolean {
  return essentialName(a) === essentialName(b);
}

/** bpf_core_fields_are_compat. */
export function fieldsAreCompat(lb: Btf, lid: number, tb: Btf, tid: number): boolean {
  for (let depth = 0; depth < 32; depth++) {
    const l = skipModsAndTypedefs(lb, lid).t;
    const t = skipModsAndTypedefs(tb, tid).t;
    if (isComposite(l) && isComposite(t)) return true;
    if (!(l.kind === t.kind || (isAnyEnum(l) && isAnyEnum(t)))) return false;
    switch (l.kind) {
      case BTF_KIND_PTR:
      case BTF_KIND_FLOAT:
        return true;
      case BTF_KIND_FWD:
      case BTF_KIND_ENUM:
      case BTF_KIND_ENUM64:
        return namesMatch(l.name, t.name);
      case BTF_KIND_INT:
        return l.kind === BTF_KIND_INT && t.kind === BTF_KIND_INT && l.offset === 0 && t.offset === 0;
      case BTF_KIND_ARRAY:
        if (t.kind !== BTF_KIND_ARRAY) return false;
        lid = l.type;
        tid = t.type;
        break;
      default:
        return false;
    }
  }
  return false;
}

/** bpf_core_types_are_compat. */
export function typesAreCompat(lb: Btf, lid: number, tb: Btf, tid: number, depth = 32): boolean {
  if (depth <= 0) fail(EINVAL);
  const l = skipModsAndTypedefs(lb, lid).t;
  const t = skipModsAndTypedefs(tb, tid).t;
  if (!(l.kind === t.kind || (isAnyEnum(l) && isAnyEnum(t)))) return false;
  switch (l.kind) {
    case BTF_KIND_UNKN:
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_FWD:
      return true;
    case BTF_KIND_INT:
      return t.kind === BTF_KIND_INT && l.offset === 0 && t.offset === 0;
    case BTF_KIND_PTR:
      return typesAreCompat(lb, l.type, tb, (t as { type: number }).type, depth - 1);
    case BTF_KIND_ARRAY:
      return typesAreCompat(lb, l.type, tb, (t as { type: number }).type, depth - 1);
    case BTF_KIND_FUNC_PROTO: {
      if (t.kind !== BTF_KIND_FUNC_PROTO || l.params.length !== t.params.length) return false;
      for (let i = 0; i < l.params.length; i++) {
        if (
          !typesAreCompat(
            lb,
            (l.params[i] as { type: number }).type,
            tb,
            (t.params[i] as { type: number }).type,
            depth - 1,
          )
        )
          return false;
      }
      return typesAreCompat(lb, l.type, tb, t.type, depth - 1);
    }
    default:
      return false;
  }
}

/** bpf_core_types_match (TYPE_MATCHES): a stricter, name- and layout-aware comparison. */
export function typesMatch(lb: Btf, lid: number, tb: Btf, tid: number, behindPtr = false, depth = 32): boolean {
  if (depth <= 0) fail(EINVAL);
  const l = skipModsAndTypedefs(lb, lid).t;
  const t = skipModsAndTypedefs(tb, tid).t;
  if (!namesMatch(l.name, t.name)) return false;
  if (l.kind === BTF_KIND_FWD || t.kind === BTF_KIND_FWD) {
    // A forward declaration matches a composite of its flavour (behind a pointer, or as is).
    const lu = l.kind === BTF_KIND_FWD ? l.isUnion : l.kind === BTF_KIND_UNION;
    const tu = t.kind === BTF_KIND_FWD ? t.isUnion : t.kind === BTF_KIND_UNION;
    return lu === tu && (isComposite(l) || isComposite(t) || l.kind === t.kind);
  }
  if (!(l.kind === t.kind || (isAnyEnum(l) && isAnyEnum(t)))) return false;
  switch (l.kind) {
    case BTF_KIND_UNKN:
      return true;
    case BTF_KIND_FLOAT:
      return t.kind === BTF_KIND_FLOAT && l.size === t.size;
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64: {
      if (!isAnyEnum(t) || (!behindPtr && l.size !== t.size)) return false;
      return l.values.every((v) => t.values.some((w) => namesMatch(v.name, w.name)));
    }
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION: {
      if (behindPtr) return true;
      if (!isComposite(t) || l.members.length > t.members.length) return false;
      return l.members.every((m) => {
        const tm = t.members.find((x) => x.name === m.name);
        return tm !== undefined && typesMatch(lb, m.type, tb, tm.type, false, depth - 1);
      });
    }
    case BTF_KIND_INT:
      return (
        t.kind === BTF_KIND_INT && l.size === t.size && (l.encoding & BTF_INT_SIGNED) === (t.encoding & BTF_INT_SIGNED)
      );
    case BTF_KIND_PTR:
      return typesMatch(lb, l.type, tb, (t as { type: number }).type, true, depth - 1);
    case BTF_KIND_ARRAY:
      return (
        t.kind === BTF_KIND_ARRAY && l.nelems === t.nelems && typesMatch(lb, l.type, tb, t.type, behindPtr, depth - 1)
      );
    case BTF_KIND_FUNC_PROTO: {
      if (t.kind !== BTF_KIND_FUNC_PROTO || l.params.length !== t.params.length) return false;
      for (let i = 0; i < l.params.length; i++) {
        const lp = l.params[i] as { type: number };
        const tp = t.params[i] as { type: number };
        if (!typesMatch(lb, lp.type, tb, tp.type, behindPtr, depth - 1)) return false;
      }
      return typesMatch(lb, l.type, tb, t.type, behindPtr, depth - 1);
    }
    default:
      return false;
  }
}

/** bpf_core_match_member: find the local member by name in the target, through anonymous members. */
export function matchMember(
  lb: Btf,
  acc: Accessor,
  tb: Btf,
  targId: number,
  ts: CoreSpec,
): { found: boolean; next: number } {
  const lt = lb.typeById(acc.typeId);
  const lm = isComposite(lt) ? lt.members[acc.idx] : undefined;
  if (!lm) fail(EINVAL);
  const { id: tid, t } = skipModsAndTypedefs(tb, targId);
  if (!isComposite(t)) return { found: false, next: 0 };
  for (let i = 0; i < t.members.length; i++) {
    const m = t.members[i];
    if (!m) continue;
    if (ts.raw.length === BPF_CORE_SPEC_MAX_LEN) fail(E2BIG);
    ts.bitOffset += m.bitOffset;
    ts.raw.push(i);
    if (m.name === "") {
      const r = matchMember(lb, acc, tb, m.type, ts);
      if (r.found) return r;
    } else if (m.name === lm.name) {
      ts.spec.push({ typeId: tid, idx: i, name: m.name });
      if (fieldsAreCompat(lb, lm.type, tb, m.type)) return { found: true, next: m.type };
      ts.spec.pop();
      return { found: false, next: 0 };
    }
    ts.bitOffset -= m.bitOffset;
    ts.raw.pop();
  }
  return { found: false, next: 0 };
}

/** bpf_core_spec_match: does target type `targId` satisfy the local spec? Fills `ts`. */
export function specMatch(ls: CoreSpec, tb: Btf, targId: number): CoreSpec | undefined {
  const ts: CoreSpec = { btf: tb, rootTypeId: targId, kind: ls.kind, spec: [], raw: [], bitOffset: 0 };
  if (isTypeBased(ls.kind)) {
    const ok =
      ls.kind === BPF_CORE_TYPE_MATCHES
        ? typesMatch(ls.btf, ls.rootTypeId, tb, targId)
        : typesAreCompat(ls.btf, ls.rootTypeId, tb, targId);
    return ok ? ts : undefined;
  }
  if (isEnumvalBased(ls.kind)) {
    const { id, t } = skipModsAndTypedefs(tb, targId);
    if (!isAnyEnum(t)) return undefined;
    const want = essentialName(ls.spec[0]?.name ?? "");
    const i = t.values.findIndex((v) => essentialName(v.name) === want);
    if (i < 0) return undefined;
    ts.spec.push({ typeId: id, idx: i, name: t.values[i]?.name });
    ts.raw.push(i);
    return ts;
  }
  let tid = targId;
  for (let i = 0; i < ls.spec.length; i++) {
    const acc = ls.spec[i] as Accessor;
    if (acc.name) {
      const r = matchMember(ls.btf, acc, tb, tid, ts);
      if (!r.found) return undefined;
      tid = r.next;
      continue;
    }
    if (i > 0) {
      const { t } = skipModsAndTypedefs(tb, tid);
      if (t.kind !== BTF_KIND_ARRAY) return undefined;
      if (!isFlexArr(tb, ts.spec[ts.spec.length - 1], t.nelems) && acc.idx >= t.nelems) return undefined;
      tid = skipModsAndTypedefs(tb, t.type).id;
    }
    if (ts.raw.length === BPF_CORE_SPEC_MAX_LEN) fail(E2BIG);
    ts.spec.push({ typeId: tid, idx: acc.idx });
    ts.raw.push(acc.idx);
    ts.bitOffset += acc.idx * sizeOr(tb, tid) * 8;
  }
  return ts;
}

/** bpf_core_add_cands: target types of the same kind whose essential name matches. */
export function findCands(lb: Btf, localId: number, tb: Btf): number[] {
  const lt = lb.typeById(localId);
  const want = essentialName(lt.name);
  const out: number[] = [];
  for (const id of tb.findAllByName(want)) {
    const t = tb.typeById(id);
    if (t.kind === lt.kind || (isAnyEnum(t) && isAnyEnum(lt))) out.push(id);
  }
  // Flavoured target names (`foo___x`) are candidates too; they are rare in kernel BTF.
  return out;
}
