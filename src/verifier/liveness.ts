/**
 * Register dataflow for pruning. The kernel learns, per state, which registers were read
 * (liveness) and which scalars' exact values mattered (precision, mark_chain_precision). We
 * compute both over the control-flow graph instead: `live` is the classic backward liveness;
 * `need` grows from the sinks do_check reports (a scalar that moved a pointer, sized a helper
 * access, decided a branch, was spilled, or is returned) back through the instructions that
 * computed it. States whose registers agree on what is live and needed are equivalent.
 */
import { type Insn, isLdImm64 } from "../isa/insn.js";
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CLASS,
  BPF_CMPXCHG,
  BPF_EXIT,
  BPF_FETCH,
  BPF_JA,
  BPF_LDX,
  BPF_MODE,
  BPF_MOV,
  BPF_OP,
  BPF_SRC,
  BPF_ST,
  BPF_STX,
  BPF_X,
} from "../isa/opcodes.js";
import { type Cfg, isPseudoCall, isPseudoFunc } from "./cfg.js";

const R0_5 = 0x3f;
const R1_5 = 0x3e;
const bit = (r: number): number => 1 << r;

/** Use/def of one instruction for liveness: [uses, defs]. */
function useDef(i: Insn, callUses = R1_5): [number, number] {
  const cls = BPF_CLASS(i.code);
  const op = BPF_OP(i.code);
  const x = BPF_SRC(i.code) === BPF_X;
  switch (cls) {
    case BPF_ALU:
    case BPF_ALU64:
      if (op === BPF_MOV) return [x ? bit(i.src) : 0, bit(i.dst)];
      return [bit(i.dst) | (x ? bit(i.src) : 0), bit(i.dst)];
    case BPF_LDX:
      return [bit(i.src), bit(i.dst)];
    case BPF_ST:
      return [bit(i.dst), 0];
    case BPF_STX:
      if (BPF_MODE(i.code) === BPF_ATOMIC) {
        if (i.imm === BPF_CMPXCHG) return [bit(i.dst) | bit(i.src) | 1, 1];
        return [bit(i.dst) | bit(i.src), i.imm & BPF_FETCH ? bit(i.src) : 0];
      }
      return [bit(i.dst) | bit(i.src), 0];
    default:
      if (isLdImm64(i)) return [0, bit(i.dst)];
      if (op === BPF_EXIT) return [1, 0];
      if (op === BPF_CALL) return [callUses, R0_5];
      if (op === BPF_JA) return [0, 0];
      return [bit(i.dst) | (x ? bit(i.src) : 0), 0];
  }
}

/** Fall-through successors for per-frame dataflow (a call's callee is another frame). */
function frameSucc(insns: readonly Insn[], cfg: Cfg, t: number): number[] {
  const i = insns[t];
  if (isPseudoCall(i)) return [t + 1];
  if (isPseudoFunc(i)) return [t + 2];
  return cfg.succ[t];
}

/**
 * live[t]: registers r0-r9 that may be read at or after t before being written (per frame).
 * `callUses(t)` narrows the arguments a call at t reads (a helper reads only its prototype's).
 */
export function computeLiveness(
  insns: readonly Insn[],
  cfg: Cfg,
  callUses: (t: number) => number = () => R1_5,
): Uint16Array {
  const n = insns.length;
  const live = new Uint16Array(n);
  const ud = insns.map((i, t) => useDef(i, BPF_OP(i.code) === BPF_CALL ? callUses(t) : R1_5));
  let changed = true;
  while (changed) {
    changed = false;
    for (let t = n - 1; t >= 0; t--) {
      let out = 0;
      for (const s of frameSucc(insns, cfg, t)) if (s < n) out |= live[s];
      const v = ud[t][0] | (out & ~ud[t][1]);
      if (v !== live[t]) {
        live[t] = v;
        changed = true;
      }
    }
  }
  return live;
}

const ALL_SLOTS = 0xffff_ffff_ffff_ffffn;

