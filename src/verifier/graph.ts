/**
 * Locks, allocated objects and graph collections in the verifier (kernel/bpf/verifier.c:
 * process_spin_lock, check_reg_allocation_locked, the KF_ARG_PTR_TO_{ALLOC_BTF_ID,LIST_HEAD,
 * LIST_NODE,RB_ROOT,RB_NODE,REFCOUNTED_KPTR,CALLBACK} cases of check_kfunc_args, the special
 * returns of check_kfunc_call, ref_convert_owning_non_owning, invalidate_non_owning_refs,
 * set_rbtree_add_callback_state; btf_struct_access's and check_map_access's special-field rules).
 *
 * A lock is identified as the kernel does: the map (or "a local object") plus the register id
 * of the value the lock is in. An owning reference pushed into a collection becomes non-owning
 * (NON_OWN_REF, no ref_obj_id): usable until the lock is released, then every copy is invalid.
 */

import type { Btf } from "../btf/btf.js";
import {
  BPF_KPTR,
  BPF_LIST_HEAD,
  BPF_LIST_NODE,
  BPF_RB_NODE,
  BPF_RB_ROOT,
  BPF_SPIN_LOCK,
  BPF_UPTR,
  type BtfField,
  type BtfRecord,
  btfFieldTypeName,
  btfRecordFind,
  btfRecordHasField,
} from "../btf/record.js";
import type { BtfArray, BtfComposite, BtfFuncProto, BtfType } from "../btf/types.js";
import {
  BTF_KIND_ARRAY,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_PTR,
  BTF_KIND_STRUCT,
  BTF_KIND_UNION,
} from "../uapi/btf.js";
import { EACCES, EFAULT, EINVAL } from "../uapi/errno.js";
import { btfSkipModifiers, btfStructRead } from "./btf_access.js";
import { checkFuncCall } from "./calls.js";
import { KF_ACQUIRE, KF_RCU, KF_RELEASE, KF_RET_NULL, KF_TRUSTED_ARGS } from "./env.js";
import { acquireReference, forEachReg, markRegInvalid, releaseReference, releaseReferenceNomark } from "./refs.js";
import {
  baseType,
  copyReg,
  isTrustedReg,
  MEM_ALLOC,
  MEM_PERCPU,
  MEM_RCU,
  markPtr,
  markRegNotInit,
  markRegUnknown,
  NON_OWN_REF,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_FUNC,
  PTR_TO_MAP_VALUE,
  PTR_UNTRUSTED,
  type RegState,
  regTypeStr,
  SCALAR_VALUE,
} from "./reg_state.js";
import { copyState } from "./state.js";
import { tnumIsConst } from "./tnum.js";
import type { Verifier } from "./verifier.js";

/** The lock "pointer" of an allocated object (the kernel's reg->btf); maps use their index. */
export const LOCK_LOCAL = -2;
export const NO_LOCK = -1;

/** is_bpf_graph_api_kfunc: the kfuncs a program may call while holding a lock (kfunc_spin_allowed). */
const GRAPH_API = new Set([
  "bpf_list_push_front_impl",
  "bpf_list_push_back_impl",
  "bpf_list_pop_front",
  "bpf_list_pop_back",
  "bpf_list_front",
  "bpf_list_back",
  "bpf_rbtree_add_impl",
  "bpf_rbtree_remove",
  "bpf_rbtree_first",
  "bpf_rbtree_root",
  "bpf_rbtree_left",
  "bpf_rbtree_right",
  "bpf_refcount_acquire_impl",
]);
/** The kfuncs checked here rather than by the generic kfunc code. */
const GRAPH_KFUNCS = new Set([
  ...GRAPH_API,
  "bpf_obj_new_impl",
  "bpf_obj_drop_impl",
  "bpf_percpu_obj_new_impl",
  "bpf_percpu_obj_drop_impl",
]);

/** BPF_GLOBAL_PERCPU_MA_MAX_SIZE: the largest struct bpf_percpu_obj_new allocates. */
const BPF_GLOBAL_PERCPU_MA_MAX_SIZE = 512;

