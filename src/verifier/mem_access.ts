/**
 * Loads and stores (check_mem_access): map values and keys, helper memory, the context
 * (is_valid_access / btf_ctx_access), typed kernel pointers (btf_struct_access), atomics.
 */
import type { Insn } from "../isa/insn.js";
import {
  BPF_ADD,
  BPF_AND,
  BPF_CMPXCHG,
  BPF_FETCH,
  BPF_MEMSX,
  BPF_MODE,
  BPF_OR,
  BPF_SIZE,
  BPF_XCHG,
  BPF_XOR,
  bpfSizeBytes,
} from "../isa/opcodes.js";
import { bpf_attach_type, bpf_prog_type } from "../uapi/bpf.js";
import {
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_INT,
  BTF_KIND_NAMES,
  BTF_KIND_PTR,
  BTF_KIND_STRUCT,
  BTF_KIND_UNION,
} from "../uapi/btf.js";
import { EACCES, EINVAL, ENOTSUPP, EPERM } from "../uapi/errno.js";
import {
  BTF_TYPE_SAFE_RCU,
  BTF_TYPE_SAFE_RCU_OR_NULL,
  BTF_TYPE_SAFE_TRUSTED,
  BTF_TYPE_SAFE_TRUSTED_OR_NULL,
  btfCtxAccess,
  btfCtxArgIdx,
  btfFuncPtrProto,
  btfSkipModifiers,
  btfStructRead,
  safeField,
} from "./btf_access.js";
import { checkAllocAccess, checkMapValueFields } from "./graph.js";
import { inRcuCs } from "./kfunc.js";
import { checkMapKptrAccess, mapValueKptrField } from "./kptr.js";
import { checkPktMemAccess, isPktPointer, isPktType } from "./packet.js";
import { findReference } from "./refs.js";
import {
  BTF_PROG,
  baseType,
  CONST_PTR_TO_MAP,
  copyReg,
  isPointer,
  isRcuReg,
  isTrustedReg,
  MEM_ALLOC,
  MEM_PERCPU,
  MEM_RCU,
  MEM_RDONLY,
  markPtr,
  markRegKnown,
  markRegUnknown,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_CTX,
  PTR_TO_FUNC,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_PACKET,
  PTR_TO_PACKET_META,
  PTR_TO_STACK,
  PTR_TRUSTED,
  PTR_UNTRUSTED,
  type RegState,
  regTypeStr,
  SCALAR_VALUE,
  zextReg32,
} from "./reg_state.js";
import { checkStackAccess } from "./stack_access.js";
import { tnumAdd, tnumConst, tnumIsConst, tnumStr } from "./tnum.js";
import type { Verifier } from "./verifier.js";

/** Verifier.memAux bits: an access through an exactly bounded pointer / through PTR_TO_BTF_ID. */
export const MEM_DIRECT = 1;
export const MEM_BTF = 2;

/** Largest variable offset a memory access may carry (BPF_MAX_VAR_OFF). */
const BPF_MAX_VAR_OFF = 1n << 29n;

/**
 * Access `size` bytes at reg + off. For reads, returns the loaded value's register state. For
 * writes, `valueReg` is the stored register (or -1 and `imm` for BPF_ST).
 */
/** check_ptr_alignment's names of the pointers whose alignment check_generic_ptr_alignment checks. */
const POINTER_DESC: Record<number, string> = {
  [PTR_TO_MAP_KEY]: "key ",
  [PTR_TO_MAP_VALUE]: "value ",
  [PTR_TO_CTX]: "context ",
};

/**
 * check_generic_ptr_alignment when the access must be aligned (an atomic's
 * strict_alignment_once; x86-64 has efficient unaligned access, so nothing else asks here): the
 * whole offset, variable part included, a multiple of the size. The stack checks its own
 * (always strict).
 */
function checkStrictAlignment(v: Verifier, reg: RegState, off: number, size: number): void {
  // Packet pointers have their own check (NET_IP_ALIGN).
  if (reg.type === PTR_TO_STACK || size === 1 || isPktPointer(reg)) return;
  const desc = POINTER_DESC[reg.type] ?? "";
  const at = tnumAdd(reg.varOff, tnumConst(BigInt(reg.off + off)));
  if (((at.value | at.mask) & BigInt(size - 1)) === 0n) return;
  const vo = tnumIsConst(reg.varOff) ? `${BigInt.asIntN(64, reg.varOff.value)}` : tnumStr(reg.varOff);
  v.reject(EACCES, `misaligned ${desc}access off ${vo}+${reg.off}+${off} size ${size}`);
}

