/**
 * Calls to kernel functions (check_kfunc_call, check_kfunc_args, get_kfunc_ptr_arg_type): each
 * argument against the kfunc's FUNC_PROTO in the kernel BTF and its KF_* flags (trusted or RCU
 * pointers, the reference a release kfunc consumes), the RCU read-side section, sleepable and
 * destructive kfuncs, and r0 from the return type (an acquired reference with KF_ACQUIRE).
 */
import type { BtfFuncProto } from "../btf/types.js";
import { bpf_prog_type } from "../uapi/bpf.js";
import {
  BTF_KIND_ARRAY,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FUNC,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_PTR,
  BTF_KIND_STRUCT,
} from "../uapi/btf.js";
import { EACCES, EINVAL, EPERM } from "../uapi/errno.js";
import { btfName, btfSkipModifiers, btfStructIdsMatch } from "./btf_access.js";
import { checkDynptrKfuncCall, isDynptrKfunc } from "./dynptr.js";
import {
  KF_ACQUIRE,
  KF_DESTRUCTIVE,
  KF_ITER_NEXT,
  KF_RCU,
  KF_RCU_PROTECTED,
  KF_RELEASE,
  KF_RET_NULL,
  KF_SLEEPABLE,
  KF_TRUSTED_ARGS,
  type KfuncFilterProg,
  type KfuncInfo,
} from "./env.js";
import { checkGraphKfuncCall, isGraphKfunc } from "./graph.js";
import { iterIsRcu, KF_ITER, processIterArg, processIterNextCall } from "./iter.js";
import { acquireReference, forEachReg, releaseReference } from "./refs.js";
import {
  BPF_REG_TRUSTED_MODIFIERS,
  baseType,
  copyReg,
  hasUnsafeModifiers,
  isPointer,
  isRcuReg,
  isTrustedReg,
  MEM_RCU,
  MEM_RDONLY,
  markPtr,
  markRegNotInit,
  markRegUnknown,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_MEM,
  PTR_TO_STACK,
  PTR_TRUSTED,
  PTR_UNTRUSTED,
  type RegState,
  regTypeStr,
  SCALAR_VALUE,
} from "./reg_state.js";
import { checkStackRange, markStackWritten } from "./stack_access.js";
import { inSleepable } from "./timer.js";
import { tnumIsConst } from "./tnum.js";
import type { Verifier } from "./verifier.js";
import { checkWqKfuncCall, isWqKfunc } from "./wq.js";

/** in_rcu_cs: inside bpf_rcu_read_lock, under a lock, or anywhere in a non-sleepable program. */
export function inRcuCs(v: Verifier): boolean {
  return v.cur.activeRcuLock > 0 || v.cur.activeLock >= 0 || !inSleepable(v);
}

function isNullScalar(r: RegState): boolean {
  return r.type === SCALAR_VALUE && tnumIsConst(r.varOff) && r.varOff.value === 0n;
}

/** The kfunc's metadata while its arguments are checked (struct bpf_kfunc_call_arg_meta). */
interface KfuncMeta {
  name: string;
  /** The BTF the kfunc is described in: vmlinux (or the attach BTF), or its module's. */
  btf?: import("../btf/btf.js").Btf;
  btfId: number;
  flags: number;
  refObjId: number;
  releaseRegno: number;
}

const isTrustedArgs = (m: KfuncMeta): boolean => (m.flags & (KF_TRUSTED_ARGS | KF_RELEASE)) !== 0;

const PT = bpf_prog_type;
/**
 * bpf_prog_type_to_kfunc_hook (kernel/bpf/btf.c): a kfunc set registered for one program type
 * serves every type of the same hook (an LSM set serves fentry, tracepoint and perf_event too).
 */
function kfuncHook(t: number): number {
  switch (t) {
    case PT.BPF_PROG_TYPE_TRACING:
    case PT.BPF_PROG_TYPE_TRACEPOINT:
    case PT.BPF_PROG_TYPE_PERF_EVENT:
    case PT.BPF_PROG_TYPE_LSM:
      return PT.BPF_PROG_TYPE_TRACING;
    case PT.BPF_PROG_TYPE_CGROUP_SKB:
    case PT.BPF_PROG_TYPE_CGROUP_SOCK:
    case PT.BPF_PROG_TYPE_CGROUP_DEVICE:
    case PT.BPF_PROG_TYPE_CGROUP_SOCK_ADDR:
    case PT.BPF_PROG_TYPE_CGROUP_SOCKOPT:
    case PT.BPF_PROG_TYPE_CGROUP_SYSCTL:
    case PT.BPF_PROG_TYPE_SOCK_OPS:
      return PT.BPF_PROG_TYPE_CGROUP_SKB;
    case PT.BPF_PROG_TYPE_LWT_IN:
    case PT.BPF_PROG_TYPE_LWT_OUT:
    case PT.BPF_PROG_TYPE_LWT_XMIT:
    case PT.BPF_PROG_TYPE_LWT_SEG6LOCAL:
      return PT.BPF_PROG_TYPE_LWT_IN;
    default:
      return t;
  }
}

