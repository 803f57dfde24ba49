/**
 * Special fields of map values and program-allocated objects (kernel/bpf/btf.c: btf_parse_fields,
 * btf_find_field and friends, btf_parse_struct_metas; include/linux/bpf.h: struct btf_record):
 * bpf_spin_lock, bpf_timer, bpf_list_head/bpf_list_node, bpf_rb_root/bpf_rb_node, bpf_refcount,
 * kptrs, with `contains:TYPE:FIELD` decl tags naming what a graph root holds. Failures are the
 * kernel's errnos (the kernel logs nothing here).
 */
import {
  BTF_KIND_ARRAY,
  BTF_KIND_DATASEC,
  BTF_KIND_DECL_TAG,
  BTF_KIND_PTR,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPE_TAG,
  BTF_KIND_UNION,
} from "../uapi/btf.js";
import { BpfError, E2BIG, EEXIST, EFAULT, EINVAL, ELOOP, ENOENT } from "../uapi/errno.js";
import type { Btf } from "./btf.js";
import { btfTypeSkipModifiers, MAX_RESOLVE_DEPTH } from "./resolve.js";
import type { BtfComposite, BtfDatasec, BtfType } from "./types.js";

/** enum btf_field_type. */
export const BPF_SPIN_LOCK = 1 << 0;
export const BPF_TIMER = 1 << 1;
export const BPF_KPTR_UNREF = 1 << 2;
export const BPF_KPTR_REF = 1 << 3;
export const BPF_KPTR_PERCPU = 1 << 4;
export const BPF_LIST_HEAD = 1 << 5;
export const BPF_LIST_NODE = 1 << 6;
export const BPF_RB_ROOT = 1 << 7;
export const BPF_RB_NODE = 1 << 8;
export const BPF_REFCOUNT = 1 << 9;
export const BPF_WORKQUEUE = 1 << 10;
export const BPF_UPTR = 1 << 11;
export const BPF_RES_SPIN_LOCK = 1 << 12;
export const BPF_TASK_WORK = 1 << 13;
export const BPF_KPTR = BPF_KPTR_UNREF | BPF_KPTR_REF | BPF_KPTR_PERCPU;
export const BPF_GRAPH_ROOT = BPF_LIST_HEAD | BPF_RB_ROOT;
export const BPF_GRAPH_NODE = BPF_LIST_NODE | BPF_RB_NODE;

/** What map_check_btf asks btf_parse_fields for. */
export const MAP_VALUE_FIELDS =
  BPF_SPIN_LOCK |
  BPF_RES_SPIN_LOCK |
  BPF_TIMER |
  BPF_KPTR |
  BPF_LIST_HEAD |
  BPF_RB_ROOT |
  BPF_REFCOUNT |
  BPF_WORKQUEUE |
  BPF_UPTR |
  BPF_TASK_WORK;
/** What btf_parse_struct_metas asks for (program-allocated types). */
export const ALLOC_OBJ_FIELDS =
  BPF_SPIN_LOCK |
  BPF_RES_SPIN_LOCK |
  BPF_LIST_HEAD |
  BPF_LIST_NODE |
  BPF_RB_ROOT |
  BPF_RB_NODE |
  BPF_REFCOUNT |
  BPF_KPTR;

/** BTF_FIELDS_MAX. */
export const BTF_FIELDS_MAX = 11;

