/**
 * Global functions (BTF_FUNC_GLOBAL subprograms), as 6.18 verifies them: btf_prepare_func_args
 * (kernel/bpf/btf.c) turns a function's BTF prototype and its `arg:` decl tags into argument
 * kinds; a call checks the caller's registers against them (btf_check_func_arg_match), assumes
 * the function valid and goes on with an unknown scalar in R0; each function called is verified
 * once on its own after the main program (do_check_subprogs), starting from registers built from
 * its prototype (do_check_common).
 */
import type { Btf } from "../btf/btf.js";
import type { BtfFunc, BtfFuncProto, BtfType } from "../btf/types.js";
import { bpf_prog_type, MAX_BPF_STACK } from "../uapi/bpf.js";
import {
  BTF_FUNC_GLOBAL,
  BTF_KIND_DECL_TAG,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FUNC,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_PTR,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPEDEF,
  BTF_KIND_UNKN,
} from "../uapi/btf.js";
import { EACCES, EFAULT, EINVAL, EOPNOTSUPP } from "../uapi/errno.js";
import { btfSkipModifiers, btfStructIdsMatch } from "./btf_access.js";
import { processDynptrFunc } from "./dynptr.js";
import { ARG_MEM_RDONLY, ARG_PTR_TO_DYNPTR } from "./helper_protos.js";
import { checkHelperMem } from "./helpers.js";
import {
  baseType,
  CONST_PTR_TO_DYNPTR,
  DYNPTR_TYPE_SKB,
  isTrustedReg,
  MEM_RCU,
  MEM_RDONLY,
  markPtr,
  markRegNotInit,
  markRegUnknown,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_CTX,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_STACK,
  PTR_TRUSTED,
  PTR_UNTRUSTED,
  type RegState,
  regTypeStr,
  SCALAR_VALUE,
} from "./reg_state.js";
import type { FuncState } from "./state.js";
import { tnumIsConst } from "./tnum.js";
import { isVerifierReject, type Verifier } from "./verifier.js";

/** enum bpf_arg_type, the kinds a global function's argument can have. */
export type SubprogArgKind = "anything" | "ctx" | "mem" | "btf_id" | "arena" | "dynptr";

/** struct bpf_subprog_arg_info. */
export interface SubprogArg {
  kind: SubprogArgKind;
  /** PTR_MAYBE_NULL, PTR_TRUSTED, PTR_UNTRUSTED, MEM_RDONLY as the kernel ORs them in. */
  flags: number;
  memSize: number;
  /** A kernel (vmlinux) struct for btf_id arguments. */
  btfId: number;
}

const ARG_TAG_CTX = 1;
const ARG_TAG_NONNULL = 2;
const ARG_TAG_TRUSTED = 4;
const ARG_TAG_NULLABLE = 8;
const ARG_TAG_ARENA = 16;
const ARG_TAG_UNTRUSTED = 32;

const TAGS: Record<string, number> = {
  ctx: ARG_TAG_CTX,
  nonnull: ARG_TAG_NONNULL,
  trusted: ARG_TAG_TRUSTED,
  nullable: ARG_TAG_NULLABLE,
  arena: ARG_TAG_ARENA,
  untrusted: ARG_TAG_UNTRUSTED,
};

/** A failed btf_prepare_func_args: its errno (the message is already in the log). */
class PrepareError {
  constructor(readonly errno: number) {}
}

/** The program's BTF and its FUNC for subprogram `i`, when func_info names one. */
function subprogFunc(v: Verifier, i: number): { btf: Btf; func: BtfFunc; id: number } | undefined {
  const btf = v.env.progBtf;
  const id = v.env.funcInfo?.[i]?.typeId ?? 0;
  if (!btf || !id) return undefined;
  const t = btf.tryTypeById(id);
  return t && t.kind === BTF_KIND_FUNC ? { btf, func: t, id } : undefined;
}

/** subprog_is_global: func_info gives the function global linkage. */
export function subprogIsGlobal(v: Verifier, i: number): boolean {
  return subprogFunc(v, i)?.func.linkage === BTF_FUNC_GLOBAL;
}

