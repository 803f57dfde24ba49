/**
 * kptrs (kernel/bpf/verifier.c: check_map_kptr_access, map_kptr_match_type, btf_ld_kptr_type,
 * process_kptr_func, and bpf_kptr_xchg's cases of check_reg_type and check_helper_call). A
 * kptr field of a map value or an allocated object holds a pointer: `__kptr_untrusted` ones may
 * be loaded and stored (a pointer of the field's type, or NULL); `__kptr` ones hold a reference,
 * which only bpf_kptr_xchg moves in and out: the pointer passed in is released, the one that
 * comes back is acquired and may be NULL. Loads of either give a PTR_TO_BTF_ID that may be NULL,
 * RCU-protected inside an RCU section for the types freed after a grace period, else untrusted.
 */
import {
  BPF_GRAPH_NODE,
  BPF_KPTR,
  BPF_KPTR_PERCPU,
  BPF_KPTR_REF,
  BPF_KPTR_UNREF,
  BPF_UPTR,
  type BtfField,
  btfRecordFind,
  btfRecordHasField,
} from "../btf/record.js";
import { BPF_CLASS, BPF_LDX, BPF_MEM, BPF_MODE, BPF_ST, BPF_STX } from "../isa/opcodes.js";
import { BTF_KIND_STRUCT } from "../uapi/btf.js";
import { EACCES, EFAULT, EINVAL } from "../uapi/errno.js";
import { btfStructIdsMatch } from "./btf_access.js";
import { progBtfName, regBtfRecord } from "./graph.js";
import { inRcuCs } from "./kfunc.js";
import { acquireReference, forEachReg, markRegInvalid, releaseReferenceNomark } from "./refs.js";
import {
  BTF_PROG,
  baseType,
  MEM_ALLOC,
  MEM_PERCPU,
  MEM_RCU,
  markPtr,
  markRegNotInit,
  NON_OWN_REF,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_MAP_VALUE,
  PTR_TRUSTED,
  PTR_UNTRUSTED,
  type RegState,
  regTypeStr,
  SCALAR_VALUE,
} from "./reg_state.js";
import { tnumIsConst, tnumStr } from "./tnum.js";
import type { Verifier } from "./verifier.js";

/** rcu_protected_types: kernel objects freed after a grace period (with the program's own). */
const RCU_PROTECTED_TYPES = new Set(["prog_test_ref_kfunc", "cgroup", "bpf_cpumask", "task_struct", "bpf_crypto_ctx"]);

const isKernelKptr = (f: BtfField): boolean => !!f.kptr?.btf;
const isNullScalar = (r: RegState): boolean =>
  r.type === SCALAR_VALUE && tnumIsConst(r.varOff) && r.varOff.value === 0n;

/** The kptr's type as a BTF id of the BTF the register will point into (vmlinux or the program's). */
function kptrBtfId(v: Verifier, f: BtfField): number {
  const name = f.kptr?.name ?? "";
  const btf = isKernelKptr(f) ? v.env.btf : v.env.progBtf;
  const id = btf ? btf.findByNameKind(name, BTF_KIND_STRUCT) : -1;
  if (id <= 0) v.reject(EFAULT, `verifier internal error: kptr type ${name} not found`);
  return id;
}

/** rcu_safe_kptr. */
function rcuSafeKptr(f: BtfField): boolean {
  if (f.type === BPF_KPTR_PERCPU) return true;
  return f.type === BPF_KPTR_REF && (!isKernelKptr(f) || RCU_PROTECTED_TYPES.has(f.kptr?.name ?? ""));
}

/** btf_ld_kptr_type: the flags of a pointer loaded from a kptr field. */
function ldKptrType(v: Verifier, f: BtfField): number {
  let t = PTR_MAYBE_NULL;
  if (rcuSafeKptr(f) && inRcuCs(v)) {
    t |= MEM_RCU;
    if (f.type === BPF_KPTR_PERCPU) t |= MEM_PERCPU;
    else if (!isKernelKptr(f)) t |= MEM_ALLOC;
    const meta = isKernelKptr(f) ? undefined : v.env.progStructMetas?.get(kptrBtfId(v, f));
    if (meta && btfRecordHasField(meta.record, BPF_GRAPH_NODE)) t |= NON_OWN_REF;
  } else t |= PTR_UNTRUSTED;
  if (!isKernelKptr(f) && !(t & MEM_ALLOC)) t |= BTF_PROG;
  return t;
}

/** __check_ptr_off_reg: a BTF pointer with a fixed offset (when allowed) and no variable one. */
function checkPtrOffReg(v: Verifier, reg: RegState, regno: number, fixedOffOk: boolean): void {
  if (!fixedOffOk && reg.off > 0)
    v.reject(EACCES, `dereference of modified ${regTypeStr(reg.type)} ptr R${regno} off=${reg.off} disallowed`);
  if (reg.off < 0) v.reject(EACCES, `negative offset ${regTypeStr(reg.type)} ptr R${regno} off=${reg.off} disallowed`);
  if (!tnumIsConst(reg.varOff) || reg.varOff.value !== 0n)
    v.reject(EACCES, `variable ${regTypeStr(reg.type)} access var_off=${tnumStr(reg.varOff)} disallowed`);
}