const FIELD_NAME: Record<number, string> = {
  [BPF_SPIN_LOCK]: "bpf_spin_lock",
  [BPF_RES_SPIN_LOCK]: "bpf_res_spin_lock",
  [BPF_TIMER]: "bpf_timer",
  [BPF_WORKQUEUE]: "bpf_wq",
  [BPF_TASK_WORK]: "bpf_task_work",
  [BPF_LIST_HEAD]: "bpf_list_head",
  [BPF_LIST_NODE]: "bpf_list_node",
  [BPF_RB_ROOT]: "bpf_rb_root",
  [BPF_RB_NODE]: "bpf_rb_node",
  [BPF_REFCOUNT]: "bpf_refcount",
  [BPF_KPTR_UNREF]: "kptr",
  [BPF_KPTR_REF]: "kptr",
  [BPF_KPTR_PERCPU]: "percpu_kptr",
  [BPF_UPTR]: "uptr",
};
/** Only one of each in a value (btf_get_field_type's seen_mask). */
const UNIQUE = BPF_SPIN_LOCK | BPF_RES_SPIN_LOCK | BPF_TIMER | BPF_WORKQUEUE | BPF_TASK_WORK | BPF_REFCOUNT;
const NAMED = [
  BPF_SPIN_LOCK,
  BPF_RES_SPIN_LOCK,
  BPF_TIMER,
  BPF_WORKQUEUE,
  BPF_TASK_WORK,
  BPF_LIST_HEAD,
  BPF_LIST_NODE,
  BPF_RB_ROOT,
  BPF_RB_NODE,
  BPF_REFCOUNT,
];

/** btf_field_type_name. */
export function btfFieldTypeName(type: number): string {
  return FIELD_NAME[type] ?? "unknown";
}

/** btf_field_type_size / btf_field_type_align (x86-64). */
export function btfFieldTypeSize(type: number): number {
  switch (type) {
    case BPF_SPIN_LOCK:
    case BPF_RES_SPIN_LOCK:
    case BPF_REFCOUNT:
      return 4;
    case BPF_TIMER:
    case BPF_WORKQUEUE:
    case BPF_LIST_HEAD:
    case BPF_RB_ROOT:
      return 16;
    case BPF_LIST_NODE:
      return 24;
    case BPF_RB_NODE:
      return 32;
    case BPF_TASK_WORK:
      return 8;
    default:
      return 8; // kptrs, uptr
  }
}

export function btfFieldTypeAlign(type: number): number {
  return type === BPF_SPIN_LOCK || type === BPF_RES_SPIN_LOCK || type === BPF_REFCOUNT ? 4 : 8;
}

/** struct btf_field_graph_root: what a list head or rb root holds. */
export interface BtfFieldGraphRoot {
  /** The contained struct in the record's BTF. */
  valueBtfId: number;
  /** Offset of its bpf_list_node / bpf_rb_node. */
  nodeOffset: number;
  /** The contained type's own record (btf_check_and_fixup_fields), once the BTF's metas exist. */
  valueRec?: BtfRecord | null;
}

/** struct btf_field_kptr as parsed here: the pointee in the record's BTF. */
export interface BtfFieldKptr {
  /** The pointee struct (modifiers skipped) in the record's BTF. */
  localTypeId: number;
  /** Its name (what the verifier matches a local kptr's program type by). */
  name: string;
  /** Resolved by the kernel (vmlinux or a module): its BTF and id; absent for a local type. */
  btf?: Btf;
  btfId?: number;
}

/** struct btf_field. */
export interface BtfField {
  offset: number;
  size: number;
  type: number;
  kptr?: BtfFieldKptr;
  graphRoot?: BtfFieldGraphRoot;
}

/** struct btf_record. Offsets are -1 when absent (the kernel's -EINVAL). */
export interface BtfRecord {
  cnt: number;
  fieldMask: number;
  spinLockOff: number;
  resSpinLockOff: number;
  timerOff: number;
  wqOff: number;
  refcountOff: number;
  taskWorkOff: number;
  fields: BtfField[];
}

/** btf_record_has_field (NULL and error records have nothing). */
export function btfRecordHasField(rec: BtfRecord | null | undefined | BpfError, type: number): boolean {
  return !!rec && !(rec instanceof BpfError) && (rec.fieldMask & type) !== 0;
}

/** btf_record_find: the field of `mask` at `offset`. */
export function btfRecordFind(rec: BtfRecord | null | undefined, offset: number, mask: number): BtfField | undefined {
  if (!rec || !(rec.fieldMask & mask)) return undefined;
  return rec.fields.find((f) => f.offset === offset && (f.type & mask) !== 0);
}

