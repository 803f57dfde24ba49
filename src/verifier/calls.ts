import { BPF_CALL, BPF_JMP, BPF_REG_10 } from "../isa/opcodes.js";
import { bpf_attach_type, bpf_func_id, bpf_prog_type, MAX_BPF_STACK, MAX_CALL_FRAMES } from "../uapi/bpf.js";
import { E2BIG, EACCES, EFAULT, EINVAL } from "../uapi/errno.js";
import { btfFuncPtrProto, btfPtrToStruct } from "./btf_access.js";
import { isPseudoCall, isPseudoFunc } from "./cfg.js";
import type { VerifierEnv } from "./env.js";
import { globalFuncCall, subprogIsGlobal } from "./global_func.js";
import { checkResourceLeak } from "./refs.js";
import {
  baseType,
  copyReg,
  markPtr,
  markRegNotInit,
  markRegUnknown,
  PTR_TO_BTF_ID,
  PTR_TO_STACK,
  type RegState,
  regTypeStr,
  SCALAR_VALUE,
} from "./reg_state.js";
import { BPF_REG_SIZE, STACK_MISC, STACK_ZERO } from "./stack.js";
import { copyState, type FuncState, newFuncState } from "./state.js";
import { checkAsyncCallbackReturn } from "./timer.js";
import { tnumIsConst } from "./tnum.js";

import type { Verifier } from "./verifier.js";

/** check_func_call: a call to a BPF subprogram (or a callback from a helper). */
export function checkFuncCall(v: Verifier, idx: number, target: number, isCallback: boolean, args?: RegState[]): void {
  const subprog = v.cfg.subprogStarts.indexOf(target);
  if (subprog < 0) v.reject(EFAULT, `verifier bug. No program starts at insn ${target}`);
  // A global function is checked against its prototype and verified once, on its own.
  if (!isCallback && subprogIsGlobal(v, subprog)) {
    globalFuncCall(v, idx, subprog, v.globalFuncs);
    return;
  }
  if (v.cur.frames.length >= MAX_CALL_FRAMES) {
    v.reject(E2BIG, `the call stack of ${v.cur.frames.length + 1} frames is too deep`);
  }
  const caller = v.frame;
  const callee = newFuncState(idx, v.cur.frames.length, subprog);
  callee.isCallback = isCallback;
  for (let r = 1; r <= 5; r++) {
    callee.regs[r] = copyReg(args ? args[r] : caller.regs[r]);
  }
  if (isCallback) {
    callee.cbArgs = callee.regs.slice(0, 6).map(copyReg);
    // The entry of a callback that may iterate is a forced checkpoint: the next iteration is
    // compared with it (the kernel forces one at the callback's call site).
    v.cur.callbackEntry = true;
  }
  markPtr(callee.regs[BPF_REG_10], PTR_TO_STACK);
  callee.regs[BPF_REG_10].frameno = callee.frameno;
  if (!isCallback) for (let r = 0; r <= 5; r++) markRegNotInit(caller.regs[r]);
  v.cur.frames.push(callee);
  if (v.logLevel > 0) v.verbose(`caller:\n ${v.stateString(caller)}\ncallee:\n ${v.stateString(callee)}\n`);
  v.printState = true;
  v.insnIdx = target;
}

/**
 * The next iteration of a bpf_loop callback: the caller's state after this one, its stack
 * contents widened (the callback may have changed what its context points to, so constants
 * there become unknown scalars), the callback entered again with the same arguments. Iterations
 * stop once an entry state is covered by an earlier one.
 */
export function pushCallbackIteration(v: Verifier, done: FuncState): void {
  const again = copyState(v.cur);
  for (const f of again.frames) {
    for (const slot of f.stack) {
      if (!slot) continue;
      if (slot.spilledPtr && slot.spilledPtr.type === SCALAR_VALUE) markRegUnknown(slot.spilledPtr);
      for (let j = 0; j < BPF_REG_SIZE; j++) if (slot.slotType[j] === STACK_ZERO) slot.slotType[j] = STACK_MISC;
    }
  }
  const target = v.cfg.subprogStarts[done.subprog];
  const callee = newFuncState(done.callsite, again.frames.length, done.subprog);
  callee.isCallback = true;
  callee.cbArgs = done.cbArgs;
  for (let r = 1; r <= 5; r++) if (done.cbArgs) callee.regs[r] = copyReg(done.cbArgs[r]);
  markPtr(callee.regs[BPF_REG_10], PTR_TO_STACK);
  callee.regs[BPF_REG_10].frameno = callee.frameno;
  again.frames.push(callee);
  again.callbackReentry = true;
  again.callbackEntry = true;
  // A later iteration repeating an earlier one's state is not an infinite loop (bpf_loop ends it).
  again.callbackUnrollDepth = (again.callbackUnrollDepth ?? 0) + 1;
  v.pushState(again, target);
}