/** subprog_name. */
export function subprogName(v: Verifier, i: number): string {
  return subprogFunc(v, i)?.func.name ?? "";
}

/** The canonical context struct of a program type (find_canonical_prog_ctx_type), "" if unnamed. */
function progCtxName(progType: number): string {
  const T = bpf_prog_type;
  switch (progType) {
    case T.BPF_PROG_TYPE_SOCKET_FILTER:
    case T.BPF_PROG_TYPE_SCHED_CLS:
    case T.BPF_PROG_TYPE_SCHED_ACT:
    case T.BPF_PROG_TYPE_CGROUP_SKB:
    case T.BPF_PROG_TYPE_LWT_IN:
    case T.BPF_PROG_TYPE_LWT_OUT:
    case T.BPF_PROG_TYPE_LWT_XMIT:
    case T.BPF_PROG_TYPE_LWT_SEG6LOCAL:
    case T.BPF_PROG_TYPE_SK_SKB:
    case T.BPF_PROG_TYPE_FLOW_DISSECTOR:
      return "__sk_buff";
    case T.BPF_PROG_TYPE_XDP:
      return "xdp_md";
    case T.BPF_PROG_TYPE_KPROBE:
      return "pt_regs";
    case T.BPF_PROG_TYPE_PERF_EVENT:
      return "bpf_perf_event_data";
    case T.BPF_PROG_TYPE_RAW_TRACEPOINT:
    case T.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE:
      return "bpf_raw_tracepoint_args";
    case T.BPF_PROG_TYPE_CGROUP_SOCK:
      return "bpf_sock";
    case T.BPF_PROG_TYPE_SOCK_OPS:
      return "bpf_sock_ops";
    case T.BPF_PROG_TYPE_CGROUP_DEVICE:
      return "bpf_cgroup_dev_ctx";
    case T.BPF_PROG_TYPE_SK_MSG:
      return "sk_msg_md";
    case T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR:
      return "bpf_sock_addr";
    case T.BPF_PROG_TYPE_SK_REUSEPORT:
      return "sk_reuseport_md";
    case T.BPF_PROG_TYPE_CGROUP_SYSCTL:
      return "bpf_sysctl";
    case T.BPF_PROG_TYPE_CGROUP_SOCKOPT:
      return "bpf_sockopt";
    case T.BPF_PROG_TYPE_SK_LOOKUP:
      return "bpf_sk_lookup";
    case T.BPF_PROG_TYPE_NETFILTER:
      return "bpf_nf_ctx";
    default:
      return "";
  }
}

/** btf_is_projection_of: a uapi context struct and the kernel struct behind it. */
const PROJECTIONS: Record<string, string> = { __sk_buff: "sk_buff", xdp_md: "xdp_buff" };

/** btf_is_prog_ctx_type: `ptr` (a BTF_KIND_PTR) points to the program type's context struct. */
function isProgCtxType(btf: Btf, ptr: BtfType & { type: number }, progType: number): boolean {
  let t = btf.typeById(ptr.type);
  if (progType === bpf_prog_type.BPF_PROG_TYPE_KPROBE) {
    // bpf_user_pt_regs_t is checked before typedefs are skipped.
    let id = ptr.type;
    for (let n = 0; n < 32 && t.kind !== BTF_KIND_TYPEDEF && "type" in t && isModifier(t); n++) {
      id = (t as { type: number }).type;
      t = btf.typeById(id);
    }
    if (t.kind === BTF_KIND_TYPEDEF && t.name === "bpf_user_pt_regs_t") return true;
  }
  const [, s] = btfSkipModifiers(btf, ptr.type);
  if (s.kind !== BTF_KIND_STRUCT) return false;
  const want = progCtxName(progType);
  if (!want) return false;
  return s.name === want || PROJECTIONS[want] === s.name;
}

function isModifier(t: BtfType): boolean {
  return t.kind === BTF_KIND_TYPEDEF || t.kind === 9 || t.kind === 10 || t.kind === 11 || t.kind === 18;
}