export function checkMemAccess(
  v: Verifier,
  regno: number,
  off: number,
  size: number,
  write: boolean,
  valueReg: number,
  imm?: bigint,
  strictAlignmentOnce = false,
): RegState {
  const reg = v.regs[regno];
  const out = copyReg(reg);
  markRegUnknown(out);
  const bt = baseType(reg.type);
  if (strictAlignmentOnce || v.env.strictAlignment) checkStrictAlignment(v, reg, off, size);
  const value = valueReg >= 0 ? v.regs[valueReg] : undefined;
  if (reg.type === CONST_PTR_TO_MAP) {
    v.memAux[v.insnIdx] |= MEM_DIRECT;
    return checkPtrToMapAccess(v, regno, reg, off, size, write, out);
  }
  if (reg.type & PTR_MAYBE_NULL || reg.type === SCALAR_VALUE || bt === CONST_PTR_TO_MAP || bt === PTR_TO_FUNC) {
    v.reject(EACCES, `R${regno} invalid mem access '${regTypeStr(reg.type)}'`);
  }
  v.memAux[v.insnIdx] |= bt === PTR_TO_BTF_ID ? MEM_BTF : MEM_DIRECT;
  switch (bt) {
    case PTR_TO_STACK:
      return checkStackAccess(v, regno, reg, off, size, write, value, imm, out);
    case PTR_TO_MAP_VALUE: {
      const map = v.maps[reg.map];
      if (write && value && v.isPointerValue(value)) v.reject(EACCES, `R${valueReg} leaks addr into map`);
      // check_map_access_type (bpf_map_flags_to_cap)
      if (write && map.rdonlyProg)
        v.reject(EACCES, `write into map forbidden, value_size=${map.valueSize} off=${off + reg.off} size=${size}`);
      if (!write && map.wronlyProg)
        v.reject(EACCES, `read from map forbidden, value_size=${map.valueSize} off=${off + reg.off} size=${size}`);
      checkMemRegion(v, regno, reg, off, size, map.valueSize, "map value");
      // Special fields belong to their helpers and kfuncs (check_map_access's btf_record check).
      if (map.record) {
        checkMapValueFields(v, reg, reg.off + off, size, map.record);
        const kptr = mapValueKptrField(v, reg, off);
        if (kptr) {
          checkMapKptrAccess(v, kptr, value, valueReg, imm, out);
          return out;
        }
      } else if (map.spinLockOff !== undefined) {
        const lo = reg.off + off + Number(reg.smin);
        const hi = reg.off + off + Number(reg.umax) + size;
        if (lo < map.spinLockOff + 4 && hi > map.spinLockOff) {
          v.reject(EACCES, "bpf_spin_lock cannot be accessed directly by load/store");
        }
      }
      if (!write && map.frozen && map.rdonlyProg && map.valueBytes && tnumIsConst(reg.varOff)) {
        const o = reg.off + off + Number(reg.varOff.value);
        let v = 0n;
        for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(map.valueBytes[o + i] ?? 0);
        markRegKnown(out, v);
      }
      return out;
    }
    case PTR_TO_MAP_KEY: {
      if (write) v.reject(EACCES, `write to change key R${regno} not allowed`);
      checkMemRegion(v, regno, reg, off, size, v.maps[reg.map].keySize, "map key");
      return out;
    }
    case PTR_TO_MEM: {
      if (write && reg.type & MEM_RDONLY) v.reject(EACCES, `R${regno} cannot write into ${regTypeStr(reg.type)}`);
      if (write && value && v.isPointerValue(value)) v.reject(EACCES, `R${valueReg} leaks addr into mem`);
      checkMemRegion(v, regno, reg, off, size, reg.memSize, "memory");
      return out;
    }
    case PTR_TO_CTX:
      return checkCtxAccess(v, regno, reg, off, size, write, value, valueReg, out);
    case PTR_TO_PACKET:
    case PTR_TO_PACKET_META:
      checkPktMemAccess(v, regno, reg, off, size, write, value, valueReg);
      return out;
    case PTR_TO_BTF_ID:
      if (reg.type & (MEM_ALLOC | BTF_PROG)) {
        if (write && value && v.isPointerValue(value)) v.reject(EACCES, `R${valueReg} leaks addr into mem`);
        return checkAllocAccess(v, regno, reg, off, size, out, write);
      }
      return checkBtfAccess(v, regno, reg, off, size, write, out);
    default:
      v.reject(EACCES, `R${regno} invalid mem access '${regTypeStr(reg.type)}'`);
  }
}

