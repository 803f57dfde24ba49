import type { BtfField } from "../btf/record.js";
import { __BPF_FUNC_MAX_ID, bpf_func_id, bpf_map_type, bpf_prog_type } from "../uapi/bpf.js";
import { BTF_KIND_STRUCT } from "../uapi/btf.js";
import { EACCES, EFAULT, EINVAL } from "../uapi/errno.js";
import { btfStructIdsMatch } from "./btf_access.js";
import { checkFuncCall } from "./calls.js";
import {
  checkDynptrRelease,
  type DynptrHelperMeta,
  dynptrHelperChangesData,
  markDynptrDataRet,
  processDynptrFunc,
  unmarkStackSlotsDynptr,
} from "./dynptr.js";
import { mayPointToSpinLock, processSpinLock } from "./graph.js";
import {
  ALL_HELPER_PROTOS,
  ARG_ANYTHING,
  ARG_CONST_ALLOC_SIZE_OR_ZERO,
  ARG_CONST_MAP_PTR,
  ARG_CONST_SIZE,
  ARG_CONST_SIZE_OR_ZERO,
  ARG_KPTR_XCHG_DEST,
  ARG_KPTR_XCHG_SRC,
  ARG_MAYBE_NULL,
  ARG_MEM_RDONLY,
  ARG_MEM_WRITE,
  ARG_PTR_TO_BTF_ID,
  ARG_PTR_TO_BTF_ID_SOCK_COMMON,
  ARG_PTR_TO_CONST_STR,
  ARG_PTR_TO_CTX,
  ARG_PTR_TO_DYNPTR,
  ARG_PTR_TO_FUNC,
  ARG_PTR_TO_MAP_KEY,
  ARG_PTR_TO_MAP_VALUE,
  ARG_PTR_TO_MEM,
  ARG_PTR_TO_PERCPU_BTF_ID,
  ARG_PTR_TO_RINGBUF_MEM,
  ARG_PTR_TO_SPIN_LOCK,
  ARG_PTR_TO_STACK,
  ARG_PTR_TO_TIMER,
  ARG_PTR_TO_UNINIT_MEM,
  bpfBaseFuncProto,
  type FuncProto,
  funcIdName,
  OBJ_RELEASE,
  RET_INTEGER,
  RET_PTR_TO_BTF_ID_TRUSTED,
  RET_PTR_TO_DYNPTR_MEM_OR_NULL,
  RET_PTR_TO_MAP_VALUE_OR_NULL,
  RET_PTR_TO_MEM_OR_BTF_ID,
  RET_PTR_TO_MEM_OR_NULL,
  RET_PTR_TO_RINGBUF_MEM_OR_NULL,
  RET_VOID,
} from "./helper_protos.js";
import { checkKptrXchgSrc, kptrXchgCall, processKptrFunc } from "./kptr.js";
import { markInnerMapLookup } from "./map_in_map.js";
import { checkMemAccess, checkMemRegion } from "./mem_access.js";
import { checkPacketAccess, clearAllPktPointers, helperChangesPktData, mayAccessDirectPktData } from "./packet.js";
import { checkPercpuBtfArg, markPercpuRet } from "./percpu.js";
import { acquireReference, checkResourceLeak, releaseReference } from "./refs.js";
import {
  baseType,
  CONST_PTR_TO_DYNPTR,
  CONST_PTR_TO_MAP,
  copyReg,
  DYNPTR_TYPE_LOCAL,
  MEM_RCU,
  MEM_RDONLY,
  MEM_RINGBUF,
  markPtr,
  markRegNotInit,
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
  regBoundsSync,
  regTypeStr,
  SCALAR_VALUE,
} from "./reg_state.js";
import { STACK_SPILL, STACK_ZERO } from "./stack.js";
import { checkStackRange, markStackWritten } from "./stack_access.js";
import { copyState } from "./state.js";
import {
  checkTimerMapMatch,
  inSleepable,
  isAsyncCallbackCalling,
  processTimerFunc,
  pushAsyncCallback,
} from "./timer.js";
import { tnumIsConst, tnumStr } from "./tnum.js";
import type { Verifier } from "./verifier.js";

const MEM_TYPES = [PTR_TO_STACK, PTR_TO_PACKET, PTR_TO_PACKET_META, PTR_TO_MAP_KEY, PTR_TO_MAP_VALUE, PTR_TO_MEM];
const MEM_NAMES = "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_";

function isNullScalar(r: RegState): boolean {
  return r.type === SCALAR_VALUE && tnumIsConst(r.varOff) && r.varOff.value === 0n;
}