/** Stack slots (bit i = fp-8*(i+1)) covered by `size` bytes at fp+off. */
function slotsOf(off: number, size: number): bigint {
  let m = 0n;
  for (let o = off; o < off + size; o++) {
    const spi = Math.floor((-o - 1) / 8);
    if (spi >= 0 && spi < 64) m |= 1n << BigInt(spi);
  }
  return m;
}

const accessSize = (code: number): number => [4, 2, 1, 8][(code >> 3) & 3];

/**
 * Registers, and spilled stack slots of the running frame, whose exact value matters at each
 * instruction; grows as do_check reports sinks. A fill from a needed register needs its slot; a
 * spill into a needed slot needs the spilled register.
 */
/** 1 where a 64-bit typed array element keeps its high 32-bit word first (a big-endian host). */
const HI_FIRST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;

export class Precision {
  readonly need: Uint16Array;
  readonly needSlots: BigUint64Array;
  /** needSlots as 32-bit words (see HI_FIRST). */
  private readonly needWords: Uint32Array;
  private readonly sinks: Uint16Array;
  /** Instructions seen reading (1) or writing (2) the stack through a register other than r10. */
  private readonly viaPtr: Uint8Array;
  marks = 0;
  private readonly insns: readonly Insn[];
  private readonly cfg: Cfg;
  /** Callers of each subprogram entry (their need includes the callee's arguments). */
  private readonly callersOf = new Map<number, number[]>();
  /**
   * Exits of each subprogram whose R0 is needed only where a caller needs it after the call
   * (backtracking into a callee starts from R0 at its exit only then), keyed by the return
   * sites (call + 1) whose need decides it.
   */
  private readonly exitsAfter = new Map<number, number[]>();
  /** For such an exit: the return sites of its subprogram's calls. */
  private readonly returnSites = new Map<number, number[]>();

  constructor(insns: readonly Insn[], cfg: Cfg) {
    this.insns = insns;
    this.cfg = cfg;
    this.need = new Uint16Array(insns.length);
    this.needSlots = new BigUint64Array(insns.length);
    this.needWords = new Uint32Array(this.needSlots.buffer);
    this.sinks = new Uint16Array(insns.length);
    this.viaPtr = new Uint8Array(insns.length);
    const referenced = new Set<number>();
    insns.forEach((i, t) => {
      if (isPseudoCall(i)) {
        const target = t + i.imm + 1;
        const l = this.callersOf.get(target) ?? [];
        l.push(t);
        this.callersOf.set(target, l);
      } else if (isPseudoFunc(i)) {
        referenced.add(t + i.imm + 1);
      }
    });
    insns.forEach((i, t) => {
      const sub = cfg.subprogOf[t];
      if (sub === 0 || BPF_CLASS(i.code) !== 0x05 || BPF_OP(i.code) !== BPF_EXIT) return;
      const entry = cfg.subprogStarts[sub];
      const callers = this.callersOf.get(entry);
      // A callback's R0 is checked by whoever invokes it (the main program's exit reports its
      // own sink when the program type checks the return value): always exact.
      if (!callers || referenced.has(entry)) {
        this.sinks[t] |= 1;
        return;
      }
      const sites = callers.map((c) => c + 1);
      this.returnSites.set(t, sites);
      for (const r of sites) {
        const l = this.exitsAfter.get(r) ?? [];
        l.push(t);
        this.exitsAfter.set(r, l);
      }
    });
    for (let t = insns.length - 1; t >= 0; t--) if (this.sinks[t]) this.propagate(t);
  }

  addSink(t: number, reg: number): void {
    if (this.sinks[t] & bit(reg)) return;
    this.sinks[t] |= bit(reg);
    this.marks++;
    this.propagate(t);
  }

  /** Instruction t read (write = false) or wrote the stack through a pointer register. */
  stackViaPointer(t: number, write: boolean): void {
    const flag = write ? 2 : 1;
    if (this.viaPtr[t] & flag) return;
    this.viaPtr[t] |= flag;
    this.propagate(t);
  }