/** __btf_type_is_scalar_struct: a struct (or union) of integers, enums, their arrays, 4 levels deep. */
function isScalarStruct(v: Verifier, btf: Btf, t: BtfType, rec: number): boolean {
  if (t.kind !== BTF_KIND_STRUCT && t.kind !== BTF_KIND_UNION) return false;
  const scalar = (k: number) => k === BTF_KIND_INT || k === BTF_KIND_ENUM || k === BTF_KIND_ENUM64;
  for (const m of (t as BtfComposite).members) {
    let [, mt] = btfSkipModifiers(btf, m.type);
    if (mt.kind === BTF_KIND_STRUCT || mt.kind === BTF_KIND_UNION) {
      if (rec >= 3) {
        v.verbose("max struct nesting depth exceeded\n");
        return false;
      }
      if (!isScalarStruct(v, btf, mt, rec + 1)) return false;
      continue;
    }
    if (mt.kind === BTF_KIND_ARRAY) {
      if (!(mt as BtfArray).nelems) return false;
      [, mt] = btfSkipModifiers(btf, (mt as BtfArray).type);
    }
    if (!scalar(mt.kind)) return false;
  }
  return true;
}

export const isGraphApiKfunc = (name: string | undefined): boolean => !!name && GRAPH_API.has(name);
export const isGraphKfunc = (name: string): boolean => GRAPH_KFUNCS.has(name);

/** type_is_ptr_alloc_obj / type_is_non_owning_ref. */
export const isAllocObj = (r: RegState): boolean => baseType(r.type) === PTR_TO_BTF_ID && (r.type & MEM_ALLOC) !== 0;
export const isNonOwningRef = (r: RegState): boolean => isAllocObj(r) && (r.type & NON_OWN_REF) !== 0;

/** reg_btf_record: a map value's record, or an allocated object's struct meta. */
export function regBtfRecord(v: Verifier, r: RegState): BtfRecord | null {
  if (baseType(r.type) === PTR_TO_MAP_VALUE) return v.maps[r.map]?.record ?? null;
  if (isAllocObj(r)) return v.env.progStructMetas?.get(r.btfId)?.record ?? null;
  return null;
}

/** reg_may_point_to_spin_lock: its id must survive the NULL check (it names the lock). */
export function mayPointToSpinLock(v: Verifier, r: RegState): boolean {
  return btfRecordHasField(regBtfRecord(v, r), BPF_SPIN_LOCK);
}

/** The name of a type in the program's BTF (allocated objects). */
export function progBtfName(v: Verifier, id: number): string {
  const btf = v.env.progBtf;
  return btf ? (btf.tryTypeById(id)?.name ?? `${id}`) : `${id}`;
}

// ---- bpf_spin_lock / bpf_spin_unlock ----

/** process_spin_lock. */
export function processSpinLock(v: Verifier, regno: number, reg: RegState, lock: boolean): void {
  if (reg.type !== PTR_TO_MAP_VALUE && reg.type !== (PTR_TO_BTF_ID | MEM_ALLOC)) {
    v.reject(EACCES, `R${regno} type=${regTypeStr(reg.type)} expected=map_value, ptr_`);
  }
  if (!tnumIsConst(reg.varOff)) {
    v.reject(EINVAL, `R${regno} doesn't have constant offset. bpf_spin_lock has to be at the constant offset`);
  }
  const isMap = reg.type === PTR_TO_MAP_VALUE;
  const map = isMap ? v.maps[reg.map] : undefined;
  if (map && map.hasBtf === false)
    v.reject(EINVAL, `map '${map.name ?? reg.map}' has to have BTF in order to use bpf_spin_lock`);
  const rec = regBtfRecord(v, reg);
  const lockOff = rec && rec.spinLockOff >= 0 ? rec.spinLockOff : map?.spinLockOff;
  if (lockOff === undefined) {
    v.reject(EINVAL, `${map ? "map" : "local"} '${map ? (map.name ?? reg.map) : "kptr"}' has no valid bpf_spin_lock`);
  }
  const off = Number(reg.varOff.value) + reg.off;
  if (off !== lockOff) v.reject(EINVAL, `off ${off} doesn't point to 'struct bpf_spin_lock' that is at ${lockOff}`);
  const ptr = isMap ? reg.map : LOCK_LOCAL;
  if (lock) {
    if (v.cur.activeLock !== NO_LOCK) v.reject(EINVAL, "Locking two bpf_spin_locks are not allowed");
    v.cur.activeLock = ptr;
    v.cur.activeLockId = reg.id;
    return;
  }
  if (v.cur.activeLock === NO_LOCK) v.reject(EINVAL, "bpf_spin_unlock without taking a lock");
  if (v.cur.activeLock !== ptr || v.cur.activeLockId !== reg.id) v.reject(EINVAL, "bpf_spin_unlock of different lock");
  v.cur.activeLock = NO_LOCK;
  v.cur.activeLockId = 0;
  invalidateNonOwningRefs(v);
}