/** The program type's get_func_proto. */
export function getFuncProto(v: Verifier, funcId: number): FuncProto | undefined {
  const env = v.env;
  const override = env.helperProtos?.get(funcId);
  if (v.structOps) {
    if (v.structOps.getFuncProto) return v.structOps.getFuncProto(funcId, v.memberIdx);
    return override ?? bpfBaseFuncProto(funcId, v.privileged);
  }
  // A helper the embedder registers with its prototype is there for every program type.
  if (v.ops?.getFuncProto) return v.ops.getFuncProto(funcId, env) ?? override;
  if (override) return override;
  if (env.progType === bpf_prog_type.BPF_PROG_TYPE_UNSPEC) return undefined;
  return bpfBaseFuncProto(funcId, v.privileged);
}

const F_ = bpf_func_id;
const MT = bpf_map_type;
/** check_map_func_compatibility, first half: the only helpers a map type may be passed to. */
const MAP_ONLY_FUNCS = new Map<number, readonly number[]>([
  [MT.BPF_MAP_TYPE_QUEUE, [F_.BPF_FUNC_map_peek_elem, F_.BPF_FUNC_map_pop_elem, F_.BPF_FUNC_map_push_elem]],
  [MT.BPF_MAP_TYPE_STACK, [F_.BPF_FUNC_map_peek_elem, F_.BPF_FUNC_map_pop_elem, F_.BPF_FUNC_map_push_elem]],
  [MT.BPF_MAP_TYPE_SK_STORAGE, [F_.BPF_FUNC_sk_storage_get, F_.BPF_FUNC_sk_storage_delete]],
  [MT.BPF_MAP_TYPE_TASK_STORAGE, [F_.BPF_FUNC_task_storage_get, F_.BPF_FUNC_task_storage_delete]],
  [MT.BPF_MAP_TYPE_CGRP_STORAGE, [F_.BPF_FUNC_cgrp_storage_get, F_.BPF_FUNC_cgrp_storage_delete]],
  [MT.BPF_MAP_TYPE_STRUCT_OPS, []],
  [MT.BPF_MAP_TYPE_ARRAY_OF_MAPS, [F_.BPF_FUNC_map_lookup_elem]],
  [MT.BPF_MAP_TYPE_HASH_OF_MAPS, [F_.BPF_FUNC_map_lookup_elem]],
  [
    MT.BPF_MAP_TYPE_RINGBUF,
    [
      F_.BPF_FUNC_ringbuf_output,
      F_.BPF_FUNC_ringbuf_reserve,
      F_.BPF_FUNC_ringbuf_query,
      F_.BPF_FUNC_ringbuf_reserve_dynptr,
      F_.BPF_FUNC_ringbuf_submit_dynptr,
      F_.BPF_FUNC_ringbuf_discard_dynptr,
    ],
  ],
  [MT.BPF_MAP_TYPE_PROG_ARRAY, [F_.BPF_FUNC_tail_call]],
  [MT.BPF_MAP_TYPE_USER_RINGBUF, [F_.BPF_FUNC_user_ringbuf_drain]],
]);
/** ... and second half: the only map types a helper takes. */
const FUNC_ONLY_MAPS = new Map<number, readonly number[]>([
  [F_.BPF_FUNC_map_peek_elem, [MT.BPF_MAP_TYPE_QUEUE, MT.BPF_MAP_TYPE_STACK, MT.BPF_MAP_TYPE_BLOOM_FILTER]],
  [F_.BPF_FUNC_map_pop_elem, [MT.BPF_MAP_TYPE_QUEUE, MT.BPF_MAP_TYPE_STACK, MT.BPF_MAP_TYPE_BLOOM_FILTER]],
  [F_.BPF_FUNC_map_push_elem, [MT.BPF_MAP_TYPE_QUEUE, MT.BPF_MAP_TYPE_STACK, MT.BPF_MAP_TYPE_BLOOM_FILTER]],
  [
    F_.BPF_FUNC_map_lookup_percpu_elem,
    [MT.BPF_MAP_TYPE_PERCPU_ARRAY, MT.BPF_MAP_TYPE_PERCPU_HASH, MT.BPF_MAP_TYPE_LRU_PERCPU_HASH],
  ],
  [F_.BPF_FUNC_sk_storage_get, [MT.BPF_MAP_TYPE_SK_STORAGE]],
  [F_.BPF_FUNC_sk_storage_delete, [MT.BPF_MAP_TYPE_SK_STORAGE]],
  [F_.BPF_FUNC_task_storage_get, [MT.BPF_MAP_TYPE_TASK_STORAGE]],
  [F_.BPF_FUNC_task_storage_delete, [MT.BPF_MAP_TYPE_TASK_STORAGE]],
  [F_.BPF_FUNC_cgrp_storage_get, [MT.BPF_MAP_TYPE_CGRP_STORAGE]],
  [F_.BPF_FUNC_cgrp_storage_delete, [MT.BPF_MAP_TYPE_CGRP_STORAGE]],
  [F_.BPF_FUNC_ringbuf_output, [MT.BPF_MAP_TYPE_RINGBUF]],
  [F_.BPF_FUNC_ringbuf_reserve, [MT.BPF_MAP_TYPE_RINGBUF]],
  [F_.BPF_FUNC_ringbuf_query, [MT.BPF_MAP_TYPE_RINGBUF]],
  [F_.BPF_FUNC_ringbuf_reserve_dynptr, [MT.BPF_MAP_TYPE_RINGBUF]],
  [F_.BPF_FUNC_ringbuf_submit_dynptr, [MT.BPF_MAP_TYPE_RINGBUF]],
  [F_.BPF_FUNC_ringbuf_discard_dynptr, [MT.BPF_MAP_TYPE_RINGBUF]],
  [F_.BPF_FUNC_tail_call, [MT.BPF_MAP_TYPE_PROG_ARRAY]],
  [F_.BPF_FUNC_user_ringbuf_drain, [MT.BPF_MAP_TYPE_USER_RINGBUF]],
]);