/**
 * check_ptr_to_map_access: reads of the map's kernel struct (its map type's, which begins with
 * struct bpf_map), as a walk of that struct in vmlinux BTF; a pointer member gives a BTF pointer.
 */
function checkPtrToMapAccess(
  v: Verifier,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  write: boolean,
  out: RegState,
): RegState {
  const map = v.maps[reg.map];
  const btf = v.env.btf;
  if (!btf) v.reject(ENOTSUPP, "map_ptr access not supported without CONFIG_DEBUG_INFO_BTF");
  const id = map.btfStructName ? btf.findByNameKind(map.btfStructName, BTF_KIND_STRUCT) : 0;
  if (id <= 0) v.reject(ENOTSUPP, `map_ptr access not supported for map type ${map.type}`);
  const tname = map.btfStructName;
  if (!v.allowPtrLeaks) v.reject(EPERM, `'struct ${tname}' access is allowed only to CAP_PERFMON and CAP_SYS_ADMIN`);
  const o = off + reg.off;
  if (o < 0) v.reject(EACCES, `R${regno} is ${tname} invalid negative access: off=${o}`);
  if (write) v.reject(EACCES, `only read from ${tname} is supported`);
  const r = btfStructRead(btf, id, o, size);
  if (!r.ok) v.reject(EACCES, r.msg);
  if (r.ptrBtfId) {
    markPtr(out, PTR_TO_BTF_ID);
    out.btfId = r.ptrBtfId;
  }
  return out;
}

/** check_mem_region_access / __check_mem_access. */
export function checkMemRegion(
  v: Verifier,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  memSize: number,
  what: string,
): void {
  const msg = (o: number): string =>
    what === "map value"
      ? `invalid access to map value, value_size=${memSize} off=${o} size=${size}`
      : what === "map key"
        ? `invalid access to map key, key_size=${memSize} off=${o} size=${size}`
        : `invalid access to memory, mem_size=${memSize} off=${o} size=${size}`;
  // check_mem_region_access: the lowest and the highest offset the pointer may have.
  const fixed = reg.off + off;
  if (reg.smin < 0n && (reg.smin + BigInt(fixed) < 0n || reg.smin < -(1n << 31n))) {
    v.reject(EACCES, `R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.`);
  }
  const lo = Number(reg.smin) + fixed;
  if (lo < 0 || lo + size > memSize) {
    v.note(msg(lo));
    v.reject(EACCES, `R${regno} min value is outside of the allowed memory range`);
  }
  if (reg.umax >= BPF_MAX_VAR_OFF)
    v.reject(EACCES, `R${regno} unbounded memory access, make sure to bounds check any such access`);
  const hi = Number(reg.umax) + fixed;
  if (hi + size > memSize) {
    v.note(msg(hi));
    v.reject(EACCES, `R${regno} max value is outside of the allowed memory range`);
  }
}