  private transfer(t: number): [number, bigint] {
    const i = this.insns[t];
    const n = this.insns.length;
    let out = 0;
    let slots = 0n;
    for (const s of frameSucc(this.insns, this.cfg, t)) {
      if (s >= n) continue;
      out |= this.need[s];
      slots |= this.needSlots[s];
    }
    const cls = BPF_CLASS(i.code);
    const op = BPF_OP(i.code);
    const x = BPF_SRC(i.code) === BPF_X;
    let v = out;
    if (cls === BPF_ALU || cls === BPF_ALU64) {
      const d = bit(i.dst);
      if (op === BPF_MOV) v = (out & ~d) | (out & d && x ? bit(i.src) : 0);
      else v = out | (out & d && x ? bit(i.src) : 0);
    } else if (cls === BPF_LDX) {
      v = out & ~bit(i.dst);
      if (out & bit(i.dst)) {
        if (i.src === 10) slots |= slotsOf(i.off, accessSize(i.code));
        else if (this.viaPtr[t] & 1) slots = ALL_SLOTS;
      }
    } else if (isLdImm64(i)) {
      v = out & ~bit(i.dst);
    } else if (cls === BPF_STX && BPF_MODE(i.code) === BPF_ATOMIC) {
      const [, defs] = useDef(i);
      v = out & ~defs;
      const covered = i.dst === 10 ? slotsOf(i.off, accessSize(i.code)) : this.viaPtr[t] ? ALL_SLOTS : 0n;
      if (out & defs) slots |= covered;
      if (slots & covered || (i.dst !== 10 && this.viaPtr[t] & 2)) v |= bit(i.src);
    } else if (cls === BPF_STX || cls === BPF_ST) {
      const size = accessSize(i.code);
      if (i.dst === 10) {
        const covered = slotsOf(i.off, size);
        if (cls === BPF_STX && slots & covered) v |= bit(i.src);
        if (size === 8 && i.off % 8 === 0) slots &= ~covered & ALL_SLOTS;
      } else if (cls === BPF_STX && this.viaPtr[t] & 2) {
        // Through a pointer the store may land in another frame's stack, whose later uses this
        // frame's dataflow does not see: keep the value exact.
        v |= bit(i.src);
      }
    } else if (isPseudoCall(i)) {
      v = (out & ~R0_5) | (this.need[t + i.imm + 1] & R1_5);
      // A callee given a pointer into this frame's stack may read (and use) what it finds there.
      if (this.viaPtr[t]) slots = ALL_SLOTS;
    } else if ((cls === 0x05 || cls === 0x06) && op === BPF_CALL) {
      v = out & ~R0_5;
      // Likewise a bpf_loop callback through its context.
      if (this.viaPtr[t]) slots = ALL_SLOTS;
    } else if ((cls === 0x05 || cls === 0x06) && op === BPF_EXIT) {
      slots = 0n;
      const sites = this.returnSites.get(t);
      if (sites?.some((r) => this.need[r] & 1)) v |= 1;
    } else if ((cls === 0x05 || cls === 0x06) && x && op !== BPF_JA) {
      // dreg <cond> sreg: backtrack_insn needs both before the jump if either is needed after it.
      const both = bit(i.dst) | bit(i.src);
      if (out & both) v = out | both;
    }
    return [v | this.sinks[t], slots];
  }

  private propagate(start: number): void {
    const work = [start];
    while (work.length > 0) {
      const t = work.pop() as number;
      const [r, sl] = this.transfer(t);
      const v = r | this.need[t];
      const vs = sl | this.needSlots[t];
      if (v === this.need[t] && vs === this.needSlots[t]) continue;
      this.need[t] = v;
      this.needSlots[t] = vs;
      for (const p of this.cfg.pred[t]) work.push(p);
      for (const c of this.callersOf.get(t) ?? []) work.push(c);
      if (v & 1) for (const e of this.exitsAfter.get(t) ?? []) work.push(e);
    }
  }

  /** Is the spilled value in slot spi needed exactly at instruction t (running frame)? */
  slotNeeded(t: number, spi: number): boolean {
    // pruning asks this per slot per comparison: a word read, not a BigInt shift
    return spi >= 64 || ((this.needWords[2 * t + ((spi >> 5) ^ HI_FIRST)] >>> (spi & 31)) & 1) === 1;
  }
}