/** check_map_func_compatibility (the map types structops has). */
function checkMapFuncCompat(v: Verifier, mapType: number, funcId: number, fname: string): void {
  const funcs = MAP_ONLY_FUNCS.get(mapType);
  const maps = FUNC_ONLY_MAPS.get(funcId);
  if ((funcs && !funcs.includes(funcId)) || (maps && !maps.includes(mapType))) {
    v.reject(EINVAL, `cannot pass map_type ${mapType} into func ${fname}#${funcId}`);
  }
  // allow_tail_call_in_subprogs: a JIT keeping the tail call count across bpf-to-bpf calls (x86-64's).
  if (funcId === F_.BPF_FUNC_tail_call && v.cfg.subprogStarts.length > 1 && v.env.jitSubprogTailcalls === false)
    v.reject(EINVAL, "mixing of tail_calls and bpf-to-bpf calls is not supported");
}

/** Check a (pointer, size) pair of a helper: the memory must be readable, or writable for UNINIT. */
export function checkHelperMem(v: Verifier, regno: number, reg: RegState, size: number, write: boolean): void {
  const bt = baseType(reg.type);
  if (bt === PTR_TO_STACK) {
    checkStackRange(v, regno, reg, size, write);
    if (write) markStackWritten(v, reg, size);
    return;
  }
  if (size === 0) return;
  // check_helper_mem_access: the whole region against the object's size (a helper may pass a
  // value holding a bpf_spin_lock: it copies around the lock, unlike a load or store).
  if (bt === PTR_TO_MAP_VALUE) {
    const map = v.maps[reg.map];
    if (write && map.rdonlyProg) {
      v.reject(EACCES, `write into map forbidden, value_size=${map.valueSize} off=${reg.off} size=${size}`);
    }
    if (!write && map.wronlyProg) {
      v.reject(EACCES, `read from map forbidden, value_size=${map.valueSize} off=${reg.off} size=${size}`);
    }
    checkMemRegion(v, regno, reg, 0, size, map.valueSize, "map value");
    return;
  }
  if (bt === PTR_TO_PACKET || bt === PTR_TO_PACKET_META) {
    checkPacketAccess(v, regno, reg, reg.off, size, false);
    return;
  }
  if (bt === PTR_TO_MAP_KEY) {
    if (write) v.reject(EACCES, `write to change key R${regno} not allowed`);
    checkMemRegion(v, regno, reg, 0, size, v.maps[reg.map].keySize, "map key");
    return;
  }
  if (bt === PTR_TO_MEM) {
    if (write && reg.type & MEM_RDONLY) v.reject(EACCES, `R${regno} cannot write into ${regTypeStr(reg.type)}`);
    checkMemRegion(v, regno, reg, 0, size, reg.memSize, "memory");
    return;
  }
  // Other pointers (ctx, BTF): the load/store checks at both ends of the region.
  checkMemAccess(v, regno, 0, 1, write, -1, write ? 0n : undefined);
  checkMemAccess(v, regno, size - 1, 1, write, -1, write ? 0n : undefined);
}

/**
 * check_reg_const_str: a NUL-terminated string at a constant offset of a frozen read-only array
 * map's value (map_direct_value_addr), as clang puts string literals in .rodata.
 */
