/**
 * bpf_check / do_check (kernel/bpf/verifier.c): walk every path of the program with abstract
 * register and stack states, refusing what could be unsafe with the kernel's message, errno and
 * instruction index, pruning paths whose state is covered by an already-proven one.
 */

import { BPF_JCOND } from "../isa/decode.js";
import { type Insn, isLdImm64 } from "../isa/insn.js";
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CLASS,
  BPF_EXIT,
  BPF_IMM,
  BPF_JA,
  BPF_JMP,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MODE,
  BPF_OP,
  BPF_REG_10,
  BPF_SIZE,
  BPF_SRC,
  BPF_ST,
  BPF_STX,
  bpfSizeBytes,
  MAX_BPF_REG,
} from "../isa/opcodes.js";
import {
  BPF_COMPLEXITY_LIMIT_INSNS,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_KFUNC_CALL,
  bpf_func_id,
  bpf_prog_type,
} from "../uapi/bpf.js";
import { BpfError, E2BIG, EACCES, EFAULT, EINVAL, ENOTSUPP } from "../uapi/errno.js";
import { btfFuncPtrProto, btfName } from "./btf_access.js";
import { checkFuncCall, checkMaxStackDepth, processExit } from "./calls.js";
import { type Cfg, checkCfg, isPseudoFunc, jumpTarget } from "./cfg.js";
import { checkAluOp, signExtend } from "./check_alu.js";
import { checkCondJmp } from "./cond_jmp.js";
import { dynptrSlotStr, dynptrSlotsEqual } from "./dynptr.js";
import {
  KF_ITER_NEXT,
  type StructOpsInfo,
  type VerifierEnv,
  type VerifierMap,
  type VerifierOps,
  type VerifierResult,
} from "./env.js";
import { type GlobalFuncs, globalFuncEntry, prepareMainArgs, subprogName } from "./global_func.js";
import { isGraphApiKfunc, progBtfName } from "./graph.js";
import { checkHelperCall, getFuncProto } from "./helpers.js";
import { isMayGoto, iterActive, iterSlotStr, processMayGoto } from "./iter.js";
import { checkKfuncCall } from "./kfunc.js";
import { checkLdAbs, checkLdAbsSubprogs, isLdAbs } from "./ld_abs.js";
import { computeLiveness, liveRegsLog, Precision, StackLiveness } from "./liveness.js";
import { printBpfInsn, regStr, vlogAlignment } from "./log.js";
import { withInnerMaps } from "./map_in_map.js";
import { checkAtomic, checkMemAccess, MEM_DIRECT } from "./mem_access.js";
import { markKsymReg } from "./percpu.js";
import { acquireReference, checkIds, refsafe } from "./refs.js";
import {
  BTF_PROG,
  baseType,
  CONST_PTR_TO_MAP,
  isPointer,
  MEM_ALLOC,
  markPtr,
  markRegKnown,
  NOT_INIT,
  PTR_MAYBE_NULL,
  PTR_TO_CTX,
  PTR_TO_FUNC,
  PTR_TO_MAP_VALUE,
  PTR_TO_PACKET,
  PTR_TO_PACKET_META,
  PTR_TO_STACK,
  type RegState,
  rangeWithin,
  regBoundsSync,
  regsIdentical,
  resetReg32Bounds,
  SCALAR_VALUE,
} from "./reg_state.js";
import { BPF_REG_SIZE, STACK_INVALID, STACK_MISC, STACK_SPILL, STACK_ZERO, slotStr } from "./stack.js";
import {
  type Checkpoint,
  copyFuncState,
  curFrame,
  type FuncState,
  newFuncState,
  regFingerprint,
  type VerifierState,
} from "./state.js";
import { tnumCast, tnumIn, tnumIsConst } from "./tnum.js";

/** bpf_kptr_xchg's helper id (allowed under a lock). */
const BPF_FUNC_kptr_xchg = 194;
/** for_each_map_elem, timer_set_callback, find_vma, loop, user_ringbuf_drain: they call a callback. */
const CALLBACK_HELPERS = new Set([164, 170, 180, 181, 209]);
/** BPF_COMPLEXITY_LIMIT_STATES: states per instruction an unprivileged program may keep. */
const BPF_COMPLEXITY_LIMIT_STATES = 64;

/** Thrown inside the walk; becomes the result's error. */
class VerifierReject extends Error {
  constructor(readonly err: BpfError) {
    super(err.message);
  }
}

/** A refusal of a check run on the side (its message already logged): the caller decides. */
export function isVerifierReject(e: unknown): boolean {
  return e instanceof VerifierReject;
}

export class Verifier {
  readonly insns: readonly Insn[];
  readonly privileged: boolean;
  readonly allowPtrLeaks: boolean;
  readonly logLevel: number;
  readonly maps: readonly VerifierMap[];
  cfg!: Cfg;
  private live!: Uint16Array;
  precision!: Precision;
  stackLive!: StackLiveness;
  ops: VerifierOps | undefined;
  structOps: StructOpsInfo | undefined;
  memberIdx = -1;
  attachFuncName: string | undefined;
  /** struct_ops `__ref` arguments: argument index -> the reference the program starts holding. */
  readonly ctxArgRefs = new Map<number, number>();
  private readonly logBuf: string[] = [];
  cur!: VerifierState;
  insnIdx = 0;
  private prevInsnIdx = -1;
  private readonly pending: { state: VerifierState; insn: number; prev: number; logPos: number }[] = [];
  private readonly explored = new Map<number, Checkpoint[]>();
  /** Per instruction, 1 + the live register an exact comparison there last found different. */
  private exactMiss!: Uint16Array;
  /** The stack slot where the last exact stacksafe() failed, or -1. */
  private stackMiss = -1;
  /** Per instruction, how many of its checkpoints are done (branches 0): the ones pruning uses. */
  private readonly idmap = new Map<number, number>();
  /** Current-state ids already paired in idmap (check_ids keeps the pairing one to one). */
  private readonly idmapCur = new Set<number>();
  private tmpIdGen = 0;
  private idGen = 0;
  readonly stackDepth: number[] = [];
  /** jits_use_priv_stack: some function runs on a private stack (checkMaxStackDepth). */
  privStack = false;
  /** Global functions called (queued for their own verification) and verified. */
  readonly globalFuncs: GlobalFuncs = { called: new Set(), verified: new Set() };
  /** Subprograms registered as async callbacks (bpf_timer_set_callback): is_async_cb. */
  readonly asyncCallbacks = new Set<number>();
  private processed = 0;
  private totalStates = 0;
  private curStates = 0;
  private peakStates = 0;
  private maxStatesPerInsn = 0;
  private readonly limit: number;
  /** Registers read or written by the current instruction (for the "; R0=..." comment). */
  scratched = 0;
  /** Stack slots of the running frame written by the current instruction. */
  readonly scratchedSlots = new Set<number>();
  /** An instruction was printed and its line is not finished yet. */
  private lineOpen = false;
  /** Print the whole state before the next instruction (a callee was entered). */
  printState = false;
  /** At level 2, head the next instruction with `from X to Y:` (a callee returned). */
  fromHeader = false;
  private jmps = 0;
  private prevAddProcessed = 0;
  private prevAddJmps = 0;
  /** insn_aux_data[].seen: instructions some verified path walked (the rest is dead code). */
  readonly seen: Uint8Array;
  /** Per slot, the pointer kinds its memory accesses went through: MEM_DIRECT and/or MEM_BTF. */
  readonly memAux: Uint8Array;