export function checkCtxAccess(
  v: Verifier,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  write: boolean,
  value: RegState | undefined,
  valueReg: number,
  out: RegState,
): RegState {
  // __check_ptr_off_reg, in its order.
  if (reg.off < 0) v.reject(EACCES, `negative offset ctx ptr R${regno} off=${reg.off} disallowed`);
  if (reg.off !== 0) v.reject(EACCES, `dereference of modified ctx ptr R${regno} off=${reg.off} disallowed`);
  if (!tnumIsConst(reg.varOff) || reg.varOff.value !== 0n)
    v.reject(EACCES, `variable ctx access var_off=${tnumStr(reg.varOff)} disallowed`);
  if (write && value && v.isPointerValue(value)) v.reject(EACCES, `R${valueReg} leaks addr into ctx`);
  if (v.structOps) {
    const btf = v.env.btf;
    const proto = btf ? btfFuncPtrProto(btf, v.structOps.members[v.memberIdx].type) : undefined;
    if (!btf || !proto) v.reject(EINVAL, "struct_ops program without BTF");
    const typed = v.structOps.ctxArgType?.(v.memberIdx, btfCtxArgIdx(btf, proto, off), write);
    if (typed !== undefined) {
      markPtr(out, PTR_TO_BTF_ID | PTR_TRUSTED);
      out.btfId = typed;
      return out;
    }
    const r = btfCtxAccess(btf, proto, v.attachFuncName ?? "", off, size, write);
    if (!r.ok) {
      if (r.msg) v.note(r.msg);
      v.reject(EACCES, `invalid bpf_context access off=${off} size=${size}`);
    }
    if (r.ptrBtfId) {
      const arg = btfCtxArgIdx(btf, proto, off);
      const id = v.structOps.ctxArgBtfId?.(r.ptrBtfId) ?? r.ptrBtfId;
      const nullable = v.structOps.argMayBeNull?.(v.memberIdx, arg) ?? false;
      if (size !== 8) v.reject(EACCES, `invalid bpf_context access off=${off} size=${size}`);
      // check_ctx_access: a __ref argument loaded after the program released it.
      const ref = v.ctxArgRefs.get(arg);
      if (ref && !findReference(v.cur, ref)) {
        v.reject(EACCES, `invalid bpf_context access off=${off}. Reference may already be released`);
      }
      // btf_ctx_access names the argument's struct as it finds it (before the struct_ops cast).
      if (v.logLevel > 0)
        v.note(`func '${v.attachFuncName}' arg${arg} has btf_id ${r.ptrBtfId} type STRUCT '${v.btfName(r.ptrBtfId)}'`);
      markPtr(out, PTR_TO_BTF_ID | PTR_TRUSTED | (nullable ? PTR_MAYBE_NULL : 0));
      out.btfId = id;
      if (nullable) out.id = v.newId();
      out.refObjId = v.ctxArgRefs.get(arg) ?? 0;
    }
    return out;
  }
  if (v.env.attachTarget) return tracingCtxAccess(v, off, size, write, out);
  const res = v.ops?.isValidAccess(off, size, write, v.env);
  // A sign-extending load cannot give a packet pointer.
  const ldsx = BPF_MODE(v.env.insns[v.insnIdx]?.code ?? 0) === BPF_MEMSX;
  if (!res || (ldsx && res.regType !== undefined && isPktType(res.regType)))
    v.reject(EACCES, `invalid bpf_context access off=${off} size=${size}`);
  if (res.regType !== undefined && res.regType !== SCALAR_VALUE) {
    markPtr(out, res.regType);
    out.btfId = res.btfId ?? 0;
  }
  return out;
}

export function checkBtfAccess(
  v: Verifier,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  write: boolean,
  out: RegState,
): RegState {
  const name = v.btfName(reg.btfId);
  if (!tnumIsConst(reg.varOff) || reg.varOff.value !== 0n) {
    v.reject(
      EACCES,
      `R${regno} is ptr_${name} invalid variable offset: off=${reg.off}, var_off=${tnumStr(reg.varOff)}`,
    );
  }
  const o = reg.off + off;
  if (o < 0) v.reject(EACCES, `R${regno} is ptr_${name} invalid negative access: off=${o}`);
  if (reg.type & MEM_PERCPU) v.reject(EACCES, `R${regno} is ptr_${name} access percpu memory: off=${o}`);
  const btf = v.env.btf;
  if (!btf) v.reject(EINVAL, "access to a BTF pointer without kernel BTF");
  if (write) {
    const refuse = v.structOps ? v.structOps.btfStructAccess(reg.btfId, o, size) : "only read is supported";
    if (refuse !== undefined) v.reject(EACCES, refuse);
    return out;
  }
  const r = btfStructRead(btf, reg.btfId, o, size);
  if (!r.ok) v.reject(EACCES, r.msg);
  if (r.ptrBtfId) {
    // Loads through the pointer are allowed whatever its trust: a NULL or stale one faults into
    // a zero at run time, as in the kernel (BPF_PROBE_MEM).
    markPtr(out, PTR_TO_BTF_ID | walkedPtrFlags(v, reg, r.owner, r.field, r.rcuTag === true));
    out.btfId = r.ptrBtfId;
    // mark_btf_ld_reg: a pointer that may be NULL gets an id for its null check.
    if (out.type & PTR_MAYBE_NULL) out.id = v.newId();
  }
  return out;
}