/** btf_validate_prog_ctx_type for an `arg:ctx` argument: what the context may be declared as. */
function validateCtxArg(v: Verifier, btf: Btf, ptr: BtfType & { type: number }, i: number): boolean {
  const [, t] = btfSkipModifiers(btf, ptr.type);
  if (t.kind === BTF_KIND_UNKN) return true; // void *: any program type
  const T = bpf_prog_type;
  const progType = v.env.progType;
  // Tracing-style contexts are arrays of u64 arguments.
  const u64Ctx = [
    T.BPF_PROG_TYPE_TRACING,
    T.BPF_PROG_TYPE_LSM,
    T.BPF_PROG_TYPE_STRUCT_OPS,
    T.BPF_PROG_TYPE_RAW_TRACEPOINT,
    T.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE,
  ] as number[];
  if (u64Ctx.includes(progType) && t.kind === BTF_KIND_INT && t.size === 8) return true;
  if (progType === T.BPF_PROG_TYPE_SYSCALL) return true;
  if (isProgCtxType(btf, ptr, progType)) return true;
  const want = progCtxName(progType);
  if (!want || t.kind !== BTF_KIND_STRUCT) v.note(`arg#${i} should be void pointer`);
  else v.note(`arg#${i} should be \`struct ${want} *\``);
  return false;
}

/** The `arg:` decl tags of parameter `i` of FUNC `funcId`. */
function argTags(btf: Btf, funcId: number, i: number): string[] {
  const out: string[] = [];
  for (let id = 1; id <= btf.nrTypes; id++) {
    const t = btf.peekType(id);
    if (t.kind !== BTF_KIND_DECL_TAG || t.type !== funcId || t.componentIdx !== i) continue;
    if (t.name.startsWith("arg:")) out.push(t.name.slice(4));
  }
  return out;
}

/** btf_get_ptr_to_btf_id: the kernel struct a local pointer names (CO-RE flavours stripped). */
function kernelTypeOf(v: Verifier, btf: Btf, ptr: BtfType & { type: number }, i: number): number {
  const [, t] = btfSkipModifiers(btf, ptr.type);
  const name = t.name.replace(/___.*$/, "");
  const kbtf = v.env.btf;
  const id = kbtf && name ? kbtf.findByNameKind(name, t.kind) : -1;
  if (!kbtf || id <= 0) {
    v.note(`arg#${i} reference type('${kindStr(t)} ${t.name}') has no matches`);
    throw new PrepareError(EINVAL);
  }
  return id;
}

function kindStr(t: BtfType): string {
  const names: Record<number, string> = {
    0: "UNKNOWN",
    1: "INT",
    2: "PTR",
    3: "ARRAY",
    4: "STRUCT",
    5: "UNION",
    6: "ENUM",
    7: "FWD",
    8: "TYPEDEF",
    9: "VOLATILE",
    10: "CONST",
    11: "RESTRICT",
    12: "FUNC",
    13: "FUNC_PROTO",
    14: "VAR",
    15: "DATASEC",
    16: "FLOAT",
    17: "DECL_TAG",
    18: "TYPE_TAG",
    19: "ENUM64",
  };
  return names[t.kind] ?? "UNKNOWN";
}

/** btf_resolve_size: the size of what a pointer points to, or undefined (void, a function...). */
function resolveSize(btf: Btf, id: number): number | undefined {
  const [, t] = btfSkipModifiers(btf, id);
  switch (t.kind) {
    case BTF_KIND_INT:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_STRUCT:
    case 5: // union
    case 16: // float
      return (t as { size: number }).size;
    case BTF_KIND_PTR:
      return 8;
    case 3: {
      const a = t as { type: number; nelems: number };
      const el = resolveSize(btf, a.type);
      return el === undefined ? undefined : el * a.nelems;
    }
    default:
      return undefined;
  }
}

const argsCache = new WeakMap<Verifier, Map<number, SubprogArg[]>>();