  constructor(readonly env: VerifierEnv) {
    this.insns = env.insns;
    this.privileged = env.privileged ?? true;
    this.allowPtrLeaks = env.allowPtrLeaks ?? this.privileged;
    this.logLevel = env.logLevel ?? 0;
    this.maps = withInnerMaps(env.maps ?? []);
    this.ops = env.ops;
    this.limit = env.insnLimit ?? BPF_COMPLEXITY_LIMIT_INSNS;
    this.seen = new Uint8Array(env.insns.length);
    this.memAux = new Uint8Array(env.insns.length);
  }

  // ---- log and errors ----

  verbose(s: string): void {
    if (this.logLevel > 0) {
      this.closeLine();
      this.logBuf.push(s);
    }
  }

  /** End the instruction line still waiting for its "; state" comment. */
  private closeLine(): void {
    if (this.lineOpen) {
      this.logBuf.push("\n");
      this.lineOpen = false;
    }
  }

  /** A line of explanation before an error. */
  note(msg: string): void {
    this.closeLine();
    this.logBuf.push(`${msg}\n`);
  }

  /** Log `msg` and stop with errno at the current instruction. */
  reject(errno: number, msg: string, insn = this.insnIdx, after: string[] = []): never {
    this.closeLine();
    this.logBuf.push(`${msg}\n`);
    for (const line of after) this.logBuf.push(`${line}\n`);
    throw new VerifierReject(new BpfError(errno, msg, { insn }));
  }

  newId(): number {
    return ++this.idGen;
  }

  get frame(): FuncState {
    return curFrame(this.cur);
  }

  get regs(): RegState[] {
    return this.frame.regs;
  }

  btfName(id: number): string {
    return this.env.btf ? btfName(this.env.btf, id) : `${id}`;
  }

  private regString(r: RegState): string {
    return regStr(r, {
      mapName: (m) => this.maps[m]?.name,
      mapSizes: (m) => (this.maps[m] ? [this.maps[m].keySize, this.maps[m].valueSize] : undefined),
      // An allocated object's type is in the program's BTF.
      btfName: (id) => (r.type & (MEM_ALLOC | BTF_PROG) ? progBtfName(this, id) : this.btfName(id)),
    });
  }

  stateString(f: FuncState, onlyMask = 0xffff, slots?: ReadonlySet<number>): string {
    const parts: string[] = [];
    // print_verifier_state: the frame number for callees only; no liveness suffixes (6.18).
    if (f.frameno > 0) parts.push(`frame${f.frameno}:`);
    f.regs.forEach((r, i) => {
      if (r.type === NOT_INIT || !(onlyMask & (1 << i))) return;
      parts.push(`R${i}=${this.regString(r)}`);
    });
    f.stack.forEach((s, spi) => {
      if (!s || s.slotType.every((t) => t === STACK_INVALID)) return;
      if (onlyMask !== 0xffff && !slots?.has(spi)) return;
      if (s.iter) {
        // An iterator prints once, at its first slot.
        const it = iterSlotStr(this, s);
        if (it) parts.push(`fp${-(spi + 1) * BPF_REG_SIZE}=${it}`);
        return;
      }
      if (s.dynptr) {
        const d = dynptrSlotStr(s);
        if (d) parts.push(`fp${-(spi + 1) * BPF_REG_SIZE}=${d}`);
        return;
      }
      // A narrow spill prints the bytes above it first ("fp-8=mmmm" then the register).
      const v =
        s.slotType[0] === STACK_SPILL && s.spilledPtr
          ? `${slotStr(s).replace(/r+$/, "")}${this.regString(s.spilledPtr)}`
          : slotStr(s);
      parts.push(`fp${-(spi + 1) * BPF_REG_SIZE}=${v}`);
    });
    // print_verifier_state: the references held, after the running frame's registers.
    const refs = this.cur?.frames.includes(f) ? this.cur.refs : undefined;
    if (refs?.length && refs[0].id) parts.push(`refs=${refs.map((r) => r.id).join(",")}`);
    if (f.inAsyncCb) parts.push("async_cb");
    return parts.join(" ");
  }

  // ---- register access (check_reg_arg) ----

  readReg(regno: number): RegState {
    if (regno >= MAX_BPF_REG) this.reject(EINVAL, `R${regno} is invalid`);
    const r = this.regs[regno];
    if (r.type === NOT_INIT) this.reject(EACCES, `R${regno} !read_ok`);
    // Registers read are shown in the instruction's state comment too (mark_reg_scratched).
    this.scratched |= 1 << regno;
    return r;
  }

  writeReg(regno: number): RegState {
    if (regno >= MAX_BPF_REG) this.reject(EINVAL, `R${regno} is invalid`);
    if (regno === BPF_REG_10) this.reject(EACCES, "frame pointer is read only");
    const r = this.regs[regno];
    r.written = true;
    this.scratched |= 1 << regno;
    return r;
  }

  /** A call at the current instruction gets r1-r5: note when one points into a stack. */
  noteCallArgs(regs: readonly RegState[]): void {
    for (let r = 1; r <= 5; r++) {
      if (baseType(regs[r].type) === PTR_TO_STACK) {
        this.stackLive.markWild(this.insnIdx);
        this.precision.stackViaPointer(this.insnIdx, false);
        return;
      }
    }
  }

  /** live_regs_before of instruction t (compute_live_registers). */
  liveRegsBefore(t: number): number {
    return this.live[t];
  }

  isPointerValue(r: RegState): boolean {
    return isPointer(r) && !this.allowPtrLeaks;
  }

  // ---- main ----