/** check_kfunc_call. */
/** Returns true when execution moved into a callback (bpf_rbtree_add's less()). */
export function checkKfuncCall(v: Verifier, btfId: number, off = 0): boolean {
  // find_kfunc_desc_btf(): a non-zero insn->off names a module's BTF (bound at load).
  const mod = off ? v.env.kfuncBtfs?.get(off) : undefined;
  const btf = mod ? mod.btf : v.env.btf;
  if (!v.privileged)
    v.reject(EPERM, "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN");
  if (!btf) v.reject(EINVAL, "calling kernel function is not supported without CONFIG_DEBUG_INFO_BTF");
  let func: ReturnType<typeof btf.typeById>;
  try {
    func = btf.typeById(btfId);
  } catch {
    v.reject(EINVAL, `kernel btf_id ${btfId} is not a function`);
  }
  if (func.kind !== BTF_KIND_FUNC) v.reject(EINVAL, `kernel btf_id ${btfId} is not a function`);
  const name = func.name;
  const info: KfuncInfo | undefined = (mod ? mod.kfuncs : v.env.kfuncs)?.get(btfId);
  if (
    !info ||
    (info.progTypes && !info.progTypes.some((t) => kfuncHook(t) === kfuncHook(v.env.progType))) ||
    (info.filter && !info.filter(v.env as KfuncFilterProg))
  )
    v.reject(EACCES, `calling kernel function ${name} is not allowed`);
  const proto = btf.typeById(func.type) as BtfFuncProto;
  if (proto.kind !== BTF_KIND_FUNC_PROTO)
    v.reject(EINVAL, `kernel function btf_id ${btfId} does not have a valid func_proto`);
  const meta: KfuncMeta = { name, btf, btfId, flags: info.flags ?? 0, refObjId: 0, releaseRegno: 0 };
  if (meta.flags & KF_DESTRUCTIVE && !v.env.capSysBoot)
    v.reject(EACCES, "calling kernel function with KF_DESTRUCTIVE flag requires CAP_SYS_BOOT capability");
  const sleepable = (meta.flags & KF_SLEEPABLE) !== 0;
  if (sleepable && !inSleepable(v)) v.reject(EACCES, `program must be sleepable to call sleepable kfunc ${name}`);
  if (isGraphKfunc(name)) return checkGraphKfuncCall(v, name, btfId, meta.flags, proto);
  if (isWqKfunc(name)) return checkWqKfuncCall(v, name, proto);
  if (isDynptrKfunc(name)) {
    checkDynptrKfuncCall(v, name, btf, meta.flags, proto);
    return false;
  }
  checkKfuncArgs(v, meta, proto);

  const rcuLock = name === "bpf_rcu_read_lock";
  const rcuUnlock = name === "bpf_rcu_read_unlock";
  if (v.cur.activeRcuLock > 0) {
    if (rcuLock) v.reject(EINVAL, `nested rcu read lock (kernel function ${name})`);
    else if (rcuUnlock) {
      // Pointers valid only inside the section lose their trust when it ends.
      forEachReg(v.cur, (r) => {
        if (r.type & MEM_RCU) r.type = (r.type & ~(MEM_RCU | PTR_MAYBE_NULL)) | PTR_UNTRUSTED;
      });
      v.cur.activeRcuLock = 0;
    } else if (sleepable) v.reject(EACCES, `kernel func ${name} is sleepable within rcu_read_lock region`);
  } else if (rcuLock) v.cur.activeRcuLock = 1;
  else if (rcuUnlock) v.reject(EINVAL, `unmatched rcu read unlock (kernel function ${name})`);

  if (meta.flags & KF_RCU_PROTECTED && !inRcuCs(v))
    v.reject(EACCES, `kernel func ${name} requires RCU critical section protection`);

  if (meta.releaseRegno) {
    const reg = v.regs[meta.releaseRegno];
    if (!releaseReference(v, reg.refObjId))
      v.reject(EINVAL, `kfunc ${name}#${btfId} reference has not been acquired before`);
  }

  const r1 = copyReg(v.regs[1]);
  for (let r = 1; r <= 5; r++) markRegNotInit(v.regs[r]);
  const r0 = v.writeReg(0);
  const [rtId, rt] = btfSkipModifiers(btf, proto.type);
  if (proto.type === 0) markRegNotInit(r0);
  else if (rt.kind === BTF_KIND_PTR) {
    const [sid, st] = btfSkipModifiers(btf, rt.type);
    if (st.kind === BTF_KIND_INT && "size" in st) {
      // A pointer to a scalar: read-only memory of its size (r0_size, r0_rdonly).
      markPtr(r0, PTR_TO_MEM | MEM_RDONLY);
      r0.memSize = st.size as number;
      if (meta.flags & KF_RET_NULL) {
        r0.type |= PTR_MAYBE_NULL;
        r0.id = v.newId();
      }
      r0.written = true;
      if (meta.flags & KF_ITER_NEXT) processIterNextCall(v, r1);
      return false;
    }
    if (st.kind !== BTF_KIND_STRUCT) {
      v.reject(EINVAL, `kernel function ${name} returns pointer type ${kindStr(st.kind)} ${st.name} is not supported`);
    }
    markPtr(r0, PTR_TO_BTF_ID);
    r0.btfId = sid;
    // An iterator's next: an RCU pointer from a KF_RCU_PROTECTED iterator, else a trusted one.
    if (meta.flags & KF_ITER_NEXT) r0.type |= iterIsRcu(v, r1) ? MEM_RCU : PTR_TRUSTED;
    if (meta.flags & KF_RET_NULL) {
      r0.type |= PTR_MAYBE_NULL;
      r0.id = v.newId();
    }
    if (meta.flags & KF_ACQUIRE) {
      const id = acquireReference(v);
      if (meta.flags & KF_RET_NULL) r0.id = id;
      r0.refObjId = id;
    }
    // process_iter_next_call forks any iterator's next, a struct-returning one too (bpf_iter_scx_dsq_next)
    if (meta.flags & KF_ITER_NEXT) {
      r0.written = true;
      processIterNextCall(v, r1);
    }
    void rtId;
  } else {
    if (meta.flags & KF_ACQUIRE) v.reject(EINVAL, "acquire kernel function does not return PTR_TO_BTF_ID");
    markRegUnknown(r0);
  }
  r0.written = true;
  return false;
}