/**
 * btf_prepare_func_args: subprogram `i`'s argument kinds, cached once they are known; throws
 * PrepareError (its message logged) when the prototype is not one a global function may have.
 * Static functions fail silently (the kernel then just does not use their BTF).
 */
function prepareFuncArgs(v: Verifier, i: number): SubprogArg[] {
  let cache = argsCache.get(v);
  if (!cache) argsCache.set(v, (cache = new Map()));
  const cached = cache.get(i);
  if (cached) return cached;
  const sf = subprogFunc(v, i);
  const isGlobal = sf?.func.linkage === BTF_FUNC_GLOBAL;
  // Without BTF a function is static: nothing to check.
  if (!sf) throw new PrepareError(EINVAL);
  const { btf, func } = sf;
  const tname = func.name;
  const protoT = btf.tryTypeById(func.type);
  if (!protoT || protoT.kind !== BTF_KIND_FUNC_PROTO) {
    v.note(`Invalid type of function ${tname}()`);
    throw new PrepareError(EFAULT);
  }
  const proto = protoT as BtfFuncProto;
  const nargs = proto.params.length;
  const fail = (errno: number, msg?: string): never => {
    if (!isGlobal) throw new PrepareError(errno);
    if (msg) v.note(msg);
    throw new PrepareError(errno);
  };
  if (nargs > 5) fail(EINVAL, `Global function ${tname}() with ${nargs} > 5 args. Buggy compiler.`);
  const [, ret] = btfSkipModifiers(btf, proto.type);
  if (ret.kind !== BTF_KIND_INT && ret.kind !== BTF_KIND_ENUM && ret.kind !== BTF_KIND_ENUM64)
    fail(EINVAL, `Global function ${tname}() doesn't return scalar. Only those are supported.`);
  const args: SubprogArg[] = [];
  for (let a = 0; a < nargs; a++) {
    let tags = 0;
    for (const tag of argTags(btf, sf.id, a)) {
      if (!isGlobal) {
        v.note(`arg#${a} type tag is not supported in static functions`);
        throw new PrepareError(EOPNOTSUPP);
      }
      const bit = TAGS[tag];
      if (!bit) {
        v.note(`arg#${a} has unsupported set of tags`);
        throw new PrepareError(EOPNOTSUPP);
      }
      tags |= bit;
    }
    const [, t] = btfSkipModifiers(btf, proto.params[a].type);
    const arg: SubprogArg = { kind: "anything", flags: 0, memSize: 0, btfId: 0 };
    args.push(arg);
    const invalidCombination = (): never => {
      v.note(`arg#${a} has invalid combination of tags`);
      throw new PrepareError(EINVAL);
    };
    if (t.kind === BTF_KIND_PTR) {
      if (tags & ARG_TAG_CTX || isProgCtxType(btf, t, v.env.progType)) {
        if (tags & ~ARG_TAG_CTX) invalidCombination();
        if (tags & ARG_TAG_CTX && !validateCtxArg(v, btf, t, a)) throw new PrepareError(EINVAL);
        arg.kind = "ctx";
        continue;
      }
      const [, pointee] = btfSkipModifiers(btf, t.type);
      if (pointee.kind === BTF_KIND_STRUCT && pointee.name === "bpf_dynptr") {
        if (tags) invalidCombination();
        arg.kind = "dynptr";
        arg.flags = MEM_RDONLY;
        continue;
      }
      if (tags & ARG_TAG_TRUSTED) {
        if (tags & ARG_TAG_NONNULL) invalidCombination();
        arg.kind = "btf_id";
        arg.btfId = kernelTypeOf(v, btf, t, a);
        arg.flags = PTR_TRUSTED | (tags & ARG_TAG_NULLABLE ? PTR_MAYBE_NULL : 0);
        continue;
      }
      if (tags & ARG_TAG_UNTRUSTED) {
        if (tags & ~ARG_TAG_UNTRUSTED) {
          v.note(`arg#${a} untrusted cannot be combined with any other tags`);
          throw new PrepareError(EINVAL);
        }
        if (pointee.kind === BTF_KIND_UNKN || isPrimitive(pointee)) {
          arg.kind = "mem";
          arg.flags = MEM_RDONLY | PTR_UNTRUSTED;
          continue;
        }
        const kid = kernelTypeOf(v, btf, t, a);
        const kt = v.env.btf?.typeById(kid);
        if (!kt || kt.kind !== BTF_KIND_STRUCT) {
          v.note(
            `arg#${a} has type ${kt ? kindStr(kt) : "UNKNOWN"} '${pointee.name}', but only struct or primitive types are allowed`,
          );
          throw new PrepareError(EINVAL);
        }
        arg.kind = "btf_id";
        arg.flags = PTR_UNTRUSTED;
        arg.btfId = kid;
        continue;
      }
      if (tags & ARG_TAG_ARENA) {
        if (tags & ~ARG_TAG_ARENA) {
          v.note(`arg#${a} arena cannot be combined with any other tags`);
          throw new PrepareError(EINVAL);
        }
        arg.kind = "arena";
        continue;
      }
      if (isGlobal) {
        // A generic pointer to memory of the pointee's size, NULL unless tagged nonnull.
        if (tags & ARG_TAG_NULLABLE) invalidCombination();
        const size = resolveSize(btf, t.type);
        if (size === undefined) {
          v.note(`arg#${a} reference type('${kindStr(pointee)} ${pointee.name}') size cannot be determined: -22`);
          throw new PrepareError(EINVAL);
        }
        arg.kind = "mem";
        arg.flags = tags & ARG_TAG_NONNULL ? 0 : PTR_MAYBE_NULL;
        arg.memSize = size;
        continue;
      }
    }
    if (tags) {
      v.note(`arg#${a} has pointer tag, but is not a pointer type`);
      throw new PrepareError(EINVAL);
    }
    if (t.kind === BTF_KIND_INT || t.kind === BTF_KIND_ENUM || t.kind === BTF_KIND_ENUM64) continue;
    fail(EINVAL, `Arg#${a} type ${kindStr(t)} in ${tname}() is not supported yet.`);
  }
  cache.set(i, args);
  return args;
}