  run(): VerifierResult {
    let error: BpfError | undefined;
    try {
      this.cfg = checkCfg(
        this.insns,
        this.privileged,
        (m) => this.logBuf.push(m),
        this.logLevel > 1,
        (i) => this.callsCallback(i),
      );
      this.checkBtfFunc();
      this.checkAttachBtfId();
      this.live = computeLiveness(this.insns, this.cfg);
      this.exactMiss = new Uint16Array(this.insns.length);
      this.precision = new Precision(this.insns, this.cfg);
      this.stackLive = new StackLiveness(this.insns, this.cfg);
      for (let i = 0; i < this.cfg.subprogStarts.length; i++) this.stackDepth.push(0);
      this.doCheck(0);
      this.doCheckSubprogs();
      this.privStack = checkMaxStackDepth(this);
    } catch (e) {
      if (e instanceof VerifierReject) error = e.err;
      else if (e instanceof BpfError) error = e;
      else {
        // A defect of ours, not the program's: refuse loudly as the kernel's verifier_bug() does
        // (EFAULT, "verifier bug"), so the load rolls back and fuzzing still sees it.
        const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        const stack = e instanceof Error ? (e.stack ?? what) : what;
        error = new BpfError(EFAULT, `verifier bug: ${what}`, { insn: this.insnIdx, internal: stack });
        this.note(error.message);
      }
    }
    const stats = {
      processed: this.processed,
      maxStatesPerInsn: this.maxStatesPerInsn,
      totalStates: this.totalStates,
      peakStates: this.peakStates,
      // 6.18 tracks liveness without the register parentage walks this counted: always 0.
      markRead: 0,
    };
    this.logBuf.push(
      `processed ${stats.processed} insns (limit ${this.limit}) max_states_per_insn ${stats.maxStatesPerInsn} total_states ${stats.totalStates} peak_states ${stats.peakStates} mark_read ${stats.markRead}\n`,
    );
    return {
      ok: !error,
      error,
      log: this.logBuf.join(""),
      stats,
      stackDepth: this.stackDepth.map((d) => Math.ceil(d / 8) * 8),
      subprogStarts: this.cfg?.subprogStarts ?? [0],
      attachFuncName: this.attachFuncName,
      privStack: this.privStack,
      seen: this.seen,
      memProven: error ? undefined : this.memAux.map((m, i) => (m === MEM_DIRECT && this.seen[i] ? 1 : 0)),
    };
  }

  /** check_btf_func: func_info, when given, describes exactly the subprograms found. */
  private checkBtfFunc(): void {
    const fi = this.env.funcInfo;
    if (!fi || fi.length === 0) return;
    const starts = this.cfg.subprogStarts;
    if (fi.length !== starts.length)
      this.reject(EINVAL, "number of funcs in func_info doesn't match number of subprogs", 0);
    fi.forEach((f, i) => {
      if (f.insnOff !== starts[i])
        this.reject(EINVAL, "func_info BTF section doesn't match subprog layout in BPF program", f.insnOff);
    });
    checkLdAbsSubprogs(this, starts);
  }

  /** check_attach_btf_id / check_struct_ops_btf_id. */
  private checkAttachBtfId(): void {
    const env = this.env;
    const T = bpf_prog_type;
    const canSleep = [
      T.BPF_PROG_TYPE_TRACING,
      T.BPF_PROG_TYPE_LSM,
      T.BPF_PROG_TYPE_KPROBE,
      T.BPF_PROG_TYPE_STRUCT_OPS,
      T.BPF_PROG_TYPE_SYSCALL,
    ];
    if (env.sleepable && !(canSleep as number[]).includes(env.progType)) {
      this.reject(EINVAL, "Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be sleepable", 0);
    }
    if (env.progType !== T.BPF_PROG_TYPE_STRUCT_OPS) return;
    if (!env.gpl) this.reject(EINVAL, "struct ops programs must have a GPL compatible license", 0);
    const id = env.attachBtfId ?? 0;
    const st = id ? env.structOps?.findStructOps(id, env.btf) : undefined;
    if (!st) this.reject(ENOTSUPP, `attach_btf_id ${id} is not a supported struct`, 0);
    const idx = env.expectedAttachType ?? 0;
    const member = st.members[idx];
    if (!member) this.reject(EINVAL, `attach to invalid member idx ${idx}`, 0);
    const proto = env.btf ? btfFuncPtrProto(env.btf, member.type) : undefined;
    if (!proto) this.reject(EINVAL, `attach to invalid member ${member.name}(@idx ${idx})`, 0);
    if (!st.isSupported(idx))
      this.reject(ENOTSUPP, `attach to unsupported member ${member.name} of struct ${st.name}`, 0);
    const err = st.checkMember?.(idx, { sleepable: !!env.sleepable });
    if (err) {
      this.logBuf.push(`${err.message}\n`);
      throw new VerifierReject(new BpfError(err.errno, err.message, { ...err.context, insn: 0 }));
    }
    this.structOps = st;
    this.memberIdx = idx;
    this.attachFuncName = member.name;
  }

  private initialState(): VerifierState {
    const f = newFuncState(-1, 0, 0);
    markPtr(f.regs[1], PTR_TO_CTX);
    markPtr(f.regs[BPF_REG_10], PTR_TO_STACK);
    f.regs[BPF_REG_10].frameno = 0;
    this.ops?.initRegs?.(f.regs);
    return { frames: [f], parent: null, activeLock: -1, activeLockId: 0, refs: [], activeRcuLock: 0 };
  }

  /**
   * do_check_common: a struct_ops program owns one reference per `__ref` argument from its first
   * instruction (alloc_insn 0); loads of the argument carry it.
   */
  private acquireCtxArgRefs(): void {
    const st = this.structOps;
    if (!st?.argRefcounted || !this.env.btf) return;
    const proto = btfFuncPtrProto(this.env.btf, st.members[this.memberIdx].type);
    proto?.params.forEach((_p, i) => {
      if (st.argRefcounted?.(this.memberIdx, i)) this.ctxArgRefs.set(i, acquireReference(this, 0));
    });
  }

  /**
   * do_check_subprogs: every global function a verified path called, once, on its own; a
   * function verified may call more, so passes repeat until none is new.
   */
  private doCheckSubprogs(): void {
    const gf = this.globalFuncs;
    for (let fresh = true; fresh; ) {
      fresh = false;
      for (let i = 1; i < this.cfg.subprogStarts.length; i++) {
        if (!gf.called.has(i) || gf.verified.has(i)) continue;
        // free_states: checkpoints of another entry say nothing about this one.
        this.explored.clear();
        this.exactMiss.fill(0);
        this.curStates = 0;
        this.doCheck(i);
        this.verbose(`Func#${i} ('${subprogName(this, i)}') is safe for any args that match its prototype\n`);
        gf.verified.add(i);
        fresh = true;
      }
    }
  }