/**
 * Resolves a kptr's pointee by name in vmlinux or a module (bpf_find_btf_id); undefined if absent
 * (a type of the program's own). `type` is the field's kind: a referenced kptr of a kernel type
 * needs a registered destructor (btf_parse_kptr), so the resolver may throw the kernel's errno.
 */
export type KptrResolver = (name: string, kind: number, type: number) => { btf: Btf; id: number } | undefined;

interface FieldInfo {
  type: number;
  off: number;
  kptrTypeId?: number;
  valueBtfId?: number;
  nodeName?: string;
}

const fail = (errno: number, msg: string): never => {
  throw new BpfError(errno, msg);
};

const isStruct = (t: BtfType): t is BtfComposite => t.kind === BTF_KIND_STRUCT || t.kind === BTF_KIND_UNION;

/** btf_get_field_type: 0 when `t` is nothing special. */
function getFieldType(t: BtfType, mask: number, seen: { mask: number }): number {
  for (const type of NAMED) {
    if (!(mask & type) || t.name !== FIELD_NAME[type]) continue;
    if (UNIQUE & type) {
      if (seen.mask & type) fail(E2BIG, `more than one ${FIELD_NAME[type]}`);
      seen.mask |= type;
    }
    return type;
  }
  // Only a pointer can be a kptr once no special name matched.
  if (mask & (BPF_KPTR | BPF_UPTR) && !isStruct(t)) return BPF_KPTR_REF;
  return 0;
}

/** btf_find_next_decl_tag: the next `key`-prefixed decl tag on (pt, compIdx) after id `after`. */
function findNextDeclTag(btf: Btf, ptId: number, compIdx: number, key: string, after: number): number {
  for (let id = after + 1; id <= btf.nrTypes; id++) {
    if (btf.kindOf(id) !== BTF_KIND_DECL_TAG) continue;
    const t = btf.typeById(id) as { type: number; componentIdx: number; name: string };
    if (t.type === ptId && t.componentIdx === compIdx && t.name.startsWith(key)) return id;
  }
  return -ENOENT;
}

/** btf_find_decl_tag_value: exactly one such tag, or an error. */
export function btfFindDeclTagValue(btf: Btf, ptId: number, compIdx: number, key: string): string | number {
  const id = findNextDeclTag(btf, ptId, compIdx, key, 0);
  if (id < 0) return id;
  const value = btf.typeById(id).name.slice(key.length);
  if (findNextDeclTag(btf, ptId, compIdx, key, id) >= 0) return -EEXIST;
  return value;
}

/** btf_find_struct: a named special struct of the right size (else ignored). */
function findStruct(t: BtfType, off: number, sz: number, type: number): FieldInfo | undefined {
  if (!isStruct(t) || t.size !== sz) return undefined;
  return { type, off };
}

/** btf_find_kptr. */
function findKptr(btf: Btf, t: BtfType, off: number, mask: number): FieldInfo | undefined {
  if (t.kind !== BTF_KIND_PTR) return undefined;
  const tag = btf.typeById(t.type);
  if (tag.kind !== BTF_KIND_TYPE_TAG) return undefined;
  if (btf.typeById(tag.type).kind === BTF_KIND_TYPE_TAG) fail(EINVAL, "a kptr has more than one type tag");
  const type =
    tag.name === "kptr_untrusted"
      ? BPF_KPTR_UNREF
      : tag.name === "kptr"
        ? BPF_KPTR_REF
        : tag.name === "percpu_kptr"
          ? BPF_KPTR_PERCPU
          : tag.name === "uptr"
            ? BPF_UPTR
            : fail(EINVAL, `unknown pointer type tag '${tag.name}'`);
  if (!(type & mask)) return undefined;
  const base = btfTypeSkipModifiers(btf, tag.type);
  if (!isStruct(base.type)) fail(EINVAL, "a kptr must point to a struct");
  return { type, off, kptrTypeId: base.id };
}