/** invalidate_non_owning_refs: the lock is gone, so is every non-owning reference. */
export function invalidateNonOwningRefs(v: Verifier): void {
  forEachReg(v.cur, (r) => {
    if (isNonOwningRef(r)) markRegInvalid(v, r);
  });
}

/** check_reg_allocation_locked: the collection's own lock must be the one held. */
function checkAllocationLocked(v: Verifier, reg: RegState): string[] | undefined {
  if (v.cur.activeLock === NO_LOCK) return [];
  const ptr = reg.type === PTR_TO_MAP_VALUE ? reg.map : LOCK_LOCAL;
  if (v.cur.activeLock !== ptr || v.cur.activeLockId !== reg.id)
    return ["held lock and object are not in the same allocation"];
  return undefined;
}

// ---- loads and stores ----

/**
 * check_map_access's special-field rule: no load or store may touch a lock, a list or tree, a
 * timer; a kptr only as one aligned 8-byte load or store.
 */
export function checkMapValueFields(v: Verifier, reg: RegState, off: number, size: number, rec: BtfRecord): void {
  for (const f of rec.fields) {
    const p = f.offset;
    if (!(Number(reg.smin) + off < p + f.size && p < Number(reg.umax) + off + size)) continue;
    if (f.type & (BPF_KPTR | BPF_UPTR)) {
      const name = btfFieldTypeName(f.type);
      if (!tnumIsConst(reg.varOff)) v.reject(EACCES, `${name} access cannot have variable offset`);
      const at = off + Number(reg.varOff.value);
      if (p !== at) v.reject(EACCES, `${name} access misaligned expected=${p} off=${at}`);
      if (size !== 8) v.reject(EACCES, `${name} access size must be BPF_DW`);
      continue;
    }
    v.reject(EACCES, `${btfFieldTypeName(f.type)} cannot be accessed directly by load/store`);
  }
}

/**
 * check_ptr_to_btf_access for a pointer to a type of the program (an allocated object, or a
 * per-CPU or untrusted pointer read from a kptr field): btf_struct_access against its BTF.
 */
export function checkAllocAccess(
  v: Verifier,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  out: RegState,
  write = false,
) {
  const btf = v.env.progBtf;
  if (!btf) v.reject(EFAULT, "verifier internal error: allocated object without program BTF");
  const o = reg.off + off;
  const name = progBtfName(v, reg.btfId);
  if (!tnumIsConst(reg.varOff) || reg.varOff.value !== 0n)
    v.reject(EACCES, `R${regno} is ptr_${name} invalid variable offset: off=${reg.off}`);
  if (o < 0) v.reject(EACCES, `R${regno} is ptr_${name} invalid negative access: off=${o}`);
  if (reg.type & MEM_PERCPU) v.reject(EACCES, `R${regno} is ptr_${name} access percpu memory: off=${o}`);
  // Only an allocated object the program may use is writable (not an untrusted one).
  if (write && (!(reg.type & MEM_ALLOC) || reg.type & PTR_UNTRUSTED)) v.reject(EACCES, "only read is supported");
  if (
    reg.type & MEM_ALLOC &&
    !(reg.type & PTR_UNTRUSTED) &&
    !isNonOwningRef(reg) &&
    !(reg.type & MEM_RCU) &&
    !reg.refObjId
  )
    v.reject(EFAULT, "verifier internal error: ref_obj_id for allocated object must be non-zero");
  const rec = regBtfRecord(v, reg);
  for (const f of rec?.fields ?? []) {
    if (o < f.offset + f.size && f.offset < o + size)
      v.reject(EACCES, `direct access to ${btfFieldTypeName(f.type)} is disallowed`);
  }
  const r = btfStructRead(btf, reg.btfId, o, size);
  if (!r.ok) v.reject(EACCES, r.msg);
  return out;
}