/** map_kptr_match_type: what may be stored in (or exchanged into) the field. */
export function mapKptrMatchType(v: Verifier, f: BtfField, reg: RegState, regno: number): void {
  const target = f.kptr?.name ?? "";
  const kernelReg = baseType(reg.type) === PTR_TO_BTF_ID && !(reg.type & (MEM_ALLOC | BTF_PROG));
  let perm: number;
  if (kernelReg) {
    perm = PTR_MAYBE_NULL | PTR_TRUSTED | MEM_RCU;
    // Only an untrusted field takes an untrusted pointer.
    if (f.type === BPF_KPTR_UNREF) perm |= PTR_UNTRUSTED;
  } else {
    perm = PTR_MAYBE_NULL | MEM_ALLOC;
    if (f.type === BPF_KPTR_PERCPU) perm |= MEM_PERCPU;
  }
  let regName = "";
  const bad = (): never => {
    let msg = `invalid kptr access, R${regno} type=${regTypeStr(reg.type)}${regName} expected=${regTypeStr(PTR_TO_BTF_ID)}${target}`;
    if (f.type === BPF_KPTR_UNREF) msg += ` or ${regTypeStr(PTR_TO_BTF_ID | PTR_UNTRUSTED)}${target}`;
    return v.reject(EACCES, msg);
  };
  if (baseType(reg.type) !== PTR_TO_BTF_ID || reg.type & ~0xff & ~(perm | BTF_PROG)) bad();
  // A per-CPU field holds only per-CPU objects, and only it does.
  if ((f.type === BPF_KPTR_PERCPU) !== ((reg.type & MEM_PERCPU) !== 0)) bad();
  regName = kernelReg ? v.btfName(reg.btfId) : progBtfName(v, reg.btfId);
  checkPtrOffReg(v, reg, regno, true);
  // btf_struct_ids_match: a referenced kptr must be the object itself (strict); an untrusted one
  // may also be a struct whose first member is of the field's type.
  if (kernelReg !== isKernelKptr(f)) bad();
  const strict = f.type !== BPF_KPTR_UNREF;
  if (kernelReg) {
    const btf = v.env.btf;
    const same = regName === target && reg.off === 0;
    if (!same && (strict || reg.off !== 0 || !btf || !btfStructIdsMatch(btf, reg.btfId, target))) bad();
  } else if (regName !== target || reg.off !== 0) bad();
}

/**
 * check_map_kptr_access: a load or store of a map value's kptr field (check_map_access has
 * already checked the offset and size). `out` is the loaded register.
 */
export function checkMapKptrAccess(
  v: Verifier,
  f: BtfField,
  value: RegState | undefined,
  valueRegno: number,
  imm: bigint | undefined,
  out: RegState,
): void {
  const insn = v.env.insns[v.insnIdx];
  const cls = BPF_CLASS(insn.code);
  if (BPF_MODE(insn.code) !== BPF_MEM)
    v.reject(EACCES, "kptr in map can only be accessed using BPF_MEM instruction mode");
  // A referenced kptr may be loaded (the result is not a reference), never stored.
  if (cls !== BPF_LDX && (f.type === BPF_KPTR_REF || f.type === BPF_KPTR_PERCPU))
    v.reject(EACCES, "store to referenced kptr disallowed");
  if (cls !== BPF_LDX && f.type === BPF_UPTR) v.reject(EACCES, "store to uptr disallowed");
  if (cls === BPF_LDX) {
    // mark_btf_ld_reg.
    markPtr(out, PTR_TO_BTF_ID | ldKptrType(v, f));
    out.btfId = kptrBtfId(v, f);
    if (out.type & PTR_MAYBE_NULL) out.id = v.newId();
  } else if (cls === BPF_STX) {
    if (value && !isNullScalar(value)) mapKptrMatchType(v, f, value, valueRegno);
  } else if (cls === BPF_ST) {
    if (imm !== undefined && imm !== 0n)
      v.reject(EACCES, `BPF_ST imm must be 0 when storing to kptr at off=${f.offset}`);
  } else v.reject(EACCES, "kptr in map can only be accessed using BPF_LDX/BPF_STX/BPF_ST");
}

/** The kptr field of a map value at `off` with a constant offset, if any. */
export function mapValueKptrField(v: Verifier, reg: RegState, off: number): BtfField | undefined {
  if (!tnumIsConst(reg.varOff)) return undefined;
  const rec = v.maps[reg.map]?.record;
  return btfRecordFind(rec, reg.off + off + Number(reg.varOff.value), BPF_KPTR | BPF_UPTR);
}

// ---- bpf_kptr_xchg ----