/** btf_find_graph_root: the `contains:TYPE:FIELD` tag on (pt, compIdx). */
function findGraphRoot(btf: Btf, ptId: number, t: BtfType, compIdx: number, off: number, sz: number, type: number) {
  if (!("size" in t) || t.size !== sz) return undefined;
  const tag = btfFindDeclTagValue(btf, ptId, compIdx, "contains:");
  if (typeof tag === "number") return fail(EINVAL, "a graph root needs exactly one contains: decl tag");
  const colon = tag.indexOf(":");
  if (colon < 0) return fail(EINVAL, `contains:${tag} names no field`);
  const id = btf.findByNameKind(tag.slice(0, colon), BTF_KIND_STRUCT);
  if (id <= 0) fail(ENOENT, `contains: struct ${tag.slice(0, colon)} does not exist`);
  const nodeName = tag.slice(colon + 1);
  if (!nodeName) fail(EINVAL, `contains:${tag} names no field`);
  return { type, off, valueBtfId: id, nodeName } satisfies FieldInfo;
}

/** btf_repeat_fields: an array of fields, flattened. */
function repeatFields(info: FieldInfo[], first: number, cnt: number, repeat: number, elemSize: number): void {
  for (let i = first; i < first + cnt; i++) {
    const t = info[i].type;
    if (!(t & (BPF_KPTR | BPF_UPTR | BPF_GRAPH_ROOT))) fail(EINVAL, `an array of ${FIELD_NAME[t]}`);
  }
  if (cnt * (repeat + 1) > BTF_FIELDS_MAX) fail(E2BIG, "too many special fields");
  for (let r = 1; r <= repeat; r++) {
    for (let i = first; i < first + cnt; i++) info.push({ ...info[i], off: info[i].off + r * elemSize });
  }
}

/** btf_find_field_one: the fields of one member (or datasec variable) at `off`. */
function findFieldOne(
  btf: Btf,
  ptId: number,
  typeId: number,
  compIdx: number,
  off: number,
  expectedSize: number,
  mask: number,
  seen: { mask: number },
  info: FieldInfo[],
  level: number,
): void {
  let t = btf.typeById(typeId);
  let nelems = 1;
  let depth = 0;
  for (; depth < MAX_RESOLVE_DEPTH && t.kind === BTF_KIND_ARRAY; depth++) {
    const a = t as unknown as { type: number; nelems: number };
    nelems *= a.nelems;
    typeId = a.type;
    t = btf.typeById(typeId);
  }
  if (depth === MAX_RESOLVE_DEPTH) fail(E2BIG, "array nesting too deep");
  if (nelems === 0) return;
  const type = getFieldType(t, mask, seen);
  if (!type && isStruct(t)) {
    if (expectedSize && expectedSize !== t.size * nelems) return;
    // btf_find_nested_struct: the inner struct's fields at their offsets in the container.
    if (level + 1 >= MAX_RESOLVE_DEPTH) fail(E2BIG, "struct nesting too deep");
    const start = info.length;
    findStructField(btf, typeId, t, mask, info, level + 1);
    const n = info.length - start;
    for (let i = start; i < info.length; i++) info[i].off += off;
    if (n > 0 && nelems > 1) repeatFields(info, start, n, nelems - 1, t.size);
    return;
  }
  if (!type) return;
  const sz = btfFieldTypeSize(type);
  if (expectedSize && expectedSize !== sz * nelems) return;
  if (off % btfFieldTypeAlign(type)) return;
  let found: FieldInfo | undefined;
  if (type & (BPF_KPTR | BPF_UPTR)) found = findKptr(btf, t, off, mask);
  else if (type & BPF_GRAPH_ROOT) found = findGraphRoot(btf, ptId, t, compIdx, off, sz, type);
  else found = findStruct(t, off, sz, type);
  if (!found) return;
  if (info.length >= BTF_FIELDS_MAX) fail(E2BIG, "too many special fields");
  info.push(found);
  if (nelems > 1) repeatFields(info, info.length - 1, 1, nelems - 1, sz);
}