// ---- kfuncs ----

interface GraphMeta {
  name: string;
  btfId: number;
  flags: number;
  refObjId: number;
  releaseRegno: number;
  constant?: bigint;
  argBtfId: number;
  /** bpf_refcount_acquire of an owning reference (arg_owning_ref): it cannot fail. */
  argOwningRef?: boolean;
  headField?: BtfField;
  callback?: RegState;
}

const isNullScalar = (r: RegState): boolean =>
  r.type === SCALAR_VALUE && tnumIsConst(r.varOff) && r.varOff.value === 0n;

/** The special argument kind of a kfunc parameter (get_kfunc_ptr_arg_type). */
function argKind(v: Verifier, name: string, typeId: number): string {
  const btf = v.env.btf as NonNullable<typeof v.env.btf>;
  if (name.endsWith("__alloc")) return "alloc";
  if (name.endsWith("__refcounted_kptr")) return "refcounted";
  const [, t] = btfSkipModifiers(btf, typeId);
  if (t.kind !== BTF_KIND_PTR) return "scalar";
  const [, p] = btfSkipModifiers(btf, t.type);
  if (p.kind === BTF_KIND_FUNC_PROTO) return "callback";
  if (p.kind === BTF_KIND_STRUCT || p.kind === BTF_KIND_UNION) {
    if (p.name === "bpf_list_head") return "list_head";
    if (p.name === "bpf_list_node") return "list_node";
    if (p.name === "bpf_rb_root") return "rb_root";
    if (p.name === "bpf_rb_node") return "rb_node";
  }
  return "mem";
}

/** __process_kf_arg_ptr_to_graph_root. */
function graphRoot(v: Verifier, m: GraphMeta, reg: RegState, regno: number, type: number): void {
  const tname = btfFieldTypeName(type);
  if (!tnumIsConst(reg.varOff))
    v.reject(EINVAL, `R${regno} doesn't have constant offset. ${tname} has to be at the constant offset`);
  const rec = regBtfRecord(v, reg);
  const off = reg.off + Number(reg.varOff.value);
  const field = btfRecordFind(rec, off, type);
  if (!field) v.reject(EINVAL, `${tname} not found at offset=${off}`);
  const locked = checkAllocationLocked(v, reg);
  if (locked) {
    for (const line of locked) v.note(line);
    v.reject(EINVAL, `bpf_spin_lock at off=${rec?.spinLockOff ?? -22} must be held for ${tname}`);
  }
  m.headField = field;
}

/** __process_kf_arg_ptr_to_graph_node. */
function graphNode(v: Verifier, m: GraphMeta, reg: RegState, regno: number, headType: number, nodeType: number): void {
  const nname = btfFieldTypeName(nodeType);
  if (!tnumIsConst(reg.varOff))
    v.reject(EINVAL, `R${regno} doesn't have constant offset. ${nname} has to be at the constant offset`);
  const off = reg.off + Number(reg.varOff.value);
  if (!btfRecordFind(regBtfRecord(v, reg), off, nodeType)) v.reject(EINVAL, `${nname} not found at offset=${off}`);
  const root = m.headField?.graphRoot;
  if (!root) v.reject(EFAULT, `verifier internal error: ${nname} without its root`);
  const et = progBtfName(v, root.valueBtfId);
  if (reg.btfId !== root.valueBtfId) {
    v.reject(
      EINVAL,
      `operation on ${btfFieldTypeName(headType)} expects arg#1 ${nname} at offset=${root.nodeOffset} in struct ${et}, but arg is at offset=${off} in struct ${progBtfName(v, reg.btfId)}`,
    );
  }
  m.argBtfId = reg.btfId;
  if (off !== root.nodeOffset)
    v.reject(EINVAL, `arg#1 offset=${off}, but expected ${nname} at offset=${root.nodeOffset} in struct ${et}`);
}