/**
 * check_ptr_to_btf_access's flags for a pointer read out of a kernel struct: trust survives a
 * walk only through the members the kernel lists (or inside an RCU section for RCU-protected
 * ones); anything else, and anything read through an untrusted pointer, is untrusted.
 */
function walkedPtrFlags(v: Verifier, reg: RegState, owner = "", field = "", rcuTag = false): number {
  if (reg.type & PTR_UNTRUSTED || !(isTrustedReg(reg) || isRcuReg(reg))) return PTR_UNTRUSTED;
  if (isTrustedReg(reg) && safeField(BTF_TYPE_SAFE_TRUSTED, owner, field)) return PTR_TRUSTED;
  if (isTrustedReg(reg) && safeField(BTF_TYPE_SAFE_TRUSTED_OR_NULL, owner, field)) return PTR_TRUSTED | PTR_MAYBE_NULL;
  if (inRcuCs(v) && !(reg.type & PTR_MAYBE_NULL)) {
    if (safeField(BTF_TYPE_SAFE_RCU, owner, field)) return MEM_RCU;
    if (rcuTag || safeField(BTF_TYPE_SAFE_RCU_OR_NULL, owner, field)) return MEM_RCU | PTR_MAYBE_NULL;
  }
  return PTR_UNTRUSTED;
}

const ATOMIC_OPS = [BPF_ADD, BPF_OR, BPF_AND, BPF_XOR]
  .flatMap((o) => [o, o | BPF_FETCH])
  .concat([BPF_XCHG, BPF_CMPXCHG]);

export function checkAtomic(v: Verifier, insn: Insn): void {
  const size = bpfSizeBytes(BPF_SIZE(insn.code));
  const op = insn.imm;
  if (!ATOMIC_OPS.includes(op))
    v.reject(EINVAL, `BPF_ATOMIC uses invalid atomic opcode ${op.toString(16).padStart(2, "0")}`);
  if (size !== 4 && size !== 8) v.reject(EINVAL, "invalid atomic operand size");
  v.readReg(insn.src);
  v.readReg(insn.dst);
  if (op === BPF_CMPXCHG) v.readReg(0);
  if (isPointer(v.regs[insn.src]) && !v.allowPtrLeaks) v.reject(EACCES, `R${insn.src} leaks addr into mem`);
  const bt = baseType(v.regs[insn.dst].type);
  if (bt === PTR_TO_CTX || bt === PTR_TO_BTF_ID || bt === PTR_TO_PACKET || bt === PTR_TO_PACKET_META)
    v.reject(EACCES, `BPF_ATOMIC stores into R${insn.dst} ${regTypeStr(v.regs[insn.dst].type)} is not allowed`);
  // The atomic reads then writes the memory.
  const old = checkMemAccess(v, insn.dst, insn.off, size, false, -1, undefined, true);
  checkMemAccess(v, insn.dst, insn.off, size, true, -1, 1n, true);
  if (op & BPF_FETCH) {
    const loadReg = op === BPF_CMPXCHG ? 0 : insn.src;
    const dst = v.writeReg(loadReg);
    if (isPointer(old)) Object.assign(dst, old);
    else {
      markRegUnknown(dst);
      if (size === 4) zextReg32(dst);
    }
    dst.written = true;
  }
}

// ---- jumps, calls, exit ----

/**
 * tracing_prog_is_valid_access (fentry/fexit/fmod_ret, tp_btf) and LSM programs':
 * bpf_tracing_ctx_access (reads of the 12 u64 slots, aligned to the size), then btf_ctx_access on
 * the target's prototype: argument N is slot N; fexit, fmod_ret and LSM programs also read the
 * return value in the slot after the last argument (fmod_ret only of an int). Integers, enums and
 * structs read as scalars, as do pointers to void or to an integer; other pointers must point to
 * a struct or union.
 */