  /** do_check_common: the main program (subprog 0) or a global function from its prototype. */
  private doCheck(subprog: number): void {
    if (subprog === 0) {
      if (this.logLevel > 1) {
        this.verbose(liveRegsLog(this.insns, this.printedLiveness(), (t) => this.insnText(t)));
      }
      prepareMainArgs(this);
      this.cur = this.initialState();
      this.acquireCtxArgRefs();
    } else {
      const f = newFuncState(-1, 0, subprog);
      markPtr(f.regs[BPF_REG_10], PTR_TO_STACK);
      f.regs[BPF_REG_10].frameno = 0;
      this.cur = { frames: [f], parent: null, activeLock: -1, activeLockId: 0, refs: [], activeRcuLock: 0 };
      globalFuncEntry(this, subprog, f);
    }
    this.insnIdx = this.cfg.subprogStarts[subprog];
    // The entry state, as the kernel prints it before the first instruction.
    if (this.logLevel > 0) this.verbose(`${this.insnIdx}: ${this.stateString(this.frame)}\n`);
    this.walk();
    // Level 1 explains failures: a part that verifies leaves nothing behind (pop_log).
    if (this.logLevel === 1) {
      this.logBuf.length = 0;
      this.lineOpen = false;
    }
  }

  private walk(): void {
    let doPrintState = false;
    for (;;) {
      if (!this.cur) {
        const next = this.pending.pop();
        if (!next) break;
        // Level 1 keeps only the path being walked: a proven path's lines are dropped (pop_log).
        if (this.logLevel === 1 && this.logBuf.length > next.logPos) {
          this.logBuf.length = next.logPos;
          this.lineOpen = next.logPos > 0 && !this.logBuf[next.logPos - 1].endsWith("\n");
        }
        this.cur = next.state;
        this.insnIdx = next.insn;
        this.prevInsnIdx = next.prev;
        doPrintState = true;
      }
      const idx = this.insnIdx;
      if (idx < 0 || idx >= this.insns.length)
        this.reject(EFAULT, `invalid insn idx ${idx} insn_cnt ${this.insns.length}`);
      if (++this.processed > this.limit) {
        this.reject(E2BIG, `BPF program is too large. Processed ${this.processed} insn`);
      }
      if ((this.processed & 0xfff) === 0) this.env.condResched?.();
      // An iterator's next call is always a checkpoint: loops over it converge there.
      const iterNext = this.isIterNextInsn(idx) || isMayGoto(this.insns[idx]);
      if (this.cfg.prunePoint[idx] || iterNext) {
        if (this.isStateVisited(idx, iterNext)) {
          if (this.logLevel > 0) {
            if (doPrintState) this.verbose(`\nfrom ${this.prevInsnIdx} to ${idx}: safe\n`);
            else this.verbose(`${idx}: safe\n`);
          }
          this.printState = this.fromHeader = false;
          this.endPath();
          continue;
        }
      }
      // sanitize_mark_insn_seen(): a pruned visit was seen by the path that stored the state.
      this.seen[idx] = 1;
      // jmps_processed: every jump-class instruction walked counts towards adding a checkpoint.
      const cls = BPF_CLASS(this.insns[idx].code);
      if (cls === BPF_JMP || cls === 0x06) this.jmps++; // BPF_JMP32
      if (this.logLevel > 0) {
        this.printPathState(idx, doPrintState);
        const line = `${idx}: ${this.insnText(idx)}`;
        this.verbose(line);
        this.lineOpen = true;
        this.scratched = 0;
        this.scratchedSlots.clear();
        this.prevInsnIdx = idx;
        const ended = this.step(idx);
        // An exit's line has no state comment: the kernel prints a comment when the next
        // instruction starts, and after an exit the next line is a popped or returned-to state.
        const exit = this.insns[idx].code === (BPF_JMP | BPF_EXIT);
        const st = this.cur && !exit ? this.stateString(this.frame, this.scratched, this.scratchedSlots) : "";
        // A touched register that is no longer readable (r1-r5 after a call) still opens the
        // comment: the kernel prints ';' whenever the state was scratched.
        const touched = !exit && !!this.cur && (this.scratched !== 0 || this.scratchedSlots.size > 0);
        if (this.lineOpen) {
          const pad = " ".repeat(vlogAlignment(line.length + 1));
          this.logBuf.push(st ? `${pad}; ${st}\n` : touched ? `${pad};\n` : "\n");
          this.lineOpen = false;
        } else if (st && !this.printState && !this.fromHeader) {
          // Something was logged after the instruction: the kernel then prints the registers it
          // touched on a line of their own, headed by the next instruction's index.
          this.verbose(`${this.insnIdx}: ${st}\n`);
        }
        if (ended) this.endPath();
      } else {
        this.prevInsnIdx = idx;
        if (this.step(idx)) this.endPath();
      }
      doPrintState = false;
    }
  }

  /** Liveness as the level-2 table shows it: a helper call reads only its prototype's arguments. */
  private printedLiveness(): Uint16Array {
    return computeLiveness(this.insns, this.cfg, (t) => {
      const i = this.insns[t];
      if (i.src === BPF_PSEUDO_KFUNC_CALL) return this.kfuncArgUses(i.imm);
      if (i.src !== 0) return 0x3e;
      const proto = getFuncProto(this, i.imm);
      if (!proto) return 0x3e;
      let uses = 0;
      proto.argTypes.forEach((a, k) => {
        if (a !== 0 && k < 5) uses |= 1 << (k + 1);
      });
      return uses;
    });
  }

  /** r1..rN for a kfunc of N parameters (its BTF prototype); all argument registers if unknown. */
  private kfuncArgUses(btfId: number): number {
    try {
      const func = this.env.btf?.typeById(btfId);
      const proto = func && "type" in func ? this.env.btf?.typeById(func.type as number) : undefined;
      if (!proto || !("params" in proto)) return 0x3e;
      return ((1 << Math.min(proto.params.length, 5)) - 1) << 1;
    } catch {
      return 0x3e;
    }
  }

  /**
   * The whole state before instruction `idx` where 6.18 prints it: a popped branch (level 2 after
   * a `from X to Y:` header; level 1 inline after the branch instruction, whose line pop_log cut
   * back to), a callee's entry (`printState`), and at level 2 the caller a callee returned to.
   */
  private printPathState(idx: number, popped: boolean): void {
    const all = () => this.stateString(this.frame);
    if ((popped || this.fromHeader) && this.logLevel > 1)
      this.verbose(`\nfrom ${this.prevInsnIdx} to ${idx}: ${all()}\n`);
    if (popped || this.printState) {
      if (this.logLevel === 1 && popped && this.lineOpen) {
        this.logBuf.push(` ${idx}: ${all()}\n`);
        this.lineOpen = false;
      } else this.verbose(`${idx}: ${all()}\n`);
    }
    this.printState = this.fromHeader = false;
  }