function kindStr(kind: number): string {
  const names: Record<number, string> = { 1: "INT", 2: "PTR", 3: "ARRAY", 4: "STRUCT", 5: "UNION", 6: "ENUM" };
  return names[kind] ?? "UNKNOWN";
}

/** check_kfunc_args: the arguments against the prototype and the flags. */
function checkKfuncArgs(v: Verifier, meta: KfuncMeta, proto: BtfFuncProto): void {
  const btf = meta.btf ?? (v.env.btf as NonNullable<typeof v.env.btf>);
  const name = meta.name;
  proto.params.forEach((p, i) => {
    const regno = i + 1;
    const reg = v.readReg(regno);
    const [, t] = btfSkipModifiers(btf, p.type);
    // is_kfunc_arg_ignore: a *__ign argument is not checked at all (bpf_iter_bits_new's unsafe_ptr__ign).
    if (p.name.endsWith("__ign")) return;
    if (t.kind === BTF_KIND_INT || t.kind === BTF_KIND_ENUM || t.kind === BTF_KIND_ENUM64) {
      if (reg.type !== SCALAR_VALUE) v.reject(EINVAL, `R${regno} is not a scalar`);
      return;
    }
    if (t.kind !== BTF_KIND_PTR) v.reject(EINVAL, `Unrecognized arg#${i} type ${kindStr(t.kind)}`);
    const nullable = p.name.endsWith("__nullable");
    if (nullable && isNullScalar(reg)) return;
    if ((isTrustedArgs(meta) || meta.flags & KF_RCU) && (isNullScalar(reg) || reg.type & PTR_MAYBE_NULL) && !nullable) {
      v.reject(EACCES, `Possibly NULL pointer passed to trusted arg${i}`);
    }
    if (reg.refObjId) {
      meta.refObjId = reg.refObjId;
      if (meta.flags & KF_RELEASE) meta.releaseRegno = regno;
    }
    const [refId, ref] = btfSkipModifiers(btf, t.type);
    const refName = ref.name;
    // KF_ARG_PTR_TO_ITER: an iterator kfunc's first argument is the iterator on the stack, as is
    // any struct argument named *__iter (is_kfunc_arg_iter), which must be an initialized one.
    const iterArg = (meta.flags & KF_ITER && i === 0) || p.name.endsWith("__iter");
    if (iterArg && ref.kind === BTF_KIND_STRUCT && refName.startsWith("bpf_iter_")) {
      processIterArg(v, meta.flags, regno, refId, "size" in ref ? (ref.size as number) : 8);
      return;
    }
    if (baseType(reg.type) === PTR_TO_BTF_ID) {
      if (ref.kind !== BTF_KIND_STRUCT)
        v.reject(
          EINVAL,
          `kernel function ${name} args#${i} pointer type ${kindStr(ref.kind)} ${refName} is not supported`,
        );
      checkKfuncBtfIdArg(v, meta, reg, regno, i, refId);
      return;
    }
    // KF_ARG_PTR_TO_MEM: a struct of scalars only (__btf_type_is_scalar_struct) is memory of its size.
    if (ref.kind === BTF_KIND_STRUCT && isPointer(reg) && isScalarStruct(btf, refId, 0)) return;
    if (ref.kind === BTF_KIND_STRUCT) {
      if (isNullScalar(reg)) v.reject(EINVAL, `arg#${i} expected pointer to btf or socket`);
      if (!isPointer(reg)) {
        v.reject(EINVAL, `arg#${i} pointer type STRUCT ${refName} must point to scalar, or struct with scalar`);
      }
      v.reject(EINVAL, `arg#${i} expected pointer to btf or socket`);
    }
    // Pointer to memory (e.g. u32 *): a readable region of the pointee's size.
    if (!isPointer(reg)) v.reject(EINVAL, `arg#${i} pointer type must point to memory`);
    // check_mem_reg's BPF_WRITE: the kfunc may write it, so what the stack held there is forgotten
    if (baseType(reg.type) === PTR_TO_STACK && "size" in ref && (ref.size as number) > 0) {
      checkStackRange(v, regno, reg, ref.size as number, true);
      markStackWritten(v, reg, ref.size as number);
    }
  });
  if (meta.flags & KF_RELEASE && !meta.releaseRegno)
    v.reject(EINVAL, `release kernel function ${name} expects refcounted PTR_TO_BTF_ID`);
}