function checkRegConstStr(v: Verifier, regno: number, reg: RegState, bad: (types: number[]) => void): void {
  if (reg.type !== PTR_TO_MAP_VALUE) bad([PTR_TO_MAP_VALUE]);
  const m = v.maps[reg.map];
  if (!m.rdonlyProg || !m.frozen) v.reject(EACCES, `R${regno} does not point to a readonly map'`);
  if (!tnumIsConst(reg.varOff)) v.reject(EACCES, `R${regno} is not a constant address'`);
  if (m.type !== bpf_map_type.BPF_MAP_TYPE_ARRAY || !m.valueBytes)
    v.reject(EACCES, "no direct value access support for this map type");
  checkMemRegion(v, regno, reg, 0, m.valueSize - reg.off, m.valueSize, "map value");
  const off = reg.off + Number(reg.varOff.value);
  if ((m.valueBytes as Uint8Array).subarray(off, m.valueSize).indexOf(0) < 0)
    v.reject(EINVAL, "string is not zero-terminated");
}

/** check_func_arg: a packet pointer only for helpers with pkt_access, where the program type reads packets. */
function checkHelperPktAccess(v: Verifier, reg: RegState, fn: FuncProto): void {
  if (reg.type !== PTR_TO_PACKET && reg.type !== PTR_TO_PACKET_META) return;
  if (!mayAccessDirectPktData(v.env.progType, false, fn.pktAccess ?? false))
    v.reject(EACCES, "helper access to the packet is not allowed");
}

function expectedStr(types: number[]): string {
  const names: Record<number, string> = {
    [PTR_TO_STACK]: "fp",
    [PTR_TO_MAP_VALUE]: "map_value",
    [PTR_TO_MAP_KEY]: "map_key",
    [PTR_TO_MEM]: "mem",
    [PTR_TO_CTX]: "ctx",
    [CONST_PTR_TO_MAP]: "map_ptr",
    [PTR_TO_BTF_ID]: "ptr_",
    [PTR_TO_FUNC]: "func",
    [CONST_PTR_TO_DYNPTR]: "dynptr_ptr",
  };
  if (types.length === MEM_TYPES.length && types.every((t) => MEM_TYPES.includes(t))) return MEM_NAMES;
  return types.map((t) => names[t] ?? "?").join(", ");
}