function isPrimitive(t: BtfType): boolean {
  return t.kind === BTF_KIND_INT || t.kind === BTF_KIND_ENUM || t.kind === BTF_KIND_ENUM64 || t.kind === 16;
}

/** The main program's prototype is read too (its messages stay in the log); failure only makes it unreliable. */
export function prepareMainArgs(v: Verifier): void {
  if (!v.env.funcInfo?.length) return;
  try {
    prepareFuncArgs(v, 0);
  } catch (e) {
    if (!(e instanceof PrepareError)) throw e;
  }
}

const isNullScalar = (r: RegState): boolean => r.type === SCALAR_VALUE && r.varOff.mask === 0n && r.varOff.value === 0n;

const BTF_PTR_TYPES = [PTR_TO_BTF_ID, PTR_TO_BTF_ID | PTR_TRUSTED, PTR_TO_BTF_ID | MEM_RCU];

/**
 * btf_check_func_arg_match: the caller's r1..rN against subprogram `i`'s arguments. Returns 0 or
 * the errno, its explanation logged.
 */
function checkFuncArgMatch(v: Verifier, i: number, regs: RegState[]): number {
  let args: SubprogArg[];
  try {
    args = prepareFuncArgs(v, i);
  } catch (e) {
    if (e instanceof PrepareError) return e.errno;
    throw e;
  }
  for (let a = 0; a < args.length; a++) {
    const regno = a + 1;
    const reg = regs[regno];
    const arg = args[a];
    if (arg.kind === "anything") {
      if (reg.type !== SCALAR_VALUE) {
        v.note(`R${regno} is not a scalar`);
        return EINVAL;
      }
      continue;
    }
    if (arg.flags & PTR_UNTRUSTED) continue; // read-only, probe-read: anything goes
    if (arg.kind === "ctx") {
      if (reg.type === PTR_TO_CTX && reg.off !== 0) {
        v.note(`dereference of modified ctx ptr R${regno} off=${reg.off} disallowed`);
        return EACCES;
      }
      if (reg.type !== PTR_TO_CTX) {
        v.note(`arg#${a} expects pointer to ctx`);
        return EINVAL;
      }
      continue;
    }
    if (arg.kind === "dynptr") {
      // check_func_arg_reg_off, then process_dynptr_func (ARG_PTR_TO_DYNPTR | MEM_RDONLY): an
      // initialized dynptr of any type on the stack, or a const one passed on unmodified.
      if (
        baseType(reg.type) === CONST_PTR_TO_DYNPTR &&
        (reg.off !== 0 || !tnumIsConst(reg.varOff) || reg.varOff.value !== 0n)
      ) {
        v.note(`dereference of modified dynptr_ptr ptr R${regno} off=${reg.off} disallowed`);
        return EACCES;
      }
      try {
        processDynptrFunc(v, regno, ARG_PTR_TO_DYNPTR | ARG_MEM_RDONLY);
      } catch (e) {
        if (isVerifierReject(e)) return (e as { err: { errno: number } }).err.errno;
        throw e;
      }
      continue;
    }
    if (arg.kind === "mem") {
      // A NULL the function must expect; a known NULL proves nothing about the pointer, so the
      // value is a precision sink (a checkpoint with NULL must not prune a path without it).
      if (reg.type === SCALAR_VALUE) v.precision.addSink(v.insnIdx, regno);
      if (isNullScalar(reg)) continue;
      const err = checkMemReg(v, regno, reg, arg.memSize);
      if (err) return err;
      if (!(arg.flags & PTR_MAYBE_NULL) && reg.type & PTR_MAYBE_NULL) {
        v.note(`arg#${a} is expected to be non-NULL`);
        return EINVAL;
      }
      continue;
    }
    if (arg.kind === "arena") {
      if (reg.type !== SCALAR_VALUE) {
        v.note(`R${regno} is not a pointer to arena or scalar.`);
        return EINVAL;
      }
      continue;
    }
    // btf_id (trusted): check_reg_type against the kernel struct, then its offset.
    if (reg.type === SCALAR_VALUE) v.precision.addSink(v.insnIdx, regno);
    if (isNullScalar(reg) && arg.flags & PTR_MAYBE_NULL) continue;
    if (!isTrustedReg(reg) && !reg.refObjId) {
      v.note(`R${regno} must be referenced or trusted`);
      return EINVAL;
    }
    const t = arg.flags & PTR_MAYBE_NULL ? reg.type & ~PTR_MAYBE_NULL : reg.type;
    if (!BTF_PTR_TYPES.includes(t)) {
      v.note(`R${regno} type=${regTypeStr(reg.type)} expected=ptr_, trusted_ptr_, rcu_ptr_`);
      return EACCES;
    }
    const kbtf = v.env.btf;
    const want = kbtf?.nameOf(arg.btfId) ?? "";
    if (!kbtf || reg.off !== 0 || !btfStructIdsMatch(kbtf, reg.btfId, want)) {
      v.note(`R${regno} is of type ${v.btfName(reg.btfId)} but ${want} is expected`);
      return EACCES;
    }
  }
  return 0;
}