  private insnText(idx: number): string {
    const names = {
      kfuncName: (id: number) =>
        this.env.kfuncs?.get(id)?.name ??
        [...(this.env.kfuncBtfs?.values() ?? [])].find((b) => b.kfuncs.has(id))?.kfuncs.get(id)?.name ??
        (this.env.btf ? this.env.btf.nameOf(id) : undefined),
      ldImm64: (i: number) => {
        const aux = this.env.ldImm64Aux?.[i];
        if (!aux || aux.kind === "plain") return undefined;
        if (aux.kind === "btf_id") return `${this.btfName(aux.btfId)}`;
        // print_bpf_insn: the resolved address when pointers may be shown, else the map's id.
        const m = this.maps[aux.map];
        const off = aux.kind === "map_value" ? BigInt(aux.off) : 0n;
        if (m?.kaddr !== undefined && this.allowPtrLeaks) return `0x${(m.kaddr + off).toString(16)}`;
        const id = m?.id ?? aux.map;
        return aux.kind === "map_ptr" ? `map[id:${id}]` : `map[id:${id}][0]+${aux.off}`;
      },
    };
    return printBpfInsn(this.insns[idx], this.insns[idx + 1], names, idx);
  }

  /** The path ended (exit or pruned): settle the checkpoints' branch counts (update_branch_counts). */
  private endPath(): void {
    let p = this.cur?.parent ?? null;
    while (p) {
      p.branches--;
      if (p.branches > 0) break;
      // maybe_free_verifier_state: an evicted state goes once its paths are proven
      if (p.evicted) this.curStates--;
      p = p.parent;
    }
    this.cur = null as unknown as VerifierState;
  }

  /** push_stack: explore `state` from `insn` later. */
  pushState(state: VerifierState, insn: number): void {
    if (state.parent) state.parent.branches++;
    this.pending.push({ state, insn, prev: this.insnIdx, logPos: this.logBuf.length });
    if (this.pending.length > 8192) this.reject(E2BIG, `The sequence of ${this.pending.length} jumps is too complex.`);
  }

  // ---- pruning (is_state_visited, states_equal) ----

  /** is_sync/async_callback_calling_insn: helpers and kfuncs that take a callback. */
  private callsCallback(i: Insn): boolean {
    if (i.src === 0) return CALLBACK_HELPERS.has(i.imm);
    if (i.src !== BPF_PSEUDO_KFUNC_CALL) return false;
    const name = this.env.kfuncs?.get(i.imm)?.name;
    return name === "bpf_rbtree_add_impl" || name === "bpf_wq_set_callback_impl";
  }

  /** is_iter_next_insn: a call of a KF_ITER_NEXT kfunc. */
  private isIterNextInsn(idx: number): boolean {
    const i = this.insns[idx];
    if (i.code !== (BPF_JMP | BPF_CALL) || i.src !== BPF_PSEUDO_KFUNC_CALL) return false;
    return ((this.env.kfuncs?.get(i.imm)?.flags ?? 0) & KF_ITER_NEXT) !== 0;
  }