/** check_helper_call. Returns true when it moved execution into a callback (bpf_loop). */
export function checkHelperCall(v: Verifier, funcId: number): boolean {
  const fname = funcIdName(funcId);
  // get_helper_proto: -ERANGE past the enum; an id in range the program type lacks is -EINVAL.
  // (A helper the embedder registers with its prototype may take an id past the enum.)
  // The program type's get_func_proto decides for every id of the enum.
  const known =
    ALL_HELPER_PROTOS.has(funcId) ||
    v.env.helperProtos?.has(funcId) ||
    (v.ops?.getFuncProto && funcId >= 0 && funcId < __BPF_FUNC_MAX_ID);
  if (!known && (funcId < 0 || funcId >= __BPF_FUNC_MAX_ID)) v.reject(EINVAL, `invalid func ${fname}#${funcId}`);
  const fn = known ? getFuncProto(v, funcId) : undefined;
  if (!fn) v.reject(EINVAL, `program of this type cannot use helper ${fname}#${funcId}`);
  if (fn.gplOnly && !v.env.gpl) v.reject(EINVAL, "cannot call GPL-restricted function from non-GPL compatible program");
  if (fn.allowed && !fn.allowed(v.env)) v.reject(EINVAL, "helper call is not allowed in probe");
  if (fn.mightSleep && !inSleepable(v)) v.reject(EINVAL, "helper call might sleep in a non-sleepable prog");
  const regs = v.regs;
  let map: RegState | undefined;
  let callback: RegState | undefined;
  let constKey: bigint | undefined;
  let kptrField: BtfField | undefined;
  let retBtfId = 0;
  /** meta->msize_max_value: the size argument's largest value. */
  let msizeMax = 0n;
  /** returns_cpu_specific_alloc_ptr: bpf_per_cpu_ptr/bpf_this_cpu_ptr on an RCU per-CPU object. */
  let percpuAlloc = false;
  let releaseRefObjId = 0;
  /** The map of a timer argument (meta->map_ptr from process_timer_func), and its map_uid. */
  let timerMap: number | undefined;
  let timerUid = 0;
  const dynptrMeta: DynptrHelperMeta = {};
  let allocSize = 0;
  /** meta.release_regno and meta.ref_obj_id of an OBJ_RELEASE argument. */
  let releaseRegno = 0;
  let releaseRef = 0;
  for (let a = 0; a < fn.argTypes.length; a++) {
    const at = fn.argTypes[a];
    const regno = a + 1;
    const base = at & 0xff;
    const reg = v.readReg(regno);
    const maybeNull = !!(at & ARG_MAYBE_NULL);
    if (maybeNull && isNullScalar(reg)) {
      // check_helper_mem_access: NULL memory only with a size that may be zero and is.
      const sizeType = fn.argTypes[a + 1] & 0xff;
      const sized = sizeType === ARG_CONST_SIZE || sizeType === ARG_CONST_SIZE_OR_ZERO;
      if ((base === ARG_PTR_TO_MEM || base === ARG_PTR_TO_UNINIT_MEM) && sized && v.readReg(regno + 1).umax > 0n)
        v.reject(EACCES, `R${regno} type=scalar expected=fp`);
      continue;
    }
    const bad = (types: number[]): never =>
      v.reject(EACCES, `R${regno} type=${regTypeStr(reg.type)} expected=${expectedStr(types)}`);
    const bt = baseType(reg.type);
    switch (base) {
      case ARG_ANYTHING:
        if (v.isPointerValue(reg)) v.reject(EACCES, `R${regno} leaks addr into helper function`);
        break;
      case ARG_CONST_MAP_PTR:
        if (reg.type !== CONST_PTR_TO_MAP) bad([CONST_PTR_TO_MAP]);
        checkTimerMapMatch(v, timerMap, timerUid, reg);
        map = reg;
        break;
      case ARG_PTR_TO_MAP_KEY:
      case ARG_PTR_TO_MAP_VALUE: {
        if (reg.type & PTR_MAYBE_NULL || !MEM_TYPES.includes(bt)) bad(MEM_TYPES);
        checkHelperPktAccess(v, reg, fn);
        if (!map) v.reject(EACCES, `invalid map_ptr to access map->${base === ARG_PTR_TO_MAP_KEY ? "key" : "value"}`);
        const m = v.maps[map.map];
        // MEM_WRITE (bpf_map_pop_elem, peek_elem): the helper fills the value, so it may be uninitialized.
        const write = (at & ARG_MEM_WRITE) !== 0;
        // check_stack_range_initialized without zero_size_allowed: a key_size 0 map (a ring buffer).
        const size = base === ARG_PTR_TO_MAP_KEY ? m.keySize : m.valueSize;
        if (size === 0 && bt === PTR_TO_STACK) v.reject(EACCES, "invalid zero-sized read");
        checkHelperMem(v, regno, reg, base === ARG_PTR_TO_MAP_KEY ? m.keySize : m.valueSize, write);
        if (base === ARG_PTR_TO_MAP_KEY) constKey = constMapKey(v, reg, m.keySize);
        break;
      }
      case ARG_PTR_TO_MEM:
      case ARG_PTR_TO_UNINIT_MEM: {
        // mem_types ends with PTR_TO_BTF_ID | PTR_TRUSTED: readable memory for a MEM_RDONLY argument
        // (bpf_strncmp(p->comm, ...)), refused where the helper may write it.
        const trustedBtf = base === ARG_PTR_TO_MEM && reg.type === (PTR_TO_BTF_ID | PTR_TRUSTED);
        if (!trustedBtf && (reg.type & PTR_MAYBE_NULL || !MEM_TYPES.includes(bt))) bad(MEM_TYPES);
        if (trustedBtf && !(at & ARG_MEM_RDONLY))
          v.reject(EACCES, `${fn.name}() may write into memory pointed by R${regno} type=${regTypeStr(reg.type)}`);
        if (base === ARG_PTR_TO_UNINIT_MEM && reg.type & MEM_RDONLY) bad(MEM_TYPES);
        checkHelperPktAccess(v, reg, fn);
        const sizeType = fn.argTypes[a + 1] & 0xff;
        if (sizeType !== ARG_CONST_SIZE && sizeType !== ARG_CONST_SIZE_OR_ZERO) break;
        const sreg = v.readReg(regno + 1);
        if (sreg.type !== SCALAR_VALUE) v.reject(EACCES, `R${regno + 1} type=${regTypeStr(sreg.type)} expected=scalar`);
        v.precision.addSink(v.insnIdx, regno + 1);
        if (sreg.smin < 0n)
          v.reject(EACCES, `R${regno + 1} min value is negative, either use unsigned or 'var &= const'`);
        if (sreg.umin === 0n && sizeType === ARG_CONST_SIZE) {
          v.reject(EACCES, `R${regno + 1} invalid zero-sized read: u64=[${sreg.umin},${sreg.umax}]`);
        }
        if (sreg.umax >= 1n << 29n)
          v.reject(EACCES, `R${regno + 1} unbounded memory access, use 'var &= const' or 'if (var < const)'`);
        checkHelperMem(v, regno, reg, Number(sreg.umax), base === ARG_PTR_TO_UNINIT_MEM);
        msizeMax = sreg.umax;
        a++;
        break;
      }
      case ARG_PTR_TO_CONST_STR:
        checkRegConstStr(v, regno, reg, bad);
        break;
      case ARG_PTR_TO_CTX:
        if (reg.type !== PTR_TO_CTX) bad([PTR_TO_CTX]);
        // __check_ptr_off_reg, in its order: a negative offset, then a modified pointer, then a variable one.
        if (reg.off < 0) v.reject(EACCES, `negative offset ctx ptr R${regno} off=${reg.off} disallowed`);
        if (reg.off !== 0) v.reject(EACCES, `dereference of modified ctx ptr R${regno} off=${reg.off} disallowed`);
        if (!tnumIsConst(reg.varOff) || reg.varOff.value !== 0n)
          v.reject(EACCES, `variable ctx access var_off=${tnumStr(reg.varOff)} disallowed`);
        break;
      case ARG_PTR_TO_BTF_ID_SOCK_COMMON:
      case ARG_PTR_TO_BTF_ID: {
        const want = base === ARG_PTR_TO_BTF_ID ? (fn.argBtfNames?.[a] ?? "") : "sock_common";
        if (bt !== PTR_TO_BTF_ID || reg.type & PTR_UNTRUSTED) {
          // The kernel lists every type compatible with the argument (compatible_reg_types).
          const expected =
            base === ARG_PTR_TO_BTF_ID
              ? "ptr_, trusted_ptr_, rcu_ptr_"
              : "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_";
          v.reject(EACCES, `R${regno} type=${regTypeStr(reg.type)} expected=${expected}`);
        }
        // An _OR_NULL argument takes a pointer that may be NULL (bpf_task_storage_get's task).
        if (reg.type & PTR_MAYBE_NULL && !maybeNull)
          v.reject(EACCES, `Possibly NULL pointer passed to helper arg${regno}`);
        const btf = v.env.btf;
        const ok = !!btf && btfStructIdsMatch(btf, reg.btfId, want);
        const sockCommonOk =
          base === ARG_PTR_TO_BTF_ID_SOCK_COMMON && !!btf && btfStructIdsMatch(btf, reg.btfId, "sock");
        if (!ok && !sockCommonOk) {
          v.reject(EACCES, `R${regno} is of type ${v.btfName(reg.btfId)} but ${want} is expected`);
        }
        if (reg.off !== 0 || !tnumIsConst(reg.varOff) || reg.varOff.value !== 0n)
          v.reject(EACCES, `R${regno} must have zero offset when passed to release func or trusted arg to kfunc`);
        break;
      }
      case ARG_PTR_TO_FUNC:
        if (reg.type !== PTR_TO_FUNC) bad([PTR_TO_FUNC]);
        callback = reg;
        break;
      case ARG_PTR_TO_STACK:
        if (bt !== PTR_TO_STACK) bad([PTR_TO_STACK]);
        break;
      case ARG_PTR_TO_SPIN_LOCK:
        processSpinLock(v, regno, reg, funcId === bpf_func_id.BPF_FUNC_spin_lock);
        break;
      case ARG_PTR_TO_PERCPU_BTF_ID:
        retBtfId = checkPercpuBtfArg(v, regno, reg);
        percpuAlloc = (reg.type & MEM_RCU) !== 0;
        break;
      case ARG_KPTR_XCHG_DEST:
        kptrField = processKptrFunc(v, regno, reg);
        break;
      case ARG_KPTR_XCHG_SRC:
        if (!kptrField) v.reject(EFAULT, "verifier internal error: kptr source without its destination");
        checkKptrXchgSrc(v, regno, reg, kptrField);
        releaseRefObjId = reg.refObjId;
        break;
      case ARG_PTR_TO_TIMER:
        timerMap = processTimerFunc(v, regno, reg);
        timerUid = reg.mapUid;
        break;
      case ARG_CONST_SIZE:
      case ARG_CONST_SIZE_OR_ZERO:
        break;
      case ARG_PTR_TO_DYNPTR:
        if (bt !== PTR_TO_STACK && bt !== CONST_PTR_TO_DYNPTR) bad([PTR_TO_STACK, CONST_PTR_TO_DYNPTR]);
        if (at & OBJ_RELEASE) {
          checkDynptrRelease(v, regno, reg);
          releaseRegno = regno;
        }
        dynptrMeta.dynptr = processDynptrFunc(v, regno, at) ?? dynptrMeta.dynptr;
        break;
      case ARG_PTR_TO_RINGBUF_MEM:
        // check_reg_type, check_func_arg_reg_off (a released pointer has no offset), then the release.
        if (reg.type !== (PTR_TO_MEM | MEM_RINGBUF))
          v.reject(EACCES, `R${regno} type=${regTypeStr(reg.type)} expected=ringbuf_mem`);
        if (reg.off !== 0 || !tnumIsConst(reg.varOff) || reg.varOff.value !== 0n)
          v.reject(EINVAL, `R${regno} must have zero offset when passed to release func or trusted arg to kfunc`);
        if (!reg.refObjId) v.reject(EINVAL, `R${regno} must be referenced when passed to release function`);
        releaseRegno = regno;
        releaseRef = reg.refObjId;
        break;
      case ARG_CONST_ALLOC_SIZE_OR_ZERO:
        if (reg.type !== SCALAR_VALUE) v.reject(EACCES, `R${regno} type=${regTypeStr(reg.type)} expected=scalar`);
        if (!tnumIsConst(reg.varOff)) v.reject(EACCES, `R${regno} is not a known constant'`);
        v.precision.addSink(v.insnIdx, regno);
        allocSize = Number(reg.varOff.value);
        break;
      default:
        break;
    }
    void ARG_MEM_RDONLY;
  }
  // check_map_func_compatibility comes after every argument's checks (a ring buffer's lookup
  // fails first on its zero-sized key).
  if (map) checkMapFuncCompat(v, v.maps[map.map].type, funcId, fname);
  // A taken tail call leaves the program: nothing may be held across it.
  if (funcId === bpf_func_id.BPF_FUNC_tail_call) checkResourceLeak(v, false, true, "tail_call");
  // A callback runs as a frame of its own; the path where it never runs continues right after
  // the call. bpf_loop gives it (index, ctx) (set_loop_callback_state); bpf_for_each_map_elem
  // (map, key, value, ctx) (set_map_elem_callback_state); bpf_user_ringbuf_drain (a read-only
  // local dynptr of its own id, ctx) (set_user_ringbuf_callback_state).
  // bpf_timer_set_callback: the callback is verified later, on a state of its own.
  if (callback && isAsyncCallbackCalling(funcId) && timerMap !== undefined) {
    pushAsyncCallback(v, callback.memSize, timerMap);
    clobberAndSetR0(v, fn, undefined);
    return false;
  }
  if (callback) {
    const args = regs.map(copyReg);
    const ctx = copyReg(regs[3]);
    if (funcId === bpf_func_id.BPF_FUNC_for_each_map_elem && map) {
      const m = map.map;
      args[1] = copyReg(map);
      markPtr(args[2], PTR_TO_MAP_KEY);
      args[2].map = m;
      markPtr(args[3], PTR_TO_MAP_VALUE);
      args[3].map = m;
      args[4] = ctx;
      markRegNotInit(args[5]);
    } else if (funcId === bpf_func_id.BPF_FUNC_user_ringbuf_drain) {
      markPtr(args[1], CONST_PTR_TO_DYNPTR | DYNPTR_TYPE_LOCAL);
      args[1].id = v.newId();
      args[2] = ctx;
      for (let r = 3; r <= 5; r++) markRegNotInit(args[r]);
    } else {
      markRegUnknown(args[1]);
      args[1].umax = 0xffff_ffffn;
      args[2] = ctx;
      for (let r = 3; r <= 5; r++) markRegNotInit(args[r]);
    }
    const idx = v.insnIdx;
    // Path 1: zero iterations.
    const skip = copyStateForHelper(v);
    v.pushState(skip, idx + 1);
    checkFuncCall(v, idx, callback.memSize, true, args);
    return true;
  }
  if (kptrField) {
    kptrXchgCall(v, kptrField, releaseRefObjId, fname, funcId);
    return false;
  }
  if (releaseRegno) {
    const ok = releaseRef ? releaseReference(v, releaseRef) : unmarkStackSlotsDynptr(v, regs[releaseRegno]);
    if (!ok) v.reject(EINVAL, `func ${fname}#${funcId} reference has not been acquired before`);
  }
  // bpf_dynptr_from_mem takes map values only (no stack memory: the dynptr could outlive it).
  if (funcId === bpf_func_id.BPF_FUNC_dynptr_from_mem && regs[1].type !== PTR_TO_MAP_VALUE)
    v.reject(EACCES, `Unsupported reg type ${regTypeStr(regs[1].type)} for bpf_dynptr_from_mem data`);
  if (funcId === bpf_func_id.BPF_FUNC_dynptr_write) dynptrHelperChangesData(v, dynptrMeta);
  if (helperChangesPktData(funcId)) clearAllPktPointers(v);
  if (fn.retType === RET_PTR_TO_DYNPTR_MEM_OR_NULL) {
    clobberAndSetR0(v, fn, undefined);
    markDynptrDataRet(v, v.regs[0], allocSize, dynptrMeta);
    return false;
  }
  if (fn.retType === RET_PTR_TO_RINGBUF_MEM_OR_NULL) {
    clobberAndSetR0(v, fn, undefined);
    // The NULL check's id first, then the reference (acquire_reference): both the reference's id.
    const r0 = v.regs[0];
    markPtr(r0, PTR_TO_MEM | MEM_RINGBUF | PTR_MAYBE_NULL);
    r0.memSize = allocSize;
    v.newId();
    r0.id = r0.refObjId = acquireReference(v);
    return false;
  }
  // An array lookup with a constant key in bounds cannot fail (can_elide_value_nullness).
  const m = map ? v.maps[map.map] : undefined;
  const elide =
    funcId === bpf_func_id.BPF_FUNC_map_lookup_elem &&
    m !== undefined &&
    (m.type === bpf_map_type.BPF_MAP_TYPE_ARRAY || m.type === bpf_map_type.BPF_MAP_TYPE_PERCPU_ARRAY) &&
    constKey !== undefined &&
    constKey < BigInt(m.maxEntries);
  clobberAndSetR0(v, fn, map, elide, retBtfId, percpuAlloc);
  if (fn.retSizeBound) {
    // do_refine_retval_range: a length written, or a negative errno.
    const r0 = v.regs[0];
    r0.smax = r0.s32max = msizeMax;
    r0.smin = r0.s32min = -4095n;
    regBoundsSync(r0);
  }
  return false;
}