/** ref_set_non_owning: a node the collection owns, readable while its lock is held. */
function setNonOwning(v: Verifier, r: RegState): void {
  r.type |= NON_OWN_REF;
  const rec = v.env.progStructMetas?.get(r.btfId)?.record;
  if (rec && rec.refcountOff >= 0) r.type |= MEM_RCU;
}

/** mark_reg_graph_node: a pointer to the node member of the collection's value type. */
function markGraphNode(r: RegState, field: BtfField): void {
  markPtr(r, PTR_TO_BTF_ID | MEM_ALLOC, field.graphRoot?.nodeOffset ?? 0);
  r.btfId = field.graphRoot?.valueBtfId ?? 0;
}

/** check_kfunc_call for the graph kfuncs and bpf_obj_new/drop. Returns true when a callback was entered. */
export function checkGraphKfuncCall(
  v: Verifier,
  name: string,
  btfId: number,
  flags: number,
  proto: BtfFuncProto,
): boolean {
  const m: GraphMeta = { name, btfId, flags, refObjId: 0, releaseRegno: 0, argBtfId: 0 };
  const trusted = (flags & (KF_TRUSTED_ARGS | KF_RELEASE)) !== 0;
  const inCb = v.frame.isCallback && v.frame.rbtreeCb === true;
  proto.params.forEach((p, i) => {
    const regno = i + 1;
    if (p.name.endsWith("__ign")) return;
    const reg = v.readReg(regno);
    const kind = argKind(v, p.name, p.type);
    if (kind === "scalar") {
      if (reg.type !== SCALAR_VALUE) v.reject(EINVAL, `R${regno} is not a scalar`);
      if (p.name.endsWith("__k")) {
        if (!tnumIsConst(reg.varOff)) v.reject(EINVAL, `R${regno} must be a known constant`);
        v.precision.addSink(v.insnIdx, regno);
        m.constant = reg.varOff.value;
      }
      return;
    }
    if ((trusted || flags & KF_RCU) && (isNullScalar(reg) || reg.type & PTR_MAYBE_NULL))
      v.reject(EACCES, `Possibly NULL pointer passed to trusted arg${i}`);
    if (reg.refObjId) {
      m.refObjId = reg.refObjId;
      if (flags & KF_RELEASE) m.releaseRegno = regno;
    }
    switch (kind) {
      case "alloc":
      case "refcounted":
        if (trusted || flags & KF_RCU) {
          if (!isTrustedReg(reg)) {
            if (!(flags & KF_RCU)) v.reject(EINVAL, `R${regno} must be referenced or trusted`);
            if (!(reg.type & MEM_RCU)) v.reject(EINVAL, `R${regno} must be a rcu pointer`);
          }
        }
        if (kind === "alloc") {
          // bpf_obj_drop takes objects of bpf_obj_new, bpf_percpu_obj_drop those of bpf_percpu_obj_new.
          if (reg.type === (PTR_TO_BTF_ID | MEM_ALLOC)) {
            if (name !== "bpf_obj_drop_impl") v.reject(EINVAL, `arg#${i} expected for bpf_obj_drop_impl()`);
          } else if (reg.type === (PTR_TO_BTF_ID | MEM_ALLOC | MEM_PERCPU)) {
            if (name !== "bpf_percpu_obj_drop_impl")
              v.reject(EINVAL, `arg#${i} expected for bpf_percpu_obj_drop_impl()`);
          } else v.reject(EINVAL, `arg#${i} expected pointer to allocated object`);
          if (!reg.refObjId) v.reject(EINVAL, "allocated object must be referenced");
          if (m.releaseRegno === regno && (reg.off !== 0 || !tnumIsConst(reg.varOff) || reg.varOff.value !== 0n)) {
            v.reject(EACCES, `R${regno} must have zero offset when passed to release func or trusted arg to kfunc`);
          }
        } else {
          if (!isAllocObj(reg)) v.reject(EINVAL, `arg#${i} is neither owning or non-owning ref`);
          const rec = regBtfRecord(v, reg);
          if (!rec) v.reject(EFAULT, "verifier internal error: Couldn't find btf_record");
          if (!isNonOwningRef(reg) && reg.refObjId) m.argOwningRef = true;
          if (rec.refcountOff < 0) v.reject(EINVAL, `arg#${i} doesn't point to a type with bpf_refcount field`);
        }
        m.argBtfId = reg.btfId;
        return;
      case "list_head":
      case "rb_root":
        if (reg.type !== PTR_TO_MAP_VALUE && reg.type !== (PTR_TO_BTF_ID | MEM_ALLOC))
          v.reject(EINVAL, `arg#${i} expected pointer to map value or allocated object`);
        if (reg.type === (PTR_TO_BTF_ID | MEM_ALLOC) && !reg.refObjId)
          v.reject(EINVAL, "allocated object must be referenced");
        graphRoot(v, m, reg, regno, kind === "list_head" ? BPF_LIST_HEAD : BPF_RB_ROOT);
        return;
      case "list_node":
        if (reg.type !== (PTR_TO_BTF_ID | MEM_ALLOC)) v.reject(EINVAL, `arg#${i} expected pointer to allocated object`);
        if (!reg.refObjId) v.reject(EINVAL, "allocated object must be referenced");
        graphNode(v, m, reg, regno, BPF_LIST_HEAD, BPF_LIST_NODE);
        return;
      case "rb_node":
        if (name === "bpf_rbtree_add_impl") {
          if (reg.type !== (PTR_TO_BTF_ID | MEM_ALLOC))
            v.reject(EINVAL, `arg#${i} expected pointer to allocated object`);
          if (!reg.refObjId) v.reject(EINVAL, "allocated object must be referenced");
        } else {
          if (!isNonOwningRef(reg) && !reg.refObjId)
            v.reject(EINVAL, `${name} can only take non-owning or refcounted bpf_rb_node pointer`);
          if (inCb) v.reject(EINVAL, `${name} not allowed in rbtree cb`);
        }
        graphNode(v, m, reg, regno, BPF_RB_ROOT, BPF_RB_NODE);
        return;
      case "callback":
        if (reg.type !== PTR_TO_FUNC) v.reject(EINVAL, `arg${i} expected pointer to func`);
        m.callback = reg;
        return;
      default:
        v.reject(EINVAL, `arg#${i} pointer type must point to memory`);
    }
  });
  if (m.releaseRegno && !releaseReference(v, v.regs[m.releaseRegno].refObjId))
    v.reject(EINVAL, `kfunc ${name}#${btfId} reference has not been acquired before`);
  const idx = v.insnIdx;
  const insert =
    name === "bpf_list_push_front_impl" || name === "bpf_list_push_back_impl" || name === "bpf_rbtree_add_impl";
  if (insert) {
    // ref_convert_owning_non_owning, then release_reference of the state alone.
    const id = v.regs[2].refObjId;
    forEachReg(v.cur, (r) => {
      if (id && r.refObjId === id) {
        r.refObjId = 0;
        setNonOwning(v, r);
      }
    });
    if (!releaseReferenceNomark(v.cur, id))
      v.reject(EINVAL, `kfunc ${name}#${btfId} reference has not been acquired before`);
  }
  // The rbtree's less() runs as a callback with two non-owning nodes; the path where it never
  // runs (an empty tree) goes on after the call.
  if (name === "bpf_rbtree_add_impl" && m.callback && m.headField) {
    const args = v.regs.map(copyReg);
    for (const r of [1, 2]) {
      markGraphNode(args[r], m.headField);
      setNonOwning(v, args[r]);
    }
    for (let r = 3; r <= 5; r++) markRegNotInit(args[r]);
    const skip = copyState(v.cur);
    const regs = skip.frames[skip.frames.length - 1].regs;
    for (let r = 1; r <= 5; r++) markRegNotInit(regs[r]);
    markRegUnknown(regs[0]);
    regs[0].written = true;
    v.pushState(skip, idx + 1);
    checkFuncCall(v, idx, m.callback.memSize, true, args);
    v.frame.rbtreeCb = true;
    return true;
  }
  for (let r = 1; r <= 5; r++) markRegNotInit(v.regs[r]);
  const r0 = v.writeReg(0);
  const field = m.headField;
  switch (name) {
    case "bpf_obj_new_impl":
    case "bpf_percpu_obj_new_impl": {
      const c = m.constant ?? 0n;
      if (c > 0xffff_ffffn) v.reject(EINVAL, "local type ID argument must be in range [0, U32_MAX]");
      const btf = v.env.progBtf;
      if (!btf) v.reject(EINVAL, "bpf_obj_new/bpf_percpu_obj_new requires prog BTF");
      const t = btf.tryTypeById(Number(c));
      if (!t || (t.kind !== BTF_KIND_STRUCT && t.kind !== BTF_KIND_UNION))
        v.reject(EINVAL, "bpf_obj_new/bpf_percpu_obj_new type ID argument must be of a struct");
      const percpu = name === "bpf_percpu_obj_new_impl";
      if (percpu) {
        const size = (t as BtfComposite).size;
        if (size > BPF_GLOBAL_PERCPU_MA_MAX_SIZE)
          v.reject(EINVAL, `bpf_percpu_obj_new type size (${size}) is greater than ${BPF_GLOBAL_PERCPU_MA_MAX_SIZE}`);
        if (v.env.progStructMetas?.has(Number(c)))
          v.reject(EINVAL, "bpf_percpu_obj_new type ID argument must not contain special fields");
        if (!isScalarStruct(v, btf, t, 0))
          v.reject(EINVAL, "bpf_percpu_obj_new type ID argument must be of a struct of scalars");
      }
      markPtr(r0, PTR_TO_BTF_ID | MEM_ALLOC | (percpu ? MEM_PERCPU : 0));
      r0.btfId = Number(c);
      break;
    }
    case "bpf_refcount_acquire_impl":
      markPtr(r0, PTR_TO_BTF_ID | MEM_ALLOC);
      r0.btfId = m.argBtfId;
      break;
    case "bpf_list_pop_front":
    case "bpf_list_pop_back":
    case "bpf_list_front":
    case "bpf_list_back":
    case "bpf_rbtree_remove":
    case "bpf_rbtree_first":
    case "bpf_rbtree_root":
    case "bpf_rbtree_left":
    case "bpf_rbtree_right":
      if (!field) v.reject(EFAULT, `verifier internal error: ${name} without its root`);
      markGraphNode(r0, field);
      break;
    default:
      if (proto.type === 0) markRegNotInit(r0);
      else markRegUnknown(r0);
      r0.written = true;
      return false;
  }
  // is_kfunc_ret_null(): acquiring another reference to an object one owns always succeeds.
  if (flags & KF_RET_NULL && !(name === "bpf_refcount_acquire_impl" && m.argOwningRef)) {
    r0.type |= PTR_MAYBE_NULL;
    r0.id = v.newId();
  }
  if (flags & KF_ACQUIRE) {
    const id = acquireReference(v, idx);
    if (flags & KF_RET_NULL) r0.id = id;
    r0.refObjId = id;
  } else if (isAllocObj(r0)) setNonOwning(v, r0);
  if (mayPointToSpinLock(v, r0) && !r0.id) r0.id = v.newId();
  r0.written = true;
  return false;
}