/** BPF_EXIT: return from a subprogram, or the end of a path through the main program. */
export function processExit(v: Verifier): boolean {
  const f = v.frame;
  if (v.cur.frames.length > 1) {
    // prepare_func_exit copies the callee's R0 to the caller without reading it: a void
    // subprogram may leave it unwritten (the caller then cannot read it). A callback's is read.
    const r0 = f.isCallback ? v.readReg(0) : f.regs[0];
    if (baseType(r0.type) === PTR_TO_STACK && r0.frameno === f.frameno)
      v.reject(EINVAL, "cannot return stack pointer to the caller frame");
    if (f.isCallback) {
      if (r0.type !== SCALAR_VALUE)
        v.reject(EINVAL, `At callback return the register R0 is not a known value (${regTypeStr(r0.type)})`);
      if (r0.smin < 0n || r0.smax > 1n) {
        v.reject(
          EINVAL,
          `At callback return the register R0 has smin=${r0.smin} smax=${r0.smax} should have been in [0, 1]`,
        );
      }
    }
    const ret = copyReg(r0);
    v.cur.frames.pop();
    const caller = v.frame;
    if (f.isCallback) {
      markRegUnknown(caller.regs[0]);
      for (let r = 1; r <= 5; r++) markRegNotInit(caller.regs[r]);
      // less() of bpf_rbtree_add sees fresh non-owning nodes each call: one pass covers them all.
      if (!f.rbtreeCb) pushCallbackIteration(v, f);
    } else caller.regs[0] = ret;
    caller.regs[0].written = true;
    v.scratched |= 1;
    if (v.logLevel > 0)
      v.verbose(
        `returning from callee:\n ${v.stateString(f)}\nto caller at ${f.callsite + 1}:\n ${v.stateString(caller)}\n`,
      );
    v.fromHeader = true;
    v.insnIdx = f.callsite + 1;
    return false;
  }
  checkResourceLeak(v, false, true, "BPF_EXIT instruction in main prog");
  if (f.inAsyncCb) checkAsyncCallbackReturn(v);
  else if (f.subprog !== 0) {
    // A global function returns a scalar, whatever the program type (check_return_code).
    const r0 = v.readReg(0);
    if (v.isPointerValue(r0)) v.reject(EACCES, "R0 leaks addr as return value");
    if (r0.type !== SCALAR_VALUE)
      v.reject(EINVAL, `At subprogram exit the register R0 is not a scalar value (${regTypeStr(r0.type)})`);
  } else checkReturnCode(v);
  return true;
}

/**
 * check_return_code's range for the main program of a type whose verifier ops give none: the
 * cgroup hooks return 0 or 1 (the socket address hooks that only report an address must return
 * 1, bind may also ask for a port), sk_lookup SK_DROP or SK_PASS, netfilter NF_DROP or NF_ACCEPT,
 * kprobe and uprobe sessions 0 or 1; any scalar elsewhere.
 */