/** The state after a bpf_loop that ran its callback zero times. */
function copyStateForHelper(v: Verifier) {
  const s = copyState(v.cur);
  const regs = s.frames[s.frames.length - 1].regs;
  markRegUnknown(regs[0]);
  regs[0].written = true;
  for (let r = 1; r <= 5; r++) markRegNotInit(regs[r]);
  return s;
}

/** get_constant_map_key: the key's value when the stack holds a known constant there. */
function constMapKey(v: Verifier, reg: RegState, keySize: number): bigint | undefined {
  if (baseType(reg.type) !== PTR_TO_STACK || !tnumIsConst(reg.varOff) || keySize > 8) return undefined;
  const off = reg.off + Number(BigInt.asIntN(64, reg.varOff.value));
  const spi = Math.floor((-off - 1) / 8);
  const slot = v.cur.frames[reg.frameno].stack[spi];
  if (!slot) return undefined;
  const byte = off + (spi + 1) * 8;
  if (byte + keySize > 8) return undefined;
  if (slot.slotType[0] === STACK_SPILL && slot.spilledPtr?.type === SCALAR_VALUE) {
    const c = slot.spilledPtr.varOff;
    if (c.mask !== 0n) return undefined;
    return (c.value >> BigInt(8 * byte)) & ((1n << BigInt(8 * keySize)) - 1n);
  }
  for (let j = byte; j < byte + keySize; j++) if (slot.slotType[j] !== STACK_ZERO) return undefined;
  return 0n;
}