  private isStateVisited(idx: number, iterNext = false): boolean {
    let list = this.explored.get(idx);
    if (!list) {
      list = [];
      this.explored.set(idx, list);
    }
    const reentry = this.cur.callbackReentry === true;
    this.cur.callbackReentry = false;
    const forced = this.cur.callbackEntry === true;
    this.cur.callbackEntry = false;
    const mayGoto = isMayGoto(this.insns[idx]);
    const nFrames = this.cur.frames.length;
    // is_force_checkpoint: iterator next calls, may_goto and callback entries always checkpoint.
    const forceCheckpoint = iterNext || forced;
    const forceNew = forceCheckpoint || this.env.testStateFreq === true || this.cur.asyncEntry === true;
    this.cur.asyncEntry = false;
    // bpf progs have a pruning point every few instructions: a new state only after 2 jumps and 8
    // instructions since the last one (fewer states, same pruning).
    let addNew = forceNew || (this.jmps - this.prevAddJmps >= 2 && this.processed - this.prevAddProcessed >= 8);
    let curFpReg = 0;
    let curFp = 0;
    let statesCnt = 0;
    let evicted = false;
    for (let k = list.length - 1; k >= 0; k--) {
      const sl = list[k];
      statesCnt++;
      // A callback's next iteration in a state its earlier iterations already cover adds nothing
      // new (bpf_loop bounds the iterations): compare every live value exactly and stop here.
      // states_equal fails on a different lock held
      const sameLock = sl.activeLock === this.cur.activeLock;
      if (reentry && sameLock && this.statesEqual(sl, this.cur, idx, false, true)) return this.hit(sl);
      if (sl.branches > 0) {
        let loopCheck = true;
        if (mayGoto) {
          // A later pass through may_goto (deeper) covered by an earlier one: the loop converged.
          if (
            sameLock &&
            (sl.mayGotoDepth ?? 0) !== (this.cur.mayGotoDepth ?? 0) &&
            this.statesEqual(sl, this.cur, idx, false, true)
          )
            return this.hit(sl);
        } else if (iterNext) {
          // An earlier iteration's state at the iterator's next call covers this one (all values
          // compared as if precise): the loop adds nothing new, and iter_next ends it eventually.
          if (sameLock && iterActive(this, this.regs[1]) && this.statesEqual(sl, this.cur, idx, false, true))
            return this.hit(sl);
          loopCheck = false;
        }
        if (
          loopCheck &&
          sameLock &&
          (sl.mayGotoDepth ?? 0) === (this.cur.mayGotoDepth ?? 0) &&
          (sl.callbackUnrollDepth ?? 0) === (this.cur.callbackUnrollDepth ?? 0) &&
          sl.frames.length === nFrames
        ) {
          // states_maybe_looping, then the exact comparison. That fails at the first value that
          // differs, and in a loop walked to the limit that is the same one every time (the
          // loop's counter): look at it first.
          const miss = this.exactMiss[idx];
          let maybe = true;
          if (miss > 0) {
            if (miss < MISS_SLOT) {
              // a register: its fingerprint, the checkpoint's computed once
              if (curFpReg !== miss) {
                curFpReg = miss;
                curFp = regFingerprint(this.regs[miss - 1]);
              }
              if (sl.missReg !== miss) {
                sl.missReg = miss;
                sl.missFp = regFingerprint(sl.frames[nFrames - 1].regs[miss - 1]);
              }
              if (sl.missFp !== curFp) maybe = false;
            }
            if (maybe && differsAt(sl.frames[nFrames - 1], this.frame, miss)) maybe = false;
          }
          if (maybe && this.statesEqual(sl, this.cur, idx, true)) {
            const cur = `cur state: ${this.stateString(this.frame)}`;
            const old = `old state: ${this.stateString(sl.frames[sl.frames.length - 1])}`;
            this.reject(EINVAL, `infinite loop detected at insn ${idx}`, idx, [cur, old]);
          }
        }
        // Inside a loop, add states rarely: iterations differ and seldom help pruning, while a
        // loop with a large bound still reaches the complexity limit soon.
        if (!forceNew && this.jmps - this.prevAddJmps < 20 && this.processed - this.prevAddProcessed < 100)
          addNew = false;
      } else if (sameLock && this.statesEqual(sl, this.cur, idx, false)) return this.hit(sl);
      // A miss counts only when a state is going to be added: otherwise a loop's iterations would
      // evict the states of its first ones. A state that keeps missing goes (checkpoints that
      // iterators converge on are kept longer).
      if (addNew) sl.missCnt++;
      const n = forceCheckpoint && sl.branches > 0 ? 64 : 3;
      if (sl.missCnt > sl.hitCnt * n + n) {
        sl.evicted = true;
        evicted = true;
        // A proven state is freed at once; one still being explored when its paths end.
        if (sl.branches === 0) this.curStates--;
      }
    }
    if (evicted) {
      const kept = list.filter((sl) => !sl.evicted);
      this.explored.set(idx, kept);
      list = kept;
    }
    // max_states_per_insn counts the states the lookup compared against.
    if (statesCnt > this.maxStatesPerInsn) this.maxStatesPerInsn = statesCnt;
    if (!this.privileged && statesCnt > BPF_COMPLEXITY_LIMIT_STATES) return false;
    if (!addNew) return false;
    this.prevAddProcessed = this.processed;
    this.prevAddJmps = this.jmps;
    const cp: Checkpoint = {
      insn: idx,
      frames: this.cur.frames.map(copyFuncState),
      activeLock: this.cur.activeLock,
      activeLockId: this.cur.activeLockId,
      refs: this.cur.refs.slice(),
      activeRcuLock: this.cur.activeRcuLock,
      mayGotoDepth: this.cur.mayGotoDepth ?? 0,
      callbackUnrollDepth: this.cur.callbackUnrollDepth ?? 0,
      branches: 1,
      parent: this.cur.parent,
      missReg: 0,
      missFp: 0,
      missCnt: 0,
      hitCnt: 0,
      evicted: false,
    };
    this.cur.parent = cp;
    list.push(cp);
    this.totalStates++;
    this.curStates++;
    if (this.curStates > this.peakStates) this.peakStates = this.curStates;
    for (const f of this.cur.frames) {
      for (const r of f.regs) r.written = false;
      for (const sl of f.stack) if (sl) sl.written = false;
    }
    return false;
  }

  /** A state covers the current one: the path is pruned. */
  private hit(sl: Checkpoint): true {
    sl.hitCnt++;
    return true;
  }

  private statesEqual(
    oldState: Checkpoint,
    curState: VerifierState,
    idx: number,
    exact: boolean,
    allPrecise = false,
  ): boolean {
    const old = oldState.frames;
    const cur = curState.frames;
    if (old.length !== cur.length) return false;
    for (let i = 0; i < old.length; i++) if (old[i].callsite !== cur[i].callsite) return false;
    const top = old.length - 1;
    const idmap = this.idmap;
    if (idmap.size) idmap.clear();
    if (this.idmapCur.size) this.idmapCur.clear();
    this.tmpIdGen = 0;
    if (!refsafe(oldState, curState, idmap)) return false;
    if (!checkIds(oldState.activeLockId, curState.activeLockId, idmap)) return false;
    for (let i = 0; i < old.length; i++) {
      const pos = i === old.length - 1 ? idx : cur[i + 1].callsite + 1;
      const live = this.live[pos];
      const need = this.precision.need[pos];
      for (let r = 0; r < BPF_REG_10; r++) {
        if (!(live & (1 << r))) continue;
        const precise = exact || allPrecise || !!(need & (1 << r));
        if (!this.regsafe(old[i].regs[r], cur[i].regs[r], precise, exact, idmap)) {
          if (exact && i === top) this.exactMiss[idx] = r + 1;
          return false;
        }
      }
      // Stack liveness is per instruction of the running frame: callers' stacks are compared whole.
      const running = i === old.length - 1 && !exact;
      const liveAt = running ? idx : -1;
      const preciseAt = running && !allPrecise ? idx : -1;
      this.stackMiss = -1;
      if (!this.stacksafe(old[i], cur[i], exact, idmap, liveAt, preciseAt)) {
        if (exact && i === top && this.stackMiss >= 0) this.exactMiss[idx] = MISS_SLOT + this.stackMiss;
        return false;
      }
    }
    return true;
  }

  private regsafe(o: RegState, c: RegState, precise: boolean, exact: boolean, idmap: Map<number, number>): boolean {
    if (exact) return regsIdentical(o, c) && checkIds(o.refObjId, c.refObjId, idmap);
    if (o.type === NOT_INIT) return true;
    if (c.type !== o.type) return false;
    if (o.type === SCALAR_VALUE)
      return !precise || (rangeWithin(o, c) && tnumIn(o.varOff, c.varOff) && this.checkScalarIds(o.id, c.id));
    if (o.type === PTR_TO_PACKET || o.type === PTR_TO_PACKET_META) {
      // At least the old range (a marker of data_end only matches itself), the same fixed
      // offset, ids mapping one to one, and the old bounds.
      if (o.memSize < 0 || c.memSize < 0 ? o.memSize !== c.memSize : o.memSize > c.memSize) return false;
      if (o.off !== c.off || !checkIds(o.id, c.id, idmap)) return false;
      return rangeWithin(o, c) && tnumIn(o.varOff, c.varOff);
    }
    if (
      o.off !== c.off ||
      o.map !== c.map ||
      o.mapUid !== c.mapUid ||
      o.btfId !== c.btfId ||
      o.memSize !== c.memSize ||
      o.frameno !== c.frameno ||
      o.dynptrId !== c.dynptrId
    )
      return false;
    if (!checkIds(o.refObjId, c.refObjId, idmap)) return false;
    if (o.type & PTR_MAYBE_NULL) {
      const m = idmap.get(o.id);
      if (m === undefined) idmap.set(o.id, c.id);
      else if (m !== c.id) return false;
    }
    return rangeWithin(o, c) && tnumIn(o.varOff, c.varOff);
  }