function progRetvalRange(env: VerifierEnv): [bigint, bigint] | undefined {
  const P = bpf_prog_type;
  const A = bpf_attach_type;
  const eat = env.expectedAttachType ?? 0;
  switch (env.progType) {
    case P.BPF_PROG_TYPE_CGROUP_SOCK_ADDR:
      switch (eat) {
        case A.BPF_CGROUP_UDP4_RECVMSG:
        case A.BPF_CGROUP_UDP6_RECVMSG:
        case A.BPF_CGROUP_UNIX_RECVMSG:
        case A.BPF_CGROUP_INET4_GETPEERNAME:
        case A.BPF_CGROUP_INET6_GETPEERNAME:
        case A.BPF_CGROUP_UNIX_GETPEERNAME:
        case A.BPF_CGROUP_INET4_GETSOCKNAME:
        case A.BPF_CGROUP_INET6_GETSOCKNAME:
        case A.BPF_CGROUP_UNIX_GETSOCKNAME:
          return [1n, 1n];
        case A.BPF_CGROUP_INET4_BIND:
        case A.BPF_CGROUP_INET6_BIND:
          return [0n, 3n];
        default:
          return [0n, 1n];
      }
    case P.BPF_PROG_TYPE_CGROUP_SKB:
      // Egress may also say "drop, but congestion" (2, 3).
      return eat === A.BPF_CGROUP_INET_EGRESS ? [0n, 3n] : [0n, 1n];
    case P.BPF_PROG_TYPE_CGROUP_SOCK:
    case P.BPF_PROG_TYPE_SOCK_OPS:
    case P.BPF_PROG_TYPE_CGROUP_DEVICE:
    case P.BPF_PROG_TYPE_CGROUP_SYSCTL:
    case P.BPF_PROG_TYPE_CGROUP_SOCKOPT:
    case P.BPF_PROG_TYPE_SK_LOOKUP:
    case P.BPF_PROG_TYPE_NETFILTER:
      return [0n, 1n];
    case P.BPF_PROG_TYPE_KPROBE:
      return eat === A.BPF_TRACE_KPROBE_SESSION || eat === A.BPF_TRACE_UPROBE_SESSION ? [0n, 1n] : undefined;
    case P.BPF_PROG_TYPE_TRACING:
      // fentry/fexit return 0; an iterator 0 or 1; tp_btf and fmod_ret anything.
      if (eat === A.BPF_TRACE_FENTRY || eat === A.BPF_TRACE_FEXIT) return [0n, 0n];
      return eat === A.BPF_TRACE_ITER ? [0n, 1n] : undefined;
    case P.BPF_PROG_TYPE_LSM:
      // A cgroup LSM program says allow (1) or deny (0); a void hook's may not say anything else.
      if (eat === A.BPF_LSM_CGROUP) return env.attachTarget?.proto.type === 0 ? [1n, 1n] : [0n, 1n];
      return env.attachTarget?.retvalRange;
    default:
      return undefined;
  }
}

/** verbose_invalid_scalar: the bounds that are known, else "unknown scalar value". */
export function invalidScalarMessage(ctx: string, r0: { smin: bigint; smax: bigint }, range: [bigint, bigint]): string {
  let has = "";
  if (r0.smin > -(1n << 63n)) has += ` smin=${r0.smin}`;
  if (r0.smax < (1n << 63n) - 1n) has += ` smax=${r0.smax}`;
  if (!has) has = " unknown scalar value";
  return `${ctx} the register R0 has${has} should have been in [${range[0]}, ${range[1]}]`;
}

/** check_return_code. */
export function checkReturnCode(v: Verifier): void {
  let range = v.ops?.returnRange ?? (v.structOps ? undefined : progRetvalRange(v.env));
  if (v.structOps) {
    const btf = v.env.btf as NonNullable<VerifierEnv["btf"]>;
    const proto = btfFuncPtrProto(btf, v.structOps.members[v.memberIdx].type);
    if (proto && proto.type === 0) return; // void member: R0 is not looked at
    // A member returning a struct pointer takes back a reference the program owns, unmodified
    // and of the member's type, or NULL.
    const retStruct = proto ? btfPtrToStruct(btf, proto.type) : 0;
    if (retStruct) {
      const r0 = v.readReg(0);
      if (baseType(r0.type) === PTR_TO_BTF_ID && r0.refObjId && r0.btfId === retStruct) {
        if (r0.off !== 0 || !tnumIsConst(r0.varOff) || r0.varOff.value !== 0n)
          v.reject(EACCES, `dereference of modified ${regTypeStr(r0.type)} ptr R0 off=${r0.off} disallowed`);
        return;
      }
      range = [0n, 0n];
    }
  }
  const r0 = v.readReg(0);
  if (v.isPointerValue(r0)) v.reject(EACCES, "R0 leaks addr as return value");
  if (!range) return;
  if (r0.type !== SCALAR_VALUE)
    v.reject(EINVAL, `At program exit the register R0 is not a known value (${regTypeStr(r0.type)})`);
  v.precision.addSink(v.insnIdx, 0);
  // An LSM hook returns int: its range applies to the 32-bit subregister (return_32bit).
  const lsm =
    v.env.progType === bpf_prog_type.BPF_PROG_TYPE_LSM && v.env.expectedAttachType !== bpf_attach_type.BPF_LSM_CGROUP;
  const [lo, hi] = lsm ? [r0.s32min, r0.s32max] : [r0.smin, r0.smax];
  if (lo < range[0] || hi > range[1]) v.reject(EINVAL, invalidScalarMessage("At program exit", r0, range));
}

/** A `call bpf_tail_call` (check_subprogs' has_tail_call). */
function isTailCall(insn: { code: number; src: number; imm: number }): boolean {
  return insn.code === (BPF_JMP | BPF_CALL) && insn.src === 0 && insn.imm === bpf_func_id.BPF_FUNC_tail_call;
}