/**
 * Stack slots whose contents may still be read, per instruction, for the frame running it (the
 * kernel's stack liveness). Loads at fixed offsets from r10 are uses, full 8-byte stores to r10
 * kill; an instruction that reads the stack through another register, or a call given a stack
 * pointer (do_check reports both as it meets them), makes every slot live. Slots are bits 0-63 (slot i is fp-8*(i+1)).
 */
export class StackLiveness {
  /** Per instruction: live slots as a 64-bit mask; ALL when anything may be read. */
  readonly live: BigUint64Array;
  /** live as 32-bit words (see HI_FIRST). */
  private readonly liveWords: Uint32Array;
  private readonly wild: Uint8Array;
  private readonly insns: readonly Insn[];
  private readonly cfg: Cfg;
  static readonly ALL = 0xffff_ffff_ffff_ffffn;

  constructor(insns: readonly Insn[], cfg: Cfg) {
    this.insns = insns;
    this.cfg = cfg;
    this.live = new BigUint64Array(insns.length);
    this.liveWords = new Uint32Array(this.live.buffer);
    this.wild = new Uint8Array(insns.length);
    // Calls read the stack only through pointer arguments: do_check reports those (markWild).
    // Plain backward fixpoint once; later reports grow it incrementally.
    let changed = true;
    while (changed) {
      changed = false;
      for (let t = insns.length - 1; t >= 0; t--) {
        const v = this.transfer(t);
        if (v !== this.live[t]) {
          this.live[t] = v;
          changed = true;
        }
      }
    }
  }

  /** The slots an access of `size` bytes at fp+off covers. */
  private static slots(off: number, size: number): bigint {
    let m = 0n;
    for (let o = off; o < off + size; o++) {
      const spi = Math.floor((-o - 1) / 8);
      if (spi >= 0 && spi < 64) m |= 1n << BigInt(spi);
    }
    return m;
  }

  private transfer(t: number): bigint {
    if (this.wild[t]) return StackLiveness.ALL;
    const i = this.insns[t];
    let out = 0n;
    for (const s of frameSucc(this.insns, this.cfg, t)) if (s < this.insns.length) out |= this.live[s];
    const cls = BPF_CLASS(i.code);
    const size = [4, 2, 1, 8][(i.code >> 3) & 3];
    if (cls === BPF_LDX && i.src === 10) return out | StackLiveness.slots(i.off, size);
    if (cls === BPF_STX && BPF_MODE(i.code) === BPF_ATOMIC && i.dst === 10)
      return out | StackLiveness.slots(i.off, size);
    if ((cls === BPF_STX || cls === BPF_ST) && i.dst === 10 && size === 8 && i.off % 8 === 0) {
      return out & ~StackLiveness.slots(i.off, 8) & StackLiveness.ALL;
    }
    return out;
  }

  /** do_check saw instruction t read the stack through a pointer other than r10. */
  markWild(t: number): void {
    if (this.wild[t]) return;
    this.wild[t] = 1;
    const work = [t];
    while (work.length > 0) {
      const u = work.pop() as number;
      const v = this.transfer(u) | this.live[u];
      if (v === this.live[u]) continue;
      this.live[u] = v;
      for (const p of this.cfg.pred[u]) work.push(p);
    }
  }

  isLive(t: number, spi: number): boolean {
    return spi >= 64 || ((this.liveWords[2 * t + ((spi >> 5) ^ HI_FIRST)] >>> (spi & 31)) & 1) === 1;
  }
}

/**
 * The "Live regs before insn:" table 6.18 prints at log level 2 (compute_live_registers): per
 * instruction, each of r0-r9 live before it as its digit, others as '.'.
 */
export function liveRegsLog(insns: readonly Insn[], live: Uint16Array, text: (t: number) => string): string {
  let out = "Live regs before insn:\n";
  for (let t = 0; t < insns.length; t++) {
    let regs = "";
    for (let r = 0; r < 10; r++) regs += live[t] & bit(r) ? `${r}` : ".";
    out += `${String(t).padStart(7)}: ${regs} ${text(t)}\n`;
    if (isLdImm64(insns[t])) t++;
  }
  return out;
}