  /**
   * check_scalar_ids: scalars linked in the old state must be linked the same way now (a bound
   * learnt later on one of them held for the others there); an unlinked one stands alone.
   */
  private checkScalarIds(o: number, c: number): boolean {
    const old = o || --this.tmpIdGen;
    const cur = c || --this.tmpIdGen;
    const m = this.idmap.get(old);
    if (m !== undefined) return m === cur;
    if (this.idmapCur.has(cur)) return false;
    this.idmap.set(old, cur);
    this.idmapCur.add(cur);
    return true;
  }

  private stacksafe(
    o: FuncState,
    c: FuncState,
    exact: boolean,
    idmap: Map<number, number>,
    /** Compare only the slots live at this instruction (-1: every slot). */
    liveAt: number,
    /** Spilled scalars are precise only where needed at this instruction (-1: all precise). */
    preciseAt: number,
  ): boolean {
    for (let spi = 0; spi < o.stack.length; spi++) {
      const os = o.stack[spi];
      if (!os) continue;
      if (liveAt >= 0 && !this.stackLive.isLive(liveAt, spi)) continue;
      const cs = c.stack[spi];
      for (let j = 0; j < BPF_REG_SIZE; j++) {
        const ot = os.slotType[j];
        const ct = cs ? cs.slotType[j] : STACK_INVALID;
        if (exact) {
          if (ot !== ct) {
            this.stackMiss = spi;
            return false;
          }
          continue;
        }
        if (ot === STACK_INVALID) continue;
        if (ot === STACK_MISC && (ct === STACK_MISC || ct === STACK_ZERO)) continue;
        if (ot !== ct) return false;
      }
      // An iterator: the same type and state, its reference up to renaming. The depth only keeps
      // loop detection from firing (iter_active_depths_differ): comparing it would never converge.
      if (os.iter) {
        const ci = cs?.iter;
        if (!ci || ci.btfId !== os.iter.btfId || ci.active !== os.iter.active) return false;
        if (exact && ci.depth !== os.iter.depth) return false;
        if (!checkIds(os.iter.refObjId, ci.refObjId, idmap)) return false;
      }
      if (os.dynptr && !dynptrSlotsEqual(os, cs, (a, b) => checkIds(a, b, idmap))) return false;
      // A spilled register (whole, or a scalar's low bytes): compare the states too.
      if (os.slotType[0] === STACK_SPILL && os.spilledPtr) {
        this.stackMiss = spi;
        if (!cs?.spilledPtr) return false;
        const precise = preciseAt >= 0 ? this.precision.slotNeeded(preciseAt, spi) : true;
        if (!this.regsafe(os.spilledPtr, cs.spilledPtr, precise, exact, idmap)) return false;
        this.stackMiss = -1;
      }
    }
    if (exact) {
      for (let spi = o.stack.length; spi < c.stack.length; spi++) {
        if (c.stack[spi]?.slotType.some((t) => t !== STACK_INVALID)) return false;
      }
    }
    return true;
  }

  // ---- one instruction ----

  /** Execute instruction idx on the current state; returns true when the path ends. */
  private step(idx: number): boolean {
    const insn = this.insns[idx];
    const cls = BPF_CLASS(insn.code);
    switch (cls) {
      case BPF_ALU:
      case BPF_ALU64:
        checkAluOp(this, insn, cls === BPF_ALU64);
        this.insnIdx = idx + 1;
        return false;
      case BPF_LDX: {
        const mode = BPF_MODE(insn.code);
        if ((mode !== BPF_MEM && mode !== BPF_MEMSX) || insn.imm !== 0)
          this.reject(EINVAL, "BPF_LDX uses reserved fields");
        this.readReg(insn.src);
        this.writeReg(insn.dst);
        const size = bpfSizeBytes(BPF_SIZE(insn.code));
        const val = checkMemAccess(this, insn.src, insn.off, size, false, -1);
        const dst = this.regs[insn.dst];
        Object.assign(dst, val, { written: true });
        if (mode === BPF_MEMSX && dst.type === SCALAR_VALUE) signExtend(this, dst, size);
        else if (dst.type === SCALAR_VALUE && size < 8) coerceRegToSize(dst, size);
        this.insnIdx = idx + 1;
        return false;
      }
      case BPF_STX:
        if (BPF_MODE(insn.code) === BPF_ATOMIC) checkAtomic(this, insn);
        else {
          if (BPF_MODE(insn.code) !== BPF_MEM || insn.imm !== 0) this.reject(EINVAL, "BPF_STX uses reserved fields");
          this.readReg(insn.src);
          this.readReg(insn.dst);
          checkMemAccess(this, insn.dst, insn.off, bpfSizeBytes(BPF_SIZE(insn.code)), true, insn.src);
        }
        this.insnIdx = idx + 1;
        return false;
      case BPF_ST: {
        if (BPF_MODE(insn.code) !== BPF_MEM || insn.src !== 0) this.reject(EINVAL, "BPF_ST uses reserved fields");
        this.readReg(insn.dst);
        checkMemAccess(this, insn.dst, insn.off, bpfSizeBytes(BPF_SIZE(insn.code)), true, -1, BigInt(insn.imm));
        this.insnIdx = idx + 1;
        return false;
      }
      case BPF_LD:
        if (isLdAbs(insn)) {
          if (!checkLdAbs(this, idx, insn)) this.insnIdx = idx + 1;
          return false;
        }
        if (!isLdImm64(insn))
          this.reject(EINVAL, BPF_MODE(insn.code) === BPF_IMM ? "invalid BPF_LD_IMM insn" : "invalid BPF_LD mode");
        this.checkLdImm(idx);
        // do_check marks ld_imm64's second slot seen too, so sanitize_dead_code keeps it.
        this.seen[idx + 1] = 1;
        this.insnIdx = idx + 2;
        return false;
      default:
        return this.checkJmp(idx, insn, cls === BPF_JMP);
    }
  }