/** BPF_PRIV_STACK_MIN_SIZE: a function with less stack than this stays on the kernel stack. */
const BPF_PRIV_STACK_MIN_SIZE = 64;

/**
 * bpf_enable_priv_stack with x86-64's JIT (bpf_jit_supports_private_stack): the program types
 * whose runs the kernel keeps from nesting on one CPU (kprobes and tracepoints, and through the
 * trampoline's recursion check: tracing programs other than iterators, struct_ops programs whose
 * member asks for it in check_member).
 */
function privStackSupported(env: VerifierEnv): boolean {
  const P = bpf_prog_type;
  switch (env.progType) {
    case P.BPF_PROG_TYPE_KPROBE:
    case P.BPF_PROG_TYPE_TRACEPOINT:
    case P.BPF_PROG_TYPE_PERF_EVENT:
    case P.BPF_PROG_TYPE_RAW_TRACEPOINT:
      return true;
    case P.BPF_PROG_TYPE_TRACING:
      return env.privStackRequested === true || env.expectedAttachType !== bpf_attach_type.BPF_TRACE_ITER;
    case P.BPF_PROG_TYPE_STRUCT_OPS:
      return env.privStackRequested === true;
    default:
      return false;
  }
}

/**
 * check_max_stack_depth: walk the static call graph from the main program (and from each async
 * callback), following calls and callback addresses (ld_imm64 of a function): at most 8 frames,
 * and the deepest chain may use at most 512 bytes of stack. Recursion runs into the frame limit.
 * Where the program may use private stacks (no tail calls, privStackSupported), each function of
 * the main program's tree with 64 bytes or more gets its own (PRIV_STACK_ADAPTIVE): it then only
 * has to fit in 512 bytes itself. Async callbacks' trees stay on the kernel stack, and are walked
 * first so a function they share with the main tree does too. Returns jits_use_priv_stack.
 */
export function checkMaxStackDepth(v: Verifier): boolean {
  const starts = v.cfg.subprogStarts;
  const ends = starts.slice(1).concat(v.insns.length);
  // round_up_stack_depth with the JIT: 16-byte units.
  const round = (d: number): number => Math.ceil(d / 16) * 16;
  const hasTailCall = starts.map((st, s) => {
    for (let t = st; t < ends[s]; t++) if (isTailCall(v.insns[t])) return true;
    return false;
  });
  const progPriv = !hasTailCall.includes(true) && privStackSupported(v.env);
  /** priv_stack_mode of each function: undefined (unknown), false (none) or true (adaptive). */
  const priv: (boolean | undefined)[] = starts.map(() => undefined);
  const walk = (s: number, frame: number, depth: number, supported: boolean): void => {
    if (!supported) priv[s] = false;
    // A tail call unwinds only its own frame: with 33 of them the callers' frames must stay small.
    if (s !== 0 && hasTailCall[s] && depth >= 256) {
      v.reject(
        EACCES,
        `tail_calls are not allowed when call stack of previous frames is ${depth} bytes. Too large`,
        starts[s],
      );
    }
    const own = round(v.stackDepth[s] ?? 0);
    if (supported && priv[s] === undefined && own >= BPF_PRIV_STACK_MIN_SIZE) priv[s] = true;
    let total = depth;
    if (priv[s] === true) {
      if (own > MAX_BPF_STACK) v.reject(EACCES, `stack size of subprog ${s} is ${own}. Too large`, starts[s]);
    } else {
      total += own;
      if (total > MAX_BPF_STACK)
        v.reject(EACCES, `combined stack size of ${frame + 1} calls is ${total}. Too large`, starts[s]);
    }
    for (let t = starts[s]; t < ends[s]; t++) {
      const insn = v.insns[t];
      const call = isPseudoCall(insn);
      if (!call && !isPseudoFunc(insn)) continue;
      const callee = starts.indexOf(t + insn.imm + 1);
      if (callee < 0) continue;
      // An async callback's stack is not added to its registrar's unless called directly.
      if (v.asyncCallbacks.has(callee) && !call) continue;
      if (frame + 1 >= MAX_CALL_FRAMES) v.reject(E2BIG, `the call stack of ${frame + 1} frames is too deep !`, t);
      walk(callee, frame + 1, total, supported);
    }
  };
  for (let s = starts.length - 1; s >= 0; s--)
    if (s === 0 || v.asyncCallbacks.has(s)) walk(s, 0, 0, s === 0 && progPriv);
  return priv.includes(true);
}