/** check_mem_reg: the region readable and writable as the callee may use it, checked as if not NULL. */
function checkMemReg(v: Verifier, regno: number, reg: RegState, size: number): number {
  const saved = reg.type;
  reg.type &= ~PTR_MAYBE_NULL;
  try {
    const bt = baseType(reg.type);
    const memory = [PTR_TO_STACK, PTR_TO_MAP_VALUE, PTR_TO_MAP_KEY, PTR_TO_MEM, PTR_TO_BTF_ID, PTR_TO_CTX];
    if (!memory.includes(bt)) {
      v.note(`R${regno} type=${regTypeStr(reg.type)} expected=fp`);
      return EACCES;
    }
    if (bt === PTR_TO_STACK && tnumIsConst(reg.varOff)) {
      const off = reg.off + Number(BigInt.asIntN(64, reg.varOff.value));
      if (off < -MAX_BPF_STACK || off + size > 0) {
        v.note(`invalid read from stack R${regno} off=${off} size=${size}`);
        return EINVAL;
      }
    }
    // check_helper_mem_access for a read, then a write: a refusal there is the call's (EINVAL).
    try {
      checkHelperMem(v, regno, reg, size, false);
      checkHelperMem(v, regno, reg, size, true);
    } catch (e) {
      if (isVerifierReject(e)) return EINVAL;
      throw e;
    }
    return 0;
  } finally {
    reg.type = saved;
  }
}