/** bpf_kptr_xchg's first argument (ARG_KPTR_XCHG_DEST): check_reg_type, then process_kptr_func. */
export function processKptrFunc(v: Verifier, regno: number, reg: RegState): BtfField {
  const alloc = reg.type === (PTR_TO_BTF_ID | MEM_ALLOC);
  if (reg.type !== PTR_TO_MAP_VALUE && !alloc)
    v.reject(EACCES, `R${regno} type=${regTypeStr(reg.type)} expected=map_value, ${regTypeStr(PTR_TO_BTF_ID)}`);
  if (alloc) checkPtrOffReg(v, reg, regno, true);
  let rec: ReturnType<typeof regBtfRecord>;
  if (alloc) rec = regBtfRecord(v, reg);
  else {
    const map = v.maps[reg.map];
    if (map.hasBtf === false)
      v.reject(EINVAL, `map '${map.name ?? reg.map}' has to have BTF in order to use bpf_kptr_xchg`);
    rec = map.record ?? null;
  }
  if (!tnumIsConst(reg.varOff))
    v.reject(EINVAL, `R${regno} doesn't have constant offset. kptr has to be at the constant offset`);
  if (!btfRecordHasField(rec, BPF_KPTR)) v.reject(EINVAL, `R${regno} has no valid kptr`);
  const off = reg.off + Number(reg.varOff.value);
  const f = btfRecordFind(rec, off, BPF_KPTR);
  if (!f) v.reject(EACCES, `off=${off} doesn't point to kptr`);
  if (f.type !== BPF_KPTR_REF && f.type !== BPF_KPTR_PERCPU) v.reject(EACCES, `off=${off} kptr isn't referenced kptr`);
  return f;
}

/**
 * bpf_kptr_xchg's second argument (ARG_PTR_TO_BTF_ID_OR_NULL | OBJ_RELEASE): a pointer of the
 * field's type the program holds a reference to, or NULL (skipped by the caller).
 */
export function checkKptrXchgSrc(v: Verifier, regno: number, reg: RegState, f: BtfField): void {
  let t = reg.type & ~PTR_MAYBE_NULL;
  // Local kptrs (allocated objects) are allowed as the source too.
  if (t & MEM_ALLOC) t &= ~(MEM_ALLOC | MEM_PERCPU);
  const ok = [PTR_TO_BTF_ID, PTR_TO_BTF_ID | PTR_TRUSTED, PTR_TO_BTF_ID | MEM_RCU];
  if (!ok.includes(t))
    v.reject(EACCES, `R${regno} type=${regTypeStr(reg.type)} expected=${ok.map(regTypeStr).join(", ")}`);
  if (reg.type & MEM_ALLOC) {
    if (reg.type & PTR_MAYBE_NULL)
      v.reject(EFAULT, "verifier internal error: invalid PTR_TO_BTF_ID register for type match");
  } else if (reg.type & PTR_MAYBE_NULL) v.reject(EACCES, `Possibly NULL pointer passed to helper arg${regno}`);
  mapKptrMatchType(v, f, reg, regno);
  // check_func_arg_reg_off for a released argument.
  if (reg.off) v.reject(EINVAL, `R${regno} must have zero offset when passed to release func or trusted arg to kfunc`);
  checkPtrOffReg(v, reg, regno, false);
  if (!reg.refObjId) v.reject(EINVAL, `R${regno} must be referenced when passed to release function`);
}

/**
 * The rest of check_helper_call for bpf_kptr_xchg: the reference passed in now belongs to the
 * field (every copy is invalid), and r0 is the field's old pointer, a new reference or NULL.
 */
export function kptrXchgCall(v: Verifier, f: BtfField, srcRefObjId: number, funcName: string, funcId: number): void {
  if (srcRefObjId) {
    if (!releaseReferenceNomark(v.cur, srcRefObjId))
      v.reject(EINVAL, `func ${funcName}#${funcId} reference has not been acquired before`);
    const rcu = inRcuCs(v);
    forEachReg(v.cur, (r) => {
      if (r.refObjId !== srcRefObjId) return;
      // A per-CPU object stays readable inside an RCU section; anything else is gone.
      if (rcu && r.type & MEM_ALLOC && r.type & MEM_PERCPU) {
        r.refObjId = 0;
        r.type = (r.type & ~MEM_ALLOC) | MEM_RCU | BTF_PROG;
      } else markRegInvalid(v, r);
    });
  }
  for (let r = 1; r <= 5; r++) markRegNotInit(v.regs[r]);
  const r0 = v.writeReg(0);
  let type = PTR_TO_BTF_ID | PTR_MAYBE_NULL;
  if (!isKernelKptr(f)) {
    type |= MEM_ALLOC;
    if (f.type === BPF_KPTR_PERCPU) type |= MEM_PERCPU;
  }
  markPtr(r0, type);
  r0.btfId = kptrBtfId(v, f);
  r0.id = v.newId();
  const id = acquireReference(v);
  r0.id = id;
  r0.refObjId = id;
  r0.written = true;
}