function clobberAndSetR0(
  v: Verifier,
  fn: FuncProto,
  mapReg: RegState | undefined,
  notNull = false,
  retBtfId = 0,
  percpuAlloc = false,
): void {
  const regs = v.regs;
  const map = mapReg ? copyReg(mapReg) : undefined;
  for (let r = 1; r <= 5; r++) {
    markRegNotInit(regs[r]);
  }
  const r0 = v.writeReg(0);
  switch (fn.retType) {
    case RET_INTEGER:
      markRegUnknown(r0);
      break;
    case RET_VOID:
      markRegNotInit(r0);
      break;
    case RET_PTR_TO_MAP_VALUE_OR_NULL:
      if (!map) v.reject(EINVAL, `kernel subsystem misconfigured verifier`);
      if (markInnerMapLookup(v, r0, map.map)) break;
      markPtr(r0, PTR_TO_MAP_VALUE | (notNull ? 0 : PTR_MAYBE_NULL));
      r0.map = map.map;
      r0.mapUid = map.mapUid;
      // A value never NULL still needs an id when it holds a lock: the id names the lock.
      if (!notNull || mayPointToSpinLock(v, r0)) r0.id = v.newId();
      break;
    case RET_PTR_TO_MEM_OR_NULL:
      markPtr(r0, PTR_TO_MEM | PTR_MAYBE_NULL);
      r0.memSize = fn.retSize ?? 0;
      r0.id = v.newId();
      break;
    case RET_PTR_TO_MEM_OR_BTF_ID:
      markPercpuRet(v, r0, retBtfId, fn.retMaybeNull === true, percpuAlloc);
      break;
    case RET_PTR_TO_BTF_ID_TRUSTED: {
      const btf = v.env.btf;
      const id = btf ? btf.findByNameKind(fn.retBtfName ?? "", BTF_KIND_STRUCT) : 0;
      if (id <= 0) v.reject(EINVAL, `kernel subsystem misconfigured verifier`);
      markPtr(r0, PTR_TO_BTF_ID | PTR_TRUSTED);
      r0.btfId = id;
      break;
    }
  }
  r0.written = true;
}