/** btf_find_struct_field. */
function findStructField(btf: Btf, id: number, t: BtfComposite, mask: number, info: FieldInfo[], level: number) {
  const seen = { mask: 0 };
  t.members.forEach((m, i) => {
    if (m.bitOffset % 8) fail(EINVAL, `member ${m.name} is not byte aligned`);
    findFieldOne(btf, id, m.type, i, m.bitOffset / 8, 0, mask, seen, info, level);
  });
}

/** btf_parse_graph_root: the contained struct's node member. */
function parseGraphRoot(btf: Btf, info: FieldInfo, nodeTypeName: string): BtfFieldGraphRoot {
  const value = btf.typeById(info.valueBtfId as number) as BtfComposite;
  let node: BtfFieldGraphRoot | undefined;
  for (const m of value.members) {
    if (m.name !== info.nodeName) continue;
    if (node) fail(EINVAL, `struct ${value.name} has two members named ${m.name}`);
    const n = btf.typeById(m.type);
    if (!isStruct(n) || n.name !== nodeTypeName) fail(EINVAL, `${value.name}.${m.name} is not a ${nodeTypeName}`);
    if (m.bitOffset % 8 || (m.bitOffset / 8) % 8) fail(EINVAL, `${value.name}.${m.name} is misaligned`);
    node = { valueBtfId: info.valueBtfId as number, nodeOffset: m.bitOffset / 8 };
  }
  if (!node) return fail(ENOENT, `struct ${value.name} has no member ${info.nodeName}`);
  return node;
}

/**
 * btf_parse_fields: the record of struct or datasec `typeId`, null when it has no special field.
 * Throws BpfError with the kernel's errno. `resolveKptr` finds a kptr's kernel type; without it
 * (or when it finds nothing) the kptr keeps only its local type.
 */
export function btfParseFields(
  btf: Btf,
  typeId: number,
  mask: number,
  valueSize: number,
  resolveKptr?: KptrResolver,
): BtfRecord | null {
  const t = btf.typeById(typeId);
  const info: FieldInfo[] = [];
  if (isStruct(t)) findStructField(btf, typeId, t, mask, info, 0);
  else if (t.kind === BTF_KIND_DATASEC) {
    const seen = { mask: 0 };
    for (const v of (t as BtfDatasec).vars) {
      const varT = btf.typeById(v.type) as { type: number };
      findFieldOne(btf, v.type, varT.type, -1, v.offset, v.size, mask, seen, info, 0);
    }
  } else fail(EINVAL, "a record is parsed from a struct or a datasec");
  if (info.length === 0) return null;
  const rec: BtfRecord = {
    cnt: 0,
    fieldMask: 0,
    spinLockOff: -1,
    resSpinLockOff: -1,
    timerOff: -1,
    wqOff: -1,
    refcountOff: -1,
    taskWorkOff: -1,
    fields: [],
  };
  let nextOff = 0;
  for (const fi of info) {
    const size = btfFieldTypeSize(fi.type);
    if (fi.off + size > valueSize) fail(EFAULT, `verifier bug off ${fi.off} size ${valueSize}`);
    if (fi.off < nextOff) fail(EEXIST, `${btfFieldTypeName(fi.type)} at ${fi.off} overlaps another field`);
    nextOff = fi.off + size;
    const f: BtfField = { offset: fi.off, size, type: fi.type };
    rec.fieldMask |= fi.type;
    switch (fi.type) {
      case BPF_SPIN_LOCK:
        rec.spinLockOff = fi.off;
        break;
      case BPF_RES_SPIN_LOCK:
        rec.resSpinLockOff = fi.off;
        break;
      case BPF_TIMER:
        rec.timerOff = fi.off;
        break;
      case BPF_WORKQUEUE:
        rec.wqOff = fi.off;
        break;
      case BPF_TASK_WORK:
        rec.taskWorkOff = fi.off;
        break;
      case BPF_REFCOUNT:
        rec.refcountOff = fi.off;
        break;
      case BPF_LIST_HEAD:
        f.graphRoot = parseGraphRoot(btf, fi, "bpf_list_node");
        break;
      case BPF_RB_ROOT:
        f.graphRoot = parseGraphRoot(btf, fi, "bpf_rb_node");
        break;
      case BPF_LIST_NODE:
      case BPF_RB_NODE:
        break;
      default: {
        const local = fi.kptrTypeId as number;
        const lt = btf.typeById(local);
        f.kptr = { localTypeId: local, name: lt.name };
        const found = resolveKptr?.(lt.name, lt.kind, fi.type);
        if (found) Object.assign(f.kptr, { btf: found.btf, btfId: found.id });
      }
    }
    rec.fields.push(f);
    rec.cnt++;
  }
  if (rec.spinLockOff >= 0 && rec.resSpinLockOff >= 0) fail(EINVAL, "bpf_spin_lock and bpf_res_spin_lock together");
  if (rec.fieldMask & BPF_GRAPH_ROOT && rec.spinLockOff < 0)
    fail(EINVAL, "bpf_list_head and bpf_rb_root need a bpf_spin_lock beside them");
  if (rec.refcountOff < 0 && rec.fieldMask & BPF_LIST_NODE && rec.fieldMask & BPF_RB_NODE)
    fail(EINVAL, "a type in both a list and an rbtree needs a bpf_refcount");
  rec.fields.sort((a, b) => a.offset - b.offset);
  return rec;
}

