/**
 * bpf_check / do_check (kernel/bpf/verifier.c): walk every path of the program with abstract
 * register and stack states, refusing what could be unsafe with the kernel's message, errno and
 * instruction index, pruning paths whose state is covered by an already-proven one.
 */
import { type Insn, isLdImm64 } from "../isa/insn.js";
import {
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CLASS,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_JA,
  BPF_JEQ,
  BPF_JMP,
  BPF_JNE,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MODE,
  BPF_MOV,
  BPF_NEG,
  BPF_OP,
  BPF_OR,
  BPF_REG_10,
  BPF_RSH,
  BPF_SIZE,
  BPF_SRC,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  bpfSizeBytes,
  MAX_BPF_REG,
} from "../isa/opcodes.js";
import {
  BPF_COMPLEXITY_LIMIT_INSNS,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_KFUNC_CALL,
  bpf_prog_type,
  MAX_BPF_STACK,
  MAX_CALL_FRAMES,
} from "../uapi/bpf.js";
import { BpfError, E2BIG, EACCES, EFAULT, EINVAL, ENOTSUPP } from "../uapi/errno.js";
import { aluConst, scalarAlu } from "./alu.js";
import { isBranchTaken, negateJmp, regSetMinMax } from "./branch.js";
import { btfCtxAccess, btfFuncPtrProto, btfName, btfStructRead } from "./btf_access.js";
import { type Cfg, checkCfg, isPseudoCall, isPseudoFunc, jumpTarget } from "./cfg.js";
import type { StructOpsInfo, VerifierEnv, VerifierMap, VerifierOps, VerifierResult } from "./env.js";
import { checkHelperCall, checkKfuncCall } from "./helpers.js";
import { computeLiveness, Precision, StackLiveness } from "./liveness.js";
import { printBpfInsn, regStr, vlogAlignment } from "./log.js";
import {
  baseType,
  CONST_PTR_TO_MAP,
  copyReg,
  isPointer,
  MEM_RDONLY,
  markPtr,
  markRegKnown,
  markRegNotInit,
  markRegUnknown,
  NOT_INIT,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_CTX,
  PTR_TO_FUNC,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_STACK,
  PTR_TRUSTED,
  type RegState,
  rangeWithin,
  regBoundsSync,
  regsIdentical,
  regTypeStr,
  SCALAR_VALUE,
  zextReg32,
} from "./reg_state.js";
import { BPF_REG_SIZE, newSlot, STACK_INVALID, STACK_MISC, STACK_SPILL, STACK_ZERO, slotStr, spiOf } from "./stack.js";
import {
  type Checkpoint,
  copyFuncState,
  copyState,
  curFrame,
  type FuncState,
  newFuncState,
  type VerifierState,
} from "./state.js";
import { tnumIn, tnumIsConst, tnumStr } from "./tnum.js";

/** Thrown inside the walk; becomes the result's error. */
class VerifierReject extends Error {
  constructor(readonly err: BpfError) {
    super(err.message);
  }
}

const BPF_MAX_VAR_OFF = 1n << 29n;

export class Verifier {
  readonly insns: readonly Insn[];
  readonly privileged: boolean;
  readonly allowPtrLeaks: boolean;
  readonly logLevel: number;
  readonly maps: readonly VerifierMap[];
  cfg!: Cfg;
  live!: Uint16Array;
  precision!: Precision;
  stackLive!: StackLiveness;
  ops: VerifierOps | undefined;
  structOps: StructOpsInfo | undefined;
  memberIdx = -1;
  attachFuncName: string | undefined;
  private readonly logBuf: string[] = [];
  cur!: VerifierState;
  insnIdx = 0;
  private prevInsnIdx = -1;
  private readonly pending: { state: VerifierState; insn: number; prev: number }[] = [];
  private readonly explored = new Map<number, Checkpoint[]>();
  private readonly idmap = new Map<number, number>();
  private idGen = 0;
  readonly stackDepth: number[] = [];
  private processed = 0;
  private totalStates = 0;
  private curStates = 0;
  private peakStates = 0;
  private maxStatesPerInsn = 0;
  private readonly limit: number;
  /** Registers written by the current instruction (for the "; R0_w=..." comment). */
  private scratched = 0;
  /** An instruction was printed and its line is not finished yet. */
  private lineOpen = false;
  private jmps = 0;
  private prevAddProcessed = -100;
  private prevAddJmps = -100;

  constructor(readonly env: VerifierEnv) {
    this.insns = env.insns;
    this.privileged = env.privileged ?? true;
    this.allowPtrLeaks = env.allowPtrLeaks ?? this.privileged;
    this.logLevel = env.logLevel ?? 0;
    this.maps = env.maps ?? [];
    this.ops = env.ops;
    this.limit = env.insnLimit ?? BPF_COMPLEXITY_LIMIT_INSNS;
  }

  // ---- log and errors ----