/** __btf_type_is_scalar_struct(): every member a scalar, an array of scalars or such a struct (3 levels). */
function isScalarStruct(btf: Parameters<typeof btfSkipModifiers>[0], id: number, depth: number): boolean {
  const [, t] = btfSkipModifiers(btf, id);
  if (t.kind !== BTF_KIND_STRUCT || !("members" in t)) return false;
  for (const m of t.members as { type: number }[]) {
    let [mid, mt] = btfSkipModifiers(btf, m.type);
    if (mt.kind === BTF_KIND_ARRAY) [mid, mt] = btfSkipModifiers(btf, mt.type);
    if (mt.kind === BTF_KIND_STRUCT) {
      if (depth >= 2 || !isScalarStruct(btf, mid, depth + 1)) return false;
      continue;
    }
    if (mt.kind !== BTF_KIND_INT && mt.kind !== BTF_KIND_ENUM && mt.kind !== BTF_KIND_ENUM64) return false;
  }
  return true;
}

/** KF_ARG_PTR_TO_BTF_ID: trust as the flags require, offset, then the struct type. */
function checkKfuncBtfIdArg(
  v: Verifier,
  meta: KfuncMeta,
  reg: RegState,
  regno: number,
  i: number,
  refId: number,
): void {
  const btf = meta.btf ?? (v.env.btf as NonNullable<typeof v.env.btf>);
  if (isTrustedArgs(meta) || meta.flags & KF_RCU) {
    if (!isTrustedReg(reg)) {
      if (!(meta.flags & KF_RCU)) v.reject(EINVAL, `R${regno} must be referenced or trusted`);
      if (!isRcuReg(reg)) v.reject(EINVAL, `R${regno} must be a rcu pointer`);
    }
  }
  // check_func_arg_reg_off: what is released or trusted is the object itself.
  if ((meta.releaseRegno === regno || isTrustedArgs(meta)) && (reg.off !== 0 || !tnumIsConst(reg.varOff))) {
    v.reject(EACCES, `R${regno} must have zero offset when passed to release func or trusted arg to kfunc`);
  }
  if (hasUnsafeModifiers(reg.type) && !isRcuReg(reg)) {
    const want = regTypeStr(baseType(reg.type) | (reg.type & BPF_REG_TRUSTED_MODIFIERS));
    v.reject(EINVAL, `arg#${i} is ${regTypeStr(reg.type)} expected ${want} or socket`);
  }
  const want = btfName(btf, refId);
  if (!btfStructIdsMatch(btf, reg.btfId, want)) {
    v.reject(
      EINVAL,
      `kernel function ${meta.name} args#${i} expected pointer to STRUCT ${want} but R${regno} has a pointer to STRUCT ${v.btfName(reg.btfId)}`,
    );
  }
}