/** Which global subprograms a call reached (subprog_aux->called) and which were verified. */
export interface GlobalFuncs {
  called: Set<number>;
  verified: Set<number>;
}

/**
 * The global half of check_func_call: arguments checked, no lock held, the callee assumed valid
 * (and queued for its own verification); r1-r5 clobbered, R0 an unknown scalar.
 */
export function globalFuncCall(v: Verifier, idx: number, subprog: number, gf: GlobalFuncs): void {
  const caller = v.frame;
  const name = subprogName(v, subprog);
  const err = checkFuncArgMatch(v, subprog, caller.regs);
  if (v.cur.activeLock !== -1)
    v.reject(EINVAL, "global function calls are not allowed while holding a lock,", idx, [
      "use static function instead",
    ]);
  if (err) v.reject(err, `Caller passes invalid args into func#${subprog} ('${name}')`, idx);
  v.verbose(`Func#${subprog} ('${name}') is global and assumed valid.\n`);
  // The stack the callee may write became unknown, but the kernel's log does not show it.
  v.scratchedSlots.clear();
  gf.called.add(subprog);
  for (let r = 1; r <= 5; r++) {
    markRegNotInit(caller.regs[r]);
    v.scratched |= 1 << r;
  }
  markRegUnknown(caller.regs[0]);
  caller.regs[0].written = true;
  v.scratched |= 1;
  v.insnIdx = idx + 1;
}

/**
 * do_check_common for a global subprogram: frame 0 at the function's first instruction, r1..rN
 * as its prototype says (an unknown scalar, the context, memory of the pointee's size, a kernel
 * struct), the rest uninitialised. Logs "Validating %s() func#%d...".
 */
export function globalFuncEntry(v: Verifier, subprog: number, f: FuncState): void {
  v.verbose(`Validating ${subprogName(v, subprog)}() func#${subprog}...\n`);
  let args: SubprogArg[];
  try {
    args = prepareFuncArgs(v, subprog);
  } catch (e) {
    if (!(e instanceof PrepareError)) throw e;
    // The call already prepared them: only a defect of ours gets here.
    v.reject(EFAULT, `verifier bug: func#${subprog} arguments not prepared`, v.cfg.subprogStarts[subprog]);
  }
  args.forEach((arg, a) => {
    const r = f.regs[a + 1];
    switch (arg.kind) {
      case "ctx":
        markPtr(r, PTR_TO_CTX);
        break;
      case "anything":
      case "arena":
        markRegUnknown(r);
        break;
      case "dynptr":
        // A CONST_PTR_TO_DYNPTR with a dynptr id of its own. 6.18 (upstream asks for a local one)
        // gives it the skb type: the log says type=skb and a bpf_dynptr_write through it drops
        // the slices taken from it, as the host kernel shows.
        markPtr(r, CONST_PTR_TO_DYNPTR | DYNPTR_TYPE_SKB);
        r.id = v.newId();
        break;
      case "mem":
        markPtr(r, PTR_TO_MEM | (arg.flags & (PTR_MAYBE_NULL | PTR_UNTRUSTED | MEM_RDONLY)));
        r.memSize = arg.memSize;
        if (arg.flags & PTR_MAYBE_NULL) r.id = v.newId();
        break;
      case "btf_id":
        markPtr(r, PTR_TO_BTF_ID | (arg.flags & (PTR_MAYBE_NULL | PTR_UNTRUSTED | PTR_TRUSTED)));
        r.btfId = arg.btfId;
        r.id = v.newId();
        break;
    }
  });
}