  private checkLdImm(idx: number): void {
    const insn = this.insns[idx];
    const next = this.insns[idx + 1];
    if (next.code !== 0 || next.dst !== 0 || next.src !== 0 || next.off !== 0 || insn.off !== 0)
      this.reject(EINVAL, "invalid bpf_ld_imm64 insn");
    const dst = this.writeReg(insn.dst);
    const aux = this.env.ldImm64Aux?.[idx];
    if (isPseudoFunc(insn)) {
      markPtr(dst, PTR_TO_FUNC);
      dst.memSize = idx + insn.imm + 1; // callback target
      return;
    }
    if (!aux || aux.kind === "plain") {
      if (insn.src !== 0) this.reject(EINVAL, `unrecognized bpf_ld_imm64 insn`);
      markRegKnown(dst, BigInt(insn.imm >>> 0) | (BigInt(next.imm >>> 0) << 32n));
      dst.written = true;
      return;
    }
    if ((aux.kind === "map_ptr" || aux.kind === "map_value") && !this.maps[aux.map]) {
      this.reject(EINVAL, `fd ${insn.imm} is not pointing to valid bpf_map`);
    }
    if (aux.kind === "map_value") {
      const vs = this.maps[aux.map].valueSize;
      if (aux.off < 0 || aux.off >= vs)
        this.reject(EINVAL, `invalid access to map value pointer, value_size=${vs} off=${aux.off}`);
    }
    if (aux.kind === "map_ptr") {
      markPtr(dst, CONST_PTR_TO_MAP);
      dst.map = aux.map;
    } else if (aux.kind === "map_value") {
      markPtr(dst, PTR_TO_MAP_VALUE, aux.off);
      dst.map = aux.map;
    } else markKsymReg(this, dst, aux.btfId, aux.btf === undefined ? undefined : this.env.ksymBtfs?.[aux.btf]);
  }

  // ---- ALU (check_alu_op, adjust_reg_min_max_vals) ----

  private checkJmp(idx: number, insn: Insn, is64: boolean): boolean {
    const op = BPF_OP(insn.code);
    if (op === BPF_JA) {
      if (insn.src !== 0 || insn.dst !== 0 || (is64 ? insn.imm !== 0 : insn.off !== 0))
        this.reject(EINVAL, "BPF_JA uses reserved fields");
      this.insnIdx = jumpTarget(idx, insn);
      return false;
    }
    if (op === BPF_EXIT) {
      if (insn.src !== 0 || insn.dst !== 0 || insn.off !== 0 || insn.imm !== 0 || BPF_SRC(insn.code) !== BPF_K || !is64)
        this.reject(EINVAL, "BPF_EXIT uses reserved fields");
      return processExit(this);
    }
    if (op === BPF_CALL) {
      if (
        !is64 ||
        BPF_SRC(insn.code) !== BPF_K ||
        // A kfunc call's off names its BTF (fd_array index); anywhere else it is reserved.
        (insn.src !== BPF_PSEUDO_KFUNC_CALL && insn.off !== 0) ||
        insn.dst !== 0 ||
        (insn.src !== 0 && insn.src !== BPF_PSEUDO_CALL && insn.src !== BPF_PSEUDO_KFUNC_CALL)
      ) {
        this.reject(EINVAL, "BPF_CALL uses reserved fields");
      }
      this.noteCallArgs(this.regs);
      // Under a lock: static subprograms, bpf_spin_unlock, bpf_kptr_xchg and the graph kfuncs only.
      if (this.cur.activeLock !== -1) {
        const helperOk =
          insn.src === 0 && (insn.imm === bpf_func_id.BPF_FUNC_spin_unlock || insn.imm === BPF_FUNC_kptr_xchg);
        const kfuncOk =
          insn.src === BPF_PSEUDO_KFUNC_CALL && insn.off === 0 && isGraphApiKfunc(this.env.kfuncs?.get(insn.imm)?.name);
        if ((insn.src === 0 && !helperOk) || (insn.src === BPF_PSEUDO_KFUNC_CALL && !kfuncOk))
          this.reject(EINVAL, "function calls are not allowed while holding a lock");
      }
      if (insn.src === BPF_PSEUDO_CALL) {
        checkFuncCall(this, idx, idx + insn.imm + 1, false);
        return false;
      }
      if (insn.src === BPF_PSEUDO_KFUNC_CALL) {
        // bpf_rbtree_add enters its less() callback like bpf_loop does.
        if (checkKfuncCall(this, insn.imm, insn.off)) return false;
      } else if (checkHelperCall(this, insn.imm)) return false;
      this.insnIdx = idx + 1;
      return false;
    }
    if (op === BPF_JCOND && is64) {
      processMayGoto(this, idx, insn);
      return false;
    }
    if (op > 0xd0) this.reject(EINVAL, `unknown opcode ${insn.code.toString(16).padStart(2, "0")}`);
    return checkCondJmp(this, idx, insn, is64);
  }
}

/** coerce_reg_to_size: a narrow load zero-extends, so the value fits in `size` bytes. */
/** exactMiss values from here on name a stack slot (spi) of the running frame, below a register. */
const MISS_SLOT = 16;

/**
 * Whether the register or stack slot `miss` names (an exactMiss value) already makes `c` differ
 * from `o` for states_equal(EXACT): a necessary condition, so a cheap early answer.
 */
function differsAt(o: FuncState, c: FuncState, miss: number): boolean {
  if (miss < MISS_SLOT) return !regsIdentical(o.regs[miss - 1], c.regs[miss - 1]);
  const os = o.stack[miss - MISS_SLOT];
  if (!os) return false;
  const cs = c.stack[miss - MISS_SLOT];
  for (let j = 0; j < BPF_REG_SIZE; j++) if (os.slotType[j] !== (cs ? cs.slotType[j] : STACK_INVALID)) return true;
  if (os.slotType[0] === STACK_SPILL && os.spilledPtr)
    return !cs?.spilledPtr || !regsIdentical(os.spilledPtr, cs.spilledPtr);
  return false;
}

function coerceRegToSize(r: RegState, size: number): void {
  const mask = (1n << BigInt(size * 8)) - 1n;
  if (tnumIsConst(r.varOff)) {
    const w = r.written;
    markRegKnown(r, r.varOff.value & mask);
    r.written = w;
    return;
  }
  r.varOff = tnumCast(r.varOff, size);
  r.umin = 0n;
  r.umax = mask;
  r.smin = 0n;
  r.smax = mask;
  resetReg32Bounds(r);
  regBoundsSync(r);
}

/** bpf_check: verify `env`'s program. Never throws for a rejected program: see result.error. */
export function bpfCheck(env: VerifierEnv): VerifierResult {
  return new Verifier(env).run();
}

/** bpf_check, throwing the rejection (BpfError with the kernel's errno and context.insn). */
export function bpfCheckOrThrow(env: VerifierEnv): VerifierResult {
  const r = bpfCheck(env);
  if (r.error) throw r.error;
  return r;
}