  verbose(s: string): void {
    if (this.logLevel > 0) {
      if (this.lineOpen && s.startsWith("\n")) this.lineOpen = false;
      else this.closeLine();
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
  reject(errno: number, msg: string, insn = this.insnIdx): never {
    this.closeLine();
    this.logBuf.push(`${msg}\n`);
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

  regString(r: RegState): string {
    return regStr(r, {
      mapName: (m) => this.maps[m]?.name,
      mapSizes: (m) => (this.maps[m] ? [this.maps[m].keySize, this.maps[m].valueSize] : undefined),
      btfName: (id) => this.btfName(id),
    });
  }

  stateString(f: FuncState, onlyMask = 0xffff): string {
    const parts: string[] = [];
    if (this.cur.frames.length > 1) parts.push(`frame${f.frameno}:`);
    f.regs.forEach((r, i) => {
      if (r.type === NOT_INIT || !(onlyMask & (1 << i))) return;
      parts.push(`R${i}${r.written && i !== BPF_REG_10 ? "_w" : ""}=${this.regString(r)}`);
    });
    if (onlyMask === 0xffff) {
      f.stack.forEach((s, spi) => {
        if (!s || s.slotType.every((t) => t === STACK_INVALID)) return;
        const v = s.slotType[0] === STACK_SPILL && s.spilledPtr ? this.regString(s.spilledPtr) : slotStr(s);
        parts.push(`fp${-(spi + 1) * BPF_REG_SIZE}=${v}`);
      });
    }
    return parts.join(" ");
  }

  // ---- register access (check_reg_arg) ----

  readReg(regno: number): RegState {
    if (regno >= MAX_BPF_REG) this.reject(EINVAL, `R${regno} is invalid`);
    const r = this.regs[regno];
    if (r.type === NOT_INIT) this.reject(EACCES, `R${regno} !read_ok`);
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

  isPointerValue(r: RegState): boolean {
    return isPointer(r) && !this.allowPtrLeaks;
  }

  // ---- main ----

  run(): VerifierResult {
    let error: BpfError | undefined;
    try {
      this.cfg = checkCfg(this.insns, this.privileged, (m) => this.logBuf.push(m));
      this.checkBtfFunc();
      this.checkAttachBtfId();
      this.live = computeLiveness(this.insns, this.cfg);
      this.precision = new Precision(this.insns, this.cfg);
      this.stackLive = new StackLiveness(this.insns, this.cfg);
      for (let i = 0; i < this.cfg.subprogStarts.length; i++) this.stackDepth.push(0);
      this.doCheck();
      this.checkMaxStackDepth();
    } catch (e) {
      if (e instanceof VerifierReject) error = e.err;
      else if (e instanceof BpfError) error = e;
      else throw e;
    }
    const stats = {
      processed: this.processed,
      maxStatesPerInsn: this.maxStatesPerInsn,
      totalStates: this.totalStates,
      peakStates: this.peakStates,
      markRead: this.precision?.marks ?? 0,
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
    const st = id ? env.structOps?.findStructOps(id) : undefined;
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
    return { frames: [f], parent: null };
  }

  private doCheck(): void {
    this.cur = this.initialState();
    this.insnIdx = 0;
    if (this.logLevel > 1)
      for (const [i, start] of this.cfg.subprogStarts.entries()) this.verbose(`func#${i} @${start}\n`);
    let doPrintState = false;
    for (;;) {
      if (!this.cur) {
        const next = this.pending.pop();
        if (!next) break;
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
      if (this.cfg.prunePoint[idx]) {
        this.jmps++;
        if (this.isStateVisited(idx)) {
          if (this.logLevel > 0) {
            if (doPrintState) this.verbose(`\nfrom ${this.prevInsnIdx} to ${idx}: safe\n`);
            else this.verbose(`${idx}: safe\n`);
          }
          this.endPath();
          continue;
        }
      }
      if (this.logLevel > 0) {
        if (doPrintState || (this.logLevel > 1 && this.cfg.prunePoint[idx])) {
          const hdr = doPrintState ? `\nfrom ${this.prevInsnIdx} to ${idx}: ` : `${idx}: `;
          this.verbose(`${hdr}${this.stateString(this.frame)}\n`);
        }
        const line = `${idx}: ${this.insnText(idx)}`;
        this.verbose(line);
        this.lineOpen = true;
        this.scratched = 0;
        this.prevInsnIdx = idx;
        const ended = this.step(idx);
        const st = this.cur ? this.stateString(this.frame, this.scratched) : "";
        if (this.lineOpen) {
          this.logBuf.push(st ? `${" ".repeat(vlogAlignment(line.length))}; ${st}\n` : "\n");
          this.lineOpen = false;
        }
        if (ended) this.endPath();
      } else {
        this.prevInsnIdx = idx;
        if (this.step(idx)) this.endPath();
      }
      doPrintState = false;
    }
  }

  insnText(idx: number): string {
    const names = {
      kfuncName: (id: number) => this.env.kfuncs?.get(id)?.name ?? (this.env.btf ? this.env.btf.nameOf(id) : undefined),
      ldImm64: (i: number) => {
        const aux = this.env.ldImm64Aux?.[i];
        if (!aux || aux.kind === "plain") return undefined;
        if (aux.kind === "map_ptr") return `map[id:${aux.map}]`;
        if (aux.kind === "map_value") return `map[id:${aux.map}][0]+${aux.off}`;
        return `${this.btfName(aux.btfId)}`;
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
      this.curStates--;
      p = p.parent;
    }
    this.cur = null as unknown as VerifierState;
  }

  /** push_stack: explore `state` from `insn` later. */
  pushState(state: VerifierState, insn: number): void {
    if (state.parent) state.parent.branches++;
    this.pending.push({ state, insn, prev: this.insnIdx });
    if (this.pending.length > 8192) this.reject(E2BIG, `The sequence of ${this.pending.length} jumps is too complex.`);
  }

  // ---- pruning (is_state_visited, states_equal) ----

  private isStateVisited(idx: number): boolean {
    let list = this.explored.get(idx);
    if (!list) {
      list = [];
      this.explored.set(idx, list);
    }
    // Loop detection looks at the most recent in-progress states: a loop that repeats a state
    // repeats it soon; longer cycles still end at the complexity limit.
    let inProgress = 0;
    const reentry = this.cur.callbackReentry === true;
    this.cur.callbackReentry = false;
    for (let k = list.length - 1; k >= 0; k--) {
      const sl = list[k];
      // A callback's next iteration in a state its earlier iterations already cover adds nothing
      // new (bpf_loop bounds the iterations): compare every live value exactly and stop here.
      if (reentry && this.statesEqual(sl.frames, this.cur.frames, idx, false, true)) return true;
      if (sl.branches > 0) {
        if (inProgress++ < 16 && this.statesEqual(sl.frames, this.cur.frames, idx, true)) {
          this.reject(EINVAL, `infinite loop detected at insn ${idx}`);
        }
        continue;
      }
      if (this.statesEqual(sl.frames, this.cur.frames, idx, false)) return true;
    }
    // Like the kernel, do not checkpoint every few instructions: states are costly to keep.
    if (this.processed - this.prevAddProcessed < 8 || this.jmps - this.prevAddJmps < 2) return false;
    if (list.length >= 64) return false;
    this.prevAddProcessed = this.processed;
    this.prevAddJmps = this.jmps;
    const cp: Checkpoint = {
      insn: idx,
      frames: this.cur.frames.map(copyFuncState),
      branches: 1,
      parent: this.cur.parent,
    };
    this.cur.parent = cp;
    list.push(cp);
    this.totalStates++;
    this.curStates++;
    if (this.curStates > this.peakStates) this.peakStates = this.curStates;
    if (list.length > this.maxStatesPerInsn) this.maxStatesPerInsn = list.length;
    for (const f of this.cur.frames) for (const r of f.regs) r.written = false;
    return false;
  }

  private statesEqual(old: FuncState[], cur: FuncState[], idx: number, exact: boolean, allPrecise = false): boolean {
    if (old.length !== cur.length) return false;
    for (let i = 0; i < old.length; i++) if (old[i].callsite !== cur[i].callsite) return false;
    const idmap = this.idmap;
    if (idmap.size) idmap.clear();
    for (let i = 0; i < old.length; i++) {
      const pos = i === old.length - 1 ? idx : cur[i + 1].callsite + 1;
      const live = this.live[pos];
      const need = this.precision.need[pos];
      for (let r = 0; r < BPF_REG_10; r++) {
        if (!(live & (1 << r))) continue;
        const precise = exact || allPrecise || !!(need & (1 << r));
        if (!this.regsafe(old[i].regs[r], cur[i].regs[r], precise, exact, idmap)) return false;
      }
      // Stack liveness is per instruction of the running frame: callers' stacks are compared whole.
      const slotLive = i === old.length - 1 && !exact ? (spi: number) => this.stackLive.isLive(idx, spi) : undefined;
      if (!this.stacksafe(old[i], cur[i], exact, idmap, slotLive)) return false;
    }
    return true;
  }

  private regsafe(o: RegState, c: RegState, precise: boolean, exact: boolean, idmap: Map<number, number>): boolean {
    if (exact) return regsIdentical(o, c);
    if (o.type === NOT_INIT) return true;
    if (c.type !== o.type) return false;
    if (o.type === SCALAR_VALUE) return !precise || (rangeWithin(o, c) && tnumIn(o.varOff, c.varOff));
    if (o.off !== c.off || o.map !== c.map || o.btfId !== c.btfId || o.memSize !== c.memSize || o.frameno !== c.frameno)
      return false;
    if (o.type & PTR_MAYBE_NULL) {
      const m = idmap.get(o.id);
      if (m === undefined) idmap.set(o.id, c.id);
      else if (m !== c.id) return false;
    }
    return rangeWithin(o, c) && tnumIn(o.varOff, c.varOff);
  }

  private stacksafe(
    o: FuncState,
    c: FuncState,
    exact: boolean,
    idmap: Map<number, number>,
    slotLive?: (spi: number) => boolean,
  ): boolean {
    for (let spi = 0; spi < o.stack.length; spi++) {
      const os = o.stack[spi];
      if (!os) continue;
      if (slotLive && !slotLive(spi)) continue;
      const cs = c.stack[spi];
      if (os.slotType[0] === STACK_SPILL && os.spilledPtr) {
        if (!cs || cs.slotType[0] !== STACK_SPILL || !cs.spilledPtr) return false;
        if (!this.regsafe(os.spilledPtr, cs.spilledPtr, true, exact, idmap)) return false;
        continue;
      }
      for (let j = 0; j < BPF_REG_SIZE; j++) {
        const ot = os.slotType[j];
        const ct = cs ? cs.slotType[j] : STACK_INVALID;
        if (exact) {
          if (ot !== ct) return false;
          continue;
        }
        if (ot === STACK_INVALID) continue;
        if (ot === STACK_MISC && (ct === STACK_MISC || ct === STACK_ZERO)) continue;
        if (ot !== ct) return false;
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
        this.checkAluOp(insn, cls === BPF_ALU64);
        this.insnIdx = idx + 1;
        return false;
      case BPF_LDX: {
        const mode = BPF_MODE(insn.code);
        if ((mode !== BPF_MEM && mode !== BPF_MEMSX) || insn.imm !== 0)
          this.reject(EINVAL, "BPF_LDX uses reserved fields");
        this.readReg(insn.src);
        this.writeReg(insn.dst);
        const size = bpfSizeBytes(BPF_SIZE(insn.code));
        const val = this.checkMemAccess(insn.src, insn.off, size, false, -1);
        const dst = this.regs[insn.dst];
        Object.assign(dst, val, { written: true });
        if (mode === BPF_MEMSX && dst.type === SCALAR_VALUE) this.signExtend(dst, size);
        this.insnIdx = idx + 1;
        return false;
      }
      case BPF_STX:
        if (BPF_MODE(insn.code) === BPF_ATOMIC) this.checkAtomic(insn);
        else {
          if (BPF_MODE(insn.code) !== BPF_MEM || insn.imm !== 0) this.reject(EINVAL, "BPF_STX uses reserved fields");
          this.readReg(insn.src);
          this.readReg(insn.dst);
          this.checkMemAccess(insn.dst, insn.off, bpfSizeBytes(BPF_SIZE(insn.code)), true, insn.src);
        }
        this.insnIdx = idx + 1;
        return false;
      case BPF_ST: {
        if (BPF_MODE(insn.code) !== BPF_MEM || insn.src !== 0) this.reject(EINVAL, "BPF_ST uses reserved fields");
        this.readReg(insn.dst);
        this.checkMemAccess(insn.dst, insn.off, bpfSizeBytes(BPF_SIZE(insn.code)), true, -1, BigInt(insn.imm));
        this.insnIdx = idx + 1;
        return false;
      }
      case BPF_LD:
        if (!isLdImm64(insn)) this.reject(EINVAL, "BPF_LD_[ABS|IND] instructions not allowed for this program type");
        this.checkLdImm(idx);
        this.insnIdx = idx + 2;
        return false;
      default:
        return this.checkJmp(idx, insn, cls === BPF_JMP);
    }
  }

  private signExtend(r: RegState, size: number): void {
    if (tnumIsConst(r.varOff)) {
      markRegKnown(r, BigInt.asIntN(size * 8, r.varOff.value));
    } else {
      markRegUnknown(r);
      const lim = 1n << BigInt(size * 8 - 1);
      r.smin = -lim;
      r.smax = lim - 1n;
      regBoundsSync(r);
    }
    r.written = true;
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
    if (aux.kind === "map_ptr") {
      markPtr(dst, CONST_PTR_TO_MAP);
      dst.map = aux.map;
    } else if (aux.kind === "map_value") {
      markPtr(dst, PTR_TO_MAP_VALUE, aux.off);
      dst.map = aux.map;
    } else {
      markPtr(dst, PTR_TO_BTF_ID | PTR_TRUSTED);
      dst.btfId = aux.btfId;
    }
  }

  // ---- ALU (check_alu_op, adjust_reg_min_max_vals) ----

  private checkAluOp(insn: Insn, is64: boolean): void {
    const op = BPF_OP(insn.code);
    const srcX = BPF_SRC(insn.code) === BPF_X;
    if (op === BPF_END || op === BPF_NEG) {
      const bad =
        op === BPF_NEG
          ? insn.src !== 0 || insn.off !== 0 || insn.imm !== 0 || srcX
          : insn.src !== 0 || insn.off !== 0 || ![16, 32, 64].includes(insn.imm) || (is64 && srcX);
      if (bad) this.reject(EINVAL, op === BPF_NEG ? "BPF_NEG uses reserved fields" : "BPF_END uses reserved fields");
      const r = this.readReg(insn.dst);
      if (isPointer(r)) this.reject(EACCES, `R${insn.dst} pointer arithmetic prohibited`);
      this.writeReg(insn.dst);
      if (op === BPF_NEG) {
        const zero = { ...r };
        markRegKnown(zero, 0n);
        const v = copyReg(r);
        Object.assign(r, zero);
        scalarAlu(BPF_SUB, r, v, is64);
        r.written = true;
        return;
      }
      this.checkEnd(r, insn, is64);
      return;
    }
    if (op === BPF_MOV) {
      this.checkMov(insn, is64, srcX);
      return;
    }
    if (op > BPF_END) this.reject(EINVAL, `invalid BPF_ALU opcode ${op.toString(16)}`);
    if (srcX) {
      if (insn.imm !== 0 || (insn.off !== 0 && !(insn.off === 1 && (op === BPF_DIV || op === BPF_MOD))))
        this.reject(EINVAL, "BPF_ALU uses reserved fields");
      this.readReg(insn.src);
    } else if (insn.src !== 0 || (insn.off !== 0 && !(insn.off === 1 && (op === BPF_DIV || op === BPF_MOD)))) {
      this.reject(EINVAL, "BPF_ALU uses reserved fields");
    }
    this.readReg(insn.dst);
    if (!srcX && (op === BPF_DIV || op === BPF_MOD) && insn.imm === 0) this.reject(EINVAL, "div by zero");
    if (
      !srcX &&
      (op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH) &&
      (insn.imm < 0 || insn.imm >= (is64 ? 64 : 32))
    )
      this.reject(EINVAL, `invalid shift ${insn.imm}`);
    const dst = this.writeReg(insn.dst);
    let src: RegState;
    if (srcX) src = this.regs[insn.src];
    else {
      src = { ...dst };
      markRegKnown(src, BigInt(insn.imm));
    }
    this.adjustRegMinMaxVals(insn, dst, src, op, is64, srcX);
  }

  private checkEnd(r: RegState, insn: Insn, is64: boolean): void {
    const bits = insn.imm;
    const toBe = BPF_SRC(insn.code) === BPF_X;
    const swap = is64 || toBe; // little-endian host: to_le only truncates
    if (tnumIsConst(r.varOff)) {
      let v = r.varOff.value & ((1n << BigInt(bits)) - 1n);
      if (swap) {
        let out = 0n;
        for (let i = 0; i < bits / 8; i++) out = (out << 8n) | ((v >> BigInt(8 * i)) & 0xffn);
        v = out;
      }
      markRegKnown(r, v);
    } else if (!swap && bits === 64) {
      // no-op
    } else {
      markRegUnknown(r);
      if (bits < 64) {
        r.umax = (1n << BigInt(bits)) - 1n;
        regBoundsSync(r);
      }
    }
    r.written = true;
  }

  private checkMov(insn: Insn, is64: boolean, srcX: boolean): void {
    if (srcX) {
      const okOff = insn.off === 0 || insn.off === 8 || insn.off === 16 || (is64 && insn.off === 32);
      if (insn.imm !== 0 || !okOff) this.reject(EINVAL, "BPF_MOV uses reserved fields");
      const src = this.readReg(insn.src);
      const dst = this.writeReg(insn.dst);
      if (insn.off !== 0) {
        if (isPointer(src)) this.reject(EACCES, `R${insn.src} sign-extension part of pointer`);
        Object.assign(dst, copyReg(src));
        dst.id = 0;
        this.signExtend(dst, insn.off / 8);
        if (!is64) zextReg32(dst);
      } else if (is64) {
        Object.assign(dst, copyReg(src));
        if (dst.type === SCALAR_VALUE) dst.id = 0;
      } else {
        if (isPointer(src)) {
          if (!this.allowPtrLeaks) this.reject(EACCES, `R${insn.src} partial copy of pointer`);
          markRegUnknown(dst);
          zextReg32(dst);
        } else {
          Object.assign(dst, copyReg(src));
          dst.id = 0;
          zextReg32(dst);
        }
      }
      dst.written = true;
      return;
    }
    if (insn.src !== 0 || insn.off !== 0) this.reject(EINVAL, "BPF_MOV uses reserved fields");
    const dst = this.writeReg(insn.dst);
    markRegKnown(dst, is64 ? BigInt(insn.imm) : BigInt(insn.imm >>> 0));
    dst.written = true;
  }

  private adjustRegMinMaxVals(
    insn: Insn,
    dst: RegState,
    src: RegState,
    op: number,
    is64: boolean,
    srcX: boolean,
  ): void {
    const dstPtr = isPointer(dst);
    const srcPtr = isPointer(src);
    if (!dstPtr && !srcPtr) {
      scalarAlu(op, dst, src, is64, insn.off === 1);
      dst.written = true;
      return;
    }
    if (dstPtr && srcPtr) {
      if (op !== BPF_SUB || !is64) {
        if (!is64 && op === BPF_SUB && this.allowPtrLeaks) {
          markRegUnknown(dst);
          return;
        }
        this.reject(EACCES, `R${insn.dst} pointer ${op === BPF_SUB ? "-=" : "+="} pointer prohibited`);
      }
      if (!this.allowPtrLeaks) this.reject(EACCES, `R${insn.dst} pointer -= pointer prohibited`);
      markRegUnknown(dst);
      dst.written = true;
      return;
    }
    // One pointer, one scalar.
    if (srcPtr && op === BPF_ADD && is64) {
      // scalar += pointer: the result is the pointer moved by the scalar.
      const scalar = copyReg(dst);
      Object.assign(dst, copyReg(src), { written: true });
      this.adjustPtr(insn.dst, dst, scalar, op, insn.src, insn.dst);
      return;
    }
    if (srcPtr) {
      if (this.allowPtrLeaks && !(op === BPF_ADD || op === BPF_SUB)) {
        markRegUnknown(dst);
        return;
      }
      this.reject(EACCES, `R${insn.dst} tried to ${op === BPF_SUB ? "subtract" : "add"} pointer from scalar`);
    }
    if (!is64) {
      if (op === BPF_SUB && this.allowPtrLeaks) {
        markRegUnknown(dst);
        return;
      }
      this.reject(EACCES, `R${insn.dst} 32-bit pointer arithmetic prohibited`);
    }
    if (op !== BPF_ADD && op !== BPF_SUB) {
      const name = ["+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>="][op >> 4];
      if (op === BPF_AND || op === BPF_OR || op === BPF_XOR)
        this.reject(EACCES, `R${insn.dst} bitwise operator ${name} on pointer prohibited`);
      this.reject(EACCES, `R${insn.dst} pointer arithmetic with ${name} operator prohibited`);
    }
    this.adjustPtr(insn.dst, dst, src, op, srcX ? insn.src : -1, insn.dst);
  }

  /** adjust_ptr_min_max_vals: ptr (in place) op= scalar. */
  private adjustPtr(dstno: number, ptr: RegState, scalar: RegState, op: number, scalarReg: number, _d: number): void {
    const t = ptr.type;
    if (t & PTR_MAYBE_NULL) {
      this.reject(EACCES, `R${dstno} pointer arithmetic on ${regTypeStr(t)} prohibited, null-check it first`);
    }
    const bt = baseType(t);
    const known = tnumIsConst(scalar.varOff);
    if (bt === CONST_PTR_TO_MAP && !(known && scalar.smin === 0n && op === BPF_ADD)) {
      this.reject(EACCES, `R${dstno} pointer arithmetic on ${regTypeStr(t)} prohibited`);
    }
    if (bt === PTR_TO_FUNC) this.reject(EACCES, `R${dstno} pointer arithmetic on ${regTypeStr(t)} prohibited`);
    if (scalarReg >= 0) this.precision.addSink(this.insnIdx, scalarReg);
    if (known) {
      const v = BigInt.asIntN(64, scalar.varOff.value);
      const d = op === BPF_ADD ? v : -v;
      const off = BigInt(ptr.off) + d;
      if (off < -(1n << 29n) || off > 1n << 29n) this.reject(EACCES, `R${dstno} pointer offset ${off} is not allowed`);
      ptr.off = Number(off);
      return;
    }
    if (bt === PTR_TO_CTX) {
      // Variable offsets into the context are refused at the access; keep the pointer.
    }
    if (!this.privileged && bt === PTR_TO_STACK)
      this.reject(EACCES, `R${dstno} variable stack access prohibited for !root`);
    if (op === BPF_SUB && scalar.smin < 0n) {
      this.reject(EACCES, `R${dstno} pointer arithmetic with negative offset prohibited`);
    }
    const s = copyReg(ptr);
    scalarAlu(op, s, scalar, true);
    ptr.varOff = s.varOff;
    [ptr.umin, ptr.umax, ptr.smin, ptr.smax] = [s.umin, s.umax, s.smin, s.smax];
    [ptr.u32min, ptr.u32max, ptr.s32min, ptr.s32max] = [s.u32min, s.u32max, s.s32min, s.s32max];
    ptr.written = true;
  }

  // ---- memory (check_mem_access) ----

  /**
   * Access `size` bytes at reg + off. For reads, returns the loaded value's register state. For
   * writes, `valueReg` is the stored register (or -1 and `imm` for BPF_ST).
   */
  checkMemAccess(regno: number, off: number, size: number, write: boolean, valueReg: number, imm?: bigint): RegState {
    const reg = this.regs[regno];
    const out = copyReg(reg);
    markRegUnknown(out);
    const bt = baseType(reg.type);
    const value = valueReg >= 0 ? this.regs[valueReg] : undefined;
    if (reg.type & PTR_MAYBE_NULL || reg.type === SCALAR_VALUE || bt === CONST_PTR_TO_MAP || bt === PTR_TO_FUNC) {
      this.reject(EACCES, `R${regno} invalid mem access '${regTypeStr(reg.type)}'`);
    }
    switch (bt) {
      case PTR_TO_STACK:
        return this.checkStackAccess(regno, reg, off, size, write, value, imm, out);
      case PTR_TO_MAP_VALUE: {
        const map = this.maps[reg.map];
        if (write && value && this.isPointerValue(value)) this.reject(EACCES, `R${valueReg} leaks addr into map`);
        if (write && map.rdonlyProg)
          this.reject(
            EACCES,
            `write into map forbidden, value_size=${map.valueSize} off=${off + reg.off} size=${size}`,
          );
        this.checkMemRegion(regno, reg, off, size, map.valueSize, "map value");
        if (!write && map.frozen && map.rdonlyProg && map.valueBytes && tnumIsConst(reg.varOff)) {
          const o = reg.off + off + Number(reg.varOff.value);
          let v = 0n;
          for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(map.valueBytes[o + i] ?? 0);
          markRegKnown(out, v);
        }
        return out;
      }
      case PTR_TO_MAP_KEY: {
        if (write) this.reject(EACCES, `write to change key R${regno} not allowed`);
        this.checkMemRegion(regno, reg, off, size, this.maps[reg.map].keySize, "map key");
        return out;
      }
      case PTR_TO_MEM: {
        if (write && reg.type & MEM_RDONLY) this.reject(EACCES, `R${regno} cannot write into ${regTypeStr(reg.type)}`);
        if (write && value && this.isPointerValue(value)) this.reject(EACCES, `R${valueReg} leaks addr into mem`);
        this.checkMemRegion(regno, reg, off, size, reg.memSize, "memory");
        return out;
      }
      case PTR_TO_CTX:
        return this.checkCtxAccess(regno, reg, off, size, write, value, valueReg, out);
      case PTR_TO_BTF_ID:
        return this.checkBtfAccess(regno, reg, off, size, write, out);
      default:
        this.reject(EACCES, `R${regno} invalid mem access '${regTypeStr(reg.type)}'`);
    }
  }

  /** check_mem_region_access / __check_mem_access. */
  private checkMemRegion(regno: number, reg: RegState, off: number, size: number, memSize: number, what: string): void {
    const msg = (o: number): string =>
      what === "map value"
        ? `invalid access to map value, value_size=${memSize} off=${o} size=${size}`
        : what === "map key"
          ? `invalid access to map key, key_size=${memSize} off=${o} size=${size}`
          : `invalid access to memory, mem_size=${memSize} off=${o} size=${size}`;
    const fixed = reg.off + off;
    if (tnumIsConst(reg.varOff)) {
      const o = fixed + Number(BigInt.asIntN(64, reg.varOff.value));
      if (o < 0 || o + size > memSize) this.reject(EACCES, msg(o));
      return;
    }
    if (reg.smin < 0n && (reg.smin + BigInt(fixed) < 0n || reg.smin < -(1n << 31n))) {
      this.reject(EACCES, `R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.`);
    }
    const lo = Number(reg.smin) + fixed;
    if (lo < 0 || lo + size > memSize) {
      this.note(msg(lo));
      this.reject(EACCES, `R${regno} min value is outside of the allowed memory range`);
    }
    if (reg.umax >= BPF_MAX_VAR_OFF)
      this.reject(EACCES, `R${regno} unbounded memory access, make sure to bounds check any such access`);
    const hi = Number(reg.umax) + fixed;
    if (hi + size > memSize) {
      this.note(msg(hi));
      this.reject(EACCES, `R${regno} max value is outside of the allowed memory range`);
    }
  }

  private checkCtxAccess(
    regno: number,
    reg: RegState,
    off: number,
    size: number,
    write: boolean,
    value: RegState | undefined,
    valueReg: number,
    out: RegState,
  ): RegState {
    if (!tnumIsConst(reg.varOff) || reg.varOff.value !== 0n) {
      this.reject(EACCES, `variable ctx access var_off=${tnumStr(reg.varOff)} off=${off} size=${size}`);
    }
    if (reg.off !== 0) this.reject(EACCES, `dereference of modified ctx ptr R${regno} off=${reg.off} disallowed`);
    if (write && value && this.isPointerValue(value)) this.reject(EACCES, `R${valueReg} leaks addr into ctx`);
    if (this.structOps) {
      const btf = this.env.btf;
      const proto = btf ? btfFuncPtrProto(btf, this.structOps.members[this.memberIdx].type) : undefined;
      if (!btf || !proto) this.reject(EINVAL, "struct_ops program without BTF");
      const r = btfCtxAccess(btf, proto, this.attachFuncName ?? "", off, write);
      if (!r.ok) {
        this.note(r.msg);
        this.reject(EACCES, `invalid bpf_context access off=${off} size=${size}`);
      }
      if (r.ptrBtfId) {
        const arg = off / 8;
        const id = this.structOps.ctxArgBtfId?.(r.ptrBtfId) ?? r.ptrBtfId;
        const nullable = this.structOps.argMayBeNull?.(this.memberIdx, arg) ?? false;
        if (size !== 8) this.reject(EACCES, `invalid bpf_context access off=${off} size=${size}`);
        markPtr(out, PTR_TO_BTF_ID | PTR_TRUSTED | (nullable ? PTR_MAYBE_NULL : 0));
        out.btfId = id;
        if (nullable) out.id = this.newId();
      }
      return out;
    }
    const res = this.ops?.isValidAccess(off, size, write);
    if (!res) this.reject(EACCES, `invalid bpf_context access off=${off} size=${size}`);
    if (res.regType !== undefined && res.regType !== SCALAR_VALUE) {
      markPtr(out, res.regType);
      out.btfId = res.btfId ?? 0;
    }
    return out;
  }

  private checkBtfAccess(
    regno: number,
    reg: RegState,
    off: number,
    size: number,
    write: boolean,
    out: RegState,
  ): RegState {
    const name = this.btfName(reg.btfId);
    if (!tnumIsConst(reg.varOff) || reg.varOff.value !== 0n) {
      this.reject(
        EACCES,
        `R${regno} is ptr_${name} invalid variable offset: off=${reg.off}, var_off=${tnumStr(reg.varOff)}`,
      );
    }
    const o = reg.off + off;
    if (o < 0) this.reject(EACCES, `R${regno} is ptr_${name} invalid negative access: off=${o}`);
    const btf = this.env.btf;
    if (!btf) this.reject(EINVAL, "access to a BTF pointer without kernel BTF");
    if (write) {
      const refuse = this.structOps ? this.structOps.btfStructAccess(reg.btfId, o, size) : "only read is supported";
      if (refuse !== undefined) this.reject(EACCES, refuse);
      return out;
    }
    const r = btfStructRead(btf, reg.btfId, o, size);
    if (!r.ok) this.reject(EACCES, r.msg);
    if (r.ptrBtfId) {
      // Pointers read from kernel structs are plain (not trusted) BTF pointers: loads through
      // them are allowed, a NULL one faults into a zero at run time as in the kernel.
      markPtr(out, PTR_TO_BTF_ID);
      out.btfId = r.ptrBtfId;
    }
    return out;
  }

  private stackSlot(f: FuncState, spi: number) {
    let s = f.stack[spi];
    if (!s) {
      for (let i = f.stack.length; i <= spi; i++) if (!f.stack[i]) f.stack[i] = newSlot();
      s = f.stack[spi];
    }
    return s;
  }

  private checkStackAccess(
    regno: number,
    reg: RegState,
    off: number,
    size: number,
    write: boolean,
    value: RegState | undefined,
    imm: bigint | undefined,
    out: RegState,
  ): RegState {
    const f = this.cur.frames[reg.frameno];
    let minOff: number;
    let maxOff: number;
    const constOff = tnumIsConst(reg.varOff);
    if (constOff) {
      minOff = maxOff = reg.off + off + Number(BigInt.asIntN(64, reg.varOff.value));
    } else {
      if (!this.privileged) this.reject(EACCES, `R${regno} variable stack access prohibited for !root`);
      minOff = Number(reg.smin) + reg.off + off;
      maxOff = Number(reg.smax) + reg.off + off;
    }
    if (minOff < -MAX_BPF_STACK || maxOff + size > 0 || reg.smin < -(1n << 29n) || reg.smax > 1n << 29n) {
      this.reject(EACCES, `invalid stack off=${constOff ? minOff : `${reg.off + off}`} size=${size}`);
    }
    const sub = f.subprog;
    if (this.stackDepth[sub] < -minOff) this.stackDepth[sub] = -minOff;
    if (write) {
      if (!constOff) {
        for (let o = minOff; o < maxOff + size; o++) {
          const [spi, b] = spiOf(o);
          const s = this.stackSlot(f, spi);
          s.slotType[b] = STACK_MISC;
          s.spilledPtr = null;
          for (let j = 0; j < BPF_REG_SIZE; j++) if (s.slotType[j] === STACK_SPILL) s.slotType[j] = STACK_MISC;
        }
        return out;
      }
      this.stackWrite(f, minOff, size, value, imm);
      return out;
    }
    // read
    if (regno !== BPF_REG_10) this.stackLive.markWild(this.insnIdx);
    if (!constOff) {
      for (let o = minOff; o < maxOff + size; o++) {
        const [spi, b] = spiOf(o);
        const t = f.stack[spi]?.slotType[b] ?? STACK_INVALID;
        if (t === STACK_INVALID)
          this.reject(
            EACCES,
            `invalid variable-offset read from stack R${regno} var_off=${tnumStr(reg.varOff)} off=${off} size=${size}`,
          );
      }
      return out;
    }
    return this.stackRead(f, minOff, size, out);
  }

  private stackWrite(
    f: FuncState,
    off: number,
    size: number,
    value: RegState | undefined,
    imm: bigint | undefined,
  ): void {
    const [spi, b] = spiOf(off);
    if (value && isPointer(value) && size !== BPF_REG_SIZE) this.reject(EACCES, "invalid size of register spill");
    if (value && size === BPF_REG_SIZE && b === 0 && (isPointer(value) || value.type === SCALAR_VALUE)) {
      const s = this.stackSlot(f, spi);
      s.slotType.fill(STACK_SPILL);
      s.spilledPtr = copyReg(value);
      s.spilledPtr.written = false;
      // A spilled scalar must be compared exactly: its value can come back through a fill.
      if (value.type === SCALAR_VALUE && this.cur) this.precision.addSink(this.insnIdx, this.insns[this.insnIdx].src);
      return;
    }
    const zero =
      (imm !== undefined && imm === 0n) ||
      (value !== undefined && value.type === SCALAR_VALUE && tnumIsConst(value.varOff) && value.varOff.value === 0n);
    for (let o = off; o < off + size; o++) {
      const [si, bi] = spiOf(o);
      const s = this.stackSlot(f, si);
      if (s.spilledPtr) {
        if (isPointer(s.spilledPtr) && !this.allowPtrLeaks)
          this.reject(EACCES, "attempt to corrupt spilled pointer on stack");
        for (let j = 0; j < BPF_REG_SIZE; j++) if (s.slotType[j] === STACK_SPILL) s.slotType[j] = STACK_MISC;
        s.spilledPtr = null;
      }
      s.slotType[bi] = zero ? STACK_ZERO : STACK_MISC;
    }
  }

  private stackRead(f: FuncState, off: number, size: number, out: RegState): RegState {
    const [spi, b] = spiOf(off);
    const s = f.stack[spi];
    if (s?.spilledPtr && s.slotType[0] === STACK_SPILL) {
      if (size === BPF_REG_SIZE && b === 0) {
        const r = copyReg(s.spilledPtr);
        return r;
      }
      if (isPointer(s.spilledPtr) && !this.allowPtrLeaks) this.reject(EACCES, `leaking pointer from stack off ${off}`);
      // Part of a spilled scalar or pointer: an unknown scalar (a constant's bytes are known).
      if (s.spilledPtr.type === SCALAR_VALUE && tnumIsConst(s.spilledPtr.varOff) && b + size <= BPF_REG_SIZE) {
        const v = (s.spilledPtr.varOff.value >> BigInt(8 * b)) & ((1n << BigInt(8 * size)) - 1n);
        markRegKnown(out, v);
      }
      return out;
    }
    let allZero = true;
    for (let i = 0; i < size; i++) {
      const [si, bi] = spiOf(off + i);
      const t = f.stack[si]?.slotType[bi] ?? STACK_INVALID;
      if (t === STACK_INVALID) this.reject(EACCES, `invalid read from stack off ${off}+${i} size ${size}`);
      if (t !== STACK_ZERO) allZero = false;
    }
    if (allZero) markRegKnown(out, 0n);
    return out;
  }

  /** Mark `size` bytes at a stack pointer written by a helper (ARG_PTR_TO_UNINIT_MEM). */
  markStackWritten(reg: RegState, size: number): void {
    const f = this.cur.frames[reg.frameno];
    const base = reg.off + Number(BigInt.asIntN(64, reg.varOff.value));
    for (let o = base; o < base + size; o++) {
      const [si, bi] = spiOf(o);
      const s = this.stackSlot(f, si);
      if (s.spilledPtr) {
        for (let j = 0; j < BPF_REG_SIZE; j++) if (s.slotType[j] === STACK_SPILL) s.slotType[j] = STACK_MISC;
        s.spilledPtr = null;
      }
      s.slotType[bi] = STACK_MISC;
    }
  }

  /** check_helper_mem_access on the stack: `size` bytes initialised (reads) or in bounds (writes). */
  checkStackRange(regno: number, reg: RegState, size: number, write: boolean): void {
    if (!tnumIsConst(reg.varOff)) this.reject(EACCES, `R${regno} variable stack access prohibited for !root`);
    const f = this.cur.frames[reg.frameno];
    const off = reg.off + Number(BigInt.asIntN(64, reg.varOff.value));
    if (off < -MAX_BPF_STACK || off + size > 0 || (size === 0 && off >= 0)) {
      this.reject(EACCES, `invalid indirect access to stack R${regno} off=${off} size=${size}`);
    }
    if (this.stackDepth[f.subprog] < -off) this.stackDepth[f.subprog] = -off;
    if (write) return;
    for (let i = 0; i < size; i++) {
      const [si, bi] = spiOf(off + i);
      const t = f.stack[si]?.slotType[bi] ?? STACK_INVALID;
      if (t === STACK_INVALID)
        this.reject(EACCES, `invalid indirect read from stack R${regno} off ${off}+${i} size ${size}`);
    }
  }

  // ---- atomics (check_atomic) ----

  private checkAtomic(insn: Insn): void {
    const size = bpfSizeBytes(BPF_SIZE(insn.code));
    const op = insn.imm;
    const valid = [BPF_ADD, BPF_OR, BPF_AND, BPF_XOR]
      .flatMap((o) => [o, o | BPF_FETCH])
      .concat([BPF_XCHG, BPF_CMPXCHG]);
    if (!valid.includes(op))
      this.reject(EINVAL, `BPF_ATOMIC uses invalid atomic opcode ${op.toString(16).padStart(2, "0")}`);
    if (size !== 4 && size !== 8) this.reject(EINVAL, "invalid atomic operand size");
    this.readReg(insn.src);
    this.readReg(insn.dst);
    if (op === BPF_CMPXCHG) this.readReg(0);
    if (isPointer(this.regs[insn.src]) && !this.allowPtrLeaks) this.reject(EACCES, `R${insn.src} leaks addr into mem`);
    const bt = baseType(this.regs[insn.dst].type);
    if (bt === PTR_TO_CTX || bt === PTR_TO_BTF_ID)
      this.reject(EACCES, `BPF_ATOMIC stores into R${insn.dst} ${regTypeStr(this.regs[insn.dst].type)} is not allowed`);
    // The atomic reads then writes the memory.
    const old = this.checkMemAccess(insn.dst, insn.off, size, false, -1);
    this.checkMemAccess(insn.dst, insn.off, size, true, -1, 1n);
    if (op & BPF_FETCH) {
      const loadReg = op === BPF_CMPXCHG ? 0 : insn.src;
      const dst = this.writeReg(loadReg);
      if (isPointer(old)) Object.assign(dst, old);
      else {
        markRegUnknown(dst);
        if (size === 4) zextReg32(dst);
      }
      dst.written = true;
    }
  }

  // ---- jumps, calls, exit ----

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
      return this.processExit();
    }
    if (op === BPF_CALL) {
      if (
        !is64 ||
        BPF_SRC(insn.code) !== BPF_K ||
        insn.off !== 0 ||
        insn.dst !== 0 ||
        (insn.src !== 0 && insn.src !== BPF_PSEUDO_CALL && insn.src !== BPF_PSEUDO_KFUNC_CALL)
      ) {
        this.reject(EINVAL, "BPF_CALL uses reserved fields");
      }
      if (insn.src === BPF_PSEUDO_CALL) {
        this.checkFuncCall(idx, idx + insn.imm + 1, false);
        return false;
      }
      if (insn.src === BPF_PSEUDO_KFUNC_CALL) checkKfuncCall(this, insn.imm);
      else if (checkHelperCall(this, insn.imm)) return false;
      this.insnIdx = idx + 1;
      return false;
    }
    if (op > 0xd0) this.reject(EINVAL, `unknown opcode ${insn.code.toString(16).padStart(2, "0")}`);
    return this.checkCondJmp(idx, insn, is64);
  }

  private checkCondJmp(idx: number, insn: Insn, is64: boolean): boolean {
    const op = BPF_OP(insn.code);
    const srcX = BPF_SRC(insn.code) === BPF_X;
    if (srcX ? insn.imm !== 0 : insn.src !== 0) this.reject(EINVAL, "BPF_JMP/JMP32 uses reserved fields");
    const dst = this.readReg(insn.dst);
    let src: RegState;
    if (srcX) src = this.readReg(insn.src);
    else {
      src = copyReg(dst);
      markRegKnown(src, is64 ? BigInt(insn.imm) : BigInt(insn.imm >>> 0));
    }
    const target = idx + insn.off + 1;
    const dPtr = isPointer(dst);
    const sPtr = isPointer(src);
    if (dPtr || sPtr) {
      const ptr = dPtr ? dst : src;
      const other = dPtr ? src : dst;
      const otherZero = !isPointer(other) && tnumIsConst(other.varOff) && other.varOff.value === 0n;
      if (is64 && (op === BPF_JEQ || op === BPF_JNE) && otherZero && !(dPtr && sPtr)) {
        if (ptr.type & PTR_MAYBE_NULL) {
          const id = ptr.id;
          const other = copyState(this.cur);
          // In `other` (the jump) the pointer is NULL for JEQ, valid for JNE.
          this.markPtrOrNull(other, id, op === BPF_JEQ);
          this.markPtrOrNull(this.cur, id, op !== BPF_JEQ);
          this.pushState(other, target);
          this.insnIdx = idx + 1;
          return false;
        }
        // A valid pointer is never NULL.
        this.insnIdx = op === BPF_JNE ? target : idx + 1;
        return false;
      }
      if (!this.allowPtrLeaks) this.reject(EACCES, `R${dPtr ? insn.dst : insn.src} pointer comparison prohibited`);
      this.pushState(copyState(this.cur), target);
      this.insnIdx = idx + 1;
      return false;
    }
    const taken = isBranchTaken(dst, src, op, is64);
    if (taken >= 0) {
      this.precision.addSink(idx, insn.dst);
      if (srcX) this.precision.addSink(idx, insn.src);
      this.insnIdx = taken ? target : idx + 1;
      return false;
    }
    const other = copyState(this.cur);
    const oDst = curFrame(other).regs[insn.dst];
    const oSrc = srcX ? curFrame(other).regs[insn.src] : copyReg(src);
    const jumpOk = regSetMinMax(oDst, oSrc, op, is64);
    const fallOk = regSetMinMax(dst, srcX ? src : copyReg(src), negateJmp(op), is64);
    if (!jumpOk || !fallOk) {
      this.precision.addSink(idx, insn.dst);
      if (srcX) this.precision.addSink(idx, insn.src);
    }
    if (jumpOk && fallOk) {
      this.pushState(other, target);
      this.insnIdx = idx + 1;
    } else if (jumpOk) {
      this.cur = other;
      this.insnIdx = target;
    } else {
      this.insnIdx = idx + 1;
    }
    return false;
  }

  /** mark_ptr_or_null_regs: every copy of pointer `id`, in every frame, becomes NULL or valid. */
  private markPtrOrNull(st: VerifierState, id: number, isNull: boolean): void {
    const fix = (r: RegState): void => {
      if (!(r.type & PTR_MAYBE_NULL) || r.id !== id) return;
      if (isNull) {
        const w = r.written;
        markRegKnown(r, 0n);
        r.written = w;
      } else {
        r.type &= ~PTR_MAYBE_NULL;
        r.id = 0;
      }
    };
    for (const f of st.frames) {
      f.regs.forEach(fix);
      for (const s of f.stack) if (s?.spilledPtr) fix(s.spilledPtr);
    }
  }

  /** check_func_call: a call to a BPF subprogram (or a callback from a helper). */
  checkFuncCall(idx: number, target: number, isCallback: boolean, args?: RegState[]): void {
    if (this.cur.frames.length >= MAX_CALL_FRAMES) {
      this.reject(E2BIG, `the call stack of ${this.cur.frames.length + 1} frames is too deep`);
    }
    const subprog = this.cfg.subprogStarts.indexOf(target);
    if (subprog < 0) this.reject(EFAULT, `verifier bug. No program starts at insn ${target}`);
    const caller = this.frame;
    const callee = newFuncState(idx, this.cur.frames.length, subprog);
    callee.isCallback = isCallback;
    for (let r = 1; r <= 5; r++) {
      callee.regs[r] = copyReg(args ? args[r] : caller.regs[r]);
    }
    if (isCallback) callee.cbArgs = callee.regs.slice(0, 6).map(copyReg);
    markPtr(callee.regs[BPF_REG_10], PTR_TO_STACK);
    callee.regs[BPF_REG_10].frameno = callee.frameno;
    if (!isCallback) for (let r = 0; r <= 5; r++) markRegNotInit(caller.regs[r]);
    this.cur.frames.push(callee);
    if (this.logLevel > 0)
      this.verbose(`\ncaller:\n ${this.stateString(caller)}\ncallee:\n ${this.stateString(callee)}\n`);
    this.insnIdx = target;
  }

  /**
   * The next iteration of a bpf_loop callback: the caller's state after this one, its stack
   * contents widened (the callback may have changed what its context points to, so constants
   * there become unknown scalars), the callback entered again with the same arguments. Iterations
   * stop once an entry state is covered by an earlier one.
   */
  private pushCallbackIteration(done: FuncState): void {
    const again = copyState(this.cur);
    for (const f of again.frames) {
      for (const slot of f.stack) {
        if (!slot) continue;
        if (slot.spilledPtr && slot.spilledPtr.type === SCALAR_VALUE) markRegUnknown(slot.spilledPtr);
        for (let j = 0; j < BPF_REG_SIZE; j++) if (slot.slotType[j] === STACK_ZERO) slot.slotType[j] = STACK_MISC;
      }
    }
    const target = this.cfg.subprogStarts[done.subprog];
    const callee = newFuncState(done.callsite, again.frames.length, done.subprog);
    callee.isCallback = true;
    callee.cbArgs = done.cbArgs;
    for (let r = 1; r <= 5; r++) if (done.cbArgs) callee.regs[r] = copyReg(done.cbArgs[r]);
    markPtr(callee.regs[BPF_REG_10], PTR_TO_STACK);
    callee.regs[BPF_REG_10].frameno = callee.frameno;
    again.frames.push(callee);
    again.callbackReentry = true;
    this.pushState(again, target);
  }

  /** BPF_EXIT: return from a subprogram, or the end of a path through the main program. */
  private processExit(): boolean {
    const f = this.frame;
    if (this.cur.frames.length > 1) {
      const r0 = this.readReg(0);
      if (baseType(r0.type) === PTR_TO_STACK && r0.frameno === f.frameno)
        this.reject(EINVAL, "cannot return stack pointer to the caller frame");
      if (f.isCallback) {
        if (r0.type !== SCALAR_VALUE)
          this.reject(EINVAL, `At callback return the register R0 is not a known value (${regTypeStr(r0.type)})`);
        if (r0.smin < 0n || r0.smax > 1n) {
          this.reject(
            EINVAL,
            `At callback return the register R0 has smin=${r0.smin} smax=${r0.smax} should have been in [0, 1]`,
          );
        }
      }
      const ret = copyReg(r0);
      this.cur.frames.pop();
      const caller = this.frame;
      if (f.isCallback) {
        markRegUnknown(caller.regs[0]);
        for (let r = 1; r <= 5; r++) markRegNotInit(caller.regs[r]);
        this.pushCallbackIteration(f);
      } else caller.regs[0] = ret;
      caller.regs[0].written = true;
      this.scratched |= 1;
      if (this.logLevel > 0)
        this.verbose(
          `\nreturning from callee:\n ${this.stateString(f)}\nto caller at ${f.callsite + 1}:\n ${this.stateString(caller)}\n`,
        );
      this.insnIdx = f.callsite + 1;
      return false;
    }
    this.checkReturnCode();
    return true;
  }

  /** check_return_code. */
  private checkReturnCode(): void {
    if (this.structOps) {
      const proto = btfFuncPtrProto(
        this.env.btf as NonNullable<VerifierEnv["btf"]>,
        this.structOps.members[this.memberIdx].type,
      );
      if (proto && proto.type === 0) return; // void member: R0 is not looked at
    }
    const r0 = this.readReg(0);
    if (this.isPointerValue(r0)) this.reject(EACCES, "R0 leaks addr as return value");
    const range = this.ops?.returnRange;
    if (!range) return;
    if (r0.type !== SCALAR_VALUE)
      this.reject(EINVAL, `At program exit the register R0 is not a known value (${regTypeStr(r0.type)})`);
    this.precision.addSink(this.insnIdx, 0);
    if (r0.smin < range[0] || r0.smax > range[1]) {
      this.reject(
        EINVAL,
        `At program exit the register R0 has smin=${r0.smin} smax=${r0.smax} should have been in [${range[0]}, ${range[1]}]`,
      );
    }
  }

  /** check_max_stack_depth: the deepest chain of calls may use at most 512 bytes of stack. */
  private checkMaxStackDepth(): void {
    const starts = this.cfg.subprogStarts;
    const callees: number[][] = starts.map(() => []);
    this.insns.forEach((insn, t) => {
      if (isPseudoCall(insn)) callees[this.cfg.subprogOf[t]].push(starts.indexOf(t + insn.imm + 1));
    });
    const round = (d: number): number => Math.ceil(Math.max(d, 1) / 32) * 32;
    const walk = (s: number, depth: number, frames: number, seen: Set<number>): void => {
      const total = depth + round(this.stackDepth[s] ?? 0);
      if (frames > MAX_CALL_FRAMES) this.reject(E2BIG, `the call stack of ${frames} frames is too deep !`, starts[s]);
      if (total > MAX_BPF_STACK)
        this.reject(EACCES, `combined stack size of ${frames} calls is ${total}. Too large`, starts[s]);
      if (seen.has(s)) return;
      for (const c of callees[s]) if (c >= 0) walk(c, total, frames + 1, new Set([...seen, s]));
    };
    walk(0, 0, 1, new Set());
  }

  // For helpers.ts.
  constMapPtrOf(r: RegState): VerifierMap | undefined {
    return baseType(r.type) === CONST_PTR_TO_MAP ? this.maps[r.map] : undefined;
  }

  computeAluConst = aluConst;
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