function tracingCtxAccess(v: Verifier, off: number, size: number, write: boolean, out: RegState): RegState {
  const t = v.env.attachTarget!;
  const bad = (): never => v.reject(EACCES, `invalid bpf_context access off=${off} size=${size}`);
  if (off < 0 || off >= 12 * 8 || write || off % size !== 0) bad();
  const arg = Math.floor(off / 8);
  const nr = t.proto.params.length;
  const eat = v.env.expectedAttachType;
  let typeId: number;
  if (arg > nr) {
    v.note(`func '${t.name}' doesn't have ${arg + 1}-th argument`);
    return bad();
  }
  if (arg === nr) {
    switch (eat) {
      case bpf_attach_type.BPF_LSM_MAC:
      case bpf_attach_type.BPF_LSM_CGROUP:
      case bpf_attach_type.BPF_TRACE_FEXIT:
        break;
      case bpf_attach_type.BPF_MODIFY_RETURN: {
        const [, rt] = btfSkipModifiers(t.btf, t.proto.type);
        if (t.proto.type === 0 || rt.kind !== BTF_KIND_INT || rt.size > 8) {
          v.note(
            `ret type ${t.proto.type === 0 ? "void" : (BTF_KIND_NAMES[rt.kind] ?? "UNKNOWN")} not allowed for fmod_ret`,
          );
          bad();
        }
        break;
      }
      default:
        v.note(`func '${t.name}' doesn't have ${arg + 1}-th argument`);
        bad();
    }
    typeId = t.proto.type;
  } else typeId = t.proto.params[arg].type;
  if (typeId === 0) return out;
  const [, ty] = btfSkipModifiers(t.btf, typeId);
  if (
    ty.kind === BTF_KIND_INT ||
    ty.kind === BTF_KIND_ENUM ||
    ty.kind === BTF_KIND_ENUM64 ||
    ty.kind === BTF_KIND_STRUCT ||
    ty.kind === BTF_KIND_UNION
  )
    return out;
  if (ty.kind !== BTF_KIND_PTR) {
    const pname = t.proto.params[arg]?.name ?? "";
    v.note(
      `func '${t.name}' arg${arg} '${pname}' has type ${BTF_KIND_NAMES[ty.kind] ?? "UNKNOWN"}. Only pointer access is allowed`,
    );
    bad();
  }
  if (size !== 8) {
    v.note(`func '${t.name}' size ${size} must be 8`);
    bad();
  }
  const pid = (ty as { type: number }).type;
  const pointee = pid ? btfSkipModifiers(t.btf, pid)[1] : null;
  // A pointer to void or to an integer is a scalar; a pointer into the target program's own types
  // has no kernel type to become (btf_translate_to_vmlinux).
  if (!pointee || pointee.kind === BTF_KIND_INT) return out;
  if (t.btf !== v.env.btf) bad();
  const [sid] = btfSkipModifiers(t.btf, pid);
  if (pointee.kind !== BTF_KIND_STRUCT && pointee.kind !== BTF_KIND_UNION) {
    v.note(`func '${t.name}' arg${arg} type ${BTF_KIND_NAMES[pointee.kind] ?? "UNKNOWN"} is not a struct`);
    bad();
  }
  if (v.logLevel > 0) {
    const kind = pointee.kind === BTF_KIND_UNION ? "UNION" : "STRUCT";
    v.note(`func '${t.name}' arg${arg} has btf_id ${sid} type ${kind} '${pointee.name}'`);
  }
  // prog_args_trusted: tp_btf and iterator programs, LSM hooks but those that set up or tear down.
  const trusted =
    eat === bpf_attach_type.BPF_TRACE_RAW_TP ||
    eat === bpf_attach_type.BPF_TRACE_ITER ||
    (v.env.progType === bpf_prog_type.BPF_PROG_TYPE_LSM && t.trusted === true);
  markPtr(out, PTR_TO_BTF_ID | (trusted ? PTR_TRUSTED : 0));
  out.btfId = sid;
  return out;
}