/** struct btf_struct_meta: the record of one program-allocatable struct. */
export interface BtfStructMeta {
  btfId: number;
  record: BtfRecord;
}

const ALLOC_OBJ_NAMES = [
  "bpf_spin_lock",
  "bpf_list_head",
  "bpf_list_node",
  "bpf_rb_root",
  "bpf_rb_node",
  "bpf_refcount",
];

/**
 * btf_parse_struct_metas (BTF_LOAD of a program's BTF): every struct with a direct member of a
 * graph or lock type gets its record now, so bpf_obj_new of it and `contains:` of it work; a bad
 * one fails the BTF load.
 */
export function btfParseStructMetas(btf: Btf, resolveKptr?: KptrResolver): Map<number, BtfStructMeta> {
  const metas = new Map<number, BtfStructMeta>();
  const aof = new Set<number>();
  for (const n of ALLOC_OBJ_NAMES) {
    const id = btf.findByNameKind(n, BTF_KIND_STRUCT);
    if (id > 0) aof.add(id);
  }
  if (aof.size === 0) return metas;
  for (let id = 1; id <= btf.nrTypes; id++) {
    const k = btf.kindOf(id);
    if (k !== BTF_KIND_STRUCT && k !== BTF_KIND_UNION) continue;
    const t = btf.typeById(id) as BtfComposite;
    if (!t.members.some((m) => aof.has(m.type))) continue;
    const record = btfParseFields(btf, id, ALLOC_OBJ_FIELDS, t.size, resolveKptr);
    if (!record) fail(EFAULT, `struct ${t.name} has no record`);
    metas.set(id, { btfId: id, record: record as BtfRecord });
  }
  return metas;
}

/**
 * btf_check_and_fixup_fields: every graph root learns its contained type's record; a type that
 * is both a node and (through what it contains) its own owner is an ownership cycle (ELOOP).
 */
export function btfCheckAndFixupFields(metas: ReadonlyMap<number, BtfStructMeta>, rec: BtfRecord | null): void {
  if (!rec || !(rec.fieldMask & BPF_GRAPH_ROOT)) return;
  for (const f of rec.fields) {
    if (!(f.type & BPF_GRAPH_ROOT) || !f.graphRoot) continue;
    const meta = metas.get(f.graphRoot.valueBtfId);
    if (!meta) fail(EFAULT, "a graph root's value type has no record");
    f.graphRoot.valueRec = (meta as BtfStructMeta).record;
    if (!(rec.fieldMask & BPF_GRAPH_NODE)) continue;
    const inner = (meta as BtfStructMeta).record;
    // A node type owning a graph root of another node type, which owns roots itself: a cycle or
    // ownership deeper than one level, both refused.
    if (inner.fieldMask & BPF_GRAPH_ROOT) fail(ELOOP, "graph ownership cycle");
  }
}
